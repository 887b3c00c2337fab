"""Torch artifact scorers on (noisy) latents: an MLP, a small CNN, and a mixture of per-timestep experts.

Every model maps latents ``(N, C, H, W)`` and diffusion timesteps ``(N,)`` to a score ``(N,)``.
A model built with ``t_dim > 0`` is *timestep-conditioned* (one model across all noise levels:
a sinusoidal embedding of t is concatenated to the MLP's input, or added per CNN block as a
bias); with ``t_dim = 0`` it ignores t (one model per noise level). The per-channel input
normalisation is a buffer fitted on the training latents, so a saved model is self-contained.
Models are saved as ``model.safetensors`` + ``config.json`` (:func:`save_scorer`) and rebuilt
from the config (:func:`load_scorer`), never unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pipeline.io import InputError, reading
from pipeline.training import as_tensor, channels_last, train_steps

MAX_TIMESTEP = 1000.0


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps in [0, 1000) (as in DDPM), shape (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / max(half, 1))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return nn.functional.pad(emb, (0, dim - 2 * half))


def channel_stats(latents) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) std of ``latents`` (N, C, H, W), or of an iterable of such
    chunks, summed in float64 so that memory holds one chunk."""
    if torch.is_tensor(latents):
        return latents.mean(dim=(0, 2, 3)), latents.std(dim=(0, 2, 3))
    total = square = None
    n = 0
    for part in latents:
        p = part.double().transpose(0, 1).reshape(part.shape[1], -1)
        total = p.sum(1) if total is None else total + p.sum(1)
        square = (p * p).sum(1) if square is None else square + (p * p).sum(1)
        n += p.shape[1]
    if total is None:
        raise ValueError("no latents to fit the normalisation on")
    mean = total / n
    std = ((square - n * mean * mean) / max(n - 1, 1)).clamp_min(0).sqrt()
    return mean.float(), std.float()


