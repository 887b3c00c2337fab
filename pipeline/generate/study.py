"""The generation studies the ``diffusion`` and ``interpolate`` stages run, as plain functions.

:func:`sampler_grid`: every sampler × step count × seed from the same seeded starting noise,
measured against real test latents by a :class:`~pipeline.generate.evaluate.SampleReference`.
:func:`trajectories`: what each sampler holds and predicts along one run (for the strips and the
PCA paths). :func:`interpolation_study`: every interpolation method on the same same-class pairs,
judged by an independent classifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from pipeline.generate.evaluate import METRICS, SampleReference, path_smoothness
from pipeline.generate.interpolate import METHODS, interpolation_paths, same_class_pairs
from pipeline.generate.sampling import denoise, starting_noise
from pipeline.generate.unet import LatentDiffusion
from pipeline.latents.noising import make_scheduler
from pipeline.metrics.stats import mean_std


def sampler_grid(model: LatentDiffusion, reference: SampleReference, *, samplers: list[str], steps: list[int],
                 seeds: list[int], shape, progress=None) -> tuple[pd.DataFrame, dict]:
    """One row per sampler × steps × seed (the :data:`~pipeline.generate.evaluate.METRICS` and
    ``seconds_per_sample``), the baselines per seed as rows with ``sampler`` = ``real_train`` /
    ``gaussian``, and the seed-0 finals of each (sampler, steps) for galleries."""
    rows, finals = [], {}
    for seed in seeds:
        x_T = starting_noise(reference.n, shape, seed)
        for name, metrics in reference.baselines(seed).items():
            rows.append({"sampler": name, "steps": 0, "seed": seed, **metrics, "seconds_per_sample": 0.0})
        for sampler in samplers:
            for n_steps in steps:
                start = time.perf_counter()
                final = model.to_latents(denoise(model.unet, sampler, x_T, n_steps, seed=seed).final).numpy()
                seconds = time.perf_counter() - start
                rows.append({"sampler": sampler, "steps": n_steps, "seed": seed, **reference.measure(final),
                             "seconds_per_sample": seconds / reference.n})
                if seed == seeds[0]:
                    finals[(sampler, n_steps)] = final
                if progress is not None:
                    progress(1)
    return pd.DataFrame(rows), finals


def summarise(rows: pd.DataFrame, keys: list[str], metrics=METRICS) -> pd.DataFrame:
    """Mean and std over seeds of each metric, one row per ``keys`` combination (first-seen order)."""
    out = []
    for key, group in rows.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        for m in metrics:
            stats = mean_std(group[m].to_numpy(float))
            row[f"{m}_mean"], row[f"{m}_std"] = stats["mean"], stats["std"]
        out.append(row)
    return pd.DataFrame(out)


def trajectories(model: LatentDiffusion, samplers: list[str], x_T: torch.Tensor, n_steps: int, points: int,
                 seed: int) -> dict[str, dict]:
    """Each sampler's run from ``x_T`` with ``points`` evenly spaced recorded steps (first and last
    included): the U-Net's input and its x̂₀ prediction there, and the recorded timesteps."""
    record = sorted({int(round(i)) for i in np.linspace(0, n_steps, points)})
    out = {}
    for sampler in samplers:
        run = denoise(model.unet, sampler, x_T, n_steps, seed=seed, record=record)
        ab = make_scheduler(sampler, n_steps).alphas_cumprod
        root = torch.tensor([float(ab[int(t)]) ** 0.5 if i < n_steps else 1.0 for i, t in zip(record, run.timesteps)])
        shift = model.to_latents(torch.zeros(1, *x_T.shape[1:]))       # the input holds √ᾱ_t × the shift
        out[sampler] = {"steps": record, "timesteps": run.timesteps,
                        "x_t": (run.model_input + root.view(-1, 1, 1, 1, 1) * shift).numpy(),
                        "x0": model.to_latents(run.x0).numpy()}
    return out


def paired_verdict(a: np.ndarray, b: np.ndarray, higher_is_better: bool) -> dict:
    """``a`` − ``b`` paired over seeds: mean, std and a 95 % t-interval, and a plain verdict."""
    from scipy import stats

    d = np.asarray(a, float) - np.asarray(b, float)
    mean = float(d.mean())
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    lo, hi = mean - half, mean + half
    better = lo > 0 if higher_is_better else hi < 0
    worse = hi < 0 if higher_is_better else lo > 0
    return {"difference": mean, "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0, "ci95": [lo, hi],
            "verdict": "better" if better else "worse" if worse else "no clear difference"}


def interpolation_study(model: LatentDiffusion, reference: SampleReference, X: np.ndarray, y: np.ndarray, *,
                        judge: Callable[[np.ndarray], np.ndarray], decode_images: Callable[[np.ndarray], np.ndarray],
                        pairs: int, points: int, steps: int, strength: float, metric: str, seed: int,
                        decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[list[dict], dict]:
    """Every method of :data:`~pipeline.generate.interpolate.METHODS` on the same ``pairs`` same-class
    training pairs (drawn with ``seed``), ``points`` interior λ values plus both ends.

    Per method: ``class_kept`` (the judge gives the interior points the pair's class), the
    reference's realism / novelty metrics of the interior points, ``end_error`` (how far the λ = 0
    and 1 ends land from the real endpoints, relative to the latent norm: 0 for naive paths),
    smoothness of the decoded path (``jump_ratio``, ``length_ratio`` in pixel space) and seconds per
    interior sample. Returns the rows and the paths (latents) of this seed."""
    rng = np.random.default_rng(seed)
    idx = same_class_pairs(y, pairs, rng)
    lams = np.linspace(0.0, 1.0, points + 2)
    paths = interpolation_paths(model, X[idx[:, 0]], X[idx[:, 1]], lams, steps=steps, strength=strength, metric=metric,
                                decode=decode)
    labels = np.repeat(y[idx[:, 0]], points)
    rows = []
    norm = np.linalg.norm(X.reshape(len(X), -1), axis=1).mean()
    for method in METHODS:
        lat = paths.latents[method]
        inner = lat[:, 1:-1].reshape(-1, *lat.shape[2:])
        ends = np.linalg.norm((lat[:, [0, -1]] - np.stack([X[idx[:, 0]], X[idx[:, 1]]], 1)).reshape(len(idx), 2, -1), axis=2)
        pixels = decode_images(lat.reshape(-1, *lat.shape[2:])).astype(np.float64) / 255.0
        rows.append({"method": method, "seed": seed, "class_kept": float((judge(inner) == labels).mean()),
                     **reference.measure(inner), "end_error": float(ends.mean() / norm),
                     **path_smoothness(pixels.reshape(len(idx), len(lams), -1)),
                     "seconds_per_sample": paths.seconds[method] / len(inner)})
    return rows, {"pairs": idx, "lams": lams, "latents": paths.latents}
