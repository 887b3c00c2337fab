"""The artifact-scorer benchmark: every model on every representation at every noise level of
every scheduler's runs, for one seed.

**What is scored (a proxy).** A scheduler's U-Net input at timestep t of a run that ends at a
clean latent x0 is, for a perfect denoiser, distributed as ``√ᾱ_t·x0 + √(1−ᾱ_t)·ε`` for DDPM,
DDIM, Euler (after ``scale_model_input``) and DPM-Solver alike: the forward-noising proxy of
:func:`~pipeline.latents.noising.oracle_trajectory`. Models are therefore trained once per seed
on that marginal with *fresh noise every minibatch* (:func:`~pipeline.score.nets.forward_noise`)
at the timesteps the schedulers use, and each scheduler's runs are scored at its own timesteps.
What a *learned* U-Net holds mid-run, and a deterministic sampler's dependence on its final
image, are not in this proxy: draw no conclusion about deterministic samplers from it. The real
runs of :mod:`pipeline.generate.runs` (``real_runs``) are scored by the same models beside it.

Representations (what a scorer is given at a step of the run):

- ``latent``: the noisy latent as the U-Net receives it (``scale_model_input``);
- ``rgb``: its fitted latent→RGB linear preview (the public attempt's input), clipped to [-1, 1];
- ``clean``: the finished latent (t = 0), the upper bound, scored by :func:`run_clean`.

Models: ``ridge`` (standardised ridge regression on ``RIDGE_DRAWS`` noise draws of the training
set), ``mlp`` and ``cnn`` (one per timestep; which of them run is ``ScorerSpec.level_models``),
``cnn_t`` (one timestep-conditioned CNN trained on every level at once) and ``mixture`` (per-level
``expert_model`` networks as experts, interpolated in t; see
:class:`~pipeline.score.nets.ExpertMixture`). The two cross-level models are also scored at
*held-out* levels between the training ones, which is where they differ. Everything is fitted on
the training split only and scored on the test split with
:func:`~pipeline.metrics.regression.artifact_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.latents.noising import alpha_bar, make_scheduler, oracle_trajectory, timestep_for_fraction
from pipeline.latents.rgb import LatentRGB
from pipeline.metrics.regression import artifact_metrics
from pipeline.score.fresh import proxy_predictions, runs_predictions
from pipeline.score.runs import RUN_SUFFIX
from pipeline.score.nets import CNNScorer, ExpertMixture, MLPScorer, forward_noise, train_scorer

LEVEL_MODELS = ("ridge", "mlp", "cnn")     # fitted once per noise level
CROSS_MODELS = ("cnn_t", "mixture")        # one model for every level


@dataclass
class ScorerSpec:
    """Model sizes and training budgets: the ``score`` params section (its only home for defaults)."""

    ridge_alpha: float
    mlp_hidden: list[int]
    cnn_channels: list[int]
    t_dim: int
    level_steps: int
    cond_steps: int
    batch_size: int
    lr: float
    level_models: list[str]
    expert_model: str            # the per-level model the mixture is made of (mlp | cnn | none: no mixture)
    rgb_models: list[str]
    severe_at: float
    max_score: float = 5.0       # the artifact score's range is 0..max_score (not a param)


RIDGE_DRAWS = 2   # noise draws of the training set a ridge level model is fitted on


def _predict(model, x: np.ndarray, t: np.ndarray, max_score: float) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(np.array(x, dtype=np.float32)), torch.from_numpy(t.astype(np.float32)))
    return out.clamp(0, max_score).numpy().astype(np.float64)


def fit_level(kind: str, x_train: np.ndarray, y_train: np.ndarray, spec: ScorerSpec, seed: int,
              alpha_bar: float | None = None, timestep: float = 0.0, preview: LatentRGB | None = None):
    """Fit one per-level model ``kind`` (ridge | mlp | cnn) at one noise level.

    ``x_train`` are clean latents; with ``alpha_bar`` they are noised to that level: afresh every
    minibatch for the networks, ``RIDGE_DRAWS`` seeded draws for ridge and for preview inputs.
    ``preview`` maps the (noisy) training latents to their latent→RGB preview first. Returns
    ``(predict, model)``: ``predict(x)`` gives clipped scores for inputs of the training kind
    (noisy latents, or previews), ``model`` is the torch module for mlp/cnn, None for ridge."""
    if kind not in LEVEL_MODELS:
        raise ValueError(f"unknown per-level model {kind!r}; known: {', '.join(LEVEL_MODELS)}")
    if kind == "ridge" or preview is not None:
        draws = RIDGE_DRAWS if alpha_bar is not None else 1
        gen = torch.Generator().manual_seed(seed)
        clean = torch.from_numpy(np.array(x_train, dtype=np.float32))
        x_fit = np.concatenate([
            (clean if alpha_bar is None else forward_noise(clean, torch.full((len(clean),), alpha_bar), gen)).numpy()
            for _ in range(draws)])
        if preview is not None:
            x_fit = np.moveaxis(preview(x_fit), -1, 1)
        x_train, y_train, alpha_bar = x_fit, np.tile(y_train, draws), None
    if kind == "ridge":
        pipe = make_pipeline(StandardScaler(), Ridge(alpha=spec.ridge_alpha))
        pipe.fit(x_train.reshape(len(x_train), -1), y_train)
        return (lambda x: np.clip(pipe.predict(x.reshape(len(x), -1)), 0, spec.max_score)), None
    torch.manual_seed(seed)
    shape = list(x_train.shape[1:])
    model = MLPScorer(shape, spec.mlp_hidden) if kind == "mlp" else CNNScorer(shape, spec.cnn_channels)
    ab = None if alpha_bar is None else np.full(len(x_train), alpha_bar)
    train_scorer(model, x_train, np.full(len(x_train), timestep), y_train, steps=spec.level_steps,
                 batch_size=spec.batch_size, lr=spec.lr, seed=seed, alpha_bars=ab)
    return (lambda x: _predict(model, x, np.full(len(x), timestep), spec.max_score)), model


def fit_predict(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, spec: ScorerSpec, seed: int):
    """:func:`fit_level` on clean latents, then its predictions on ``x_test``."""
    predict, model = fit_level(kind, x_train, y_train, spec, seed)
    return predict(x_test), model


def run_clean(x_train, y_train, x_test, y_test, spec: ScorerSpec, seed: int) -> tuple[list[dict], torch.nn.Module]:
    """The upper bound: each per-level model on the finished latents (t = 0); the rows and the fitted clean CNN."""
    rows, models = [], {}
    for kind in LEVEL_MODELS:
        pred, models[kind] = fit_predict(kind, x_train, y_train, x_test, spec, seed)
        rows.append({"scheduler": "clean", "representation": "clean", "model": kind, "t_frac": 0.0, "timestep": 0.0,
                     "run_frac": 1.0, "heldout": False, "seed": seed, **artifact_metrics(y_test, pred, severe_at=spec.severe_at)})
    return rows, models["cnn"].eval()


@dataclass
class SchedulerResult:
    rows: list[dict]                   # one per (representation, model, level), held-out levels included
    test_pred: dict[str, np.ndarray]   # model → (levels, n_test) predictions on the training levels
    levels: dict                       # t_fracs, timesteps, steps, run_fracs, alpha_bars of the training levels
    models: dict[str, torch.nn.Module]  # the deployable cross-level models (cnn_t, mixture)
    index: np.ndarray | None = None    # sampler runs: the test images they cover (None: all)
    losses: dict[str, list[float]] | None = None   # training loss per step of the cross-level nets (cnn_t)


def level_timesteps(name: str, t_fracs: list[float], num_inference_steps: int) -> tuple[list[float], list[float]]:
    """The timesteps and ᾱ of scheduler ``name`` at ``t_fracs``, as :func:`oracle_trajectory` picks them."""
    scheduler = make_scheduler(name, num_inference_steps)
    timesteps = [timestep_for_fraction(scheduler, f) for f in t_fracs]
    return [float(t) for t in timesteps], [alpha_bar(scheduler, t) for t in timesteps]


def run_schedulers(names: list[str], clean_train: np.ndarray, y_train: np.ndarray, clean_test: np.ndarray,
                   y_test: np.ndarray, *, t_fracs: list[float], heldout_fracs: list[float], num_inference_steps: int,
                   spec: ScorerSpec, seed: int, rgb: LatentRGB | None = None,
                   real_runs: dict[str, dict] | None = None) -> dict[str, SchedulerResult]:
    """Every model at every level of each scheduler in ``names``, for one seed.

    ``real_runs`` (optional) maps a scheduler to what its real runs with a learned U-Net held
    (:mod:`pipeline.generate.runs`): ``model_input`` (levels, N, C, H, W) at the proxy's levels
    (``timesteps``, checked) for the test images ``index``. The same fitted models score them too,
    as scheduler ``<name>_run``.

    Test runs are each scheduler's :func:`oracle_trajectory` (seeded by ``seed``: the same starting
    noise per image for every deterministic scheduler). Per-level models are fitted once per distinct
    timestep (schedulers sharing a timestep share them); ``cnn_t`` once on the union of all training
    timesteps; each scheduler's ``mixture`` is made of the experts at its own timesteps."""
    if spec.expert_model not in ("mlp", "cnn", "none"):
        raise ValueError(f"expert_model must be mlp, cnn or none, got {spec.expert_model!r}")
    fracs, n_lv = list(t_fracs) + list(heldout_fracs), len(t_fracs)
    test = torch.from_numpy(np.array(clean_test, dtype=np.float32))
    # each scheduler's test trajectory is drawn when it is evaluated (its own seeded generator), so
    # memory holds one scheduler's levels at a time; the levels' timesteps are known without noise
    levels = {name: level_timesteps(name, fracs, num_inference_steps) for name in names}
    abar = {t: a for ts, abars in levels.values() for t, a in zip(ts, abars)}
    kinds = list(dict.fromkeys([*spec.level_models, *([spec.expert_model] if spec.expert_model != "none" else [])]))
    fitted: dict[tuple[str, float], tuple] = {}

    def level_fit(kind: str, t: float, preview=None):
        key = (kind if preview is None else f"rgb {kind}", t)
        if key not in fitted:
            fitted[key] = fit_level(kind, clean_train, y_train, spec, seed, alpha_bar=abar[t], timestep=t, preview=preview)
        return fitted[key]

    torch.manual_seed(seed)
    cond = CNNScorer(list(clean_train.shape[1:]), spec.cnn_channels, t_dim=spec.t_dim)
    train_t = sorted({t for ts, _ in levels.values() for t in ts[:n_lv]})
    t_rows = np.repeat(np.asarray(train_t), len(clean_train))
    cond_losses = train_scorer(cond, clean_train, t_rows, np.tile(y_train, len(train_t)), steps=spec.cond_steps,
                               batch_size=spec.batch_size, lr=spec.lr, seed=seed,
                               alpha_bars=np.array([abar[t] for t in t_rows]),
                               rows=np.tile(np.arange(len(clean_train)), len(train_t)))   # every level, no copies

    def evaluate(traj, x_te: np.ndarray, y: np.ndarray) -> SchedulerResult:
        """Every model on the inputs ``x_te`` (levels, N, C, H, W) held at ``traj``'s levels; labels ``y``."""
        stamp = [{"t_frac": traj.t_fracs[i], "timestep": traj.timesteps[i], "run_frac": traj.run_fracs[i], "seed": seed}
                 for i in range(len(fracs))]
        rows, preds, experts = [], {k: [] for k in (*LEVEL_MODELS, *CROSS_MODELS)}, []
        for i in range(n_lv):
            t = traj.timesteps[i]
            for kind in kinds:
                predict, model = level_fit(kind, t)
                pred = predict(x_te[i])
                preds[kind].append(pred)
                if kind == spec.expert_model:
                    experts.append(model)
                if kind in spec.level_models:
                    rows.append({"representation": "latent", "model": kind, **stamp[i],
                                 **artifact_metrics(y, pred, severe_at=spec.severe_at)})
            if rgb is not None:
                rte = np.moveaxis(rgb(x_te[i]), -1, 1)
                for kind in spec.rgb_models:
                    pred = level_fit(kind, t, preview=rgb)[0](rte)
                    rows.append({"representation": "rgb", "model": kind, **stamp[i],
                                 **artifact_metrics(y, pred, severe_at=spec.severe_at)})
        cross = {"cnn_t": cond}
        if experts:
            cross["mixture"] = ExpertMixture(experts, traj.timesteps[:n_lv]).eval()
        for i in range(len(fracs)):
            t = np.full(len(y), traj.timesteps[i])
            for kind, model in cross.items():
                pred = _predict(model, x_te[i], t, spec.max_score)
                if i < n_lv:
                    preds[kind].append(pred)
                rows.append({"representation": "latent", "model": kind, **stamp[i], "heldout": i >= n_lv,
                             **artifact_metrics(y, pred, severe_at=spec.severe_at)})
        for row in rows:
            row.setdefault("heldout", False)
        levels = {k: getattr(traj, k)[:n_lv] for k in ("t_fracs", "timesteps", "steps", "run_fracs", "alpha_bars")}
        return SchedulerResult(rows=rows, test_pred={k: np.stack(v) for k, v in preds.items() if v}, levels=levels,
                               models=cross, losses={"cnn_t": cond_losses})

    results, stamps = {}, {}
    for name in names:
        traj = oracle_trajectory(name, test, fracs, num_inference_steps, seed)
        results[name] = evaluate(traj, traj.model_input.numpy(), y_test)
        stamps[name] = replace(traj, latents=None, model_input=None)   # the levels, for the real runs
        del traj
    for name, run in (real_runs or {}).items():
        traj = stamps[name]
        if list(run["timesteps"]) != list(traj.timesteps):
            raise ValueError(f"the {name} sampler runs are at timesteps {list(run['timesteps'])}, the proxy at "
                             f"{traj.timesteps}: make them with the same noise params")
        result = evaluate(traj, run["model_input"], y_test[run["index"]])
        result.index = run["index"]
        results[f"{name}{RUN_SUFFIX}"] = result
    for name, result in results.items():
        for row in result.rows:
            row["scheduler"] = name
    return results


