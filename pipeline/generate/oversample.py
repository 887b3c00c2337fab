"""Generated data as imbalanced-learn over-samplers, so latents made by the diffusion U-Net join the
classifier benchmark through the same ``fit_resample`` interface as SMOTE and the augmenters.

* :class:`GuidedInterpolation` (``guided_interpolation``): sample-guided interpolation between random
  same-class pairs of the set it is fitted on.
* :class:`ClassGuided` (``class_guided``): new samples of each class drawn by classifier guidance
  toward it (the noise-aware classifier of the ``guide`` stage).

:func:`make_generated` builds either from its options (the ``augment.<method>`` section plus the
saved models' directories: ``unet`` and, for ``class_guided``, ``classifier``); the models load once
per process. Both generators were fitted on the *training* split; in a low-data regime they
therefore bring knowledge of more real images than the regime's subset holds, like a pretrained
generator would (the README says so).
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from pipeline.augment.base import LatentOverSampler
from pipeline.augment.interpolation import Interpolation
from pipeline.generate.guidance import SYMMETRIES, ClassifierGuide, load_guide_model
from pipeline.generate.interpolate import interpolation_paths
from pipeline.generate.sampling import denoise, starting_noise
from pipeline.generate.unet import LatentDiffusion, load_diffusion
from pipeline.io import InputError

GENERATED = ("class_guided", "guided_interpolation")


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
        LatentOverSampler.__init__(self, sampling_strategy=sampling_strategy)   # no ``kind``: the path is the model's
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


class ClassGuided(LatentOverSampler):
    """New latents of each class by classifier guidance: DDIM from seeded noise with the ε hook
    ``ClassifierGuide(classifier, class, scale, symmetry=..., normalise=...)``
    (:mod:`pipeline.generate.guidance`). The fitted set only decides how many of each class are made
    (``sampling_strategy``); rows are flattened latents.

    Parameters
    ----------
    model : LatentDiffusion
    classifier : the noise-aware classifier (one logit per class of the benchmark's labels)
    sampling_strategy : as in imbalanced-learn, default="auto"
    scale : float ≥ 0, default=32
    steps : int, default=10
    symmetry : "none" | "flip" | "dihedral", default="none"
    normalise : bool, default=False
    random_state : int or None
    """

    _parameter_constraints: dict = {
        **LatentOverSampler._parameter_constraints,
        "model": "no_validation",
        "classifier": "no_validation",
        "scale": [Interval(Real, 0, None, closed="left")],
        "steps": [Interval(Integral, 1, None, closed="left")],
        "symmetry": [StrOptions(set(SYMMETRIES))],
        "normalise": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, model: LatentDiffusion, classifier, *, sampling_strategy="auto", scale=32.0, steps=10,
                 symmetry="none", normalise=False, random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.model = model
        self.classifier = classifier
        self.scale = scale
        self.steps = steps
        self.symmetry = symmetry
        self.normalise = normalise
        self.random_state = random_state

    def _fit_resample(self, X, y):
        cfg = self.model.unet.config
        shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
        if X.shape[1] != int(np.prod(shape)):
            raise ValueError(f"rows of {X.shape[1]} values, but the U-Net makes latents of shape {shape}")
        want = np.concatenate([np.full(n, c) for c, n in self.sampling_strategy_.items() if n > 0] or [np.zeros(0, int)])
        if len(want) and want.max() >= self.classifier.outputs:
            raise ValueError(f"class {int(want.max())} requested, but the classifier has {self.classifier.outputs} classes")
        if not len(want):
            return X.copy(), y.copy()
        seed = int(np.random.default_rng(self.random_state).integers(2**31))
        guide = ClassifierGuide(self.classifier, torch.as_tensor(want), self.scale, self.model.shift,
                                symmetry=self.symmetry, normalise=self.normalise)
        z = self.model.to_latents(denoise(self.model.unet, "ddim", starting_noise(len(want), shape, seed), self.steps,
                                          seed=seed, eps_guide=guide).final).numpy()
        return np.vstack([X, z.reshape(len(z), -1).astype(X.dtype)]), np.concatenate([y, want.astype(y.dtype)])


@lru_cache(maxsize=4)
def _diffusion(directory: str) -> LatentDiffusion:
    return load_diffusion(directory, "cpu")


@lru_cache(maxsize=4)
def _classifier(directory: str):
    """The saved noise-aware classifier and how it guides (``guidance`` in its config.json, written by
    the guide stage: symmetry, normalise and the scale it chose on the validation split)."""
    model, config = load_guide_model(directory, "cpu")
    how = config.get("guidance", {})
    if "scale" not in how:
        raise InputError(f"{directory}/config.json: no guidance.scale (the scale the guide stage chose on validation); "
                         "re-run the guide stage")
    return model, {"symmetry": how.get("symmetry", "none"), "normalise": bool(how.get("normalise", False)),
                   "scale": float(how["scale"])}


def make_generated(method: str, options, *, random_state: int, sampling_strategy="auto"):
    """The over-sampler of generated ``method`` from ``options``: its ``augment.<method>`` keys plus
    ``unet`` (the saved diffusion model's directory) and, for ``class_guided``, ``classifier``."""
    opts = dict(options)
    if "unet" not in opts or (method == "class_guided" and "classifier" not in opts):
        raise ValueError(f"{method} needs the saved models: options 'unet' (and 'classifier' for class_guided)")
    model = _diffusion(str(opts.pop("unet")))
    if method == "class_guided":
        classifier, how = _classifier(str(opts.pop("classifier")))
        return ClassGuided(model, classifier, sampling_strategy=sampling_strategy, random_state=random_state,
                           **{**how, **opts})
    if method == "guided_interpolation":
        return GuidedInterpolation(model, sampling_strategy=sampling_strategy, random_state=random_state, **opts)
    raise ValueError(f"unknown generated method {method!r}; known: {', '.join(GENERATED)}")
