"""Sample-guided interpolation as an imbalanced-learn over-sampler, so generated latents join the
classifier benchmark through the same ``fit_resample`` interface as SMOTE and the augmenters."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils._param_validation import Interval

from pipeline.augment.interpolation import Interpolation
from pipeline.generate.interpolate import interpolation_paths
from pipeline.generate.unet import LatentDiffusion


class GuidedInterpolation(Interpolation):
    """New latents on guided diffusion paths between random pairs (a ≠ b) of one class.

    Pairs and λ are drawn as by :class:`~pipeline.augment.interpolation.Interpolation`; each sample is
    the ``guided`` method of :func:`~pipeline.generate.interpolate.interpolation_paths` at its λ: both
    latents DDIM-inverted, their noises slerped, denoised with x̂₀ guidance toward
    ``(1 − λ)·z_a + λ·z_b`` of strength ``strength``. Works on flattened latents (rows of ``model``'s
    latent shape), like every augmenter here.

    Parameters
    ----------
    model : LatentDiffusion
        The diffusion model (fitted on the training split only, as the benchmark requires).
    sampling_strategy : as in imbalanced-learn, default="auto"
    steps : int, default=25
        DDIM inversion and denoising steps.
    strength : float in [0, 1], default=0.1
    lambda_min, lambda_max : float in [0, 1], default 0.2 and 0.8
    random_state : int, RandomState instance or None
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in Interpolation._parameter_constraints.items() if k != "kind"},
        "model": "no_validation",
        "steps": [Interval(Integral, 1, None, closed="left")],
        "strength": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, model: LatentDiffusion, *, sampling_strategy="auto", steps=25, strength=0.1, lambda_min=0.2,
                 lambda_max=0.8, random_state=None):
        BaseOverSampler.__init__(self, sampling_strategy=sampling_strategy)   # no ``kind``: the path is the model's
        self.lambda_min = lambda_min
        self.lambda_max = lambda_max
        self.random_state = random_state
        self.model = model
        self.steps = steps
        self.strength = strength

    def _between(self, a: np.ndarray, b: np.ndarray, lam: np.ndarray) -> np.ndarray:
        cfg = self.model.unet.config
        shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
        if a.shape[1] != int(np.prod(shape)):
            raise ValueError(f"rows of {a.shape[1]} values, but the U-Net makes latents of shape {shape}")
        za, zb = (v.reshape(-1, *shape).astype(np.float32) for v in (a, b))
        paths = interpolation_paths(self.model, za, zb, lam[:, None], methods=("guided",), steps=self.steps,
                                    strength=self.strength)
        return paths.latents["guided"][:, 0].reshape(len(a), -1)