@dataclass(frozen=True)
class ScorerTask:
    """One cell of the grid for a worker process: ``kind`` ``clean`` (the upper bound, :func:`run_clean`)
    or ``noisy`` (every scheduler in ``schedulers``, :func:`run_schedulers`) for one seed.
    ``keep_models``: also return the cross-level models' configs and CPU state dicts."""

    kind: str
    seed: int
    clean_train: np.ndarray
    y_train: np.ndarray
    clean_test: np.ndarray
    y_test: np.ndarray
    spec: ScorerSpec
    threads: int = 1
    schedulers: tuple[str, ...] = ()           # the rest: noisy tasks only (the noise params section)
    t_fracs: tuple[float, ...] = ()
    heldout_fracs: tuple[float, ...] = ()
    num_inference_steps: int | None = None
    rgb: LatentRGB | None = None
    keep_models: bool = False
    real_runs: dict | None = None              # scheduler → inversion runs (run_schedulers)
    fresh: dict | None = None                  # scheduler → FreshSet: the fresh-noise study's runs (pipeline.score.fresh)


FRESH = "_fresh"   # run_task's entry holding a seed's predictions on the fresh-noise runs (not a scheduler)


def run_task(task: ScorerTask) -> dict:
    """Plain data per scheduler (``clean`` for the clean task): rows, predictions, levels and, for
    ``keep_models``, the models."""
    torch.set_num_threads(task.threads)
    spec, seed = task.spec, task.seed
    if task.kind == "clean":
        rows, clean_cnn = run_clean(task.clean_train, task.y_train, task.clean_test, task.y_test, spec, seed)
        out = {"clean": {"rows": rows}}
        if task.fresh:
            out[FRESH] = {"predictions": runs_predictions(
                clean_cnn, task.fresh, ridge_alpha=spec.ridge_alpha, cnn_channels=spec.cnn_channels, t_dim=spec.t_dim,
                steps=spec.cond_steps, batch_size=spec.batch_size, lr=spec.lr, seed=seed, max_score=spec.max_score)}
        return out
    results = run_schedulers(
        list(task.schedulers), task.clean_train, task.y_train, task.clean_test, task.y_test,
        t_fracs=list(task.t_fracs), heldout_fracs=list(task.heldout_fracs), num_inference_steps=task.num_inference_steps,
        spec=spec, seed=seed, rgb=task.rgb, real_runs=task.real_runs,
    )
    out = {}
    for name, result in results.items():
        out[name] = {"rows": result.rows, "test_pred": result.test_pred, "levels": result.levels, "losses": result.losses}
        if result.index is not None:
            out[name]["index"] = result.index
        if task.keep_models and not name.endswith(RUN_SUFFIX):
            out[name]["models"] = {k: (m.config, {n: v.detach().cpu() for n, v in m.state_dict().items()})
                                   for k, m in result.models.items()}
    if task.fresh:
        cond = next(iter(results.values())).models["cnn_t"]   # one cnn_t for every scheduler
        out[FRESH] = {"predictions": proxy_predictions(cond.eval(), task.fresh, spec.max_score)}
    return out


def fresh_predictions(results: list[dict]) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """Every seed's fresh-run predictions from :func:`run_grid`'s results, the clean and noisy tasks' merged:
    ``[seed][scheduler][predictor]`` → (levels, N_eval)."""
    out: dict[int, dict] = {}
    for r in results:
        if r["scheduler"] != FRESH:
            continue
        for name, preds in r["predictions"].items():
            out.setdefault(r["seed"], {}).setdefault(name, {}).update(preds)
    return out


def run_grid(tasks: list[ScorerTask], workers: int) -> list[dict]:
    """:func:`run_task` for every task on ``workers`` processes, noisy (long) tasks dispatched first so
    the pool idles less; returns one result per scheduler and seed (``scheduler`` and ``seed`` added),
    in the order of ``tasks``."""
    longest_first = sorted(range(len(tasks)), key=lambda i: tasks[i].kind != "noisy")
    done = Parallel(n_jobs=workers, backend="loky", verbose=5)(delayed(run_task)(tasks[i]) for i in longest_first)
    outputs = [out for _, out in sorted(zip(longest_first, done))]
    return [{**r, "scheduler": name, "seed": t.seed} for t, o in zip(tasks, outputs) for name, r in o.items()]
