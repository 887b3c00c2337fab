"""One fit of the classifier benchmark per call, described by a typed task and run in a worker.

A :class:`PixelFit` (or :class:`pipeline.classify.latent_bench.LatentFit`) says everything a
worker process needs: the model and its options (its ``bench.<model>`` section), the training data
or how to build it, the seed, and where to run. :func:`run_pixel_fit` (or
:func:`pipeline.classify.latent_bench.run_latent_fit`) trains, predicts the real test split and
returns a :class:`FitResult`. Kept apart from :mod:`pipeline.classify.results` (the summary), so the
stage that only summarises does not import the models; the latent fits live with the latent
benchmark, so the pixel benchmark imports neither the augmenters nor the generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.classify.results import result_row, timed_fit

@dataclass(frozen=True)
class LabelledSplits:
    """Training inputs and labels, the real test inputs and labels, and the class names."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


@dataclass(frozen=True)
class PixelFit:
    """One pixel CNN (a ``PIXEL_NETS`` family) for one seed; ``input`` names the training images
    (``pixels`` or VAE-``reconstructed``), ``data.X`` are they (uint8 NHWC), ``data.X_test`` the
    original test images."""

    model: str
    options: dict
    input: str
    seed: int
    data: LabelledSplits
    threads: int = 1
    device: str = "cpu"


@dataclass
class FitResult:
    row: dict                       # pipeline.classify.results.result_row
    pred: np.ndarray                # test predictions
    maps: np.ndarray | None = None  # attention maps of every test image (LatentFit.maps)
    losses: list[float] | None = None  # a net's training loss per step (None: a scikit-learn model)


def fit_net(net, x, y, o: dict, seed: int, device, n_classes: int) -> list[float]:
    """Train ``net`` with its ``bench.<model>`` options ``o``; returns the loss per step."""
    from pipeline.classify.nets import fit_classifier   # torch: imported only by the workers that need it

    return fit_classifier(net, x, y, steps=o["steps"], batch_size=o["batch_size"], lr=o["lr"], seed=seed, device=device,
                   augment=o["augment"], class_weight=o["class_weight"], n_classes=n_classes)


def run_pixel_fit(task: PixelFit) -> FitResult:
    """Train the CNN on ``task.data.X`` and predict the original test images."""
    import torch

    from pipeline.classify.nets import PIXEL_NETS, images_to_input, predict

    torch.set_num_threads(task.threads)
    d, o, seed, device = task.data, task.options, task.seed, task.device
    torch.manual_seed(seed)
    net = PIXEL_NETS[task.model](len(d.class_names), width=o["width"], extra=o.get("extra", 0))
    x = images_to_input(d.X)
    losses = []

    def fit():
        losses.extend(fit_net(net, x, d.y, o, seed, device, len(d.class_names)))
        return lambda: predict(net, images_to_input(d.X_test), device=device)

    pred, seconds = timed_fit(fit)
    return FitResult(result_row(task.model, task.input, "real", seed, d.y_test, pred, d.class_names, n_train=len(x),
                                seconds=seconds), pred, losses=losses)
