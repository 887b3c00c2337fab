"""One fit of the classifier benchmark per call, described by a typed task and run in a worker.

A :class:`LatentFit` or :class:`PixelFit` says everything a worker process needs: the model and
its options (its ``bench.<model>`` section), the training data or how to build it (the regime),
the seed, and where to run. :func:`run_latent_fit` / :func:`run_pixel_fit` train, predict the
real test split and return a :class:`FitResult`. Kept apart from :mod:`pipeline.classify.results`
(the summary), so the stage that only summarises does not import the models and augmenters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.classify.regimes import Regime
from pipeline.classify.results import result_row, timed_fit

TORCH_LATENT_MODELS = ("latent_cnn", "attention")


@dataclass(frozen=True)
class LabelledSplits:
    """Training inputs and labels, the real test inputs and labels, and the class names."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


@dataclass(frozen=True)
class LatentFit:
    """One latent model in one regime for one seed. ``data.X`` are train latents (N, C, H, W);
    ``cap`` / ``grow`` shape the low-data regimes and ``augment`` maps each method to its options;
    ``maps``: also return the attention net's maps of every test image."""

    model: str
    options: dict
    regime: Regime
    seed: int
    data: LabelledSplits
    cap: int
    grow: int
    augment: dict = field(default_factory=dict)
    threads: int = 1
    device: str = "cpu"
    maps: bool = False


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


def _fit_net(net, x, y, o: dict, seed: int, device, n_classes: int):
    from pipeline.classify.nets import fit_classifier   # torch: imported only by the workers that need it

    fit_classifier(net, x, y, steps=o["steps"], batch_size=o["batch_size"], lr=o["lr"], seed=seed, device=device,
                   augment=o["augment"], class_weight=o["class_weight"], n_classes=n_classes)


def run_latent_fit(task: LatentFit) -> FitResult:
    """Build the regime's training set (augmenters fitted on it only), train, predict the test latents."""
    import torch

    from pipeline.classify.estimators import make_classifier
    from pipeline.classify.nets import LatentAttention, VGGNet, predict
    from pipeline.classify.regimes import training_set

    torch.set_num_threads(task.threads)
    d, o, seed, device = task.data, task.options, task.seed, task.device
    shape, n_classes = d.X.shape[1:], len(d.class_names)
    Xf, yf = training_set(task.regime, d.X.reshape(len(d.X), -1), d.y, seed=seed, cap=task.cap, grow=task.grow,
                          options=task.augment, n_channels=shape[0])
    if task.model in TORCH_LATENT_MODELS:
        torch.manual_seed(seed)
        net = (LatentAttention(shape, n_classes, patch=o["patch"], dim=o["dim"], depth=o["depth"], heads=o["heads"],
                               stem=o["stem"]) if task.model == "attention" else
               VGGNet(n_classes, width=o["width"], in_channels=shape[0]))

        def fit():
            _fit_net(net, Xf.reshape(-1, *shape), yf, o, seed, device, n_classes)
            return lambda: predict(net, d.X_test, device=device)
    else:
        clf = make_classifier(task.model, o, random_state=seed)

        def fit():
            clf.fit(Xf, yf)
            return lambda: clf.predict(d.X_test.reshape(len(d.X_test), -1))

    pred, seconds = timed_fit(fit)
    row = result_row(task.model, "latents", task.regime.name, seed, d.y_test, pred, d.class_names, n_train=len(yf),
                     seconds=seconds)
    maps = None
    if task.maps and task.model == "attention":
        maps = net.cls_attention(torch.as_tensor(d.X_test, dtype=torch.float32).to(device)).cpu().numpy()
    return FitResult(row, pred, maps)


def run_pixel_fit(task: PixelFit) -> FitResult:
    """Train the CNN on ``task.data.X`` and predict the original test images."""
    import torch

    from pipeline.classify.nets import PIXEL_NETS, images_to_input, predict

    torch.set_num_threads(task.threads)
    d, o, seed, device = task.data, task.options, task.seed, task.device
    torch.manual_seed(seed)
    net = PIXEL_NETS[task.model](len(d.class_names), width=o["width"])
    x = images_to_input(d.X)

    def fit():
        _fit_net(net, x, d.y, o, seed, device, len(d.class_names))
        return lambda: predict(net, images_to_input(d.X_test), device=device)

    pred, seconds = timed_fit(fit)
    return FitResult(result_row(task.model, task.input, "real", seed, d.y_test, pred, d.class_names, n_train=len(x),
                                seconds=seconds), pred)
