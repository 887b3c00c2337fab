"""Generation figures of a finished run, and what a latent U-Net costs here.

With ``--project DIR`` (a directory where `dvc repro` ran), prints the diffusion stage's samplers
beside their baselines, sample-guided interpolation against naive slerp and unguided noise slerp
(paired over seeds, 95 % intervals), how far the real sampler runs end from their images, and
metric-guided sampling (the guide stage) against unguided sampling and its targets (requested class kept ≥ 0.70), with
the generated methods' rows of the classifier benchmark.
With ``--cost``, times U-Net training steps and sampling for the default U-Net and the bigger
params switches on this machine's device (warm-up first, each measured once in this process):
the numbers behind the README's cost table.
Run: `python benchmarks/generation.py --project DIR [--cost]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def figures(project: Path) -> None:
    load = lambda rel: json.loads((project / rel).read_text())   # noqa: E731
    diff, interp, runs = load("reports/diffusion/metrics.json"), load("reports/interpolate/metrics.json"), load("reports/runs/metrics.json")
    base = diff["baselines"]
    print(f"U-Net {diff['unet_params']} params, final loss {diff['final_loss']:.4f}; {diff['samples']} samples × {diff['seeds']} seeds")
    print(f"{'sampler':<12}{'steps':>6}  {'Fréchet':>14}  {'precision':>10}  {'recall':>8}  {'density':>8}  {'coverage':>9}  "
          f"{'copy ratio':>10}  {'ms/sample':>9}")
    rows = [(k + " (base)", "–", v, None) for k, v in base.items()]
    import pandas as pd

    seconds = pd.read_csv(project / "reports/diffusion/samplers.csv").set_index(["sampler", "steps"])["seconds_per_sample_mean"]
    rows += [(s, k, v, seconds[(s, int(k))]) for s, steps in diff["samplers"].items() for k, v in steps.items()]
    for name, steps, v, sec in rows:
        print(f"{name:<12}{steps:>6}  {v['frechet']['mean']:>7.1f} ± {v['frechet']['std']:<5.1f} {v['precision']['mean']:>10.2f}"
              f"  {v['recall']['mean']:>8.2f}  {v['density']['mean']:>8.2f}  {v['coverage']['mean']:>9.2f}  "
              f"{v['copy_ratio']['mean']:>10.2f}  {'–' if sec is None else f'{sec * 1e3:.2f}':>9}")
    print(f"\ninterpolation ({interp['pairs']} pairs × {interp['points']} points, {interp['seeds']} seeds, strength "
          f"{interp['strength']}, {interp['metric']} metric); judge test accuracy {interp['judge_test_accuracy']['mean']:.3f}, "
          f"class prior {interp['class_prior']:.3f}")
    for name, m in interp["methods"].items():
        print(f"  {name:<12} class kept {m['class_kept']['mean']:.3f} ± {m['class_kept']['std']:.3f}  Fréchet "
              f"{m['frechet']['mean']:6.1f} ± {m['frechet']['std']:4.1f}  density {m['density']['mean']:.2f}  copy ratio "
              f"{m['copy_ratio']['mean']:.2f}  jump ratio {m['jump_ratio']['mean']:.2f}  end error {m['end_error']['mean']:.3f}")
    for other, block in interp["guided_vs"].items():
        print(f"  guided vs {other}:")
        for k, v in block.items():
            print(f"    {k:<12} {v['difference']:+8.3f} (95 % CI {v['ci95'][0]:+.3f} … {v['ci95'][1]:+.3f})  {v['verdict']}")
    inv = runs["inversion"]
    print(f"\ninversion runs of {inv['images']} artifact test images, end distance (relative): "
          + ", ".join(f"{s} {v['mean']:.3f} ± {v['std']:.3f}" for s, v in inv["end_error"].items()))
    guided(project)


def guided(project: Path) -> None:
    import pandas as pd

    g = json.loads((project / "reports/guide/metrics.json").read_text())
    print(f"\nmetric-guided sampling ({g['sampler']}, {g['steps']} steps, {g['samples']} samples × {g['seeds']} seeds); "
          f"judge test accuracy {g['judge_test_accuracy']['mean']:.3f}, class prior {g['class_prior']:.3f}; "
          f"operating scales {g['operating']}")
    table = pd.read_csv(project / "reports/guide/table.csv")
    cols = ("class_accuracy", "frechet", "precision", "recall", "density", "coverage", "far_fraction")
    print(f"  {'kind':<14}{'scale':>6}  " + "  ".join(f"{c:>15}" for c in cols) + f"  {'ms/sample':>9}")
    for _, r in table.iterrows():
        print(f"  {r['kind']:<14}{r['scale']:>6g}  " + "  ".join(f"{r[c + '_mean']:>7.3g} ± {r[c + '_std']:<5.2g}" for c in cols)
              + f"  {r['seconds_per_sample_mean'] * 1e3:>9.2f}")
    for name, b in g["baselines"].items():
        print(f"  {name + ' (base)':<20}  " + "  ".join(f"{b[c]:>15.3g}" if c in b else f"{'–':>15}" for c in cols))
    for kind, block in g["vs_unguided"].items():
        print(f"  {kind} vs unguided: " + "; ".join(f"{k} {v['difference']:+.3g} ({v['ci95'][0]:+.3g} … {v['ci95'][1]:+.3g}) "
                                                   f"{v['verdict']}" for k, v in block.items()))
    for name, d in g["ood_detector"].items():
        print(f"  OOD detector, held-out real vs {name}: AUROC {d['auroc']:.3f}, FPR at 95 % TPR {d['fpr_at_95_tpr']:.3f}")
    acc = max(g["kinds"]["classifier"]["class_accuracy"]["mean"], g["kinds"]["combined"]["class_accuracy"]["mean"])
    print(f"  target: class-guided accuracy ≥ 0.70 → {acc:.3f} ({'met' if acc >= 0.70 else 'NOT met'})")
    bench = json.loads((project / "reports/bench/metrics.json").read_text())["results"]
    print("\ngenerated data in the classifier benchmark (balanced accuracy; gain over the same model without it, 95 % CI)")
    for key, r in bench.items():
        if key.split("/")[2].endswith(("class_guided", "guided_interpolation", "+smote", "+random")) and "low_data" in key:
            gain = r.get("gain", {})
            print(f"  {key:<44} {r['balanced_accuracy']['mean']:.3f} ± {r['balanced_accuracy']['std']:.3f}  "
                  f"{gain.get('mean', float('nan')):+.3f} ({gain.get('ci95_lo', float('nan')):+.3f} … "
                  f"{gain.get('ci95_hi', float('nan')):+.3f}) {r.get('verdict', '')}")


def cost() -> None:
    import numpy as np
    import torch

    from pipeline.generate.sampling import denoise, starting_noise
    from pipeline.generate.unet import build_unet, train_unet
    from pipeline.runtime import configure_threads, resolve_device

    configure_threads()
    device = resolve_device("auto")
    data = np.random.default_rng(0).normal(size=(2048, 4, 16, 16)).astype(np.float32)
    print(f"\nU-Net cost on {device} (4×16×16 latents; training batch 64, sampling 128 latents × 25 DDIM steps)")
    for channels in ([16, 32, 32], [32, 32, 64], [32, 64, 64], [64, 128, 128]):
        torch.manual_seed(0)
        unet = build_unet((4, 16, 16), channels)
        train_unet(unet, data, steps=3, batch_size=64, device=device)              # warm-up
        start = time.perf_counter()
        train_unet(unet, data, steps=30, batch_size=64, device=device)
        step = (time.perf_counter() - start) / 30
        x = starting_noise(128, (4, 16, 16), 0)
        denoise(unet, "ddim", x, 2)
        start = time.perf_counter()
        denoise(unet, "ddim", x, 25)
        per = (time.perf_counter() - start) / (128 * 25)
        params = sum(p.numel() for p in unet.parameters())
        print(f"  {str(channels):<16} {params / 1e6:5.2f} M params  train {step * 1e3:6.1f} ms/step "
              f"({1200 * step:5.0f} s per 1 200 steps)  sample {per * 1e3:.3f} ms per latent-step")
    generated_cost(data)


def generated_cost(data) -> None:
    """ms per generated sample of the bench's generated methods (default U-Net and guide classifier,
    untrained: the cost does not depend on the weights), 600 samples of 6 classes, 10 DDIM steps."""
    import numpy as np
    import torch

    from pipeline.generate.guidance import noise_aware_classifier
    from pipeline.generate.oversample import ClassGuided, GuidedInterpolation
    from pipeline.generate.unet import LatentDiffusion, build_unet

    torch.manual_seed(0)
    model = LatentDiffusion.centred_on(build_unet((4, 16, 16), [16, 32, 32]), data)
    clf = noise_aware_classifier((4, 16, 16), 6).eval()
    X = data[:120].reshape(120, -1)
    y = np.repeat(np.arange(6), 20)
    strategy = {c: 120 for c in range(6)}          # 100 new per class
    print("\ngenerated methods of the classifier benchmark, default U-Net, 10 DDIM steps, 600 samples:")
    for name, sampler in (("class_guided (plain)", ClassGuided(model, clf, steps=10, sampling_strategy=strategy,
                                                                 random_state=0)),
                          ("class_guided (default: dihedral average, normalised)",
                           ClassGuided(model, clf, steps=10, scale=0.15, symmetry="dihedral", normalise=True,
                                       sampling_strategy=strategy, random_state=0)),
                          ("guided_interpolation", GuidedInterpolation(model, steps=10, sampling_strategy=strategy,
                                                                       random_state=0))):
        start = time.perf_counter()
        sampler.fit_resample(X, y)
        print(f"  {name:<54} {(time.perf_counter() - start) / 600 * 1e3:.2f} ms per sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a directory where `dvc repro` ran")
    parser.add_argument("--cost", action="store_true", help="time U-Net training and sampling here")
    args = parser.parse_args()
    if args.project:
        figures(args.project)
    if args.cost:
        cost()
    if not (args.project or args.cost):
        parser.error("give --project DIR and/or --cost")


if __name__ == "__main__":
    main()
