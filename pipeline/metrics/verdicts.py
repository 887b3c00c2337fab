"""Paired verdicts a reviewer can sign: intervals that carry the seed variance, many comparisons controlled.

A comparison is the mean over seeds of a paired difference ``d_s`` (method − reference, both run
with seed ``s``). Its standard error has two parts:

* the **seed** part, ``s_d² / S`` with ``s_d`` the sample std of the per-seed differences, which
  holds the synthetic draws, subsamples and initialisations; with few seeds it is itself
  uncertain, so the interval takes Student's t with ``S − 1`` degrees of freedom, not a bootstrap
  over seeds (3 seeds give only 10 distinct resamples, and such a bootstrap's 95 % interval
  covers well below 95 %: tests/test_verdicts.py measures both);
* the **test-set** part, where every seed is scored on one shared, finite test set: the variance
  of the seed-mean difference over test images resampled with replacement (paired: the same
  images for both sides), 0 where the compared numbers are not test-set averages.

The interval is ``mean ± t_{S−1} · √(s_d²/S + v_test)``, and its p-value the same t statistic's.
Coverage is checked by simulation in the tests (≥ 0.9 of nominal 95 % at 3 and 5 seeds).

A verdict table makes many comparisons at once, so each table is a family controlled with
Holm's step-down procedure at family-wise level ``alpha``. Every comparison's interval is printed at
the level Holm tests it at (``alpha / (m − r)`` for the r-th smallest p-value, up to the step where
the procedure stops; the stopping step's level for every comparison after it), so a verdict is
given exactly where its printed interval excludes 0, and the plain 95 % interval is kept beside it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
METHOD = "holm"


@dataclass(frozen=True)
class Estimate:
    """A paired difference's mean over ``seeds`` seeds, its standard error and the per-seed std."""

    mean: float
    se: float
    seeds: int
    std: float

    @property
    def df(self) -> int:
        return self.seeds - 1

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The two-sided ``level`` t-interval (infinite with one seed: nothing can be said)."""
        if self.df < 1:
            return -np.inf, np.inf
        half = stats.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.mean - half, self.mean + half

    @property
    def p(self) -> float:
        """Two-sided p-value of "no difference" (1 with one seed; 0 for an exact, non-zero difference)."""
        if self.df < 1:
            return 1.0
        if self.se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.mean) / self.se, self.df))


def seed_estimate(differences, test_variance: float = 0.0) -> Estimate:
    """:class:`Estimate` of per-seed paired ``differences``; ``test_variance`` is the test-set part
    (the variance of their mean over resampled test images; 0 when the numbers are not test-set means)."""
    d = np.asarray(differences, dtype=np.float64)
    s = len(d)
    std = float(d.std(ddof=1)) if s > 1 else 0.0
    return Estimate(mean=float(d.mean()), se=float(np.sqrt(std ** 2 / s + test_variance)), seeds=s, std=std)


def holm_levels(p: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down over p-values ``p``: the level each comparison is tested at (see the module
    docstring) and the Holm-adjusted p-values (reject where ``p_holm ≤ alpha``)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    steps = alpha / (m - np.arange(m))                   # the r-th smallest p is tested at alpha / (m − r)
    passed = p[order] <= steps
    stop = int(np.argmin(passed)) if not passed.all() else m
    levels = np.empty(m)
    levels[order] = np.where(np.arange(m) < stop, steps, steps[min(stop, m - 1)])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return levels, adjusted


def decide(estimates: Mapping[Hashable, Estimate], higher_is_better: Mapping[Hashable, bool] | bool = True, *,
           alpha: float = ALPHA, words: tuple[str, str, str] = ("better", "worse", "no clear difference")) -> dict:
    """One verdict table: every comparison of ``estimates`` (one family) with its Holm-level interval.

    Returns, per key: ``difference`` (mean), ``std`` (per-seed), ``seeds``, ``ci95`` (the plain 95 %
    interval), ``ci`` (the interval at ``level``, Holm's level for it), ``level``, ``p``, ``p_holm``,
    ``comparisons`` (the family's size), ``higher_is_better`` and ``verdict``: ``words[0]`` / ``words[1]`` where ``ci``
    lies on the better / worse side of 0, else ``words[2]``."""
    keys = list(estimates)
    if not keys:
        return {}
    levels, adjusted = holm_levels(np.array([estimates[k].p for k in keys]), alpha)
    out = {}
    for k, level, p_holm in zip(keys, levels, adjusted):
        e = estimates[k]
        lo, hi = e.interval(1 - level)
        up = higher_is_better if isinstance(higher_is_better, bool) else higher_is_better[k]
        better, worse = (lo > 0, hi < 0) if up else (hi < 0, lo > 0)
        out[k] = {"difference": e.mean, "std": e.std, "seeds": e.seeds, "ci95": list(e.interval(0.95)),
                  "ci": [lo, hi], "level": float(1 - level), "p": e.p, "p_holm": float(p_holm),
                  "comparisons": len(keys), "higher_is_better": up,
                  "verdict": words[0] if better else words[1] if worse else words[2]}
    return out


def agrees(entry: Mapping, words: tuple[str, str, str] = ("better", "worse", "no clear difference")) -> bool:
    """Whether a printed verdict agrees with its printed interval ``ci`` and direction (``higher_is_better``,
    default true): the tests check every verdict table with it."""
    lo, hi = (np.inf if v is None and i == 1 else -np.inf if v is None else v for i, v in enumerate(entry["ci"]))
    up = entry.get("higher_is_better", True)
    better, worse = (lo > 0, hi < 0) if up else (hi < 0, lo > 0)
    return entry["verdict"] == (words[0] if better else words[1] if worse else words[2])


def family(comparisons: int, interval: str) -> dict:
    """How a verdict table was made, for its metrics file: correction, family-wise level, family size."""
    return {"correction": METHOD, "alpha": ALPHA, "comparisons": int(comparisons), "interval": interval}


def lower_bound(mean: float, std: float, seeds: int, level: float = 0.95) -> float:
    """One-sided ``level`` lower confidence bound of a mean over ``seeds`` seeds whose population std
    (``ddof=0``, as :func:`~pipeline.metrics.stats.mean_std` reports) is ``std``: a target counts as
    met only where this clears it, never on the point estimate."""
    if seeds < 2:
        return -np.inf
    sample_std = std * np.sqrt(seeds / (seeds - 1))
    return float(mean - stats.t.ppf(level, seeds - 1) * sample_std / np.sqrt(seeds))
