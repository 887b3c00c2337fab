"""The artifact-scorer benchmark: every model on every representation at every noise level of one
scheduler's runs, for one seed.

Representations (what a scorer is given at a step of the run):

- ``latent``: the noisy latent as the U-Net receives it (``scale_model_input``);
- ``rgb``: its fitted latent→RGB linear preview (the public attempt's input), clipped to [-1, 1];
- ``clean``: the finished latent (t = 0), the upper bound, scored by :func:`run_clean`.

Models: ``ridge`` (standardised ridge regression), ``mlp`` and ``cnn`` (one per level; which of
them run is ``ScorerSpec.level_models``), ``cnn_t`` (one timestep-conditioned CNN trained on
every level at once) and ``mixture`` (per-level ``expert_model`` networks as experts,
interpolated in t; see :class:`~pipeline.models.neural.ExpertMixture`). The
two cross-level models are also scored at *held-out* levels between the training ones, which
is where they differ. Everything is fitted on the training split only and scored on the test
split with :func:`~pipeline.metrics.regression.artifact_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.latents.noising import oracle_trajectory
from pipeline.latents.rgb import LatentRGB
from pipeline.metrics.regression import artifact_metrics
from pipeline.models.neural import CNNScorer, ExpertMixture, MLPScorer, train_scorer

LEVEL_MODELS = ("ridge", "mlp", "cnn")     # fitted once per noise level
CROSS_MODELS = ("cnn_t", "mixture")        # one model for every level


@dataclass
class ScorerSpec:
    """Model sizes and training budgets (the ``score`` params section)."""

    ridge_alpha: float = 1000.0
    mlp_hidden: list[int] = field(default_factory=lambda: [128])
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    t_dim: int = 32
    level_steps: int = 300
    cond_steps: int = 900
    batch_size: int = 64
    lr: float = 1e-3
    level_models: list[str] = field(default_factory=lambda: list(LEVEL_MODELS))
    expert_model: str = "cnn"    # the per-level model the mixture is made of (mlp | cnn)
    rgb_models: list[str] = field(default_factory=lambda: ["ridge", "mlp"])
    max_score: float = 5.0
    severe_at: float = 3.0


def _predict(model, x: np.ndarray, t: np.ndarray, max_score: float) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(t.astype(np.float32)))
    return out.clamp(0, max_score).numpy().astype(np.float64)


def fit_predict(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, spec: ScorerSpec, seed: int):
    """Fit one per-level model ``kind`` (ridge | mlp | cnn) and predict the test set.

    Returns ``(predictions, model)``; the model is a torch module for mlp/cnn, None for ridge."""
    if kind == "ridge":
        pipe = make_pipeline(StandardScaler(), Ridge(alpha=spec.ridge_alpha))
        pipe.fit(x_train.reshape(len(x_train), -1), y_train)
        pred = pipe.predict(x_test.reshape(len(x_test), -1))
        return np.clip(pred, 0, spec.max_score), None
    torch.manual_seed(seed)
    shape = list(x_train.shape[1:])
    if kind == "mlp":
        model = MLPScorer(shape, spec.mlp_hidden)
    elif kind == "cnn":
        model = CNNScorer(shape, spec.cnn_channels)
    else:
        raise ValueError(f"unknown per-level model {kind!r}; known: {', '.join(LEVEL_MODELS)}")
    zeros = np.zeros(len(x_train))
    train_scorer(model, x_train, zeros, y_train, steps=spec.level_steps, batch_size=spec.batch_size, lr=spec.lr, seed=seed)
    return _predict(model, x_test, np.zeros(len(x_test)), spec.max_score), model


def run_clean(x_train, y_train, x_test, y_test, spec: ScorerSpec, seed: int) -> list[dict]:
    """The upper bound: each per-level model on the finished latents (t = 0)."""
    rows = []
    for kind in LEVEL_MODELS:
        pred, _ = fit_predict(kind, x_train, y_train, x_test, spec, seed)
        rows.append({"scheduler": "clean", "representation": "clean", "model": kind, "t_frac": 0.0, "timestep": 0.0,
                     "run_frac": 1.0, "heldout": False, "seed": seed, **artifact_metrics(y_test, pred, severe_at=spec.severe_at)})
    return rows


@dataclass
class SchedulerResult:
    rows: list[dict]                   # one per (representation, model, level), held-out levels included
    test_pred: dict[str, np.ndarray]   # model → (levels, n_test) predictions on the training levels
    levels: dict                       # t_fracs, timesteps, steps, run_fracs, alpha_bars of the training levels
    models: dict[str, torch.nn.Module]  # the deployable cross-level models (cnn_t, mixture)


def run_scheduler(name: str, clean_train: np.ndarray, y_train: np.ndarray, clean_test: np.ndarray,
                  y_test: np.ndarray, *, t_fracs: list[float], heldout_fracs: list[float], num_inference_steps: int,
                  spec: ScorerSpec, seed: int, rgb: LatentRGB | None = None) -> SchedulerResult:
    """Every model at every level of scheduler ``name``'s runs (trajectory noise seeded by ``seed``:
    the same starting noise per image for every deterministic scheduler)."""
    fracs = list(t_fracs) + list(heldout_fracs)
    clean = torch.from_numpy(np.concatenate([clean_train, clean_test]).astype(np.float32))
    traj = oracle_trajectory(name, clean, fracs, num_inference_steps, seed)
    n_tr, n_lv = len(clean_train), len(t_fracs)
    x_all = traj.model_input.numpy()
    xtr, xte = x_all[:, :n_tr], x_all[:, n_tr:]
    stamp = [{"t_frac": traj.t_fracs[i], "timestep": traj.timesteps[i], "run_frac": traj.run_fracs[i], "seed": seed}
             for i in range(len(fracs))]
    rows, preds, experts = [], {k: [] for k in (*LEVEL_MODELS, *CROSS_MODELS)}, []

    if spec.expert_model not in ("mlp", "cnn"):
        raise ValueError(f"expert_model must be mlp or cnn, got {spec.expert_model!r}")
    for i in range(n_lv):
        kinds = list(dict.fromkeys([*spec.level_models, spec.expert_model]))
        for kind in kinds:
            pred, model = fit_predict(kind, xtr[i], y_train, xte[i], spec, seed)
            preds[kind].append(pred)
            if kind == spec.expert_model:
                experts.append(model)
            if kind in spec.level_models:
                rows.append({"representation": "latent", "model": kind, **stamp[i],
                             **artifact_metrics(y_test, pred, severe_at=spec.severe_at)})
        if rgb is not None:
            rtr, rte = (np.moveaxis(rgb(x), -1, 1) for x in (xtr[i], xte[i]))
            for kind in spec.rgb_models:
                pred, _ = fit_predict(kind, rtr, y_train, rte, spec, seed)
                rows.append({"representation": "rgb", "model": kind, **stamp[i], **artifact_metrics(y_test, pred, severe_at=spec.severe_at)})

    torch.manual_seed(seed)
    cond = CNNScorer(list(clean_train.shape[1:]), spec.cnn_channels, t_dim=spec.t_dim)
    t_train = np.repeat(np.asarray(traj.timesteps[:n_lv]), n_tr)
    train_scorer(cond, xtr[:n_lv].reshape(-1, *xtr.shape[2:]), t_train, np.tile(y_train, n_lv),
                 steps=spec.cond_steps, batch_size=spec.batch_size, lr=spec.lr, seed=seed)
    mixture = ExpertMixture(experts, traj.timesteps[:n_lv]).eval()
    for i in range(len(fracs)):
        t = np.full(len(y_test), traj.timesteps[i])
        for kind, model in (("cnn_t", cond), ("mixture", mixture)):
            pred = _predict(model, xte[i], t, spec.max_score)
            if i < n_lv:
                preds[kind].append(pred)
            rows.append({"representation": "latent", "model": kind, **stamp[i], "heldout": i >= n_lv,
                         **artifact_metrics(y_test, pred, severe_at=spec.severe_at)})
    for row in rows:
        row.setdefault("heldout", False)
        row["scheduler"] = name
    levels = {k: getattr(traj, k)[:n_lv] for k in ("t_fracs", "timesteps", "steps", "run_fracs", "alpha_bars")}
    return SchedulerResult(rows=rows, test_pred={k: np.stack(v) for k, v in preds.items() if v}, levels=levels,
                           models={"cnn_t": cond, "mixture": mixture})


def run_task(task: dict) -> dict:
    """One cell of the grid, for a worker process: ``task["scheduler"]`` is a scheduler name or
    ``"clean"``; the rest are the keyword arguments of :func:`run_scheduler` / :func:`run_clean`
    plus ``threads``. Returns plain data (rows, predictions, levels, and for ``keep_models`` the
    cross-level models' configs and CPU state dicts)."""
    torch.set_num_threads(task["threads"])
    spec, seed = task["spec"], task["seed"]
    if task["scheduler"] == "clean":
        return {"rows": run_clean(task["clean_train"], task["y_train"], task["clean_test"], task["y_test"], spec, seed)}
    result = run_scheduler(
        task["scheduler"], task["clean_train"], task["y_train"], task["clean_test"], task["y_test"],
        t_fracs=task["t_fracs"], heldout_fracs=task["heldout_fracs"], num_inference_steps=task["num_inference_steps"],
        spec=spec, seed=seed, rgb=task["rgb"],
    )
    out = {"rows": result.rows, "test_pred": result.test_pred, "levels": result.levels}
    if task.get("keep_models"):
        out["models"] = {k: (m.config, {n: v.detach().cpu() for n, v in m.state_dict().items()})
                         for k, m in result.models.items()}
    return out
