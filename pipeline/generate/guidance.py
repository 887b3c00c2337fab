"""Models that steer sampling, and the ε hooks that turn their gradients into guidance.

A **noise-aware classifier** is the timestep-conditioned CNN of the artifact scorer
(:class:`~pipeline.score.nets.CNNScorer`) with one logit per class, trained on training latents
noised afresh every minibatch to uniformly drawn timesteps of SD's schedule (what a sampler holds
at any step). :class:`ClassifierGuide` is classifier guidance (Dhariwal & Nichol 2021):
``ε' = ε − s · √(1 − ᾱ_t) · ∇ log p(y | x_t)``, which moves every step of any scheduler toward
class ``y`` with strength ``s``. The classifier works on noisy latents in the data's space; the
U-Net's input is centred (:class:`~pipeline.generate.unet.LatentDiffusion`), so the hook adds
``√ᾱ_t × shift`` before it asks the classifier (the gradient is the same in both spaces).

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

from pipeline.latents.noising import SD_TRAIN_SCHEDULE
from pipeline.score.nets import CNNScorer, forward_noise
from pipeline.training import as_tensor, channels_last, train_steps


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
                      max_timestep: int = 1000) -> list[float]:
    """Train ``model`` on clean latents noised afresh every minibatch to timesteps drawn uniformly from
    ``0 … max_timestep − 1`` (``√ᾱ_t·x0 + √(1−ᾱ_t)·ε``): cross-entropy over its logits, or, for a
    one-logit model, binary cross-entropy with ``labels`` 1 = real, 0 = generated. Batches, timesteps
    and noise come from a seeded CPU generator. ``class_weight`` weighs classes by their inverse
    frequency. Returns the loss per step."""
    from pipeline.classify.nets import balanced_class_weights

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
        xt = forward_noise(x[idx], abar[t], gen)
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
    diffusion model's per-channel shift; None when the U-Net is not centred)."""

    def __init__(self, scale: float, shift: torch.Tensor | None):
        if scale < 0:
            raise ValueError(f"guidance scale must be ≥ 0, got {scale}")
        self.scale, self.shift = float(scale), shift

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
        return -self.scale * (1 - ab).sqrt() * grad


class ClassifierGuide(_EpsGuide):
    """Classifier guidance toward ``labels`` (one requested class per sample): the objective is
    ``log p(label | x_t)`` of a noise-aware classifier."""

    def __init__(self, classifier: nn.Module, labels: torch.Tensor, scale: float, shift: torch.Tensor | None = None):
        super().__init__(scale, shift)
        self.classifier, self.labels = classifier.eval(), torch.as_tensor(labels).long()

    def select(self, index: slice) -> "ClassifierGuide":
        return ClassifierGuide(self.classifier, self.labels[index], self.scale, self.shift)

    def objective(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log p(label | x_t) per sample, x_t in the data's space."""
        logits = self.classifier(x_t, _timesteps(t, x_t))
        return torch.log_softmax(logits, dim=1).gather(1, self.labels.to(x_t.device)[:, None]).squeeze(1)

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
