"""The latent classifier benchmark for one model: plan its regimes, run every fit, collect the results.

:func:`plan_regimes` drops the ``real+<method>`` regimes an over-sampler has nothing to add to
(balanced classes: "no samples needed") and fails, before any fit, when a class is too small for
a method's k-NN. :func:`run_model` fits the model in every planned regime for every seed on a
process pool; a deterministic scikit-learn model on the real set is fitted once and stands for
every seed, each fit a :class:`LatentFit` run by :func:`run_latent_fit` in a worker.
:func:`gallery_indices` picks the test images the attention gallery shows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from pipeline.classify.regimes import Regime, regimes, synthetic_count
from pipeline.classify.results import predictions_frame, result_row, timed_fit
from pipeline.classify.tasks import FitResult, LabelledSplits, fit_net
from pipeline.runtime import task_threads

log = logging.getLogger(__name__)
SKLEARN_DETERMINISTIC = ("logreg", "rbf_svm", "knn")   # same fit for every seed on the same data
TORCH_LATENT_MODELS = ("latent_cnn", "attention")


class RegimeError(ValueError):
    """A regime that cannot be built on these labels; ``regime`` names it."""

    def __init__(self, regime: Regime, message: str):
        super().__init__(message)
        self.regime = regime


def plan_regimes(kinds: Sequence[str], methods: Sequence[str], y: np.ndarray, *, seed: int, cap: int, grow: int,
                 augment: Mapping[str, Mapping], n_channels: int,
                 generated_kinds: Sequence[str] | None = None) -> tuple[list[Regime], list[str]]:
    """(regimes to run, names of those skipped as "no samples needed"). No augmenter is fitted here;
    raises :class:`RegimeError` when a class is too small for a method's k-NN."""
    planned, idle = [], []
    for regime in regimes(kinds, methods, generated_kinds):
        try:
            added = synthetic_count(regime, y, seed=seed, cap=cap, grow=grow, options=augment, n_channels=n_channels)
        except ValueError as exc:
            raise RegimeError(regime, str(exc)) from exc
        if regime.method and regime.base == "real" and added == 0:
            idle.append(regime.name)   # balanced classes: the over-sampler has nothing to add
        else:
            planned.append(regime)
    return planned, idle


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
    losses = None
    if task.model in TORCH_LATENT_MODELS:
        losses = []
        torch.manual_seed(seed)
        net = (LatentAttention(shape, n_classes, patch=o["patch"], dim=o["dim"], depth=o["depth"], heads=o["heads"],
                               stem=o["stem"]) if task.model == "attention" else
               VGGNet(n_classes, width=o["width"], in_channels=shape[0], extra=o.get("extra", 0)))

        def fit():
            losses.extend(fit_net(net, Xf.reshape(-1, *shape), yf, o, seed, device, n_classes))
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
    return FitResult(row, pred, maps, losses)


@dataclass
class ModelResults:
    results: pd.DataFrame             # one row per (regime, seed): pipeline.classify.results.result_row
    predictions: pd.DataFrame         # the same fits' test predictions (predictions_frame)
    maps: np.ndarray | None = None    # attention maps of every test image (attention, real, first seed)
    map_pred: np.ndarray | None = None  # that fit's test predictions
    losses: dict[str, list[float]] = field(default_factory=dict)   # "<regime>/seed<k>" → a net's loss per step


def run_model(model: str, options: dict, planned: Sequence[Regime], data: LabelledSplits, *, seeds: Sequence[int],
              cap: int, grow: int, augment: Mapping[str, Mapping], workers: int, device: str) -> ModelResults:
    """Fit ``model`` in every regime of ``planned`` for every seed on ``workers`` processes
    (torch threads per fit: :func:`~pipeline.runtime.task_threads`)."""
    tasks, copies = [], {}
    for regime in planned:
        for i, seed in enumerate(seeds):
            if model in SKLEARN_DETERMINISTIC and regime.name == "real" and i > 0:
                copies.setdefault(regime.name, []).append(seed)
                continue
            tasks.append(LatentFit(model, options, regime, seed, data, cap, grow, dict(augment), device=device,
                                   maps=model == "attention" and regime.name == "real" and i == 0))
    tasks = [replace(t, threads=n) for t, n in zip(tasks, task_threads(len(tasks), workers))]
    log.info("%s: %d fits (%s; %d seeds) on %d worker(s)", model, len(tasks), ", ".join(r.name for r in planned),
             len(seeds), workers)
    outputs = Parallel(n_jobs=min(workers, len(tasks)), backend="loky", verbose=5)(delayed(run_latent_fit)(t) for t in tasks)
    rows, preds = [o.row for o in outputs], [o.pred for o in outputs]
    for regime, extra in copies.items():   # deterministic models: one fit stands for every seed
        i = next(k for k, r in enumerate(rows) if r["regime"] == regime)
        rows += [{**rows[i], "seed": s} for s in extra]
        preds += [preds[i]] * len(extra)
    order = pd.DataFrame(rows).sort_values(["model", "regime", "seed"], kind="stable").index
    mapped = next((o for o in outputs if o.maps is not None), None)
    losses = {f"{o.row['regime']}/seed{o.row['seed']}": o.losses for o in outputs if o.losses is not None}
    return ModelResults(pd.DataFrame(rows).loc[order], predictions_frame([rows[i] for i in order], [preds[i] for i in order]),
                        None if mapped is None else mapped.maps, None if mapped is None else mapped.pred, losses)


def gallery_indices(y: np.ndarray, pred: np.ndarray, per_class: int) -> tuple[list[int], list[int]]:
    """Up to ``per_class`` correctly classified test images per class, and as many misclassified ones."""
    right = [i for c in np.unique(y) for i in np.flatnonzero((y == c) & (pred == c))[:per_class]]
    wrong = np.flatnonzero(pred != y)[: per_class * len(np.unique(y))].tolist()
    return right, wrong
