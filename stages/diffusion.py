"""diffusion: a latent diffusion U-Net on the train latents, and how each sampler does with it.

Trains a diffusers ``UNet2DModel`` (ε-prediction on Stable Diffusion's training schedule,
``pipeline.generate.unet``) on the *train* latents only and saves it with ``save_pretrained`` to
``models/unet`` (``unet/`` + ``scheduler/``; ``UNet2DModel.from_pretrained("models/unet",
subfolder="unet")`` loads it). Then every sampler in ``diffusion.samplers`` at every
``diffusion.sample_steps`` count, for ``diffusion.seeds`` seeds, generates ``diffusion.samples``
latents from the same seeded noise, measured against as many real *test* latents
(``pipeline.generate.evaluate``: Fréchet distance in a PCA space of real train latents, precision /
recall / density / coverage on the full latents, copy ratio to the nearest training latent, seconds per sample),
beside a real training subset and a per-element Gaussian as baselines. Decoded galleries per
sampler, x̂₀ predictions along one run of each sampler, and the runs' paths in PCA space.
Writes ``models/unet`` and ``reports/diffusion``. Reads ``base``, ``diffusion``, ``vae.dtype``,
``vae.tiling``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.generate.evaluate import METRICS, SampleReference
from pipeline.generate.study import sampler_grid, sampler_verdicts, summarise, trajectories
from pipeline.generate.sampling import starting_noise
from pipeline.generate.unet import LatentDiffusion, build_unet
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import decode_to_images
from pipeline.latents.store import read_latent_split
from pipeline.report.figures import image_grid, save_png, trajectory_paths
from pipeline.runtime import resolve_device
from stages.cli import fail, parse_args, stage_main
from stages.common import follow_geometry, require_same_ids, start
from stages.unet_curve import save_unet_losses
from stages.vae_open import open_vae

log = logging.getLogger("stages.diffusion")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--out", default="models/unet"),
        p.add_argument("--reports", default="reports/diffusion"),
    ))
    params = start(args)
    cfg, seed = params.diffusion, params.base.seed
    device = resolve_device(params.base.device)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    cfg = params.diffusion
    if cfg.samples > min(len(train.latents), len(test.latents)):
        fail(f"diffusion.samples={cfg.samples} exceeds the {len(train.latents)} train or {len(test.latents)} test latents "
             f"it is compared with ({args.latents})")
    try:
        unet = build_unet(train.shape, cfg.block_out_channels, cfg.layers_per_block, cfg.norm_num_groups)
    except ValueError as exc:
        fail(f"diffusion.block_out_channels: {exc} (latents {train.shape} in {args.latents})")
    real_images = read_image_split(args.images, "test")
    require_same_ids(real_images, test, "test", args.images, args.latents)
    vae = open_vae(params, args.vae, real_images.images.shape[1], (train.shape, args.latents))

    n_params = sum(p.numel() for p in unet.parameters())
    torch.manual_seed(seed)
    log.info("training UNet2DModel (%d params) on %d train latents %s for %d steps on %s",
             n_params, len(train.latents), train.shape, cfg.steps, device)
    model = LatentDiffusion.centred_on(unet, train.latents)
    with tqdm(total=cfg.steps, desc="train unet", unit="step", mininterval=2.0) as bar:
        losses = model.train(train.latents, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed,
                             device=device, noise_offset=cfg.noise_offset, progress=bar.update)

    reference = SampleReference(train.latents, test.latents, n=cfg.samples, components=cfg.components, k=cfg.k, seed=seed)
    seeds = [seed + i for i in range(cfg.seeds)]
    with tqdm(total=len(seeds) * len(cfg.samplers) * len(cfg.sample_steps), desc="sample", unit="run") as bar:
        rows, finals = sampler_grid(model, reference, samplers=list(cfg.samplers), steps=list(cfg.sample_steps),
                                    seeds=seeds, shape=train.shape, progress=bar.update)
    table = summarise(rows, ["sampler", "steps"], (*METRICS, "seconds_per_sample"))
    most = max(cfg.sample_steps)
    traj = trajectories(model, list(cfg.samplers), starting_noise(cfg.trajectory_samples, train.shape, seed), most,
                        cfg.trajectory_points, seed)

    with atomic_dir(args.out) as tmp:
        model.unet.to("cpu")
        model.save(tmp)
    with atomic_dir(args.reports) as tmp:
        save_unet_losses(tmp, losses, "unet")
        rows.to_csv(tmp / "runs.csv", index=False, float_format="%.6g")
        table.to_csv(tmp / "samplers.csv", index=False, float_format="%.6g")
        write_json(tmp / "metrics.json", {**_metrics(table, cfg, n_params, losses), **sampler_verdicts(rows)})
        gallery = [decode_to_images(vae, finals[(s, most)][:cfg.gallery]) for s in cfg.samplers]
        gallery.append(real_images.images[reference.test_idx[:cfg.gallery]])
        save_png(image_grid(gallery), tmp / "gallery.png")
        strips = [decode_to_images(vae, traj[s]["x0"][:, i]) for i in range(cfg.trajectory_samples) for s in cfg.samplers]
        save_png(image_grid(strips), tmp / "trajectories.png")
        paths = {s: (reference.plane(t["x_t"]), reference.plane(t["x0"])) for s, t in traj.items()}
        trajectory_paths(paths, reference.P_test[:, :2], tmp / "paths.png",
                         title=f"{cfg.trajectory_samples} runs of {most} steps in the first two PCs of real train latents")
    best = table[~table["sampler"].isin(["real_train", "gaussian"])].sort_values("frechet_mean").iloc[0]
    log.info("best sampler: %s × %d steps, Fréchet %.2f (real train %.2f, Gaussian %.2f)", best["sampler"], best["steps"],
             best["frechet_mean"], *(table.loc[table["sampler"] == b, "frechet_mean"].iloc[0] for b in ("real_train", "gaussian")))


def _metrics(table: pd.DataFrame, cfg, n_params: int, losses: list[float]) -> dict:
    out = {"unet_params": n_params, "prediction": "epsilon", "noise_offset": cfg.noise_offset, "final_loss": float(np.mean(losses[-50:])),
           "samples": cfg.samples, "seeds": cfg.seeds, "baselines": {}, "samplers": {}}
    for _, r in table.iterrows():
        cell = {m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in METRICS}   # timings: samplers.csv
        if r["sampler"] in ("real_train", "gaussian"):
            out["baselines"][r["sampler"]] = cell
        else:
            out["samplers"].setdefault(r["sampler"], {})[str(int(r["steps"]))] = cell
    return out


if __name__ == "__main__":
    main()
