"""Print the default run's headline figures beside their baselines and their targets.

Reads a finished run's reports (``--project``, default: this checkout; `python
benchmarks/pipeline_time.py --keep DIR` leaves a fresh one in DIR) and prints, per figure, the
value (mean ± std over the default seeds, real test split), its baseline and whether the target
holds. A "≥ target" counts as met only where the one-sided 95 % lower bound over seeds
(``pipeline.metrics.verdicts.lower_bound``, the seed counts from the run's params.yaml) clears it,
never on the mean. Nothing is recomputed: these are the DVC metrics the pipeline wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.metrics.verdicts import lower_bound  # noqa: E402


def _load(project: Path, rel: str) -> dict:
    return json.loads((project / rel).read_text())


def figures(project: Path) -> list[tuple[str, str, str, bool]]:
    """(figure, value, baseline, target met) rows."""
    enc, bench = _load(project, "reports/encode/metrics.json"), _load(project, "reports/bench/metrics.json")
    score = _load(project, "reports/score/metrics.json")
    majority = bench["baseline_majority"]["balanced_accuracy"]
    res = {k: v["balanced_accuracy"] for k, v in bench["results"].items()}
    seeds = yaml.safe_load((project / "params.yaml").read_text())
    bench_seeds, score_seeds = seeds["bench"]["seeds"], seeds["score"]["seeds"]
    fmt = lambda ms: f"{ms['mean']:.3f} ± {ms['std']:.3f} (lower bound {lower_bound(ms['mean'], ms['std'], bench_seeds):.3f})"
    reaches = lambda ms, target, n=bench_seeds: lower_bound(ms["mean"], ms["std"], n) >= target   # noqa: E731
    rows = []
    psnr, base = enc["test"]["psnr"], enc["baseline_mean_image_test"]["psnr"]
    rows.append(("VAE test PSNR ≥ 26 dB", f"{psnr:.2f} dB", f"{base:.2f} dB mean image", psnr >= 26))
    pixels = {k.split("/")[0]: v for k, v in res.items() if k.endswith("/pixels/real")}
    if pixels:
        best = max(pixels, key=lambda k: pixels[k]["mean"])
        rows.append((f"best pixel CNN ≥ 0.90 ({best})", fmt(pixels[best]), f"{majority:.3f} majority",
                     reaches(pixels[best], 0.90)))
        for name, v in pixels.items():
            rows.append((f"pixel CNN {name} ≥ 0.60", fmt(v), f"{majority:.3f} majority", reaches(v, 0.60)))
    latents = {k.split("/")[0]: v for k, v in res.items() if k.endswith("/latents/real")}
    if latents:
        best = max(latents, key=lambda k: latents[k]["mean"])
        rows.append((f"best latent model ≥ 0.80 ({best})", fmt(latents[best]), f"{majority:.3f} majority",
                     reaches(latents[best], 0.80)))
    if "attention" in latents:
        rows.append(("attention net on latents ≥ 0.70", fmt(latents["attention"]), f"{majority:.3f} majority",
                     reaches(latents["attention"], 0.70)))
    real = [v["mean"] for k, v in res.items() if k.endswith("/real")]
    rows.append(("headroom: no default model ≥ 0.98 on real data", f"max {max(real):.3f}", "–", max(real) < 0.98))
    recall = pd.read_csv(project / "reports/bench/recall.csv")
    minority = _load(project, "reports/bench/summary.json")["minority_classes"]
    counts = _load(project, "reports/prepare/metrics.json")["splits"]["train"]
    others = [c for c in recall.columns[3:] if c not in minority]
    if minority and others:
        top = max(others, key=lambda c: counts[c])
        real_rows = recall[recall["regime"] == "real"]
        harder = (real_rows[minority].mean(axis=1) < real_rows[top]).mean()
        rows.append((f"minority classes harder than the majority class {top} (share of models, real)", f"{harder:.2f}",
                     "–", harder > 0.5))
    clean = max(score["clean"].items(), key=lambda kv: kv[1]["spearman"]["mean"])
    rho = clean[1]["spearman"]
    rows.append((f"clean-latent Spearman ≥ 0.60 ({clean[0]})",
                 f"{rho['mean']:.3f} ± {rho['std']:.3f} (lower bound {lower_bound(rho['mean'], rho['std'], score_seeds):.3f})",
                 "0 constant", reaches(rho, 0.60, score_seeds)))
    const = score["baseline_constant"]["train_mean"]["mae"]
    # the proxy runs; <scheduler>_run rows are real sampler runs (benchmarks/generation.py)
    for sched in [k for k in score if k not in ("baseline_constant", "clean", "fresh") and not k.endswith("_run")]:
        for level, m in score[sched]["cnn_t"].items():
            if "heldout" in level or float(level) > 0.3:
                continue
            beats = const - m["mae"]["mean"] > m["mae"]["std"]
            rows.append((f"{sched} cnn_t MAE at t_frac {level} beats constant beyond spread",
                         f"{m['mae']['mean']:.3f} ± {m['mae']['std']:.3f}",
                         f"{const:.3f} constant", beats))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    rows = figures(args.project)
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>16}  {'baseline':>20}  target")
    for name, value, base, ok in rows:
        print(f"{name:<{width}}  {value:>16}  {base:>20}  {'met' if ok else 'NOT met'}")
    print(f"{sum(r[3] for r in rows)} of {len(rows)} targets met")


if __name__ == "__main__":
    main()
