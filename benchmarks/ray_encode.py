"""Encode throughput, local engine against Ray Data on this machine, and what DiffusionDB 2M would cost.

Part 1 (measured). Writes an image store of N and ``--factor`` × N procedural images (the default
size and VAE configuration, randomly initialised: the weights do not change the cost) and runs
the real stage ``python -m stages.encode`` on each as a child process: ``engine: local``, and
``engine: ray`` with a local cluster the stage starts, as one VAE actor of 1 CPU and as two actors
of half a CPU each. Prints wall times, the fixed cost (cluster start, actor start, the extra
pixel-sum pass) and the marginal images per second from the difference between the two sizes,
and the Ray / local ratios.

Part 2 (estimate). Measures on this CPU what a DiffusionDB image costs outside the VAE (decoding
a 512×704 PNG of DiffusionDB's average file size) and counts the SD 1.x VAE's encode and decode
FLOPs at 512×704 (torch's FlopCounterMode on the meta device). The GPU rate is an assumption,
printed as one (``--gpu-tflops``: sustained dense fp16 TFLOPS per GPU; no GPU was lent to measure
it): the estimate is then 2 M images × max(VAE time / GPUs, PNG decoding / CPU cores).

Run: `python benchmarks/ray_encode.py [--images 2000] [--factor 4] [--gpus 1 8 64]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from benchmarks.encode_memory import write_store, write_vae  # noqa: E402

DIFFUSIONDB_IMAGES = 2_000_000
DIFFUSIONDB_BYTES = 1.6e12                 # the 2M set's size (its dataset card): ~800 kB per PNG
SIDE = (512, 704)                          # DiffusionDB's most common image size, H × W
ENGINES = {                                # name: params.encode overrides
    "local": {"engine": "local"},
    "ray, 1 actor × 1 CPU": {"engine": "ray", "ray": {"actors": 1, "cpus_per_actor": 1.0}},
    "ray, 2 actors × 0.5 CPU": {"engine": "ray", "ray": {"actors": 2, "cpus_per_actor": 0.5}},
}


def run_stage(work: Path, overrides: dict, log: Path) -> float:
    """Wall seconds of one encode stage run on ``work``'s images and VAE with params.encode ``overrides``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    ray = overrides.get("ray", {})
    params["encode"].update({k: v for k, v in overrides.items() if k != "ray"})
    params["encode"]["ray"].update(ray)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    args = [sys.executable, "-m", "stages.encode", "--params", str(work / "params.yaml"), "--images",
            str(work / "images"), "--vae", str(work / "vae"), "--out", str(work / "latents"), "--reports",
            str(work / "reports")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # the stage's own local cluster
    start = time.perf_counter()
    with open(log, "w") as err:
        done = subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"encode failed ({overrides}):\n{log.read_text()[-3000:]}")
    return wall


def part1(n: int, factor: int, size: int) -> None:
    sizes = (n, n * factor)
    walls = {name: {} for name in ENGINES}
    with tempfile.TemporaryDirectory(prefix="ray-encode-") as tmp:
        for count in sizes:
            work = Path(tmp) / str(count)
            write_store(work / "images", count, size)
            write_vae(work / "vae", size)
            for name, overrides in ENGINES.items():
                walls[name][count] = run_stage(work, overrides, Path(tmp) / "stage.log")
                print(f"  {name:<24} {count:>7} images: {walls[name][count]:6.1f} s", flush=True)
    print(f"\nencode stage, {size} px images, all four splits (2 CPU cores here):")
    print_rates(walls, sizes)


def print_rates(walls: dict[str, dict[int, float]], sizes: tuple[int, int]) -> None:
    """Per engine: the fixed cost and marginal images per second from the walls at two sizes, and
    the ratios to ``walls["local"]``."""
    print(f"{'engine':<24} {'fixed cost s':>12} {'marginal img/s':>15} {'wall ratio at ' + str(sizes[1]):>18}")
    local = walls["local"]
    rate_local = (sizes[1] - sizes[0]) / (local[sizes[1]] - local[sizes[0]])
    for name, wall in walls.items():
        rate = (sizes[1] - sizes[0]) / (wall[sizes[1]] - wall[sizes[0]])
        fixed = wall[sizes[0]] - sizes[0] / rate
        print(f"{name:<24} {fixed:>12.1f} {rate:>15.1f} {wall[sizes[1]] / local[sizes[1]]:>18.2f}  "
              f"(marginal {rate / rate_local:.2f}× local)")


