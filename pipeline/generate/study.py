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
from pipeline.generate.interpolate import METHODS, interpolation_paths
from pipeline.generate.sampling import denoise, starting_noise
from pipeline.generate.unet import LatentDiffusion
from pipeline.latents.noising import make_scheduler
from pipeline.metrics.stats import mean_std
from pipeline.metrics.verdicts import decide, seed_estimate


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


def paired_verdicts(wide: pd.DataFrame, pairs: dict[str, tuple[str, str]], higher_is_better: dict[str, bool]) -> dict:
    """One verdict table: for each named ``pairs`` entry (a, b) and each metric of ``higher_is_better``,
    ``wide[metric][a] − wide[metric][b]`` paired over seeds (``wide``: one row per seed, columns
    (metric, point)), with Holm's procedure over the whole table (:func:`~pipeline.metrics.verdicts.decide`).
    Returns ``{name: {metric: verdict entry}}``."""
    estimates = {(name, m): seed_estimate(wide[m][a].to_numpy() - wide[m][b].to_numpy())
                 for name, (a, b) in pairs.items() for m in higher_is_better}
    out: dict = {}
    for (name, m), entry in decide(estimates, {k: higher_is_better[k[1]] for k in estimates}).items():
        out.setdefault(name, {})[m] = entry
    return out


def sampler_verdicts(rows: pd.DataFrame, metric: str = "frechet") -> dict:
    """Two verdict tables over the sampler grid's per-seed ``rows`` (columns sampler, steps, seed and
    ``metric``; lower is better), each one Holm family: ``steps_vs_fewest``, each sampler's step counts
    against its fewest, and ``vs_best``, every cell against the cell of the lowest mean (a cell whose
    verdict there is "no clear difference" is tied with the best)."""
    cells = rows[~rows["sampler"].isin(["real_train", "gaussian"])]
    wide = cells.assign(point=cells["sampler"] + "@" + cells["steps"].astype(int).astype(str)).pivot(index="seed",
                                                                                                     columns="point")
    fewest = {s: f"{s}@{int(g['steps'].min())}" for s, g in cells.groupby("sampler", sort=False)}
    steps_vs = {f"{p}_vs_{int(fewest[p.split('@')[0]].split('@')[1])}": (p, fewest[p.split("@")[0]])
                for p in wide[metric].columns if p != fewest[p.split("@")[0]]}
    best = wide[metric].mean().idxmin()
    vs_best = {p: (p, best) for p in wide[metric].columns if p != best}
    return {"best": best, "steps_vs_fewest": paired_verdicts(wide, steps_vs, {metric: False}),
            "vs_best": paired_verdicts(wide, vs_best, {metric: False})}


def interpolation_study(model: LatentDiffusion, reference: SampleReference, X: np.ndarray, y: np.ndarray, *,
                        judge: Callable[[np.ndarray], np.ndarray], decode_images: Callable[[np.ndarray], np.ndarray],
                        pairs: np.ndarray, points: int, steps: int, strength: float, metric: str, seed: int,
                        decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        methods: tuple[str, ...] = METHODS, keep_pixels: int = 0) -> tuple[list[dict], dict]:
    """Every method of ``methods`` (default :data:`~pipeline.generate.interpolate.METHODS`) on the same ``pairs`` (P, 2)
    same-class training index pairs (:func:`~pipeline.generate.interpolate.same_class_pairs`), ``points``
    interior λ values plus both ends; ``seed`` labels the rows.

    Per method: ``class_kept`` (the judge, which must never have seen the pairs' ends, gives the
    interior points the pair's class), the
    reference's realism / novelty metrics of the interior points, ``end_error`` (how far the λ = 0
    and 1 ends land from the real endpoints, relative to the latent norm: 0 for naive paths),
    smoothness of the decoded path (``jump_ratio``, ``length_ratio`` in pixel space) and seconds per
    interior sample. Returns the rows and the paths (latents) of this seed, with the decoded images of the
    first ``keep_pixels`` paths per method (``pixels``: uint8 (keep, L, H, W, 3)), so that a figure of them
    need not decode them again."""
    idx = np.asarray(pairs)
    lams = np.linspace(0.0, 1.0, points + 2)
    paths = interpolation_paths(model, X[idx[:, 0]], X[idx[:, 1]], lams, methods=methods, steps=steps, strength=strength,
                                metric=metric, decode=decode)
    labels = np.repeat(y[idx[:, 0]], points)
    rows, kept = [], {}
    norm = np.linalg.norm(X.reshape(len(X), -1), axis=1).mean()
    for method in methods:
        lat = paths.latents[method]
        inner = lat[:, 1:-1].reshape(-1, *lat.shape[2:])
        ends = np.linalg.norm((lat[:, [0, -1]] - np.stack([X[idx[:, 0]], X[idx[:, 1]]], 1)).reshape(len(idx), 2, -1), axis=2)
        pixels = decode_images(lat.reshape(-1, *lat.shape[2:]))   # uint8: path_smoothness converts a row at a time
        kept[method] = pixels[:keep_pixels * len(lams)].reshape(-1, len(lams), *pixels.shape[1:])
        rows.append({"method": method, "seed": seed, "class_kept": float((judge(inner) == labels).mean()),
                     **reference.measure(inner), "end_error": float(ends.mean() / norm),
                     **path_smoothness(pixels.reshape(len(idx), len(lams), -1), divide_by=255.0),
                     "seconds_per_sample": paths.seconds[method] / len(inner)})
    return rows, {"pairs": idx, "lams": lams, "latents": paths.latents, "pixels": kept}
