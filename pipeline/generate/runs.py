"""Real sampler runs with the learned U-Net: what each scheduler holds mid-run.

**Fresh-noise generations** (:func:`fresh_rows`) are the setting of the artifact study: each run
starts from its own Gaussian noise and the scheduler denoises it; at each check level the U-Net
input x_t and the sampler's own predicted clean latent x̂₀(x_t) (free: the sampler computes it) are
recorded beside the finished latent, which an independent judge later labels. A run's starting
noise and its stochastic (DDPM) noise come from generators seeded by the run's seed and id alone
(:func:`image_seeds`), so a run is the same whichever chunk, process or machine samples it.

**Inversion runs** (:func:`run_rows`, a diagnostic only: the inverted noise carries the image). Each clean latent (an image whose artifact score is known) is DDIM-inverted to its starting noise
with the U-Net; every scheduler then denoises from that same noise, and the U-Net input it holds
at each ``t_frac`` (the inference timestep nearest ``t_frac · (T − 1)``, as in
:func:`~pipeline.latents.noising.oracle_trajectory`) is recorded. Unlike the forward-noising proxy,
these are the latents a scorer inside a generation loop would really see: the U-Net's errors, the
sampler's discretisation and (for DDPM) its fresh noise included. Deterministic samplers end
near the labelled latent; DDPM ends elsewhere, so its label holds less well: :func:`end_error`
says how far each run ends from its image.

Each image draws its stochastic noise (DDPM) from its own generator, seeded by :func:`image_seeds`
from the run's seed and the image's id, so an image's run does not depend on which batch, shard or
machine samples it: :func:`run_rows` on a chunk of images gives exactly those images' rows of a
run over all of them, which is what lets the stage stream the test split chunk by chunk and the
Ray engine (:mod:`pipeline.distributed.runs`) farm chunks out to U-Net actors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from pipeline.generate.sampling import ddim_invert, denoise
from pipeline.generate.unet import LatentDiffusion
from pipeline.latents.noising import Trajectory, alpha_bar, make_scheduler, step_index, timestep_for_fraction


def image_seeds(seed: int, ids) -> list[int]:
    """One 63-bit noise seed per image id, from the run's ``seed`` and the id alone."""
    return [int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(), "little") >> 1 for i in ids]


def sampler_runs(model: LatentDiffusion, clean: torch.Tensor, schedulers: list[str], t_fracs: list[float],
                 num_inference_steps: int, noise_seeds: list[int]) -> tuple[dict[str, Trajectory], dict[str, torch.Tensor]]:
    """Per scheduler, the :class:`~pipeline.latents.noising.Trajectory` of its run from the DDIM
    inversion of ``clean`` (``num_inference_steps`` steps for the inversion and every run; image i
    draws its noise from ``noise_seeds[i]``) and the final latents. ``latents`` are what the loop holds, ``model_input`` what the U-Net receives, both
    mapped back from the U-Net's centred space to the data's (the shift times √ᾱ_t added to the
    variance-preserving input; the shift itself to Euler's sigma-space latent), so they compare
    with the forward-noising proxy of the same clean latents."""
    unet = model.unet
    x_T = ddim_invert(unet, model.to_model(clean), num_inference_steps)
    trajs, finals = {}, {}
    for name in schedulers:
        scheduler = make_scheduler(name, num_inference_steps)
        timesteps = [timestep_for_fraction(scheduler, f) for f in t_fracs]
        steps = [step_index(scheduler, t) for t in timesteps]
        order = sorted(set(steps))
        run = denoise(unet, name, x_T, num_inference_steps, record=order, noise_seeds=noise_seeds)
        pick = [order.index(s) for s in steps]
        abars = [alpha_bar(scheduler, t) for t in timesteps]
        sigma_space = float(scheduler.init_noise_sigma) > 1.0
        shift_in = torch.stack([model.to_latents(torch.zeros_like(clean[:1])) * a ** 0.5 for a in abars])
        shift_held = model.to_latents(torch.zeros_like(clean[:1])) if sigma_space else shift_in
        trajs[name] = Trajectory(
            scheduler=name, t_fracs=list(t_fracs), timesteps=[float(t) for t in timesteps], steps=steps,
            run_fracs=[s / len(scheduler.timesteps) for s in steps], alpha_bars=abars,
            latents=run.latents[pick] + shift_held, model_input=run.model_input[pick] + shift_in)
        finals[name] = model.to_latents(run.final)
    return trajs, finals


