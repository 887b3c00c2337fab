"""Metric-guided sampling: classifier, discriminator and out-of-distribution guidance, alone and
combined, and how each trades class, realism, diversity and distance from the data.

:class:`GuidingModels` holds the three guiding models (all fitted on training latents only):
a noise-aware classifier, a noise-aware real-vs-generated discriminator and a Mahalanobis OOD
model. :func:`make_guide` turns one guidance kind at one scale into an ε hook for
:func:`~pipeline.generate.sampling.denoise`. :func:`guidance_study` samples every kind at every
scale of its sweep (plus unguided sampling and the combined operating point) from the same seeded
noise, each sample asking for a class (classes in turn), and grades each set with models that
never guide: an independent classifier (class accuracy of the requested class), the
:class:`~pipeline.generate.evaluate.SampleReference` metrics (realism, diversity, novelty) and a
nearest-neighbour distance to the training latents (``far_fraction``: the share of samples farther
from every training latent than 95 % of real test latents are).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from pipeline.generate.evaluate import SampleReference
from pipeline.generate.guidance import ClassifierGuide, CombinedGuide, DiscriminatorGuide, OODGuide
from pipeline.generate.ood import MahalanobisOOD
from pipeline.generate.sampling import denoise, starting_noise
from pipeline.generate.unet import LatentDiffusion

GUIDES = ("classifier", "discriminator", "ood")
KINDS = ("unguided", *GUIDES, "combined")


@dataclass
class GuidingModels:
    """The three guiding models, and how the classifier guides (:class:`ClassifierGuide`'s
    ``symmetry`` and ``normalise``)."""

    classifier: torch.nn.Module
    discriminator: torch.nn.Module
    ood: MahalanobisOOD
    symmetry: str = "none"
    normalise: bool = False


def requested_classes(n: int, n_classes: int) -> np.ndarray:
    """The class each of ``n`` samples asks for: classes in turn (as many of each as ``n`` allows)."""
    return np.arange(n) % n_classes


def make_guide(kind: str, scales: Mapping[str, float], models: GuidingModels, labels, shift: torch.Tensor | None):
    """The ε hook of ``kind`` (``unguided`` → None): one guide at ``scales[kind]``, or for ``combined``
    the sum of every guide at its own scale in ``scales``."""
    if kind not in KINDS:
        raise ValueError(f"unknown guidance kind {kind!r}; known: {', '.join(KINDS)}")
    build = {"classifier": lambda s: ClassifierGuide(models.classifier, torch.as_tensor(labels), s, shift,
                                                     symmetry=models.symmetry, normalise=models.normalise),
             "discriminator": lambda s: DiscriminatorGuide(models.discriminator, s, shift),
             "ood": lambda s: OODGuide(models.ood, s, shift)}
    if kind == "unguided":
        return None
    if kind == "combined":
        return CombinedGuide(build[g](float(scales[g])) for g in GUIDES if scales.get(g, 0) > 0)
    return build[kind](float(scales[kind]))


def sample(model: LatentDiffusion, guide, x_T: torch.Tensor, *, sampler: str, steps: int, seed: int) -> np.ndarray:
    """Latents (in the data's space) from ``x_T`` with the ε hook ``guide`` (None: unguided)."""
    return model.to_latents(denoise(model.unet, sampler, x_T, steps, seed=seed, eps_guide=guide).final).numpy()


def sweep_points(sweep: Mapping[str, Sequence[float]], operating: Mapping[str, float] | None) -> list[tuple[str, float]]:
    """(kind, scale) of the study: unguided, each guide at every scale of its sweep and at its
    operating scale (sorted, once each), and ``combined`` (scale 1: the operating point itself);
    without ``operating`` (a validation sweep, which chooses it) no operating scales and no ``combined``."""
    points = [("unguided", 0.0)]
    for g in GUIDES:
        extra = {float(operating[g])} if operating is not None else set()
        points += [(g, float(s)) for s in sorted({*map(float, sweep.get(g, ())), *extra}) if s > 0]
    return points + ([("combined", 1.0)] if operating is not None else [])


# What each guidance is for, and so how its operating scale is chosen on the validation sweep: the
# scale that does best on the guidance's own aim (metric, higher is better), averaged over seeds, among
# the scales whose realism stays within a budget (see select_scales).
AIMS = {"classifier": ("class_accuracy", True), "discriminator": ("frechet", False), "ood": ("far_fraction", False)}


def select_scales(rows: pd.DataFrame, max_frechet_ratio: float) -> dict[str, float]:
    """Each guide's operating scale from validation-sweep ``rows`` (:func:`guidance_study` without an
    operating point): among the scales of its sweep whose seed-mean Fréchet distance is at most
    ``max_frechet_ratio`` × unguided sampling's (the realism budget: without it the class aim takes the
    scale that leaves the data furthest), the one with the best seed-mean :data:`AIMS` metric (ties: the
    smaller scale); if none is within the budget, the most realistic. Chosen on validation latents,
    seeds and judges only, never on what is reported."""
    means = rows.groupby(["kind", "scale"], sort=True)[sorted({"frechet", *(m for m, _ in AIMS.values())})].mean()
    budget = max_frechet_ratio * float(means.loc["unguided", "frechet"].iloc[0])
    out = {}
    for g, (metric, higher) in AIMS.items():
        if g not in means.index.get_level_values("kind"):
            raise ValueError(f"the validation sweep has no {g} scale to choose from")
        cells = means.loc[g]
        within = cells[cells["frechet"] <= budget]
        if within.empty:
            out[g] = float(cells["frechet"].idxmin())
        else:
            out[g] = float(within[metric].idxmax() if higher else within[metric].idxmin())
    return out


def guidance_study(model: LatentDiffusion, reference: SampleReference, models: GuidingModels,
                   judge: Callable[[np.ndarray], np.ndarray], *, n_classes: int, sweep: Mapping[str, Sequence[float]],
                   operating: Mapping[str, float] | None, sampler: str, steps: int, seed: int,
                   progress: Callable[[int], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per (kind, scale) of :func:`sweep_points` for ``seed``: ``class_accuracy`` (the judge
    agrees with the requested class), the reference metrics, ``far_fraction`` and
    ``seconds_per_sample``; and the samples at the operating point of each kind (for galleries; with
    ``operating`` None, a validation sweep, only the unguided ones)."""
    want = requested_classes(reference.n, n_classes)
    x_T = starting_noise(reference.n, _shape(model), seed)
    rows, finals = [], {}
    for kind, scale in sweep_points(sweep, operating):
        scales = dict(operating) if kind == "combined" else {kind: scale}
        start = time.perf_counter()
        z = sample(model, make_guide(kind, scales, models, want, model.shift), x_T, sampler=sampler, steps=steps,
                   seed=seed)
        seconds = time.perf_counter() - start
        rows.append({"kind": kind, "scale": scale, "seed": seed,
                     "class_accuracy": float((judge(z) == want).mean()) if np.isfinite(z).all() else float("nan"),
                     **reference.measure(z), "far_fraction": reference.far_fraction(z),
                     "seconds_per_sample": seconds / len(z)})
        if kind in ("unguided", "combined") or (operating is not None and scale == float(operating[kind])):
            finals[kind] = z
        if progress is not None:
            progress(1)
    return pd.DataFrame(rows), {"samples": finals, "requested": want}


def _shape(model: LatentDiffusion) -> tuple[int, int, int]:
    cfg = model.unet.config
    return cfg.in_channels, cfg.sample_size, cfg.sample_size
