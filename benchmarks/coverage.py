"""Coverage of the verdict intervals, by simulation: how often a nominal 95 % interval holds the true gain.

A benchmark with a known true gain in balanced accuracy is simulated many times (a 3-class test set
drawn afresh each time, per-image difficulty shared by both methods and every seed, per-seed shifts
of each method's skill); each time the interval of :func:`pipeline.metrics.bootstrap.paired_gain`
(t over seeds plus the test-set bootstrap variance) and the interval this project used before (the
percentiles of a bootstrap over seeds and test images) are computed. Prints, per seed count and
scenario, the share of intervals that hold the truth. ``tests/test_verdicts.py`` asserts ≥ 0.9 for
the current interval at 3 and 5 seeds.

    python benchmarks/coverage.py [--sims 400]
"""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.metrics.bootstrap import paired_gain


def simulated_benchmark(rng: np.random.Generator, seeds: int, n_test: int = 200, seed_sd: float = 0.03,
                        gain: float = 0.03):
    """(labels, predictions (seeds, n), reference predictions, true gain) of one simulated benchmark:
    image i is right when its difficulty ``u_i`` is below the method's skill for that seed; over
    populations of images and seeds the balanced-accuracy gain is ``gain``."""
    y = rng.integers(0, 3, n_test)
    u = rng.random(n_test)
    skill_ref = 0.6 + seed_sd * rng.standard_normal(seeds)
    skill = skill_ref + gain + seed_sd * rng.standard_normal(seeds)
    wrong = (y + 1) % 3
    return y, np.where(u[None] < skill[:, None], y, wrong), np.where(u[None] < skill_ref[:, None], y, wrong), gain


def seed_bootstrap_interval(y, pred, ref, rng, draws: int = 300) -> tuple[float, float]:
    """The earlier interval: 2.5 / 97.5 percentiles of a bootstrap over seeds and test images."""
    n_seeds, n = pred.shape
    onehot = (y[:, None] == np.unique(y)[None]).astype(float)
    w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(draws)]).astype(float)

    def balanced(correct):
        return np.nanmean((w @ (onehot * correct[:, None])) / (w @ onehot), axis=1)

    gains = np.stack([balanced(pred[s] == y) - balanced(ref[s] == y) for s in range(n_seeds)], axis=1)
    boot = np.take_along_axis(gains, rng.integers(0, n_seeds, (draws, n_seeds)), axis=1).mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(lo), float(hi)


def coverage(seeds: int, sims: int, *, n_test: int = 200, seed_sd: float = 0.03, seed: int = 0) -> tuple[float, float]:
    """(current, earlier) coverage of nominal 95 % intervals over ``sims`` simulated benchmarks."""
    rng = np.random.default_rng(seed)
    hits = old = 0
    for _ in range(sims):
        y, pred, ref, gain = simulated_benchmark(rng, seeds, n_test=n_test, seed_sd=seed_sd)
        lo, hi = paired_gain(y, pred, ref, draws=200, seed=int(rng.integers(1 << 30))).interval(0.95)
        hits += lo <= gain <= hi
        a, b = seed_bootstrap_interval(y, pred, ref, rng)
        old += a <= gain <= b
    return hits / sims, old / sims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=400)
    args = parser.parse_args()
    print("| seeds | seed std | test images | t over seeds + test bootstrap | bootstrap over seeds and images |")
    print("|---:|---:|---:|---:|---:|")
    for seeds in (3, 5):
        for sd, n in ((0.03, 200), (0.05, 600), (0.01, 200)):
            new, old = coverage(seeds, args.sims, n_test=n, seed_sd=sd, seed=seeds * 7 + n)
            print(f"| {seeds} | {sd} | {n} | {new:.3f} | {old:.3f} |")


if __name__ == "__main__":
    main()
