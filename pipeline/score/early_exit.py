"""Early exit from a denoising run: stop a generation once the scorers are confident it is bad.

At each checked step ``s`` of the run a scorer gives every image evidence that it will end up
"severe" (a probability, or as in the score stage the predicted artifact score 0–5). The
evidence accumulates: the rule stops an image at the first step where the running mean of
its evidence so far reaches ``threshold`` (after ``min_checks`` checks, so
one noisy early reading cannot stop a run). Sweeping the threshold traces the trade-off
between severe images caught, clean images wrongly stopped and the share of the run saved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def stop_steps(prob: np.ndarray, threshold: float, min_checks: int = 1) -> np.ndarray:
    """Index of the check at which each image stops (``-1`` = runs to the end); ``prob`` (evidence) is (N, S)."""
    prob = np.asarray(prob, dtype=float)
    running = np.cumsum(prob, axis=1) / np.arange(1, prob.shape[1] + 1)
    fire = running >= threshold
    fire[:, : max(min_checks, 1) - 1] = False
    return np.where(fire.any(axis=1), fire.argmax(axis=1), -1)


def tradeoff_curve(prob: np.ndarray, run_fracs, severe: np.ndarray, thresholds, min_checks: int = 1) -> pd.DataFrame:
    """One row per threshold: ``caught`` (severe stopped), ``false_stop`` (non-severe stopped),
    ``saved`` (mean fraction of the run not computed, over all images).

    ``run_fracs[s]`` is the fraction of the run completed at check ``s`` (0..1, increasing).
    """
    run_fracs = np.asarray(run_fracs, dtype=float)
    severe = np.asarray(severe, dtype=bool)
    if prob.shape[1] != len(run_fracs):
        raise ValueError(f"{prob.shape[1]} checks in prob but {len(run_fracs)} run fractions")
    if severe.all() or not severe.any():
        raise ValueError("the trade-off needs both severe and non-severe images")
    rows = []
    for th in thresholds:
        at = stop_steps(prob, th, min_checks)
        stopped = at >= 0
        saved = np.where(stopped, 1.0 - run_fracs[np.maximum(at, 0)], 0.0)
        rows.append({"threshold": float(th), "caught": float(stopped[severe].mean()),
                     "false_stop": float(stopped[~severe].mean()), "saved": float(saved.mean())})
    return pd.DataFrame(rows)


def best_operating_point(curve: pd.DataFrame, max_false_stop: float = 0.05) -> dict:
    """The threshold catching the most severe images with at most ``max_false_stop`` clean ones
    stopped (ties: more run saved); ``None`` values when no threshold qualifies."""
    ok = curve[curve["false_stop"] <= max_false_stop]
    if ok.empty:
        return {"threshold": None, "caught": None, "false_stop": None, "saved": None, "max_false_stop": max_false_stop}
    best = ok.sort_values(["caught", "saved"], ascending=False).iloc[0]
    return {**{k: float(best[k]) for k in ("threshold", "caught", "false_stop", "saved")}, "max_false_stop": max_false_stop}


def calibrate_and_evaluate(evidence: np.ndarray, run_fracs, severe: np.ndarray, thresholds, *, max_false_stop: float,
                           min_checks: int = 1, seed: int = 0) -> dict:
    """Choose the operating point on one random half of the images and measure it on the other.

    Picking the threshold on the same images it is scored on would flatter the rule; this split
    keeps the reported numbers out of sample. Returns the chosen ``threshold``, the calibration
    ``curve`` and the held-out ``caught`` / ``false_stop`` / ``saved`` at that threshold (None
    when no threshold meets ``max_false_stop`` on the calibration half, or when either half lacks
    severe or non-severe images: then the curve is empty).
    """
    severe = np.asarray(severe, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(severe))
    cal, ev = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    if any(severe[half].all() or not severe[half].any() for half in (cal, ev)):   # too few images: no operating point
        empty = pd.DataFrame(columns=["threshold", "caught", "false_stop", "saved"], dtype=float)
        return {"threshold": None, "caught": None, "false_stop": None, "saved": None, "curve": empty}
    curve = tradeoff_curve(evidence[cal], run_fracs, severe[cal], thresholds, min_checks)
    best = best_operating_point(curve, max_false_stop)
    if best["threshold"] is None:
        return {"threshold": None, "caught": None, "false_stop": None, "saved": None, "curve": curve}
    held = tradeoff_curve(evidence[ev], run_fracs, severe[ev], [best["threshold"]], min_checks).iloc[0]
    return {"threshold": best["threshold"], "caught": float(held["caught"]), "false_stop": float(held["false_stop"]),
            "saved": float(held["saved"]), "curve": curve}


# --- Early exit with a false-stop guarantee (the fresh-noise study) -------------------------------------------------
#
# The rule: check the run at a few steps from noise towards the image and stop it at the first check whose predicted
# score reaches the threshold λ (a run is stopped iff its largest score over the checks reaches λ; it stops at the
# first such check). Its false-stop rate FS(λ) — the share of runs the judge does *not* rate severe that are
# stopped — falls as λ rises. λ is chosen on calibration runs by Learn then Test (Angelopoulos, Bates, Candès,
# Jordan & Lei 2021): for λ from the strictest down, test H₀: FS(λ) > α with the exact binomial p-value
# P(Bin(n, α) ≤ k_λ) (k_λ of the n non-severe calibration runs stopped) and keep lowering λ while p ≤ δ (fixed-
# sequence testing needs no multiplicity correction). The chosen λ̂ then has FS(λ̂) ≤ α with probability ≥ 1 − δ
# over the calibration draw; the test runs, disjoint from the calibration runs, measure it again.


def first_passage(evidence: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the first check whose evidence reaches ``threshold`` (-1: never); ``evidence`` is (N, checks)."""
    fire = np.asarray(evidence, dtype=float) >= threshold
    return np.where(fire.any(axis=1), fire.argmax(axis=1), -1)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list[float]:
    """The exact two-sided ``level`` interval of a binomial proportion ``k / n`` ([0, 1] when n = 0)."""
    from scipy.stats import beta

    if n == 0:
        return [0.0, 1.0]
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return [lo, hi]