class _Normalised(nn.Module):
    """Holds per-channel mean/std buffers; :meth:`fit_normalisation` sets them from training latents."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, in_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, in_channels, 1, 1))

    def fit_normalisation(self, latents) -> None:
        """Set the buffers from ``latents``: a tensor, or an iterable of chunks (:func:`channel_stats`)."""
        self.set_normalisation(*channel_stats(latents))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape).clamp_min(1e-6))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLPScorer(_Normalised):
    def __init__(self, in_shape: list[int], hidden: list[int], t_dim: int = 0, dropout: float = 0.1):
        super().__init__(in_shape[0])
        self.config = {"kind": "mlp", "in_shape": list(in_shape), "hidden": list(hidden), "t_dim": t_dim, "dropout": dropout}
        layers, width = [], int(np.prod(in_shape)) + t_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.t_dim = t_dim

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.normalise(x).flatten(1)
        if self.t_dim:
            h = torch.cat([h, timestep_embedding(t, self.t_dim)], dim=1)
        return self.net(h).squeeze(1)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int, groups: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(min(groups, c_out), c_out)
        self.t_proj = nn.Linear(t_dim, c_out) if t_dim else None

    def forward(self, x, t_emb):
        h = self.norm(self.conv(x))
        if self.t_proj is not None:
            h = h + self.t_proj(t_emb)[:, :, None, None]
        return nn.functional.silu(h)


class CNNScorer(_Normalised):
    """Conv blocks on the latent grid, each halving it down to 2×2 (normalising a 1×1 map would erase
    it), then global average pooling and a linear head: one score (N,), or ``outputs`` > 1 logits
    (N, outputs) for the noise-aware classifiers that guide sampling (:mod:`pipeline.generate.guidance`)."""

    def __init__(self, in_shape: list[int], channels: list[int], t_dim: int = 0, groups: int = 8, outputs: int = 1):
        super().__init__(in_shape[0])
        self.config = {"kind": "cnn", "in_shape": list(in_shape), "channels": list(channels), "t_dim": t_dim,
                       "groups": groups, **({"outputs": outputs} if outputs != 1 else {})}
        self.outputs = outputs
        self.t_dim = t_dim
        widths = [in_shape[0], *channels]
        sides = [in_shape[-1]]
        for _ in channels:
            sides.append(sides[-1] // 2 if sides[-1] > 2 else sides[-1])
        self.blocks = nn.ModuleList(_Block(a, b, t_dim, groups, stride=2 if s_in > s_out else 1)
                                    for a, b, s_in, s_out in zip(widths, widths[1:], sides, sides[1:]))
        self.head = nn.Linear(widths[-1], outputs)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_emb = timestep_embedding(t, self.t_dim) if self.t_dim else None
        h = self.normalise(x)
        for block in self.blocks:
            h = block(h, t_emb)
        out = self.head(h.mean(dim=(2, 3)))
        return out.squeeze(1) if self.outputs == 1 else out


class ExpertMixture(nn.Module):
    """One expert per training timestep; a query t is scored by the two experts whose timesteps
    bracket it, weighted linearly (the nearest one outside the range)."""

    def __init__(self, experts: list[nn.Module], timesteps: list[float]):
        super().__init__()
        order = np.argsort(timesteps)
        self.experts = nn.ModuleList(experts[i] for i in order)
        self.timesteps = [float(timesteps[i]) for i in order]
        self.config = {"kind": "mixture", "timesteps": self.timesteps, "experts": [e.config for e in self.experts]}

    def weights(self, t: torch.Tensor) -> torch.Tensor:
        """(N, K) interpolation weights over the experts."""
        grid = torch.tensor(self.timesteps, dtype=torch.float32, device=t.device)
        tc = t.float().clamp(grid[0], grid[-1])
        w = torch.zeros(len(t), len(grid), device=t.device)
        if len(grid) == 1:
            return w + 1.0
        hi = torch.searchsorted(grid, tc).clamp(1, len(grid) - 1)
        lo = hi - 1
        frac = (tc - grid[lo]) / (grid[hi] - grid[lo])
        w.scatter_(1, lo[:, None], (1 - frac)[:, None])
        w.scatter_add_(1, hi[:, None], frac[:, None])
        return w

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        w = self.weights(t)
        out = torch.zeros(len(x), device=x.device)
        for k, expert in enumerate(self.experts):
            use = w[:, k] > 0
            if use.any():
                out[use] += w[use, k] * expert(x[use], t[use])
        return out


def build_scorer(config: dict) -> nn.Module:
    """A model from its ``config`` (as written by :func:`save_scorer`)."""
    kind = config.get("kind")
    if kind == "mlp":
        return MLPScorer(config["in_shape"], config["hidden"], config["t_dim"], config["dropout"])
    if kind == "cnn":
        return CNNScorer(config["in_shape"], config["channels"], config["t_dim"], config["groups"], config.get("outputs", 1))
    if kind == "mixture":
        return ExpertMixture([build_scorer(c) for c in config["experts"]], config["timesteps"])
    raise ValueError(f"unknown scorer kind {kind!r} in config (expected mlp, cnn or mixture)")


def forward_noise(clean: torch.Tensor, alpha_bars: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``√ᾱ·x0 + √(1−ᾱ)·ε`` with fresh ε from ``gen``, one ᾱ per latent: the marginal of what every
    scheduler's U-Net input holds at that timestep of a run ending at ``clean`` (the proxy)."""
    a = alpha_bars.reshape(-1, *([1] * (clean.ndim - 1)))
    return a.sqrt() * clean + (1 - a).sqrt() * torch.randn(clean.shape, generator=gen)


