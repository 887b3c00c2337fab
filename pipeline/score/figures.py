"""The fresh-noise study's figures for the score stage's report folder."""

from __future__ import annotations

from pathlib import Path

from pipeline.report.figures import exit_bars, fresh_level_frame, level_panels


def fresh_figures(study: dict, directory: Path, constant_label: str) -> None:
    """``fresh.png`` (Spearman ρ with the judge's label per check level and predictor, the constant and the judge's
    own ρ with people beside) and ``fresh_exit.png`` (each predictor's early exit on the test runs)."""
    judge_rho = ((study.get("judge") or {}).get("test") or {}).get("spearman")
    baselines = {constant_label: 0.0, **({"judge vs people (real test)": judge_rho} if judge_rho is not None else {})}
    level_panels(fresh_level_frame(study, "spearman"), metric="spearman", path=directory / "fresh.png",
                 ylabel="Spearman ρ with the judge's score", baselines=baselines,
                 title="Fresh-noise runs: predicting the finished run's score from step t (test runs, mean ± std over seeds)")
    # one seed leaves the caught share without a lower bound (null): draw no whisker
    study = {n: ({**b, "early_exit": {p: {**e, "caught": {**e["caught"], "lower": e["caught"]["lower"]
                                                            if e["caught"]["lower"] is not None else e["caught"]["mean"]}}
                                      for p, e in b["early_exit"].items()}} if isinstance(b, dict) and "early_exit" in b else b)
             for n, b in study.items()}
    rule = next((b["early_exit_rule"] for b in study.values() if isinstance(b, dict) and "early_exit_rule" in b), {})
    exit_bars(study, directory / "fresh_exit.png",
              title=f"Early exit at t/T ≥ {rule.get('exit_from', 0):g}: threshold chosen on calibration runs with false stops "
                    f"≤ {rule.get('max_false_stop', 0):g} guaranteed at {1 - rule.get('delta', 0):.0%}; green = best on calibration")
