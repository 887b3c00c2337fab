"""The base of every latent augmenter: an imbalanced-learn over-sampler on dense flattened latents.

Latents are dense float arrays (N, C·H·W); none of our samplers has a sparse code path, so they say
so in their tags (imbalanced-learn's common checks then leave sparse input out) and refuse a sparse
matrix at ``fit_resample`` with scikit-learn's one-line "dense data is required" instead of failing
deep inside ``_fit_resample``.
"""

from __future__ import annotations

from imblearn.over_sampling.base import BaseOverSampler


class LatentOverSampler(BaseOverSampler):
    """``BaseOverSampler`` for dense input only (lists, arrays and dataframes still convert)."""

    def _check_X_y(self, X, y, accept_sparse=None):
        return super()._check_X_y(X, y, accept_sparse=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
