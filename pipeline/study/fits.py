"""The study's fits: for one (cell, method, seed), the training set, every model trained on it, the
Classification Accuracy Score of the method's samples and their fidelity at equal n.

A :class:`StudyTask` runs in a worker (:func:`run_task`):

1. the cell's real images for the seed (:func:`pipeline.study.cells.subsample`: the same for every
   method);
2. the training set: ``none`` keeps them as they are; ``class_weights`` too, and each model that can
   weighs its loss or splits by the inverse class frequency (a k-NN cannot: "n/a"); every other method
   adds its samples, fitted on the kept images only, until each class holds
   :func:`~pipeline.study.cells.fill_target` images;
3. every model of ``models`` trained on it and tested on the whole real test split: balanced accuracy,
   the minority class's recall and the predictions (for the paired intervals of
   :mod:`pipeline.study.table`);
4. for a method: the **Classification Accuracy Score**: ``cas_model`` trained on the method's samples
   only (as many per class as the cell has real images, :func:`~pipeline.study.cells.synthetic_only_target`)
   and tested on the real test split;
5. for a method: the **Fréchet distance at equal n**: the samples of step 2 against class-matched real
   test latents, beside the real-vs-real floor (real training latents with the same class counts
   against the same test latents), in a PCA space fitted on the real training split.

A method that cannot run on a cell (SMOTE or interpolation on a class of one image) gives rows whose
``status`` says why, never an error: the cell is then left out of that method's comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.study.cells import Cell, fill_target, subsample, synthetic_only_target

BASELINES = ("none", "class_weights")
PAIRWISE = ("smote", "borderline_smote", "adasyn", "lerp", "slerp", "guided_interpolation")   # need 2 images of a class
NEIGHBOUR_KEYS = ("k_neighbors", "n_neighbors")   # the SMOTE family's k, lowered to what a small class allows
TORCH_MODELS = ("latent_cnn", "attention")
NO_CLASS_WEIGHT = ("knn",)


@dataclass(frozen=True)
class StudyData:
    """The real training and test latents (N, C, H, W) with labels, the class names, the minority
    class and the PCA space the Fréchet distances are measured in (fitted on the training split)."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    minority: int
    pca: object = None


@dataclass(frozen=True)
class StudyTask:
    """One method on one cell for one seed: every model of ``models`` (options per model in
    ``options``), ``augment`` the method's options (its ``augment.<method>`` section and, for a
    generated method, the saved models' directories)."""

    cell: Cell
    method: str
    seed: int
    models: tuple[str, ...]
    options: dict
    augment: dict = field(default_factory=dict)
    fill: int = 50
    cas_model: str | None = None
    threads: int = 1
    device: str = "cpu"


@dataclass
class TaskResult:
    rows: list[dict]               # one per model (kind "fit") and one for the CAS (kind "cas")
    preds: list[np.ndarray | None]  # each row's test predictions (None where it did not run)
    fidelity: dict | None = None   # the method's Fréchet at equal n (None for a baseline)


def _sampler(method: str, options: dict, strategy, seed: int, y: np.ndarray, n_channels: int):
    """The method's over-sampler for ``strategy`` on labels ``y``, or a string saying why it cannot run."""
    counts = dict(zip(*np.unique(y, return_counts=True)))
    grown = [c for c, n in strategy.items() if n > counts.get(c, 0)]
    if not grown:
        return None
    smallest = min(counts[c] for c in grown)
    if method in PAIRWISE and smallest < 2:
        return f"n/a: {method} needs two images of a class; a class to grow has {smallest}"
    opts = dict(options)
    for key in NEIGHBOUR_KEYS:   # SMOTE's k-NN within a class: at most its other members
        if key in opts:
            opts[key] = min(int(opts[key]), smallest - 1)
    if method in ("class_guided", "guided_interpolation"):
        from pipeline.generate.oversample import make_generated

        return make_generated(method, opts, random_state=seed, sampling_strategy=strategy)
    from pipeline.augment import make_augmenter

    return make_augmenter(method, opts, random_state=seed, sampling_strategy=strategy, n_channels=n_channels)


