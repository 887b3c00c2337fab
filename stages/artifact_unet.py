"""artifact_unet: the latent U-Net whose generations the artifact study scores.

Trains a diffusers ``UNet2DModel`` (``pipeline.generate.unet``: ε-prediction on Stable Diffusion's
training schedule, centred latents) on the *artifact train* latents — every severity, so its
generations range from clean to badly damaged — for ``artifact_unet.steps`` steps, with the
architecture, batch size, learning rate and noise offset of ``diffusion``. Saves it with
``save_pretrained`` to ``models/artifact_unet`` (``unet/`` + ``scheduler/`` + ``latents.json``) and
its loss curve to ``reports/artifact_unet``. The ``runs`` stage generates from it. Reads ``base``,
``artifact_unet``, ``diffusion.block_out_channels``, ``diffusion.layers_per_block``,
``diffusion.norm_num_groups``, ``diffusion.batch_size``, ``diffusion.lr``, ``diffusion.noise_offset``.
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from pipeline.generate.unet import LatentDiffusion, build_unet
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.runtime import resolve_device
from stages.cli import fail, parse_args, stage_main
from stages.common import follow_geometry, start
from stages.unet_curve import save_unet_losses

log = logging.getLogger("stages.artifact_unet")
SPLIT = "artifact_train"


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--out", default="models/artifact_unet"),
        p.add_argument("--reports", default="reports/artifact_unet"),
    ))
    params = start(args)
    arch, steps, seed = params.diffusion, params.artifact_unet.steps, params.base.seed
    try:
        train = read_latent_split(args.latents, SPLIT)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    arch = params.diffusion
    try:
        unet = build_unet(train.shape, arch.block_out_channels, arch.layers_per_block, arch.norm_num_groups)
    except ValueError as exc:
        fail(f"diffusion.block_out_channels: {exc} (latents {train.shape} in {args.latents})")
    device = resolve_device(params.base.device)
    torch.manual_seed(seed)
    n_params = sum(p.numel() for p in unet.parameters())
    log.info("training UNet2DModel (%d params) on %d artifact train latents %s (severities %s) for %d steps on %s",
             n_params, len(train.latents), train.shape, sorted(train.meta["severity"].round(1).unique().tolist()), steps, device)
    model = LatentDiffusion.centred_on(unet, train.latents)
    with tqdm(total=steps, desc="train artifact unet", unit="step", mininterval=2.0) as bar:
        losses = model.train(train.latents, steps=steps, batch_size=arch.batch_size, lr=arch.lr, seed=seed, device=device,
                             noise_offset=arch.noise_offset, progress=bar.update)
    with atomic_dir(args.out) as tmp:
        model.unet.to("cpu")
        model.save(tmp)
    with atomic_dir(args.reports) as tmp:
        curve = save_unet_losses(tmp, losses, "artifact_unet")
        write_json(tmp / "metrics.json", {"params": n_params, "train_latents": len(train.latents), "steps": steps,
                                          "final_loss": float(curve["smoothed"].iloc[-1])})


if __name__ == "__main__":
    main()
