"""Peak resident memory of every stage at the default counts, at Stable Diffusion geometry.

The target: at 256 px (4×32×32 latents) with the default counts (``data.n_images`` 4 000 +
``data.n_artifact`` 3 000, and every generated count as the default has it) each stage's peak
resident memory stays ≤ 4 GiB; at 512 px (4×64×64) ≤ 1.5× that.

What runs: ``dvc repro`` of a fresh project copy at ``--size`` px, every count at its default, with

* an ``AutoencoderKL`` of SD's geometry (four blocks: 8× downsampling, 4 latent channels, scaling
  factor 0.18215) but narrow (widths 8–16, random weights), so 7 000 images encode and decode in
  minutes instead of SD's VAE's ~10 hours on 2 cores. The images, latents and generated sets each
  stage holds are the default run's at that geometry; the VAE's own activations are capped by the
  memory budget (``LATENT_LAB_VAE_MEMORY_MB``) whatever the VAE, and are measured with SD's real
  architecture by ``benchmarks/sd_rehearsal.py``;
* training and sampling *steps* cut to a few (models, minibatches and the sets they are drawn from
  keep their sizes; a step count changes time, not what is held), and the seeds of the seeded
  grids and the synthetic replicates cut to 1–2 (each seed's fit or replicate is alone in memory;
  ``bench``'s fits are per seed in workers).

Prints per stage: wall time (of these cut recipes: not the default run's time), its peak resident
memory (exact), its largest finished child's, the largest sum over all its processes (dvc, the stage,
its worker pool; sampled every 0.5 s) and whether the largest of these meets the target.

Run: ``python benchmarks/memory_at_scale.py [--size 256|512] [--keep DIR]``
(over an hour at 256 px on 2 cores: prepare alone renders for about 12 minutes; not yet timed in one piece).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sd_rehearsal import calibration, fresh_dir, repro  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_MIB = {256: 4096, 512: 6144}   # 4 GiB at 256 px; 1.5× that at 512 px
NETS = ("latent_cnn", "attention", "vgg", "resnet", "mobilenet")


def write_narrow_vae(path: Path) -> Path:
    """A randomly initialised AutoencoderKL with SD 1.x's geometry (8×, 4 latent channels) but widths 8–16."""
    import torch
    from diffusers import AutoencoderKL

    if not (path / "config.json").is_file():
        torch.manual_seed(0)
        AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                      block_out_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                      sample_size=256, scaling_factor=0.18215).save_pretrained(path)
    return path


def cut_steps(defaults: dict) -> dict:
    """Overrides that cut training and sampling steps and seed counts, never a count of images or samples."""
    out = {
        "diffusion.steps": 10, "diffusion.sample_steps": [5], "diffusion.seeds": 2,
        "artifact_unet.steps": 10,
        "score.level_steps": 10, "score.cond_steps": 10, "score.seeds": 1,
        "guide.classifier_steps": 10, "guide.discriminator_steps": 10, "guide.steps": 5, "guide.seeds": 2,
        "interpolate.steps": 5, "interpolate.seeds": 1,
        "bench.seeds": 2,
        "augment.replicates": 1,   # synthetic sets per method: each is measured alone, the first decoded
    }
    out["runs.fresh"] = {**defaults["runs"]["fresh"], "steps": 5}
    out["runs.judge"] = {**defaults["runs"]["judge"], "steps": 10}
    out["guide.validation"] = {**defaults["guide"]["validation"], "seeds": 1}
    out["interpolate.validation"] = {**defaults["interpolate"]["validation"], "seeds": 1}
    for net in NETS:
        out[f"bench.{net}"] = {**defaults["bench"][net], "steps": 10}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, choices=sorted(TARGET_MIB), default=256)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    parser.add_argument("--timeout", type=float, default=3 * 3600)
    args = parser.parse_args(argv)
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())
    print(f"calibration: {calibration()}")
    with tempfile.TemporaryDirectory(prefix="memory-at-scale-") as tmp:
        base = args.keep or Path(tmp)
        vae = write_narrow_vae(fresh_dir(base / "vae"))
        override = {**cut_steps(defaults), "data.size": args.size, "vae.id": str(vae)}
        run = repro(f"default counts at {args.size} px", fresh_dir(base / f"run{args.size}"), override, {"vae": "sd"},
                    timeout=args.timeout, echo=True)
        latent = args.size // 8
        n = defaults["data"]["n_images"], defaults["data"]["n_artifact"]
        target = TARGET_MIB[args.size]
        print(f"\n== {args.size} px, 4×{latent}×{latent} latents, {n[0]} + {n[1]} images (default counts), "
              f"narrow 8× AutoencoderKL: exit {run.code} in {run.seconds:.0f} s; target ≤ {target} MiB per stage")
        print(f"{'stage':<26} {'seconds':>8} {'peak MiB':>9} {'children':>9} {'all procs':>9}  target")
        for s in run.stages:
            peak = max(s["peak_mib"] or 0, s["children_mib"] or 0, s["tree_mib"] or 0)
            ok = "-" if s["peak_mib"] is None else ("yes" if peak <= target else "NO")
            print(f"{s['name']:<26} {s['seconds']:8.1f} {s['peak_mib'] or '-':>9} {s['children_mib'] or '-':>9} "
                  f"{s['tree_mib'] or '-':>9}  {ok}")
        peaks = [max(s["peak_mib"] or 0, s["children_mib"] or 0, s["tree_mib"] or 0) for s in run.stages]
        print(f"{'highest':<26} {'':>8} {max(peaks, default=0):>9}  "
              f"{'met' if run.code == 0 and max(peaks, default=0) <= target else 'NOT met'}")
        if run.code:
            print(run.tail)
            raise SystemExit(run.code)


if __name__ == "__main__":
    main()
