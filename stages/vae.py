"""vae: train a small AutoencoderKL on the train split, or fetch a pretrained VAE.

``vae.source: train`` trains for ``vae.steps`` steps on the *train* split only, computes the
scaling factor (1 / std of the training latents) into the model config and saves it with
``save_pretrained`` (safetensors + config.json) to ``models/vae``. ``vae.source: pretrained``
loads ``vae.id`` (hub id or local directory; ``vae.kind`` kl | tiny) with ``from_pretrained``
and saves the same way, so later stages always read ``models/vae``. Reads ``base``, ``vae``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from pipeline.data.hub import HubFileError, RetryPolicy, hub_snapshot, snapshot_commit
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, atomic_file, write_json
from pipeline.latents.vae import (
    PretrainedVaeError,
    build_vae,
    fit_scaling_factor,
    images_to_tensor,
    is_sd15_vae,
    load_vae,
    train_vae,
)
from pipeline.report.figures import loss_curve
from pipeline.runtime import resolve_device
from stages.cli import fail, parse_args, stage_main
from stages.common import start
from stages.live import log_curves

log = logging.getLogger("stages.vae")


def _pretrained_dir(cfg) -> str:
    """``vae.id`` itself if it is a local directory, else the Hub snapshot folder holding its config and
    safetensors weights (downloaded with retries and verified by ``pipeline.data.hub``, or from the cache)."""
    if Path(cfg.id).is_dir():
        return cfg.id
    sub = f"{cfg.subfolder}/" if cfg.subfolder else ""
    where = f"{cfg.id}{'/' + cfg.subfolder if cfg.subfolder else ''}"
    root, files = hub_snapshot(
        cfg.id, [f"{sub}config.json", f"{sub}diffusion_pytorch_model*.safetensors*"], repo_type="model", revision=cfg.revision,
        retry=RetryPolicy.from_env(os.environ),
        what=f"vae.id {where}", hint="Download it where you have internet (or copy the Hugging Face cache), or set "
        "vae.id to a local directory written by save_pretrained.")
    if not any(f.name == "config.json" for f in files):
        fail(f"vae.id {where}: the model has no config.json there (wrong vae.subfolder?)")
    return str(root)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--images", default="data/images"),
        p.add_argument("--out", default="models/vae"),
        p.add_argument("--reports", default="reports/vae"),
    ))
    params = start(args)
    cfg, seed = params.vae, params.base.seed
    device = resolve_device(params.base.device)
    metrics = {"source": cfg.source}

    if cfg.source == "pretrained":
        log.info("loading pretrained %s VAE %s%s", cfg.kind, cfg.id, f" (subfolder {cfg.subfolder})" if cfg.subfolder else "")
        try:
            directory = _pretrained_dir(cfg)
            vae = load_vae(directory, cfg.kind, subfolder=cfg.subfolder or None, name=cfg.id)
        except (PretrainedVaeError, HubFileError) as exc:
            fail(str(exc))
        curve = pd.DataFrame({"step": [], "mse": []})
        local = Path(cfg.id).is_dir()   # a local directory: no revision applies
        metrics.update(id=cfg.id, subfolder=cfg.subfolder, kind=cfg.kind, revision=None if local else cfg.revision,
                       commit=None if local else snapshot_commit(directory))
    else:
        train = read_image_split(args.images, "train")
        x = images_to_tensor(train.images)
        vae = build_vae(
            block_out_channels=cfg.block_out_channels,
            layers_per_block=cfg.layers_per_block,
            norm_num_groups=cfg.norm_num_groups,
            sample_size=x.shape[-1],
        )
        log.info("training AutoencoderKL (%d params) on %d images for %d steps on %s", n_params(vae), len(x), cfg.steps, device)
        result = train_vae(
            vae, x, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
            kl_weight=cfg.kl_weight, seed=seed, device=device,
        )
        sf = fit_scaling_factor(vae, x)
        vae.register_to_config(scaling_factor=sf)
        steps = [min((i + 1) * result.log_every, result.steps) for i in range(len(result.losses))]
        curve = pd.DataFrame({"step": steps, "mse": result.losses})
        metrics.update(steps=result.steps, final_train_mse=result.losses[-1])

    metrics.update(
        vae_class=type(vae).__name__,
        sd15=is_sd15_vae(vae),
        scaling_factor=float(vae.config.scaling_factor),
        encoder_params=n_params(vae.encoder),
        decoder_params=n_params(vae.decoder),
    )
    with atomic_dir(args.out) as tmp:
        vae.to("cpu").save_pretrained(tmp, safe_serialization=True)
    with atomic_dir(args.reports) as tmp:
        with atomic_file(tmp / "loss.csv") as fh:
            curve.to_csv(fh, index=False)
        if len(curve):
            loss_curve(curve["step"].tolist(), curve["mse"].tolist(), tmp / "loss.png")
            log_curves(tmp, {"vae/train_mse": curve["mse"].tolist()}, steps={"vae/train_mse": curve["step"].tolist()})
        write_json(tmp / "metrics.json", metrics)
    log.info("saved VAE to %s (scaling factor %.5f)", args.out, metrics["scaling_factor"])


if __name__ == "__main__":
    main()
