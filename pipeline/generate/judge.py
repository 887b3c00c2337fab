"""The independent judge of generated latents: a classifier that never guides, trained on real
training latents with the classifier benchmark's latent-CNN recipe."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.classify.nets import VGGNet, fit_classifier, predict


def independent_judge(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, n_classes: int, recipe, *,
                      seed: int, device="cpu", extra: int = 0):
    """A classifier that never guides, to grade what generators make: the benchmark's latent CNN
    (``recipe``: the ``bench.latent_cnn`` options — width, steps, batch_size, lr, augment,
    class_weight; ``extra`` pooled stages for latents larger than the recipe's) trained on real training
    latents with ``seed``. Returns (predict(latents) → labels,
    its accuracy on the real test latents)."""
    torch.manual_seed(seed)
    judge = VGGNet(n_classes, width=recipe.width, in_channels=X.shape[1], extra=extra)
    fit_classifier(judge, X, y, steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed, device=device,
                   augment=recipe.augment, class_weight=recipe.class_weight, n_classes=n_classes)
    accuracy = float((predict(judge, X_test, device=device) == np.asarray(y_test)).mean())
    return (lambda z: predict(judge, z, device=device)), accuracy
