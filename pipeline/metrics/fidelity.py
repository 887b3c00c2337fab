"""Fidelity and diversity of synthetic samples: Fréchet distance, k-NN precision/recall, copying."""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to rows of ``a`` and ``b`` (same feature space)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_infinity(a: np.ndarray, b: np.ndarray, *, fractions=(0.5, 0.625, 0.75, 0.875, 1.0), repeats: int = 3,
                     seed: int = 0) -> float:
    """The Fréchet distance extrapolated to infinitely many samples (FD∞, Chong & Forsyth 2020).

    The Fréchet distance of n samples is biased upward by about ``c / n``, with ``c`` depending on
    the distributions, so two sets are comparable only at equal n. This fits FD(m) = FD∞ + c / m to
    the distances of random subsets of both sets at ``fractions`` of the smaller set's size
    (``repeats`` draws each, seeded) and returns the intercept: comparable across set sizes."""
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    sizes, values = [], []
    for f in fractions:
        m = max(int(round(f * n)), 2)
        for _ in range(repeats if m < n else 1):
            values.append(frechet_distance(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]))
            sizes.append(m)
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=np.float64), values, 1)
    return float(intercept)


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel ``k(x, y) = (x·y / d + 1)³``: the kernel
    inception distance (KID, Bińkowski et al. 2018) on our features. Its expectation does not depend
    on the set sizes, so sets of different n compare directly (0 = same distribution; can dip below 0)."""
    d = a.shape[1]
    kaa, kbb, kab = ((x @ y.T / d + 1.0) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
                 - 2.0 * kab.mean())


class PCAFrechet:
    """Fréchet distance in a PCA space fitted on real training latents.

    Full 1 000-dimensional covariances from a few hundred samples are rank-deficient; a
    low-dimensional projection fitted once on real data gives stable, comparable numbers.
    """

    def __init__(self, n_components: int = 32, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X_real: np.ndarray) -> "PCAFrechet":
        k = min(self.n_components, X_real.shape[0] - 1, X_real.shape[1])
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(X_real)
        return self

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return frechet_distance(self.pca_.transform(a), self.pca_.transform(b))


def _kth_neighbour_distance(X: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of X to its k-th nearest *other* row."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    return nn.kneighbors(X)[0][:, k]


def _inside_any_ball(query: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    d = pairwise_distances(query, centres)
    return (d <= radii[None, :]).any(axis=1)


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real``.

    Each set's manifold is the union of balls around its points with radius the distance to
    the point's k-th nearest neighbour in the same set. Precision: the fraction of fake samples
    inside the real manifold (fidelity). Recall: the fraction of real samples inside the fake
    manifold (diversity / coverage). Compare sets of equal size: the radii shrink as n grows.
    """
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        raise ValueError("precision/recall needs at least 2 real and 2 fake samples")
    precision = _inside_any_ball(fake, real, _kth_neighbour_distance(real, k)).mean()
    recall = _inside_any_ball(real, fake, _kth_neighbour_distance(fake, k)).mean()
    return float(precision), float(recall)


