"""Models that steer sampling, and the ε hooks that turn their gradients into guidance.

A **noise-aware classifier** is the timestep-conditioned CNN of the artifact scorer
(:class:`~pipeline.score.nets.CNNScorer`) with one logit per class, trained on training latents
noised afresh every minibatch to uniformly drawn timesteps of SD's schedule (what a sampler holds
at any step). :class:`ClassifierGuide` is classifier guidance (Dhariwal & Nichol 2021):
``ε' = ε − s · √(1 − ᾱ_t) · ∇ log p(y | x_t)``, which moves every step of any scheduler toward
class ``y`` with strength ``s``. The classifier works on noisy latents in the data's space; the
U-Net's input is centred (:class:`~pipeline.generate.unet.LatentDiffusion`), so the hook adds
``√ᾱ_t × shift`` before it asks the classifier (the gradient is the same in both spaces).

Two options make a small classifier's gradient steer *shape* rather than fool the classifier
(measured by ``benchmarks/guidance.py``: on the default run each lifts the class accuracy an
independent judge gives the samples): ``symmetry`` averages ``log p(y | g·x_t)`` over the
symmetries ``g`` of the data (``flip``: mirror; ``dihedral``: the eight flips and quarter turns
of the square; the classifier is trained on random views of the same group), so a gradient
direction only one view rewards — an adversarial texture, not a shape — cancels; ``normalise`` rescales each sample's gradient to unit RMS, so the scale is the
shift of ε per step in ε's own units (``0.15`` = 15 %) whatever the classifier's confidence, and
samples it is already sure of are pushed as hard as the rest.

A **discriminator** (Kim et al. 2023, "Refining Generative Process with Discriminator Guidance")
is the same network with one logit, trained to tell noisy real latents from noisy generated ones
at the same timesteps; :class:`DiscriminatorGuide` adds ``− s · √(1 − ᾱ_t) · ∇ logit D(x_t)``
(the gradient of ``log D / (1 − D)``), which pulls each step toward what the discriminator
calls real.

:class:`OODGuide` steers toward in-distribution latents with the noise-aware Gaussian log density
of :class:`~pipeline.generate.ood.MahalanobisOOD`; :class:`CombinedGuide` adds several hooks.
:func:`save_guide_model` / :func:`load_guide_model` keep the networks as safetensors + json.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.classify.nets import AUGMENTATIONS, augment_batch, balanced_class_weights
from pipeline.latents.noising import SD_TRAIN_SCHEDULE
from pipeline.score.nets import CNNScorer, forward_noise
from pipeline.training import as_tensor, channels_last, train_steps


SYMMETRIES = AUGMENTATIONS   # the label-preserving symmetries of the data, as the classifier benchmark names them


def _check_symmetry(symmetry: str, what: str = "symmetry") -> None:
    if symmetry not in SYMMETRIES:
        raise ValueError(f"{what} must be one of {', '.join(SYMMETRIES)}, got {symmetry!r}")


def symmetry_views(x: torch.Tensor, symmetry: str) -> list[torch.Tensor]:
    """``x`` (N, C, H, W) under each symmetry of the group ``symmetry``: ``none`` (x itself), ``flip``
    (x and its mirror image) or ``dihedral`` (the eight flips and quarter turns; square latents)."""
    _check_symmetry(symmetry)
    if symmetry == "none":
        return [x]
    if symmetry == "flip":
        return [x, x.flip(-1)]
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"dihedral symmetry needs square latents, got {tuple(x.shape[-2:])}")
    return [torch.rot90(v, k, (-2, -1)) for v in (x, x.flip(-1)) for k in range(4)]


def sd_alphas_cumprod() -> torch.Tensor:
    """ᾱ_t of SD's training schedule for t = 0 … 999."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SD_TRAIN_SCHEDULE).alphas_cumprod.float()


