"""How close one augmentation method's synthetic latents come to real data (the fidelity study).

:class:`FidelityStudy` holds what does not depend on the method, computed once from the real
train / test latents and images: the latent reference (:class:`~pipeline.metrics.fidelity.FidelityReference`:
PCA, k-NN manifolds, probe) and a PCA of real training pixels. :meth:`FidelityStudy.measure`
then fits one method on the real *train* latents for ``replicates`` seeds and measures each
synthetic set, class-matched, against the real test set (Fréchet distance, k-NN precision /
recall, copying, label agreement, each beside its real baseline); replicate 0 is also decoded
for a Fréchet distance in pixel space (beside real and VAE-reconstructed real images), a
gallery of synthetic samples beside their nearest real training image, and PCA / t-SNE panels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from pipeline.augment import make_augmenter, samples_needed, synthesize
from pipeline.augment.smote import check_neighbours
from pipeline.latents.analysis import decode_to_images, stratified_subsample, tsne_embedding
from pipeline.latents.vae import iter_decoded, tensor_to_images
from pipeline.metrics.fidelity import FidelityReference, PCAFrechet, nearest_indices
from pipeline.metrics.pixels import pixel_features
from pipeline.metrics.stats import aggregate
from pipeline.report.figures import paired_rows, round_robin
from pipeline.report.thumbs import thumbnail_uris


def _pixels(images: np.ndarray) -> np.ndarray:
    """Pixel rows of the pixel Fréchet distance: as they are up to 64 px, block-averaged beyond (SD sizes)."""
    return pixel_features(images)


def decoded_pixels(vae, latents: np.ndarray) -> np.ndarray:
    """:func:`_pixels` of the decoded ``latents``, a decoded batch at a time: memory holds the rows and one
    batch of images, never every decoded image (at 256 px the class-matched sets of one method were
    thousands of images, 0.2 MB each as uint8). The same rows as decoding them all first."""
    rows = [_pixels(tensor_to_images(x)) for x in iter_decoded(vae, torch.tensor(latents, dtype=torch.float32))]
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


@dataclass(frozen=True)
class RealData:
    """Real train / test latents (N, C, H, W) with labels, and the train / test images (uint8 NHWC)."""

    latents: np.ndarray
    y: np.ndarray
    test_latents: np.ndarray
    y_test: np.ndarray
    images: np.ndarray
    test_images: np.ndarray
    class_names: list[str]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape[1:])


@dataclass(frozen=True)
class MethodFidelity:
    """One method's result: ``metrics`` (JSON-ready), and for a method that made samples the decoded
    ``gallery`` rows and the embedding ``panels`` (None when no samples were needed), and the same as
    data for the interactive report: ``points`` (one row per embedded latent: ``set`` real | synthetic,
    ``class``, PCA and t-SNE coordinates, ``thumb`` the decoded image as a data URI) and ``tiles``
    (per gallery position: the synthetic sample, its nearest real training image and that image's
    VAE reconstruction, as ``view`` rows)."""

    metrics: dict
    gallery: list | None = None
    panels: list[dict] | None = None
    points: pd.DataFrame | None = None
    tiles: pd.DataFrame | None = None


class FidelityStudy:
    """The method-independent reference, then :meth:`measure` per method (see the module docstring)."""

    def __init__(self, real: RealData, vae, *, components: int, k: int, seed: int, gallery_size: int,
                 tsne_points: int, tsne_perplexity: float):
        self.real, self.vae, self.seed = real, vae, seed
        self.gallery_size, self.tsne_points, self.tsne_perplexity = gallery_size, tsne_points, tsne_perplexity
        self.X, self.X_test = real.latents.reshape(len(real.latents), -1), real.test_latents.reshape(len(real.test_latents), -1)
        self.reference = FidelityReference((self.X, real.y), (self.X_test, real.y_test), components=components, k=k, seed=seed)
        self.pixel_frechet = PCAFrechet(components, random_state=seed).fit(_pixels(real.images))
        self.test_pixels = _pixels(real.test_images)
        self.pca = PCA(n_components=2, random_state=seed).fit(self.X)
        self.pca_xy = self.pca.transform(self.X)   # the real train latents of every method's PCA panel

    def sampler(self, method: str, options: dict, *, seed: int, sampling_strategy):
        return make_augmenter(method, options, random_state=seed, sampling_strategy=sampling_strategy,
                              n_channels=self.real.shape[0])

    def check(self, method: str, options: dict, *, sampling_strategy) -> None:
        """Raise ``ValueError`` (naming the classes) when a class is too small for the method's k-NN."""
        check_neighbours(self.sampler(method, options, seed=self.seed, sampling_strategy=sampling_strategy), self.real.y)

    def measure(self, method: str, options: dict, *, replicates: int, sampling_strategy,
                log=None) -> MethodFidelity:
        """Fit ``method`` (``options``) on the real train latents for ``replicates`` seeds and measure
        each synthetic set; only ``no_samples_needed`` when ``sampling_strategy`` asks for none."""
        X, y, seed = self.X, self.real.y, self.seed
        if samples_needed(self.sampler(method, options, seed=seed, sampling_strategy=sampling_strategy), y) == 0:
            return MethodFidelity({"method": method, "options": options, "replicates": replicates,
                                   "n_synthetic_per_replicate": 0, "no_samples_needed": True})
        runs, first = [], None
        for r in range(replicates):
            sampler = self.sampler(method, options, seed=seed + r, sampling_strategy=sampling_strategy)
            Xs, ys = synthesize(sampler, X, y)
            m, idx_real, idx_syn = self.reference.evaluate((Xs, ys), seed=seed + r)
            if hasattr(sampler, "flip_rate_"):
                m["flip_rate"] = sampler.flip_rate_
                m["mean_shift"] = float(sampler.shift_.mean()) if len(sampler.shift_) else 0.0
                m["n_missing"] = int(sum(sampler.n_missing_.values()))
            runs.append(m)
            if r == 0:
                first = (Xs, ys, idx_real, idx_syn)
            if log is not None:
                log.info("%s replicate %d: %d synthetic, Fréchet %.2f (real %.2f), precision %.2f, recall %.2f", method,
                         r, len(ys), m["frechet"]["synthetic"], m["frechet"]["real_train"], m["precision"]["synthetic"],
                         m["recall"]["synthetic"])

        Xs, ys, idx_real, idx_syn = first
        names = self.real.class_names
        counts_before = np.bincount(y, minlength=len(names))
        metrics = {
            "method": method,
            "options": options,
            "replicates": replicates,
            "n_synthetic_per_replicate": int(len(ys)),
            "counts_before": dict(zip(names, counts_before.tolist())),
            "counts_after": dict(zip(names, (counts_before + np.bincount(ys, minlength=len(names))).tolist())),
            **aggregate(runs),
        }
        # Pixel space (replicate 0): decode the class-matched synthetic and real-train latents.
        shape, images = self.real.shape, self.real.images
        pix = self.pixel_frechet
        metrics["frechet_pixels"] = {
            "synthetic": pix.distance(decoded_pixels(self.vae, Xs[idx_syn].reshape(-1, *shape)), self.test_pixels),
            "real_train_reconstructed": pix.distance(decoded_pixels(self.vae, X[idx_real].reshape(-1, *shape)),
                                                     self.test_pixels),
            "real_train": pix.distance(_pixels(images[idx_real]), self.test_pixels),
        }

        rng = np.random.default_rng(seed)
        show = round_robin(ys, self.gallery_size)
        nearest = nearest_indices(Xs[show], X)
        shown = decode_to_images(self.vae, Xs[show].reshape(-1, *shape))
        gallery = paired_rows(shown, images[nearest])
        sub_real = idx_real[stratified_subsample(y[idx_real], self.tsne_points, rng)]
        sub_syn = idx_syn[stratified_subsample(ys[idx_syn], self.tsne_points, rng)]
        emb = tsne_embedding(np.vstack([X[sub_real], Xs[sub_syn]]), perplexity=self.tsne_perplexity, seed=seed)
        syn_pca = self.pca.transform(Xs[sub_syn])
        panels = [
            {"title": "PCA of real train latents (dots) + synthetic (crosses)", "xy": self.pca_xy, "labels": y,
             "synthetic_xy": syn_pca, "synthetic_labels": ys[sub_syn]},
            {"title": "t-SNE of class-matched real (dots) + synthetic (crosses)", "xy": emb[: len(sub_real)],
             "labels": y[sub_real], "synthetic_xy": emb[len(sub_real):], "synthetic_labels": ys[sub_syn]},
        ]
        points = pd.DataFrame({
            "set": ["real"] * len(sub_real) + ["synthetic"] * len(sub_syn),
            "class": [names[k] for k in np.concatenate([y[sub_real], ys[sub_syn]])],
            "pca_x": np.concatenate([self.pca_xy[sub_real, 0], syn_pca[:, 0]]),
            "pca_y": np.concatenate([self.pca_xy[sub_real, 1], syn_pca[:, 1]]),
            "tsne_x": emb[:, 0], "tsne_y": emb[:, 1],
            "thumb": thumbnail_uris(images[sub_real]) + thumbnail_uris(
                decode_to_images(self.vae, Xs[sub_syn].reshape(-1, *shape))),
        })
        recon = decode_to_images(self.vae, X[nearest].reshape(-1, *shape))
        tiles = pd.DataFrame([
            {"tile": i, "class": names[ys[show[i]]], "view": view, "thumb": uri}
            for view, pics in (("synthetic", shown), ("nearest real image", images[nearest]),
                               ("its VAE reconstruction", recon))
            for i, uri in enumerate(thumbnail_uris(pics))])
        return MethodFidelity(metrics, gallery, panels, points, tiles)
