"""Early exit on fresh-noise generations: the artifact study's target, from a finished run.

Target: on fresh-noise DDIM runs, with checks at t/T ≥ ``score.exit_from`` (0.5), the best predictor
(chosen on the calibration runs) stops ≥ 50 % of the runs the judge rates severe with ≤ 10 % false
stops on the test runs. It counts as met only where the caught share's one-sided 95 % lower bound
clears 50 % and the false-stop rate's upper bound stays within 10 % (t over seeds plus the test runs'
binomial variance, as the score stage writes them). Prints every scheduler and predictor beside the
constant predictor (which catches nothing selectively), the judge's own quality, and the run counts.

Reads a finished run's ``reports/score/metrics.json`` (``--project``, default: this checkout; `python
benchmarks/pipeline_time.py --keep DIR` leaves a fresh one in DIR). Nothing is recomputed.
Run: `python benchmarks/early_exit.py [--project DIR]`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.report.summaries import EXIT_TARGET, exit_words, fresh_headline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    study = json.loads((args.project / "reports/score/metrics.json").read_text()).get("fresh")
    if not study:
        raise SystemExit(f"{args.project}/reports/score/metrics.json has no fresh-noise study: run `dvc repro score`")
    judge = study["judge"]["test"]
    print(f"judge (clean-latent CNN, seed {study['judge']['seed']}) on the real labelled test latents: "
          f"Spearman ρ {judge['spearman']:.3f}, MAE {judge['mae']:.3f}, AUROC severe {judge['auroc_severe']:.3f}")
    for name, block in study.items():
        if name == "judge":
            continue
        rule = block["early_exit_rule"]
        print(f"\n{name}: runs {block['runs']}, {block['label']['severe_share_test']:.1%} of test runs severe; checks at "
              f"t/T {rule['checks_t_frac']}; threshold by Learn then Test (α {rule['max_false_stop']}, δ {rule['delta']})")
        print(f"  {'predictor':<22} {'caught (lower bound)':>22} {'false stops (upper)':>22} {'saved':>7} {'ρ at t/T':>10}")
        first = min(block["levels"], key=lambda f: abs(float(f) - rule["exit_from"]))
        for p, e in block["early_exit"].items():
            star = "*" if p == block["best"]["predictor"] else " "
            rho = block["predictors"][p][first]["spearman"]["mean"]
            lo, up = (float("nan") if v is None else v for v in (e["caught"]["lower"], e["false_stop"]["upper"]))
            print(f" {star}{p:<22} {e['caught']['mean']:>11.3f} ({lo:.3f}) "
                  f"{e['false_stop']['mean']:>12.3f} ({up:.3f}) {e['saved']['mean']:>7.3f} "
                  f"{rho:>6.3f} @{first}")
        print(f"  {'constant':<22} {0.0:>11.3f}{'':>10} {0.0:>12.3f}{'':>10} {0.0:>7.3f} {0.0:>6.3f}")
        if "judge_on_x0" in block:
            print("  diagnostic, not a predictor — the judge itself on x̂₀, Spearman ρ per t/T: "
                  + ", ".join(f"{f} {v['spearman']:.3f}" for f, v in block["judge_on_x0"].items()))
    name, block = fresh_headline(study)
    w = exit_words(block)
    print(f"\ntarget ({name}, best predictor {w['predictor']} chosen on calibration): ≥ {EXIT_TARGET:.0%} of severe runs "
          f"caught with ≤ {w['rule']['max_false_stop']:.0%} false stops at t/T ≥ {w['rule']['exit_from']:g}: "
          f"{'MET' if w['met'] else 'NOT MET'} — {w['verdict']}")


if __name__ == "__main__":
    main()