def png_decode_seconds(repeats: int = 5) -> tuple[float, int]:
    """Seconds to decode one 512×704 RGB PNG about as large as DiffusionDB's average, and its bytes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w = SIDE
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([np.sin(xx / 37.0 + c) * np.cos(yy / 23.0 - c) for c in range(3)], axis=-1) * 100 + 128
    target = DIFFUSIONDB_BYTES / DIFFUSIONDB_IMAGES
    for noise in (2, 4, 8, 16, 32, 64):      # detail until the file is as large as an average DiffusionDB PNG
        image = np.clip(smooth + rng.normal(0, noise, smooth.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        if buf.tell() >= target:
            break
    data = buf.getvalue()
    Image.open(io.BytesIO(data)).convert("RGB").load()           # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return (time.perf_counter() - start) / repeats, len(data)


def sd_vae_flops() -> tuple[float, float]:
    """(encode, decode) FLOPs of the SD 1.x VAE for one 512×704 image, counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.vae_throughput import sd15_kl

    with torch.device("meta"):
        vae = sd15_kl()
        x = torch.empty(1, 3, *SIDE)
        with FlopCounterMode(display=False) as enc:
            z = vae.encode(x).latent_dist.mode()
        with FlopCounterMode(display=False) as dec:
            vae.decode(z)
    return float(enc.get_total_flops()), float(dec.get_total_flops())


def part2(gpus: list[int], tflops: float, cores_per_gpu: int, decode: bool) -> None:
    png_s, png_bytes = png_decode_seconds()
    enc, dec = sd_vae_flops()
    flops = enc + (dec if decode else 0.0)
    gpu_s = flops / (tflops * 1e12)
    print(f"\nDiffusionDB 2M ({DIFFUSIONDB_IMAGES:,} images of {SIDE[0]}×{SIDE[1]}) with the SD 1.x VAE:")
    print(f"  measured here: PNG decode {png_s * 1e3:.1f} ms per image (a {png_bytes / 1e3:.0f} kB PNG; "
          f"DiffusionDB averages {DIFFUSIONDB_BYTES / DIFFUSIONDB_IMAGES / 1e3:.0f} kB) on one CPU core")
    print(f"  counted: encode {enc / 1e12:.2f} TFLOP, decode {dec / 1e12:.2f} TFLOP per image "
          f"({'encode + decode, as the stage measures reconstruction' if decode else 'encode only'})")
    print(f"  ASSUMED, not measured (no GPU here): {tflops:.0f} sustained TFLOPS per GPU → "
          f"{gpu_s * 1e3:.1f} ms of GPU per image; {cores_per_gpu} CPU cores per GPU for PNG decoding")
    print(f"  {'GPUs':>5} {'GPU-bound h':>12} {'decode-bound h':>15} {'estimate h':>11}")
    for n in gpus:
        gpu_h = DIFFUSIONDB_IMAGES * gpu_s / n / 3600
        cpu_h = DIFFUSIONDB_IMAGES * png_s / (n * cores_per_gpu) / 3600
        print(f"  {n:>5} {gpu_h:>12.1f} {cpu_h:>15.1f} {max(gpu_h, cpu_h):>11.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="N (default %(default)s)")
    parser.add_argument("--factor", type=int, default=4, help="the larger store has factor × N images")
    parser.add_argument("--size", type=int, default=32, help="image side in px (default %(default)s)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--gpu-tflops", type=float, default=150.0,
                        help="assumed sustained fp16 TFLOPS per GPU for the VAE's convolutions (default %(default)s)")
    parser.add_argument("--cores-per-gpu", type=int, default=8)
    parser.add_argument("--encode-only", action="store_true", help="estimate without the reconstruction decode")
    parser.add_argument("--skip-local", action="store_true", help="only the estimate (part 2)")
    args = parser.parse_args(argv)
    if not args.skip_local:
        part1(args.images, args.factor, args.size)
    part2(args.gpus, args.gpu_tflops, args.cores_per_gpu, decode=not args.encode_only)


if __name__ == "__main__":
    main()
