"""runs: real sampler runs through the labelled artifact test latents, for the scorer benchmark.

Each of the first ``runs.images`` artifact *test* latents (0 = all) is DDIM-inverted to its starting
noise with the ``models/unet`` U-Net; every scheduler in ``noise.schedulers`` then denoises from
that noise in ``noise.num_inference_steps`` steps (``pipeline.generate.runs``), and the U-Net
input it holds at each of ``noise.t_fracs`` and ``noise.heldout_fracs`` is stored — the same
levels and timesteps as the score stage's forward-noising proxy, so its scorers are scored on
both. Writes ``data/runs/<scheduler>-*.parquet`` (latent store; rows image by image, each image's
levels in order, with ``id``, ``severity``, ``t_frac``, ``timestep``, ``step``, ``run_frac``, ``alpha_bar``,
``heldout``) and ``reports/runs/metrics.json``: how far each run ends from its labelled latent.
Each image draws its stochastic (DDPM) noise from its own seed (``base.seed`` and its id), so the
test split streams through in chunks of ``runs.batch_size`` images — read a shard at a time, run,
and appended to every scheduler's split — and ``runs.engine: ray`` farms the same chunks out to
U-Net actors on Ray Data (``runs.ray``; README: scale out) with the same result.
Reads ``base``, ``noise``, ``runs``.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch
from tqdm import tqdm

from pipeline.generate.runs import run_rows
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import LatentSplitWriter, iter_latent_batches, latent_split_facts
from pipeline.metrics.stats import mean_std
from stages.cli import fail, parse_args, stage_main
from stages.common import start
from stages.unet_open import open_diffusion

log = logging.getLogger("stages.runs")
SPLIT = "artifact_test"


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--unet", default="models/unet"),
        p.add_argument("--out", default="data/runs"),
        p.add_argument("--reports", default="reports/runs"),
    ))
    params = start(args)
    noise, cfg, seed = params.noise, params.runs, params.base.seed
    try:
        facts = latent_split_facts(args.latents, SPLIT)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    n = cfg.images or facts.rows
    if n > facts.rows:
        fail(f"runs.images={cfg.images} exceeds the {facts.rows} artifact test latents in {args.latents}")
    model = open_diffusion(params, args.unet, facts.shape, args.latents)   # a wrong U-Net fails before any work
    fracs = list(noise.t_fracs) + list(noise.heldout_fracs)
    work = dict(schedulers=list(noise.schedulers), t_fracs=fracs, n_trained=len(noise.t_fracs),
                num_inference_steps=noise.num_inference_steps, seed=seed)
    log.info("%d artifact test latents, %d at a time (%s engine): DDIM inversion, then %s runs of %d steps", n,
             cfg.batch_size, cfg.engine, noise.schedulers, noise.num_inference_steps)
    with contextlib.ExitStack() as stack, atomic_dir(args.out) as tmp:
        if cfg.engine == "ray":
            from pipeline.distributed.runs import sampler_runs_ray
            from stages.ray_join import join_ray

            plan = join_ray(stack, "runs", cfg.ray, cfg.batch_size)
            errors = sampler_runs_ray(args.latents, SPLIT, n, tmp, unet_dir=args.unet, device=params.base.device,
                                      plan=plan, **work)
        else:
            errors = _run_local(model, args.latents, n, cfg.batch_size, tmp, facts.scaling_factor, work)

    metrics = {"images": n, "num_inference_steps": noise.num_inference_steps, "end_error": {}}
    for name, err in errors.items():
        metrics["end_error"][name] = {**mean_std(err), "median": float(np.median(err))}
        log.info("%s ends %.3f ± %.3f (relative distance) from the labelled latents", name, err.mean(), err.std())
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)


def _run_local(model, latents_dir: str, n: int, batch_size: int, out_dir, scaling_factor: float,
               work: dict) -> dict[str, np.ndarray]:
    """The first ``n`` test latents chunk by chunk through :func:`run_rows`, each scheduler's rows appended
    to its split as they come; the per-image end errors per scheduler."""
    levels = len(work["t_fracs"])
    errors: dict[str, list[np.ndarray]] = {name: [] for name in work["schedulers"]}
    with contextlib.ExitStack() as writers, tqdm(total=n, desc="sampler runs", unit="image") as bar:
        split = {name: writers.enter_context(LatentSplitWriter(out_dir, name, scaling_factor=scaling_factor,
                                                               info={"scheduler": name, "levels": levels}))
                 for name in work["schedulers"]}
        for chunk in iter_latent_batches(latents_dir, SPLIT, batch_size, n):
            for name, rows in run_rows(model, torch.from_numpy(chunk.latents), chunk.meta, **work).items():
                split[name].append(rows.latents, rows.meta)
                errors[name].append(rows.end_error)
            bar.update(len(chunk.latents))
    return {name: np.concatenate(e) for name, e in errors.items()}


if __name__ == "__main__":
    main()
