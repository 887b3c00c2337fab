"""runs: real sampler runs through the labelled artifact test latents, for the scorer benchmark.

Each of the first ``runs.images`` artifact *test* latents (0 = all) is DDIM-inverted to its starting
noise with the ``models/unet`` U-Net; every scheduler in ``noise.schedulers`` then denoises from
that noise in ``noise.num_inference_steps`` steps (``pipeline.generate.runs``), and the U-Net
input it holds at each of ``noise.t_fracs`` and ``noise.heldout_fracs`` is stored — the same
levels and timesteps as the score stage's forward-noising proxy, so its scorers are scored on
both. Writes ``data/runs/<scheduler>-*.parquet`` (latent store; rows level by level, image by
image, with ``id``, ``severity``, ``t_frac``, ``timestep``, ``step``, ``run_frac``, ``alpha_bar``,
``heldout``) and ``reports/runs/metrics.json``: how far each run ends from its labelled latent.
Reads ``base``, ``noise``, ``runs``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.generate.runs import end_error, sampler_runs
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split, write_latent_split
from pipeline.metrics.stats import mean_std
from stages.cli import fail, parse_args
from stages.common import start
from stages.unet_open import open_diffusion

log = logging.getLogger("stages.runs")


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--unet", default="models/unet"),
        p.add_argument("--out", default="data/runs"),
        p.add_argument("--reports", default="reports/runs"),
    ))
    params = start(args)
    noise, cfg, seed = params.noise, params.runs, params.base.seed
    test = read_latent_split(args.latents, "artifact_test")
    n = cfg.images or len(test.latents)
    if n > len(test.latents):
        fail(f"runs.images={cfg.images} exceeds the {len(test.latents)} artifact test latents in {args.latents}")
    model = open_diffusion(params, args.unet, test.shape, args.latents)
    fracs = list(noise.t_fracs) + list(noise.heldout_fracs)
    clean = torch.from_numpy(np.ascontiguousarray(test.latents[:n]))
    meta = test.meta.iloc[:n][["id", "severity"]].reset_index(drop=True)
    log.info("%d artifact test latents: DDIM inversion, then %s runs of %d steps", n, noise.schedulers,
             noise.num_inference_steps)
    with tqdm(total=1 + len(noise.schedulers), desc="sampler runs", unit="pass") as bar:
        trajs, finals = sampler_runs(model, clean, list(noise.schedulers), fracs, noise.num_inference_steps, seed,
                                     progress=bar.update)

    metrics = {"images": n, "num_inference_steps": noise.num_inference_steps, "end_error": {}}
    with atomic_dir(args.out) as tmp:
        for name, traj in trajs.items():
            levels = [meta.assign(t_frac=traj.t_fracs[i], timestep=traj.timesteps[i], step=traj.steps[i],
                                  run_frac=traj.run_fracs[i], alpha_bar=traj.alpha_bars[i], heldout=i >= len(noise.t_fracs))
                      for i in range(len(fracs))]
            write_latent_split(tmp, name, traj.model_input.reshape(-1, *test.shape).numpy(), pd.concat(levels, ignore_index=True),
                               scaling_factor=test.scaling_factor, info={"scheduler": name, "levels": len(fracs)})
            err = end_error(finals[name], clean)
            metrics["end_error"][name] = {**mean_std(err), "median": float(np.median(err))}
            log.info("%s ends %.3f ± %.3f (relative distance) from the labelled latents", name, err.mean(), err.std())
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)


if __name__ == "__main__":
    main()