def _synthesize(method, options, strategy, seed, X, y, n_channels):
    """(synthetic rows, their labels) or a string saying why the method cannot run."""
    from pipeline.augment import synthesize

    sampler = _sampler(method, options, strategy, seed, y, n_channels)
    if isinstance(sampler, str):
        return sampler
    if sampler is None:
        return X[:0], y[:0]
    return synthesize(sampler, X, y)


def fit_predict(model: str, options: dict, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, shape, *, n_classes: int,
                seed: int, class_weight: bool, device: str) -> np.ndarray:
    """Train ``model`` on flattened latents ``X`` (labels ``y``) and predict ``X_test`` (N, C, H, W)."""
    if model in TORCH_MODELS:
        import torch

        from pipeline.classify.nets import LatentAttention, VGGNet, predict
        from pipeline.classify.tasks import fit_net

        torch.manual_seed(seed)
        o = {**options, "class_weight": class_weight}
        net = (LatentAttention(shape, n_classes, patch=o["patch"], dim=o["dim"], depth=o["depth"], heads=o["heads"],
                               stem=o["stem"]) if model == "attention" else
               VGGNet(n_classes, width=o["width"], in_channels=shape[0], extra=o.get("extra", 0)))
        fit_net(net, X.reshape(-1, *shape), y, o, seed, device, n_classes)
        return predict(net, X_test, device=device)
    from pipeline.classify.estimators import make_classifier

    o = dict(options)
    if model == "knn":
        o["neighbors"] = min(int(o.get("neighbors", 5)), len(y))
    if class_weight:
        o["class_weight"] = "balanced"
    clf = make_classifier(model, o, random_state=seed)
    clf.fit(X, y)
    return clf.predict(X_test.reshape(len(X_test), -1))


def _scores(y_test: np.ndarray, pred: np.ndarray, minority: int) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    mask = y_test == minority
    return {"balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
            "minority_recall": float((pred[mask] == minority).mean()) if mask.any() else float("nan")}


def _frechet(data: StudyData, X_syn: np.ndarray, y_syn: np.ndarray, seed: int) -> dict:
    """The samples against class-matched real test latents, and the real-vs-real floor at the same n."""
    from pipeline.metrics.fidelity import class_matched

    rng = np.random.default_rng(seed)
    flat_test = data.X_test.reshape(len(data.X_test), -1)
    i_syn, i_test = class_matched(y_syn, data.y_test, rng)
    i_real, j = class_matched(data.y, data.y_test[i_test], rng)
    if len(i_syn) < 3 or len(i_real) != len(i_syn):
        return {"frechet": float("nan"), "frechet_floor": float("nan"), "frechet_n": int(len(i_syn))}
    test = flat_test[i_test][j]
    return {"frechet": data.pca.distance(X_syn[i_syn], flat_test[i_test]),
            "frechet_floor": data.pca.distance(data.X.reshape(len(data.X), -1)[i_real], test),
            "frechet_n": int(len(i_syn))}