def fresh_rows(model: LatentDiffusion, run_ids, shape, scheduler: str, t_fracs: list[float],
               num_inference_steps: int, seed: int) -> dict:
    """Fresh-noise runs ``run_ids`` of ``scheduler``: ``x_t`` and ``x0`` (levels, N, C, H, W; the U-Net
    input and the predicted clean latent at each ``t_fracs`` level, in data space), ``final`` (N, C, H, W)
    and the levels' ``timesteps``, ``steps`` and ``run_fracs`` (the share of the run's steps done when the
    level is reached). Run ``i`` starts from noise seeded by (``seed``, ``start:i``) and draws its
    stochastic noise from (``seed``, ``noise:i``), so the rows of a chunk are those of a run over all ids."""
    ids = list(run_ids)
    starts = image_seeds(seed, [f"start:{i}" for i in ids])
    x_T = torch.stack([torch.randn(tuple(shape), generator=torch.Generator().manual_seed(s)) for s in starts]) \
        if ids else torch.zeros((0, *shape))
    sched = make_scheduler(scheduler, num_inference_steps)
    timesteps = [timestep_for_fraction(sched, f) for f in t_fracs]
    steps = [step_index(sched, t) for t in timesteps]
    if len(set(steps)) != len(steps):
        raise ValueError(f"check levels {list(t_fracs)} fall on the same step of a {num_inference_steps}-step "
                         f"{scheduler} run: use fewer levels or more steps")
    order = sorted(steps)
    run = denoise(model.unet, scheduler, x_T, num_inference_steps, record=order,
                  noise_seeds=image_seeds(seed, [f"noise:{i}" for i in ids]))
    pick = [order.index(s) for s in steps]
    abars = [alpha_bar(sched, t) for t in timesteps]
    zero = model.to_latents(torch.zeros((1, *shape)))
    shift_in = torch.stack([zero * a ** 0.5 for a in abars])
    return {"x_t": run.model_input[pick] + shift_in, "x0": model.to_latents(run.x0[pick]),
            "final": model.to_latents(run.final), "timesteps": [float(t) for t in timesteps], "steps": steps,
            "run_fracs": [s / len(sched.timesteps) for s in steps], "alpha_bars": abars}


def end_error(final: torch.Tensor, clean: torch.Tensor) -> np.ndarray:
    """Per image, ``‖final − clean‖ / ‖clean‖``: how far a run ends from the labelled latent."""
    return ((final - clean).flatten(1).norm(dim=1) / clean.flatten(1).norm(dim=1).clamp_min(1e-12)).numpy()


@dataclass
class RunRows:
    """One scheduler's runs of a chunk of images in the runs store's row order: image by image, each
    image's levels in ``t_fracs`` order. ``latents`` (images × levels, C, H, W) are the U-Net inputs,
    ``meta`` their rows, ``end_error`` one value per image."""

    latents: np.ndarray
    meta: pd.DataFrame
    end_error: np.ndarray


def run_rows(model: LatentDiffusion, clean: torch.Tensor, meta: pd.DataFrame, schedulers: list[str],
             t_fracs: list[float], n_trained: int, num_inference_steps: int, seed: int) -> dict[str, RunRows]:
    """:func:`sampler_runs` of the images ``clean`` (rows ``meta``: ``id``, ``severity``) as store rows
    per scheduler; levels from index ``n_trained`` on are marked ``heldout``. The rows of a chunk are
    those of a run over every image (seeds come from the ids), so chunks can run anywhere."""
    meta = meta[["id", "severity"]].reset_index(drop=True)
    trajs, finals = sampler_runs(model, clean, schedulers, t_fracs, num_inference_steps,
                                 image_seeds(seed, meta["id"]))
    n, levels = len(meta), len(t_fracs)
    out = {}
    for name, traj in trajs.items():
        per_level = pd.DataFrame({"t_frac": traj.t_fracs, "timestep": traj.timesteps, "step": traj.steps,
                                  "run_frac": traj.run_fracs, "alpha_bar": traj.alpha_bars,
                                  "heldout": [i >= n_trained for i in range(levels)]})
        rows = meta.loc[meta.index.repeat(levels)].reset_index(drop=True)
        rows = pd.concat([rows, pd.concat([per_level] * n, ignore_index=True)], axis=1)
        latents = traj.model_input.transpose(0, 1).reshape(n * levels, *clean.shape[1:]).numpy()
        out[name] = RunRows(latents=latents, meta=rows, end_error=end_error(finals[name], clean))
    return out