def nearest_distances(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row."""
    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(query)[0][:, 0]


def nearest_indices(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index of each query row's nearest reference row (Euclidean)."""
    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(query)[1][:, 0]


def copying_check(synthetic: np.ndarray, real_train: np.ndarray, real_test: np.ndarray, quantile: float = 0.05) -> dict:
    """How close synthetic samples sit to the training set, relative to genuinely new real data.

    The reference is the nearest-training-neighbour distance of held-out real samples: a
    synthetic set that is a fresh draw from the data distribution should look like them
    (``median_ratio`` ≈ 1). A ratio well below 1, or many samples closer than the reference's
    ``quantile`` (``near_copy_fraction`` ≫ ``quantile``), means the method mostly copies
    training samples.
    """
    return copying_summary(nearest_distances(synthetic, real_train), nearest_distances(real_test, real_train), quantile)


def copying_summary(d_syn: np.ndarray, d_ref: np.ndarray, quantile: float = 0.05) -> dict:
    """:func:`copying_check` from the nearest-training-neighbour distances already computed."""
    threshold = float(np.quantile(d_ref, quantile))
    return {
        "median_nn_distance": float(np.median(d_syn)),
        "median_nn_distance_real_test": float(np.median(d_ref)),
        "median_ratio": float(np.median(d_syn) / np.median(d_ref)),
        "near_copy_fraction": float((d_syn < threshold).mean()),
        "near_copy_fraction_real_test": float((d_ref < threshold).mean()),
    }


def class_matched(labels_a: np.ndarray, labels_b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices into a and b giving both the same per-class counts (the smaller of the two).

    Over-samplers add mostly minority classes, so a synthetic set and the real data differ in
    class mix; comparing them raw would measure the mix, not the method. Matching the mix
    makes a synthetic-versus-real distance comparable with a real-versus-real one.
    """
    idx_a, idx_b = [], []
    for k in np.union1d(labels_a, labels_b):
        ia, ib = np.flatnonzero(labels_a == k), np.flatnonzero(labels_b == k)
        n = min(len(ia), len(ib))
        idx_a.append(np.sort(rng.choice(ia, n, replace=False)))
        idx_b.append(np.sort(rng.choice(ib, n, replace=False)))
    return np.concatenate(idx_a).astype(int), np.concatenate(idx_b).astype(int)


def _per_class_agreement(pred: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    return float(np.mean([(pred[labels == k] == k).mean() for k in classes if (labels == k).any()]))


class FidelityReference:
    """The real data every synthetic set is measured against, fitted once and reused.

    ``train`` and ``test`` are (X, y) with flattened latents. Fitting builds the PCA space
    (``components``, on real train), the test set's projection, a k-NN probe on real train and
    the test set's nearest-training-neighbour distances; :meth:`evaluate` then measures one
    synthetic set. The synthetic set and the real training set are first class-matched
    (:func:`class_matched`) and both compared with the real test set:

    - ``frechet``: Fréchet distance to real test in the PCA space (synthetic vs real-train baseline);
    - ``precision`` / ``recall``: k-NN precision and recall against real test (same baseline);
    - ``copying``: :func:`copying_summary` of the synthetic set against the full training set;
    - ``label_agreement``: how often the probe gives synthetic samples their intended class
      (mean over classes), against its accuracy on real test.
    """

    def __init__(self, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                 components: int = 32, k: int = 5, seed: int = 0):
        (self.X, self.y), (X_test, self.y_test) = train, test
        self.k = k
        self.space = PCAFrechet(components, random_state=seed).fit(self.X)
        self.P_train = self.space.pca_.transform(self.X)
        self.P_test = self.space.pca_.transform(X_test)
        self.probe = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k)).fit(self.X, self.y)
        self.probe_test = self.probe.predict(X_test)
        self.nearest = NearestNeighbors(n_neighbors=1).fit(self.X)
        self.d_test = self.nearest.kneighbors(X_test)[0][:, 0]

    def evaluate(self, synthetic: tuple[np.ndarray, np.ndarray], seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
        """Metrics for one synthetic set (X, y), and the matched indices into train and synthetic
        (for decoding the same subsets in pixel space)."""
        X_syn, y_syn = synthetic
        idx_real, idx_syn = class_matched(self.y, y_syn, np.random.default_rng(seed))
        if len(idx_syn) < 3:
            raise ValueError(f"only {len(idx_syn)} synthetic samples share a class with the training set; need ≥ 3")
        P_real, P_syn = self.P_train[idx_real], self.space.pca_.transform(X_syn[idx_syn])
        prec_s, rec_s = knn_precision_recall(self.P_test, P_syn, self.k)
        prec_r, rec_r = knn_precision_recall(self.P_test, P_real, self.k)
        classes = np.unique(y_syn)
        metrics = {
            "n_matched": int(len(idx_syn)),
            "frechet": {"synthetic": frechet_distance(P_syn, self.P_test), "real_train": frechet_distance(P_real, self.P_test)},
            "precision": {"synthetic": prec_s, "real_train": prec_r},
            "recall": {"synthetic": rec_s, "real_train": rec_r},
            "copying": copying_summary(self.nearest.kneighbors(X_syn[idx_syn])[0][:, 0], self.d_test),
            "label_agreement": {
                "synthetic": _per_class_agreement(self.probe.predict(X_syn), y_syn, classes),
                "real_test": _per_class_agreement(self.probe_test, self.y_test, classes),
            },
        }
        return metrics, idx_real, idx_syn