def run_task(task: StudyTask, data: StudyData) -> TaskResult:
    """Every fit of ``task`` (see the module docstring)."""
    import torch

    torch.set_num_threads(task.threads)
    shape, n_classes = data.X.shape[1:], len(data.class_names)
    idx = subsample(data.y, task.cell, task.seed, data.minority)
    X, y = data.X[idx].reshape(len(idx), -1), data.y[idx]
    base = {"cell": task.cell.key, "shots": str(task.cell.shots), "imbalance": str(task.cell.imbalance),
            "method": task.method, "seed": task.seed, "n_real": int(len(y)),
            "n_minority": int((y == data.minority).sum())}
    rows, preds, fidelity = [], [], None
    if task.method in BASELINES:
        X_fit, y_fit, syn = X, y, None
    else:
        syn = _synthesize(task.method, task.augment, fill_target(y, task.fill), task.seed, X, y, shape[0])
        if isinstance(syn, str):
            X_fit = y_fit = None
        else:
            X_fit, y_fit = np.vstack([X, syn[0].astype(X.dtype)]), np.concatenate([y, syn[1]])
            fidelity = {**base, **_frechet(data, *syn, task.seed), "n_synthetic": int(len(syn[1]))}
    n_syn = 0 if syn is None or isinstance(syn, str) else int(len(syn[1]))
    for model in task.models:
        row = {**base, "kind": "fit", "model": model, "n_synthetic": n_syn}
        if X_fit is None:
            rows.append({**row, "status": syn}), preds.append(None)
            continue
        if task.method == "class_weights" and model in NO_CLASS_WEIGHT:
            rows.append({**row, "status": f"n/a: {model} has no class weights"}), preds.append(None)
            continue
        pred = fit_predict(model, task.options[model], X_fit, y_fit, data.X_test, shape, n_classes=n_classes,
                           seed=task.seed, class_weight=task.method == "class_weights", device=task.device)
        rows.append({**row, "status": "ok", **_scores(data.y_test, pred, data.minority)}), preds.append(pred)
    if task.cas_model and task.method not in BASELINES:
        row = {**base, "kind": "cas", "model": task.cas_model}
        cas = _synthesize(task.method, task.augment, synthetic_only_target(y), task.seed, X, y, shape[0])
        if isinstance(cas, str) or len(np.unique(cas[1])) < 2:
            rows.append({**row, "n_synthetic": 0, "status": cas if isinstance(cas, str) else "n/a: one class made"})
            preds.append(None)
        else:
            pred = fit_predict(task.cas_model, task.options[task.cas_model], cas[0].astype(X.dtype), cas[1], data.X_test,
                               shape, n_classes=n_classes, seed=task.seed, class_weight=False, device=task.device)
            rows.append({**row, "n_synthetic": int(len(cas[1])), "status": "ok",
                         **_scores(data.y_test, pred, data.minority)})
            preds.append(pred)
    return TaskResult(rows, preds, fidelity)


def run_tasks(tasks: list[StudyTask], data: StudyData, workers: int):
    """Every task on ``workers`` processes; (rows, predictions, fidelity rows) in task order."""
    from dataclasses import replace

    from joblib import Parallel, delayed
    from tqdm import tqdm

    from pipeline.runtime import task_threads

    tasks = [replace(t, threads=n) for t, n in zip(tasks, task_threads(len(tasks), workers))]
    if workers <= 1:
        done = (run_task(t, data) for t in tasks)
    else:
        done = Parallel(n_jobs=min(workers, len(tasks)), backend="loky", return_as="generator")(
            delayed(run_task)(t, data) for t in tasks)
    outputs = list(tqdm(done, total=len(tasks), desc="study fits", unit="task", mininterval=5))
    rows = [r for o in outputs for r in o.rows]
    preds = [p for o in outputs for p in o.preds]
    fidelity = [o.fidelity for o in outputs if o.fidelity is not None]
    return rows, preds, fidelity


def study_fits(data: StudyData, tasks: list[StudyTask], workers: int):
    """Run ``tasks``: (one row per fit and CAS, the predictions of those that ran, one row per method's
    Fréchet) as frames, the predictions keyed by kind, cell, model, method and seed."""
    import pandas as pd

    rows, preds, fidelity = run_tasks(tasks, data, workers)
    keep = [i for i, p in enumerate(preds) if p is not None]
    predictions = pd.DataFrame([{k: rows[i][k] for k in ("kind", "cell", "model", "method", "seed")}
                                | {"pred": np.asarray(preds[i], dtype=np.int16)} for i in keep])
    return pd.DataFrame(rows), predictions, pd.DataFrame(fidelity)
