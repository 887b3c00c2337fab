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
    when no threshold meets ``max_false_stop`` on the calibration half).
    """
    severe = np.asarray(severe, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(severe))
    cal, ev = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    curve = tradeoff_curve(evidence[cal], run_fracs, severe[cal], thresholds, min_checks)
    best = best_operating_point(curve, max_false_stop)
    if best["threshold"] is None:
        return {"threshold": None, "caught": None, "false_stop": None, "saved": None, "curve": curve}
    held = tradeoff_curve(evidence[ev], run_fracs, severe[ev], [best["threshold"]], min_checks).iloc[0]
    return {"threshold": best["threshold"], "caught": float(held["caught"]), "false_stop": float(held["false_stop"]),
            "saved": float(held["saved"]), "curve": curve}