def train_scorer(model: nn.Module, latents: np.ndarray, timesteps: np.ndarray, targets: np.ndarray, *, steps: int,
                 batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0,
                 device: str | torch.device = "cpu", alpha_bars: np.ndarray | None = None,
                 rows: np.ndarray | None = None) -> list[float]:
    """Fit ``model`` with AdamW on the Huber loss for ``steps`` minibatches (cosine-decayed learning
    rate); returns the loss per step.

    ``rows`` (optional) maps each training row to its latent: row ``i`` is ``latents[rows[i]]`` with
    ``timesteps[i]``, ``targets[i]`` (and ``alpha_bars[i]``), so one clean latent can serve many
    timesteps without being copied (the timestep-conditioned scorer trains on every level).

    With ``alpha_bars`` (one per row), ``latents`` are *clean* and every minibatch is noised afresh
    to its row's ᾱ (:func:`forward_noise`): the model sees a new noise draw each time instead of
    memorising one frozen draw per image. Minibatches and noise come from a seeded CPU generator,
    so the same seed gives the same run on every device. The input normalisation is fitted on the
    (noised once, when ``alpha_bars`` is given) training latents first.
    """
    x, t, y = as_tensor(latents), as_tensor(timesteps), as_tensor(targets)
    ab = None if alpha_bars is None else as_tensor(alpha_bars)
    index = None if rows is None else torch.from_numpy(np.asarray(rows, dtype=np.int64))
    n = len(x) if index is None else len(index)
    if not (n == len(t) == len(y)) or (ab is not None and len(ab) != n):
        raise ValueError(f"{n} {'latents' if index is None else 'rows'}, {len(t)} timesteps, {len(y)} targets"
                         f"{'' if ab is None else f' and {len(ab)} alpha_bars'}: they must match")
    if index is not None and len(index) and not 0 <= int(index.min()) <= int(index.max()) < len(x):
        raise ValueError(f"rows must index the {len(x)} latents (0..{len(x) - 1})")

    def take(idx: torch.Tensor) -> torch.Tensor:
        return x[idx] if index is None else x[index[idx]]

    gen0 = torch.Generator().manual_seed(seed)
    if index is None:
        fit_x = x if ab is None else forward_noise(x, ab, gen0)
    else:   # chunk by chunk (noised afresh): one chunk of rows in memory, not a copy per timestep
        chunks = (torch.arange(a, min(a + 4096, n)) for a in range(0, n, 4096))
        fit_x = (take(i) if ab is None else forward_noise(take(i), ab[i], gen0) for i in chunks)
    stats = channel_stats(fit_x)
    parts = model.experts if isinstance(model, ExpertMixture) else [model]
    for part in parts:
        part.set_normalisation(*stats)
    model.to(device, memory_format=torch.channels_last)

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(n, (min(batch_size, n),), generator=gen)
        xb = take(idx) if ab is None else forward_noise(take(idx), ab[idx], gen)
        return nn.functional.huber_loss(model(channels_last(xb.to(device)), t[idx].to(device)), y[idx].to(device))

    return train_steps(model, batch_loss, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed, min_lr=lr * 0.05)


class ArtifactScorer:
    """A loaded scorer: ``score(latents, timestep)`` → predicted artifact scores in [0, max_score].

    ``latents``: scaled latents (N, C, H, W) or one (C, H, W), numpy or torch, as a generation
    loop holds them at that step; ``timestep``: the diffusers timestep (int, or one per latent).
    """

    def __init__(self, model: nn.Module, config: dict):
        self.model = model.eval()
        self.config = config
        self.max_score = float(config.get("max_score", 5.0))

    @torch.no_grad()
    def score(self, latents, timestep) -> np.ndarray:
        x = torch.as_tensor(np.asarray(latents.detach().cpu() if torch.is_tensor(latents) else latents, dtype=np.float32))
        if x.ndim == 3:
            x = x[None]
        expected = self.config["model"].get("in_shape") or self.config["model"]["experts"][0]["in_shape"]
        if list(x.shape[1:]) != list(expected):
            raise ValueError(f"latents of shape {tuple(x.shape[1:])} given; this scorer was trained on {tuple(expected)}")
        t = torch.as_tensor(np.broadcast_to(np.asarray(timestep, dtype=np.float32), (len(x),)).copy())
        device = next(self.model.parameters()).device
        return self.model(x.to(device), t.to(device)).clamp(0, self.max_score).cpu().numpy()


def save_scorer(directory: str | Path, model: nn.Module, extra: dict | None = None) -> None:
    """``model.safetensors`` (weights and normalisation buffers) + ``config.json`` (architecture + ``extra``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model": model.config, **(extra or {})}, indent=2) + "\n")


def load_saved(directory: str | Path, device: str | torch.device = "cpu", what: str = "scorer") -> tuple[nn.Module, dict]:
    """A network :func:`save_scorer` wrote (a scorer, or a guiding classifier / discriminator), rebuilt
    from its config with every tensor loaded strictly, on ``device`` in eval mode, and its config.
    A missing file raises ``FileNotFoundError`` naming it; weights that do not fit the config a
    ``ValueError`` naming both files."""
    directory = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise InputError(f"{directory / name} is missing: not a saved {what} directory")
    with reading(directory / "config.json", f"{what} config"):
        config = json.loads((directory / "config.json").read_text())
        model = build_scorer(config["model"])
    with reading(directory / "model.safetensors", f"{what} weights file"):
        weights = load_file(str(directory / "model.safetensors"))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{directory / 'model.safetensors'} does not match {directory / 'config.json'}: "
                         f"{str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), config


def load_scorer(directory: str | Path, device: str | torch.device = "cpu") -> ArtifactScorer:
    """Rebuild a saved scorer from its config and load its weights (strictly: every tensor must match)."""
    return ArtifactScorer(*load_saved(directory, device))
