"""Check the torch nets' default recipes on a validation split, never on the test split.

The benchmark's recipes (`bench.<net>`: steps, width, learning rate) were set on earlier runs judged
on the test split. This script re-checks them where a choice may be made: a validation split
carved from the training split (`pipeline.validation.validation_split`), validation seeds disjoint
from the benchmark's, each net trained on the rest of train at its default training length and at
half and twice it. It prints, per net, balanced accuracy on the validation split (mean ± std over
seeds), and whether the default is within the seed spread of the best variant (the recipe holds) or
a variant beats it beyond the spread (a candidate to re-check). Nothing here reads the test split.

    python benchmarks/recipe_check.py [--project DIR] [--seeds 2] [--fraction 0.2] [--nets vgg,latent_cnn]

`--project` is a finished run (data/images, data/latents, params.yaml), e.g. the workspace after
`dvc repro` or `python benchmarks/pipeline_time.py --keep DIR`.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.classify.latent_bench import LatentFit, run_latent_fit  # noqa: E402
from pipeline.classify.regimes import Regime  # noqa: E402
from pipeline.classify.tasks import LabelledSplits, PixelFit, run_pixel_fit  # noqa: E402
from pipeline.data.store import read_image_split  # noqa: E402
from pipeline.latents.store import read_latent_split  # noqa: E402
from pipeline.validation import validation_seeds, validation_split  # noqa: E402

PIXEL_NETS = ("vgg", "resnet", "mobilenet")
LATENT_NETS = ("latent_cnn", "attention")
LENGTHS = (0.5, 1.0, 2.0)   # training length relative to the default's steps


def tasks(project: Path, nets: list[str], seeds: int, fraction: float) -> list[tuple[str, float, int, object]]:
    """(net, length, default steps, fit task) for every net, training length and validation seed."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    images = read_image_split(project / "data/images", "train")
    latents = read_latent_split(project / "data/latents", "train")
    y = images.meta["label"].to_numpy()
    fit, val = validation_split(y, fraction, params["base"]["seed"])
    names = images.class_names
    pixels = LabelledSplits(images.images[fit], y[fit], images.images[val], y[val], names)
    lat = LabelledSplits(latents.latents[fit], y[fit], latents.latents[val], y[val], names)
    out = []
    for net in nets:
        base = params["bench"][net]
        for length in LENGTHS:
            options = {**base, "steps": max(int(round(base["steps"] * length)), 1)}
            for seed in validation_seeds(params["base"]["seed"], seeds):
                task = (PixelFit(net, options, "pixels", seed, pixels) if net in PIXEL_NETS else
                        LatentFit(net, options, Regime("real"), seed, lat, cap=0, grow=1))
                out.append((net, length, base["steps"], task))
    return out


def _run(task):
    return (run_pixel_fit if isinstance(task, PixelFit) else run_latent_fit)(task).row["balanced_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--nets", default=",".join(PIXEL_NETS + LATENT_NETS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    todo = tasks(args.project, args.nets.split(","), args.seeds, args.fraction)
    with ProcessPoolExecutor(args.workers) as pool:
        scores = list(pool.map(_run, [t for *_, t in todo]))
    print(f"validation split: {args.fraction:g} of train; {args.seeds} validation seeds; balanced accuracy on it\n")
    print("| net | default steps | × 0.5 | × 1 (default) | × 2 | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    for net in dict.fromkeys(n for n, *_ in todo):
        cells = {length: np.array([s for (n, lg, *_), s in zip(todo, scores) if n == net and lg == length])
                 for length in LENGTHS}
        mean = {k: v.mean() for k, v in cells.items()}
        spread = max(v.std() for v in cells.values())
        best = max(mean, key=mean.get)
        verdict = ("the default holds (within the seed spread of the best)" if mean[best] - mean[1.0] <= spread
                   else f"× {best:g} beats the default beyond the seed spread: re-check it")
        steps = next(st for n, _, st, _ in todo if n == net)
        row = " | ".join(f"{mean[k]:.3f} ± {cells[k].std():.3f}" for k in LENGTHS)
        print(f"| {net} | {steps} | {row} | {verdict} |")


if __name__ == "__main__":
    main()
