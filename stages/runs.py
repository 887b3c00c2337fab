"""runs: the artifact study's generations — fresh-noise runs labelled by an independent judge, and a diagnostic.

**The judge.** A clean-latent CNN (``runs.judge``; ``pipeline.score.judge``) is fitted on the real
labelled ``artifact_train`` latents only, with a seed of its own (``base.seed`` + 1000: never a
predictor's), and saved to ``models/judge`` (safetensors + config.json); its test MAE / Spearman ρ
on the real labelled ``artifact_test`` latents, beside the constant predictor's, go into the
metrics, so the labels' quality is visible.

**Fresh-noise runs** (the study). For every scheduler in ``noise.schedulers``, ``runs.fresh.train
+ calibration + test`` runs start from fresh Gaussian noise and the artifact U-Net
(``models/artifact_unet``, stage ``artifact_unet``) denoises them in ``runs.fresh.steps`` steps
(``pipeline.generate.runs.fresh_rows``: run i's noise is seeded by ``base.seed`` and i alone, and
run i starts from the same noise under every scheduler). At each ``runs.fresh.checks`` level the
U-Net input x_t and the sampler's predicted clean latent x̂₀ are kept; the judge scores the
finished latent. Runs 0.. are ``train``, then ``calibration``, then ``test`` (column ``role``).
Splits ``fresh_<scheduler>`` (x_t) and ``fresh_<scheduler>_x0`` (rows run by run, each run's
levels in check order: ``id``, ``role``, ``judge``, ``t_frac``, ``timestep``, ``step``,
``run_frac``, ``alpha_bar``) and ``fresh_<scheduler>_final`` (one row per run: ``id``, ``role``,
``judge``).

**Inversion runs** (a diagnostic only). The first ``runs.inversion_images`` artifact *test*
latents (0 = all) are DDIM-inverted with the artifact U-Net and re-run by every scheduler in
``noise.num_inference_steps`` steps; the U-Net input at each of ``noise.t_fracs`` and
``noise.heldout_fracs`` is stored as split ``<scheduler>`` (the proxy's levels; ``id``,
``severity``, ``t_frac``, ``timestep``, ``step``, ``run_frac``, ``alpha_bar``, ``heldout``). The
inverted noise carries the image, so a scorer does better on these runs than on a generation:
an upper estimate, with DDPM (whose runs end elsewhere) as the leak check. ``runs.engine: ray``
farms the inversion chunks out to U-Net actors on Ray Data (``runs.ray``) with the same result.

Writes ``data/runs``, ``models/judge`` and ``reports/runs/metrics.json``. Reads ``base``,
``noise``, ``runs``, ``score.severe_at``.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.generate.runs import fresh_rows, run_rows
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import LatentSplitWriter, iter_latent_batches, latent_split_facts, read_latent_split
from pipeline.metrics.stats import mean_std
from pipeline.score.fresh import ROLES, split_names
from pipeline.score.judge import JudgeSpec, judge_quality, judge_scores, train_judge
from pipeline.score.nets import save_scorer
from pipeline.validation import validation_seeds
from stages.cli import fail, parse_args, stage_main
from stages.common import follow_geometry, start
from stages.unet_open import open_diffusion

log = logging.getLogger("stages.runs")
SPLIT = "artifact_test"


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--unet", default="models/artifact_unet"),
        p.add_argument("--out", default="data/runs"),
        p.add_argument("--judge", default="models/judge"),
        p.add_argument("--reports", default="reports/runs"),
    ))
    params = start(args)
    noise, cfg, seed, severe_at = params.noise, params.runs, params.base.seed, params.score.severe_at
    try:
        facts = latent_split_facts(args.latents, SPLIT)
        train = read_latent_split(args.latents, "artifact_train")
        test = read_latent_split(args.latents, SPLIT)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    params = follow_geometry(params, facts.shape)   # recipes scaled to the latent side (pipeline.recipes)
    cfg = params.runs
    n = cfg.inversion_images or facts.rows
    if n > facts.rows:
        fail(f"runs.inversion_images={cfg.inversion_images} exceeds the {facts.rows} artifact test latents in {args.latents}")
    y_train, y_test = (s.meta["severity"].to_numpy(float) for s in (train, test))
    for name, y in (("artifact_train", y_train), ("artifact_test", y_test)):
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad):
            fail(f"{args.latents}/{name}: row {bad[0]} has no artifact score (severity {y[bad[0]]!r})")
    model = open_diffusion(params, args.unet, facts.shape, args.latents)   # a wrong U-Net fails before any work

    judge_seed = validation_seeds(seed, 1)[0]
    spec = JudgeSpec(list(cfg.judge.channels), cfg.judge.steps, cfg.judge.batch_size, cfg.judge.lr)
    log.info("judge: clean-latent CNN on %d real labelled train latents (seed %d, %d steps)", len(y_train), judge_seed, spec.steps)
    judge = train_judge(train.latents, y_train, spec, judge_seed)
    quality = judge_quality(judge, test.latents, y_test, y_train, severe_at=severe_at)
    log.info("judge on the %d real test latents: MAE %.3f (constant %.3f), Spearman %.3f", len(y_test),
             quality["test"]["mae"], quality["constant"]["mae"], quality["test"]["spearman"])

    fresh = cfg.fresh
    fracs = list(noise.t_fracs) + list(noise.heldout_fracs)
    work = dict(schedulers=list(noise.schedulers), t_fracs=fracs, n_trained=len(noise.t_fracs),
                num_inference_steps=noise.num_inference_steps, seed=seed)
    with contextlib.ExitStack() as stack, atomic_dir(args.out) as tmp:
        labels = _fresh_local(model, judge, facts.shape, facts.scaling_factor, tmp, list(noise.schedulers), fresh,
                              cfg.batch_size, seed)
        log.info("inversion diagnostic: %d artifact test latents (%s engine), %s runs of %d steps", n, cfg.engine,
                 noise.schedulers, noise.num_inference_steps)
        if cfg.engine == "ray":
            from pipeline.distributed.runs import sampler_runs_ray
            from stages.ray_join import join_ray

            plan = join_ray(stack, "runs", cfg.ray, cfg.batch_size)
            errors = sampler_runs_ray(args.latents, SPLIT, n, tmp, unet_dir=args.unet, device=params.base.device,
                                      plan=plan, **work)
        else:
            errors = _inversion_local(model, args.latents, n, cfg.batch_size, tmp, facts.scaling_factor, work)
    with atomic_dir(args.judge) as tmp:
        save_scorer(tmp, judge, {"role": "judge: labels finished generations", "seed": judge_seed, "trained_on": "artifact_train",
                                 "max_score": spec.max_score, "test": quality["test"],
                                 "latent_shape": list(facts.shape), "scaling_factor": facts.scaling_factor})

    metrics = {"judge": {**quality, "seed": judge_seed},
               "fresh": {"steps": fresh.steps, "checks": list(fresh.checks),
                         **{name: {role: {"runs": int((roles == role).sum()), **mean_std(y[roles == role]),
                                          "severe_share": float((y[roles == role] >= severe_at).mean())} for role in ROLES}
                            for name, (y, roles) in labels.items()}},
               "inversion": {"images": n, "num_inference_steps": noise.num_inference_steps, "end_error": {}}}
    for name, (y, _) in labels.items():
        log.info("%s fresh runs: judge score %.2f ± %.2f, %.0f %% severe (≥ %g)", name, y.mean(), y.std(),
                 100 * (y >= severe_at).mean(), severe_at)
    for name, err in errors.items():
        metrics["inversion"]["end_error"][name] = {**mean_std(err), "median": float(np.median(err))}
        log.info("%s inversion runs end %.3f ± %.3f (relative distance) from the labelled latents", name, err.mean(), err.std())
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)


def _roles(ids: np.ndarray, fresh) -> np.ndarray:
    return np.where(ids < fresh.train, ROLES[0], np.where(ids < fresh.train + fresh.calibration, ROLES[1], ROLES[2]))


def _fresh_local(model, judge, shape, scaling_factor: float, out_dir, schedulers: list[str], fresh, batch_size: int,
                 seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scheduler's fresh runs, chunk by chunk, written as they come; per scheduler the judge's labels and roles."""
    total = fresh.train + fresh.calibration + fresh.test
    checks = list(fresh.checks)
    labels = {}
    with contextlib.ExitStack() as writers, tqdm(total=total * len(schedulers), desc="fresh runs", unit="run") as bar:
        for name in schedulers:
            info = {"scheduler": name, "levels": len(checks), "steps": fresh.steps, "source": "fresh noise"}
            split = {k: writers.enter_context(LatentSplitWriter(out_dir, v, scaling_factor=scaling_factor,
                                                                info={**info, "holds": k}))
                     for k, v in split_names(name).items()}
            ys, roles = [], []
            for start in range(0, total, batch_size):
                ids = np.arange(start, min(start + batch_size, total))
                rows = fresh_rows(model, ids, shape, name, checks, fresh.steps, seed)
                y = judge_scores(judge, rows["final"].numpy())
                role = _roles(ids, fresh)
                per_run = pd.DataFrame({"id": ids, "role": role, "judge": y})
                levels = pd.DataFrame({"t_frac": checks, "timestep": rows["timesteps"], "step": rows["steps"],
                                       "run_frac": rows["run_fracs"], "alpha_bar": rows["alpha_bars"]})
                meta = pd.concat([per_run.loc[per_run.index.repeat(len(checks))].reset_index(drop=True),
                                  pd.concat([levels] * len(ids), ignore_index=True)], axis=1)
                for key in ("x_t", "x0"):
                    split[key].append(rows[key].transpose(0, 1).reshape(len(ids) * len(checks), *shape).numpy(), meta)
                split["final"].append(rows["final"].numpy(), per_run)
                ys.append(y)
                roles.append(role)
                bar.update(len(ids))
            labels[name] = (np.concatenate(ys), np.concatenate(roles))
    return labels


def _inversion_local(model, latents_dir: str, n: int, batch_size: int, out_dir, scaling_factor: float,
                     work: dict) -> dict[str, np.ndarray]:
    """The first ``n`` test latents chunk by chunk through :func:`run_rows`, each scheduler's rows appended
    to its split as they come; the per-image end errors per scheduler."""
    levels = len(work["t_fracs"])
    errors: dict[str, list[np.ndarray]] = {name: [] for name in work["schedulers"]}
    with contextlib.ExitStack() as writers, tqdm(total=n, desc="inversion runs", unit="image") as bar:
        split = {name: writers.enter_context(LatentSplitWriter(out_dir, name, scaling_factor=scaling_factor,
                                                               info={"scheduler": name, "levels": levels}))
                 for name in work["schedulers"]}
        for chunk in iter_latent_batches(latents_dir, SPLIT, batch_size, n):
            for name, rows in run_rows(model, torch.from_numpy(np.array(chunk.latents)), chunk.meta, **work).items():
                split[name].append(rows.latents, rows.meta)
                errors[name].append(rows.end_error)
            bar.update(len(chunk.latents))
    return {name: np.concatenate(e) for name, e in errors.items()}


if __name__ == "__main__":
    main()
