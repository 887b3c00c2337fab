"""How each stage's cost grows with the latent side, and what the DiffusionDB + SD preset would cost.

1. Growth: the SD-geometry rehearsal (``benchmarks/sd_rehearsal.py``: every stage, tiny counts) with
   a TAESD-config VAE (random weights; 8× downsampling) at 128, 256 and 512 px (latent side 16, 32,
   64), the same image counts each time, and once more at 256 px with twice the images. For each
   stage: wall time and peak resident memory per side, the growth exponent of each (least-squares
   slope of log cost on log side: 2 = grows with the pixels) and the count exponent (log2 of the
   time ratio at twice the images).
2. Projection of the DiffusionDB + SD preset (256 px, 4×32×32 latents, ``vae=sd``) at 1 000 and
   10 000 images, on CPU: the encode stage as N × the SD VAE's measured encode + decode time per
   image at 256 px (its real 83.7 M-parameter architecture), every other stage as its measured time
   at side 32 scaled by (N / n)^(count exponent). The rehearsal's recipes are tiny, so the
   training stages of the default recipes add their own (count-independent) time: the projection
   is a floor for them and says so.
3. GPU: an ESTIMATE, not a measurement — the SD VAE's FLOPs per image at 256 px are counted
   (``torch.utils.flop_counter``) and divided by an assumed sustained fp16 throughput
   (``--gpu-tflops``, default 100 TFLOP/s, a third of an H100's dense fp16 peak).

Run: ``python benchmarks/cost_growth.py [--keep DIR] [--gpu-tflops 100]`` (about 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sd_rehearsal import REHEARSAL, calibration, fresh_dir, rehearse, table, write_vaes  # noqa: E402

SIDES = {16: 128, 32: 256, 64: 512}   # latent side: image side through an 8× VAE


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def sd_vae_costs(vae_dir: Path, side: int = 256, n: int = 4) -> dict:
    """The SD 1.x VAE at ``side`` px on this CPU: seconds per image to encode and to decode (batch ``n``),
    and the FLOPs of each per image (counted by torch)."""
    import torch
    from diffusers import AutoencoderKL
    from torch.utils.flop_counter import FlopCounterMode

    vae = AutoencoderKL.from_pretrained(vae_dir, use_safetensors=True).eval()
    x = torch.rand(n, 3, side, side) * 2 - 1
    with torch.no_grad():
        t = time.perf_counter()
        z = vae.encode(x).latent_dist.mode()
        enc = (time.perf_counter() - t) / n
        t = time.perf_counter()
        vae.decode(z)
        dec = (time.perf_counter() - t) / n
        counter = FlopCounterMode(display=False)
        with counter:
            vae.encode(x[:1])
        enc_flops = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter:
            vae.decode(z[:1])
        dec_flops = counter.get_total_flops()
    return {"encode_s": enc, "decode_s": dec, "encode_flops": enc_flops, "decode_flops": dec_flops}


def recipe_costs() -> list[str]:
    """Each model recipe of the cpu and gpu presets at latent side 16, 32 and 64 as ``base.recipes:
    geometry`` scales it: parameters and forward GFLOPs per sample (counted by torch)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.classify.nets import LatentAttention, VGGNet
    from pipeline.generate.unet import build_unet
    from pipeline.score.nets import CNNScorer
    from stages.common import extra_stages, follow_geometry
    from stages.compose import compose
    from stages.config import load_params

    def cost(model, *inputs) -> tuple[float, float]:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(*inputs)
        return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 1e9

    rows = [f"{'preset':<8} {'side':>4} {'model':<34} {'M params':>9} {'GFLOP/sample':>12}"]
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("cpu", "gpu"):
            compose([f"compute={preset}", "vae=taesd", "data.size=128"], Path(tmp) / "p.yaml")
            base = load_params(Path(tmp) / "p.yaml")
            for side in (16, 32, 64):
                p = follow_geometry(base, (4, side, side))
                z, t = torch.randn(1, 4, side, side), torch.tensor([500])
                d, a = p.diffusion, p.bench.attention
                models = {
                    f"U-Net {d.block_out_channels}": (build_unet((4, side, side), d.block_out_channels, d.layers_per_block,
                                                                 d.norm_num_groups), z, t),
                    f"scorer CNN {p.score.cnn_channels}": (CNNScorer([4, side, side], p.score.cnn_channels, t_dim=p.score.t_dim),
                                                           z, t.float()),
                    f"attention patch {a.patch} dim {a.dim}": (LatentAttention((4, side, side), 6, patch=a.patch, dim=a.dim,
                                                                               depth=a.depth, heads=a.heads, stem=a.stem), z),
                    f"latent CNN width {p.bench.latent_cnn.width}": (VGGNet(6, p.bench.latent_cnn.width, 4,
                                                                            extra_stages(p, side, pixels=False)), z),
                }
                for name, (model, *inputs) in models.items():
                    m, g = cost(model.eval(), *inputs)
                    rows.append(f"{preset:<8} {side:>4} {name:<34} {m:9.3f} {g:12.3f}")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep the projects")
    parser.add_argument("--gpu-tflops", type=float, default=100.0, help="assumed sustained fp16 TFLOP/s of one GPU")
    parser.add_argument("--recipes-only", action="store_true", help="only the recipe cost table (seconds)")
    args = parser.parse_args(argv)
    print("\n".join(recipe_costs()))
    if args.recipes_only:
        return
    print(f"calibration: {calibration()}")
    with tempfile.TemporaryDirectory(prefix="cost-growth-") as tmp:
        base = args.keep or Path(tmp)
        vaes = write_vaes(base / "vaes")
        runs = {}
        for side, size in SIDES.items():
            runs[side] = rehearse("taesd512", fresh_dir(base / f"side{side}"), vaes["taesd"], extra={"data.size": size})
            print(f"\n== latent side {side} ({size} px, TAESD config): exit {runs[side].code}\n{table(runs[side])}")
            if runs[side].code:
                raise SystemExit(runs[side].tail)
        n0 = REHEARSAL["data.n_images"] + REHEARSAL["data.n_artifact"]
        double = rehearse("taesd512", fresh_dir(base / "side32x2"), vaes["taesd"], extra={
            "data.size": 256, "data.n_images": 2 * REHEARSAL["data.n_images"], "data.n_artifact": 2 * REHEARSAL["data.n_artifact"]})
        if double.code:
            raise SystemExit(double.tail)
        print(f"\n== latent side 32 with twice the images ({2 * n0}):\n{table(double)}")

        names = [s["name"] for s in runs[16].stages]
        by = {side: {s["name"]: s for s in run.stages} for side, run in runs.items()}
        twice = {s["name"]: s for s in double.stages}
        print(f"\n{'stage':<26} {'s@16':>7} {'s@32':>7} {'s@64':>7} {'time exp':>8} {'MiB@16':>7} {'MiB@32':>7} "
              f"{'MiB@64':>7} {'mem exp':>7} {'count exp':>9}")
        growth = {}
        for name in names:
            if not all(name in by[s] for s in SIDES) or name not in twice:
                continue
            t = [by[s][name]["seconds"] for s in SIDES]
            m = [by[s][name]["peak_mib"] or 1 for s in SIDES]
            e_t, e_m = slope(list(SIDES), t), slope(list(SIDES), m)
            e_n = math.log2(max(twice[name]["seconds"], 1e-3) / max(by[32][name]["seconds"], 1e-3))
            growth[name] = (by[32][name]["seconds"], max(0.0, min(e_n, 2.0)))
            print(f"{name:<26} {t[0]:7.1f} {t[1]:7.1f} {t[2]:7.1f} {e_t:8.2f} {m[0]:7.0f} {m[1]:7.0f} {m[2]:7.0f} "
                  f"{e_m:7.2f} {e_n:9.2f}")

        sd = sd_vae_costs(vaes["sd"])
        print(f"\nSD 1.x VAE at 256 px on this CPU: encode {sd['encode_s']:.2f} s, decode {sd['decode_s']:.2f} s per image; "
              f"{sd['encode_flops'] / 1e9:.0f} + {sd['decode_flops'] / 1e9:.0f} GFLOP per image (counted)")
        print("\nProjection, DiffusionDB + SD preset (256 px, 4×32×32, vae=sd), rehearsal recipes:")
        for n in (1_000, 10_000):
            encode_cpu = n * (sd["encode_s"] + sd["decode_s"])
            rest = sum(t * (n / n0) ** e for name, (t, e) in growth.items() if name != "encode")
            gpu_vae = n * (sd["encode_flops"] + sd["decode_flops"]) / (args.gpu_tflops * 1e12)
            print(f"  {n:>6} images: CPU (2 cores, measured rates) encode {encode_cpu / 3600:.1f} h + other stages "
                  f"≥ {rest / 3600:.2f} h; one GPU ESTIMATE (counted FLOPs at {args.gpu_tflops:g} TFLOP/s, not measured): "
                  f"VAE {gpu_vae / 60:.1f} min")


if __name__ == "__main__":
    main()