def noise_aware_classifier(latent_shape, n_classes: int, channels=(32, 64, 64), t_dim: int = 32) -> CNNScorer:
    """The timestep-conditioned CNN with ``n_classes`` logits."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    return CNNScorer(list(latent_shape), list(channels), t_dim=t_dim, outputs=n_classes)


def noise_aware_discriminator(latent_shape, channels=(32, 64, 64), t_dim: int = 32) -> CNNScorer:
    """The timestep-conditioned CNN with one logit: real (> 0) vs generated."""
    return CNNScorer(list(latent_shape), list(channels), t_dim=t_dim)


def train_noise_aware(model: CNNScorer, latents: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int = 64,
                      lr: float = 2e-3, seed: int = 0, device: str | torch.device = "cpu", class_weight: bool = True,
                      max_timestep: int = 1000, augment: str = "none") -> list[float]:
    """Train ``model`` on clean latents noised afresh every minibatch to timesteps drawn uniformly from
    ``0 … max_timestep − 1`` (``√ᾱ_t·x0 + √(1−ᾱ_t)·ε``): cross-entropy over its logits, or, for a
    one-logit model, binary cross-entropy with ``labels`` 1 = real, 0 = generated. Batches, timesteps
    and noise come from a seeded CPU generator. ``class_weight`` weighs classes by their inverse
    frequency; ``augment`` (a symmetry of :data:`SYMMETRIES`) shows each clean latent in a random
    view of it, so a classifier that guides with that symmetry's average has learnt every view.
    Returns the loss per step."""
    _check_symmetry(augment, "augment")
    x, y = as_tensor(latents), as_tensor(labels, np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} latents but {len(y)} labels")
    n_classes = max(model.outputs, 2)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {int(y.min())}..{int(y.max())}")
    abar = sd_alphas_cumprod()
    model.fit_normalisation(x)
    model.to(device, memory_format=torch.channels_last)
    weight = balanced_class_weights(y.numpy(), n_classes).to(device) if class_weight else None

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
        t = torch.randint(0, max_timestep, (len(idx),), generator=gen)
        xt = forward_noise(augment_batch(x[idx], augment, gen), abar[t], gen)
        out, target = model(channels_last(xt.to(device)), t.float().to(device)), y[idx].to(device)
        if model.outputs == 1:
            w = None if weight is None else weight[target]
            return nn.functional.binary_cross_entropy_with_logits(out, target.float(), weight=w)
        return nn.functional.cross_entropy(out, target, weight=weight)

    return train_steps(model, batch_loss, steps=steps, lr=lr, weight_decay=1e-4, seed=seed, min_lr=lr * 0.05)


def _data_space(x_in: torch.Tensor, ab: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
    """The U-Net's (centred) input as a noisy latent of the data: add √ᾱ_t × shift."""
    return x_in if shift is None else x_in + ab.sqrt() * shift.to(x_in.device, x_in.dtype).view(1, -1, 1, 1)


def _timesteps(t, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1).expand(len(x))


class _EpsGuide:
    """An ε hook ``− scale · √(1 − ᾱ_t) · ∇ objective(x_t, t)`` for ``denoise(..., eps_guide=...)``:
    the objective is evaluated on the U-Net's input mapped to the data's space (``shift``: the
    diffusion model's per-channel shift; None when the U-Net is not centred). ``normalise``
    rescales each sample's gradient to unit RMS first."""

    def __init__(self, scale: float, shift: torch.Tensor | None, normalise: bool = False):
        if scale < 0:
            raise ValueError(f"guidance scale must be ≥ 0, got {scale}")
        self.scale, self.shift, self.normalise = float(scale), shift, bool(normalise)

    def objective(self, x_t: torch.Tensor, t) -> torch.Tensor:   # one value per sample, higher = wanted
        raise NotImplementedError

    def objective_at(self, x_t: torch.Tensor, t, ab: torch.Tensor) -> torch.Tensor:   # ᾱ_t for noise-level models
        return self.objective(x_t, t)

    def select(self, index: slice) -> "_EpsGuide":
        return self

    def __call__(self, x_in: torch.Tensor, t, ab: torch.Tensor) -> torch.Tensor:
        if self.scale == 0:
            return torch.zeros_like(x_in)
        with torch.enable_grad():
            x = x_in.detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.objective_at(_data_space(x, ab, self.shift), t, ab).sum(), x)
        if self.normalise:
            grad = grad / grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))
        return -self.scale * (1 - ab).sqrt() * grad