def risk_controlled_threshold(evidence: np.ndarray, severe: np.ndarray, *, alpha: float, delta: float) -> dict:
    """Learn then Test on calibration runs (see above): the loosest threshold whose false-stop rate is
    shown ≤ ``alpha`` at level ``delta``, tested from the strictest down; ``threshold`` None when even the
    strictest candidate fails (too few calibration runs for the guarantee). Candidates are the runs'
    largest scores over the checks (between two of them the calibration outcome does not change)."""
    from scipy.stats import binom

    severe = np.asarray(severe, dtype=bool)
    peak = np.asarray(evidence, dtype=float).max(axis=1)
    candidates = np.unique(peak)[::-1]                        # strictest first
    negatives = np.sort(peak[~severe])
    n = len(negatives)
    if n == 0:
        raise ValueError("risk control needs calibration runs the judge does not rate severe")
    stopped = n - np.searchsorted(negatives, candidates, side="left")   # non-severe runs with peak ≥ λ
    p = binom.cdf(stopped, n, alpha)
    passed = p <= delta
    last = len(candidates) if passed.all() else int(np.argmin(passed))   # fixed sequence: stop at the first failure
    if last == 0:
        return {"threshold": None, "calibration_runs": int(len(severe)), "calibration_negatives": n}
    lam = float(candidates[last - 1])
    stop = peak >= lam
    return {"threshold": lam, "p_value": float(p[last - 1]), "calibration_runs": int(len(severe)),
            "calibration_negatives": n, "calibration_caught": float(stop[severe].mean()) if severe.any() else None,
            "calibration_false_stop": float(stop[~severe].mean())}


def exit_outcome(evidence: np.ndarray, run_fracs, severe: np.ndarray, threshold: float | None) -> dict:
    """What the rule at ``threshold`` does to runs: severe runs ``caught``, non-severe runs stopped
    (``false_stop``, with its exact 95 % interval), and ``saved``, the share of all the runs' sampling
    steps not computed (a run stopped at a check saves the rest of its steps). None threshold: nothing stops."""
    severe = np.asarray(severe, dtype=bool)
    run_fracs = np.asarray(run_fracs, dtype=float)
    at = first_passage(evidence, np.inf if threshold is None else threshold)
    stopped = at >= 0
    k, n = int(stopped[~severe].sum()), int((~severe).sum())
    return {"caught": float(stopped[severe].mean()) if severe.any() else float("nan"),
            "false_stop": k / n if n else float("nan"), "false_stop_ci95": clopper_pearson(k, n),
            "saved": float(np.where(stopped, 1.0 - run_fracs[np.maximum(at, 0)], 0.0).mean()),
            "severe": int(severe.sum()), "non_severe": n}
