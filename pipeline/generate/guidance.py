"""Models that steer sampling, and the ε hook that turns their gradients into guidance.

A **noise-aware classifier** is the timestep-conditioned CNN of the artifact scorer
(:class:`~pipeline.score.nets.CNNScorer`) with one logit per class, trained on training latents
noised afresh every minibatch to uniformly drawn timesteps of SD's schedule (what a sampler holds
at any step). :class:`ClassifierGuide` is classifier guidance (Dhariwal & Nichol 2021):
``ε' = ε − s · √(1 − ᾱ_t) · ∇ log p(y | x_t)``, which moves every step of any scheduler toward
class ``y`` with strength ``s``. The classifier works on noisy latents in the data's space; the
U-Net's input is centred (:class:`~pipeline.generate.unet.LatentDiffusion`), so the hook adds
``√ᾱ_t × shift`` before it asks the classifier (the gradient is the same in both spaces).
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


def train_noise_aware(model: CNNScorer, latents: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int = 64,
                      lr: float = 2e-3, seed: int = 0, device: str | torch.device = "cpu", class_weight: bool = True,
                      max_timestep: int = 1000) -> list[float]:
    """Cross-entropy on clean latents noised afresh every minibatch to timesteps drawn uniformly from
    ``0 … max_timestep − 1`` (``√ᾱ_t·x0 + √(1−ᾱ_t)·ε``); batches, timesteps and noise from a seeded CPU
    generator. ``class_weight`` weighs classes by their inverse frequency. Returns the loss per step."""
    from pipeline.classify.nets import balanced_class_weights

    x, y = as_tensor(latents), as_tensor(labels, np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} latents but {len(y)} labels")
    abar = sd_alphas_cumprod()
    model.fit_normalisation(x)
    model.to(device, memory_format=torch.channels_last)
    weight = balanced_class_weights(y.numpy(), model.outputs).to(device) if class_weight else None

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
        t = torch.randint(0, max_timestep, (len(idx),), generator=gen)
        xt = forward_noise(x[idx], abar[t], gen)
        logits = model(channels_last(xt.to(device)), t.float().to(device))
        return nn.functional.cross_entropy(logits, y[idx].to(device), weight=weight)

    return train_steps(model, batch_loss, steps=steps, lr=lr, weight_decay=1e-4, seed=seed, min_lr=lr * 0.05)


class ClassifierGuide:
    """The ε correction ``− scale · √(1 − ᾱ_t) · ∇ log p(labels | x_t)`` of a noise-aware classifier,
    for :func:`pipeline.generate.sampling.denoise` (``eps_guide=``). ``labels``: one requested class
    per sample; ``shift``: the diffusion model's per-channel shift (None: the U-Net is not centred)."""

    def __init__(self, classifier: nn.Module, labels: torch.Tensor, scale: float, shift: torch.Tensor | None = None):
        if scale < 0:
            raise ValueError(f"guidance scale must be ≥ 0, got {scale}")
        self.classifier, self.labels, self.scale = classifier.eval(), torch.as_tensor(labels).long(), float(scale)
        self.shift = shift

    def select(self, index: slice) -> "ClassifierGuide":
        return ClassifierGuide(self.classifier, self.labels[index], self.scale, self.shift)

    def log_prob(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log p(label | x_t) per sample, x_t in the data's space."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x_t.device).reshape(-1).expand(len(x_t))
        logits = self.classifier(x_t, t)
        return torch.log_softmax(logits, dim=1).gather(1, self.labels.to(x_t.device)[:, None]).squeeze(1)

    def __call__(self, x_in: torch.Tensor, t, ab: torch.Tensor) -> torch.Tensor:
        if self.scale == 0:
            return torch.zeros_like(x_in)
        with torch.enable_grad():
            x = x_in.detach().requires_grad_(True)
            data = x if self.shift is None else x + ab.sqrt() * self.shift.to(x.device, x.dtype).view(1, -1, 1, 1)
            grad, = torch.autograd.grad(self.log_prob(data, t).sum(), x)
        return -self.scale * (1 - ab).sqrt() * grad