class ClassifierGuide(_EpsGuide):
    """Classifier guidance toward ``labels`` (one requested class per sample): the objective is
    ``log p(label | x_t)`` of a noise-aware classifier, averaged over the views of ``symmetry``
    (:func:`symmetry_views`); ``normalise``: each sample's gradient at unit RMS (module docstring)."""

    def __init__(self, classifier: nn.Module, labels: torch.Tensor, scale: float, shift: torch.Tensor | None = None, *,
                 symmetry: str = "none", normalise: bool = False):
        super().__init__(scale, shift, normalise)
        _check_symmetry(symmetry)
        self.classifier, self.labels, self.symmetry = classifier.eval(), torch.as_tensor(labels).long(), symmetry

    def select(self, index: slice) -> "ClassifierGuide":
        return ClassifierGuide(self.classifier, self.labels[index], self.scale, self.shift, symmetry=self.symmetry,
                               normalise=self.normalise)

    def objective(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log p(label | x_t) per sample (the mean over the symmetry's views), x_t in the data's space."""
        views = symmetry_views(x_t, self.symmetry)
        logits = self.classifier(torch.cat(views), _timesteps(t, x_t).repeat(len(views)))
        logp = torch.log_softmax(logits, dim=1).view(len(views), len(x_t), -1).mean(0)
        return logp.gather(1, self.labels.to(x_t.device)[:, None]).squeeze(1)

    log_prob = objective


class DiscriminatorGuide(_EpsGuide):
    """Discriminator guidance: the objective is the realness logit of a noise-aware real-vs-generated
    discriminator (one logit, > 0 = real), i.e. ``log D / (1 − D)``."""

    def __init__(self, discriminator: nn.Module, scale: float, shift: torch.Tensor | None = None):
        super().__init__(scale, shift)
        self.discriminator = discriminator.eval()

    def objective(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """The discriminator's realness logit per sample, x_t in the data's space."""
        return self.discriminator(x_t, _timesteps(t, x_t))

    logit = objective


class OODGuide(_EpsGuide):
    """Guidance toward in-distribution latents: the objective is minus half the excess of the noisy
    Mahalanobis distance over what the training latents reach at the step's ᾱ_t
    (:meth:`~pipeline.generate.ood.MahalanobisOOD.noisy_excess`). Samples inside that region are left
    alone; those outside get the noisy Gaussian's score (scale 1: once more on top of the U-Net's)."""

    def __init__(self, ood, scale: float, shift: torch.Tensor | None = None):
        super().__init__(scale, shift)
        self.ood = ood

    def objective_at(self, x_t: torch.Tensor, t, ab: torch.Tensor) -> torch.Tensor:
        return -0.5 * self.ood.noisy_excess(x_t, ab)


class CombinedGuide:
    """The sum of several ε hooks (each with its own scale)."""

    def __init__(self, guides):
        self.guides = list(guides)

    def select(self, index: slice) -> "CombinedGuide":
        return CombinedGuide(g.select(index) for g in self.guides)

    def __call__(self, x_in: torch.Tensor, t, ab: torch.Tensor) -> torch.Tensor:
        return sum((g(x_in, t, ab) for g in self.guides), torch.zeros_like(x_in))


def save_guide_model(directory, model: CNNScorer, extra: dict | None = None) -> None:
    """``model.safetensors`` + ``config.json`` (the architecture and ``extra``, e.g. class names)."""
    from pipeline.score.nets import save_scorer

    save_scorer(directory, model, extra)


def load_guide_model(directory, device: str | torch.device = "cpu") -> tuple[CNNScorer, dict]:
    """A saved noise-aware classifier or discriminator, in eval mode, and its config; a clear error
    naming the file when it is missing or does not match its config."""
    from pipeline.score.nets import load_saved

    return load_saved(directory, device, what="guiding model")
