"""Encode / decode throughput of the Stable Diffusion VAE architectures, to plan a real-data run.

Randomly initialised models with the published architectures (weights do not change the cost):
the SD 1.x ``AutoencoderKL`` (83.7 M parameters) and TAESD (``AutoencoderTiny``, 2.4 M), on the
device ``auto`` picks, through the same ``encode_images`` / ``decode_latents`` the encode stage
uses. Prints images per second per model, side and dtype, after a warm-up batch.

    python -m benchmarks.vae_throughput                  # 64 and 128 px, float32, 16 images
    python -m benchmarks.vae_throughput --sizes 256 512 --images 64 --dtypes float32 float16   # on a GPU
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from pipeline.latents.vae import DTYPES, configure_tiling, decode_latents, encode_images
from pipeline.runtime import configure_threads, resolve_device


def sd15_kl() -> AutoencoderKL:
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                         norm_num_groups=32, sample_size=512, scaling_factor=0.18215)


MODELS = {"sd15_kl": sd15_kl, "taesd": AutoencoderTiny}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(model, side: int, n: int, batch: int, device: torch.device) -> tuple[float, float]:
    x = torch.rand(n, 3, side, side) * 2 - 1
    encode_images(model, x[:batch], batch_size=batch, desc="warm-up")          # first calls are slow
    _sync(device)
    t = time.perf_counter()
    z = encode_images(model, x, batch_size=batch, desc="encode")
    _sync(device)
    enc = n / (time.perf_counter() - t)
    decode_latents(model, z[:batch], batch_size=batch, desc="warm-up")
    _sync(device)
    t = time.perf_counter()
    decode_latents(model, z, batch_size=batch, desc="decode")
    _sync(device)
    return enc, n / (time.perf_counter() - t)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=list(DTYPES))
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    threads = configure_threads()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"device: {name}; {args.images} images, batch {args.batch}")
    print(f"{'model':<8} {'params':>7} {'side':>5} {'dtype':>9} {'encode img/s':>13} {'decode img/s':>13}")
    for model_name in args.models:
        torch.manual_seed(0)
        base = MODELS[model_name]().eval()
        params = sum(p.numel() for p in base.parameters()) / 1e6
        for dtype in args.dtypes:
            model = base.to(device) if dtype == "float32" else base.to(device=device, dtype=DTYPES[dtype])
            for side in args.sizes:
                configure_tiling(model, "auto", side)
                enc, dec = measure(model, side, args.images, args.batch, device)
                print(f"{model_name:<8} {params:>6.1f}M {side:>5} {dtype:>9} {enc:>13.2f} {dec:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
