"""noise: forward-noise the artifact-set latents with several diffusers schedulers.

For every scheduler in ``noise.schedulers`` and every fraction in ``noise.t_fracs`` the
clean latents of ``artifact_train`` and ``artifact_test`` are noised with the scheduler's own
``add_noise`` at the inference timestep nearest to ``t_frac · 999`` (see
``pipeline/latents/noising.py``). The same seeded noise ε is used for every scheduler at a
given fraction, so schedulers differ only in how they scale it. Writes
``data/noised/<scheduler>-*.parquet`` (columns ``subset``, ``t_frac``, ``timestep``,
``alpha_bar`` beside the latent) and ``reports/noise/levels.json``. Reads ``base``, ``noise``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from pipeline.io import atomic_dir, write_json
from pipeline.latents.noising import add_noise, alpha_bar, make_scheduler, noise_like, snr, timestep_for_fraction
from pipeline.latents.store import read_latent_split, write_latent_split
from stages.cli import parse_args
from stages.common import start

log = logging.getLogger("stages.noise")
SUBSETS = {"train": "artifact_train", "test": "artifact_test"}


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--out", default="data/noised"),
        p.add_argument("--levels", default="reports/noise/levels.json"),
    ))
    params = start(args)
    cfg, seed = params.noise, params.base.seed
    parts = {name: read_latent_split(args.latents, split) for name, split in SUBSETS.items()}
    clean = torch.from_numpy(np.concatenate([p.latents for p in parts.values()]))
    meta = pd.concat([p.meta.assign(subset=name) for name, p in parts.items()], ignore_index=True)
    sf = parts["train"].scaling_factor
    noises = [noise_like(clean, seed * 1000 + i) for i in range(len(cfg.t_fracs))]

    levels = {}
    with atomic_dir(args.out) as tmp:
        for name in cfg.schedulers:
            scheduler = make_scheduler(name, cfg.num_inference_steps)
            blocks, frames, levels[name] = [], [], {}
            for frac, eps in zip(cfg.t_fracs, noises):
                t = timestep_for_fraction(scheduler, frac)
                noisy = add_noise(scheduler, clean, eps, t)
                ab = alpha_bar(scheduler, t)
                blocks.append(noisy.numpy())
                frames.append(meta.assign(t_frac=frac, timestep=float(t), alpha_bar=ab))
                levels[name][f"{frac:g}"] = {"timestep": float(t), "alpha_bar": ab, "snr": snr(ab), "latent_std": float(noisy.std())}
            info = {"scheduler": name, "scheduler_class": type(scheduler).__name__,
                    "num_inference_steps": cfg.num_inference_steps, "t_fracs": list(cfg.t_fracs)}
            write_latent_split(tmp, name, np.concatenate(blocks), pd.concat(frames, ignore_index=True),
                               scaling_factor=sf, info=info)
            log.info("%s: %s", name, ", ".join(f"t_frac {k}: t={v['timestep']:.0f} ᾱ={v['alpha_bar']:.3f}" for k, v in levels[name].items()))
    write_json(args.levels, levels)


if __name__ == "__main__":
    main()
