"""Torch classifiers of the benchmark: an attention net on latents and three CNN families on pixels.

* :class:`LatentAttention`: non-overlapping ``patch``×``patch`` latent patches as tokens (a
  strided convolution embeds them), a learned position embedding, a class token and ``depth``
  pre-norm transformer blocks; the class token's output is classified. The last block keeps its
  attention weights, so :meth:`LatentAttention.cls_attention` gives, per image, how much the
  class token attends to every patch (averaged over heads): the map the report lays over images.
* :class:`VGGNet`, :class:`ResNetNet`, :class:`MobileNet`: small members of three CNN families
  (plain 3×3 stacks with pooling; residual basic blocks; depthwise-separable blocks) for pixels.

Inputs are normalised per channel with statistics fitted on the training set (buffers, saved
with the model). :func:`fit_classifier` trains any of them with AdamW and cross-entropy on
seeded minibatches (a CPU generator: same seed, same batches on every device), optionally with
class-balanced loss weights and label-preserving flips / 90° rotations of each minibatch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.training import as_tensor, channels_last, train_steps


class _Normalised(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    @torch.no_grad()
    def fit_normalisation(self, x: torch.Tensor) -> None:
        if x.dtype == torch.uint8:   # images held as bytes (images_to_input): float64 sums, a chunk at a time
            n, total, squares = x.shape[0] * x.shape[2] * x.shape[3], 0.0, 0.0
            for i in range(0, len(x), 64):
                chunk = x[i:i + 64].double() / 255.0
                total, squares = total + chunk.sum(dim=(0, 2, 3)), squares + (chunk * chunk).sum(dim=(0, 2, 3))
            mean = total / n
            var = ((squares - n * mean * mean) / max(n - 1, 1)).clamp_min(0.0)
            self.mean.copy_(mean.view_as(self.mean).float())
            self.std.copy_(var.sqrt().view_as(self.std).float().clamp_min(1e-6))
            return
        self.mean.copy_(x.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _Block(nn.Module):
    """Pre-norm transformer block that keeps its head-averaged attention weights."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        out, self.weights = self.attn(h, h, h, need_weights=True, average_attn_weights=True)
        x = x + out
        return x + self.mlp(self.norm2(x))


class LatentAttention(_Normalised):
    def __init__(self, in_shape: tuple[int, int, int], n_classes: int, *, patch: int = 2, dim: int = 64,
                 depth: int = 2, heads: int = 4, stem: int = 0):
        c, h, w = in_shape
        if h % patch or w % patch:
            raise ValueError(f"latent side {h}×{w} is not divisible by patch {patch}")
        super().__init__(c)
        self.grid = (h // patch, w // patch)
        # ``stem`` 3×3 convolutions before the patch embedding ("early convolutions help transformers
        # see better", Xiao et al. 2021): each token then sees past its patch's border.
        layers, width = [], c
        for _ in range(stem):
            layers += [nn.Conv2d(width, dim // 2, 3, padding=1), nn.GELU()]
            width = dim // 2
        self.embed = nn.Sequential(*layers, nn.Conv2d(width, dim, kernel_size=patch, stride=patch))
        self.pos = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.normalise(x)).flatten(2).transpose(1, 2) + self.pos
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))

    @torch.no_grad()
    def cls_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(N, gh, gw): the last block's class-token attention to each patch, rows summing to ≤ 1."""
        self.eval()
        self(x)
        weights = self.blocks[-1].weights[:, 0, 1:]
        return weights.reshape(len(x), *self.grid)


def _conv(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _PixelNet(_Normalised):
    def __init__(self, features: nn.Module, width_out: int, n_classes: int, in_channels: int = 3):
        super().__init__(in_channels)
        self.features = features
        self.head = nn.Linear(width_out, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalise(x)).mean(dim=(2, 3)))


class VGGNet(_PixelNet):
    """Two 3×3 convolutions per stage, max-pooling between stages (VGG's recipe), widths w, 2w, 4w;
    ``extra`` more pooled stages at 4w for inputs larger than the recipe's (``pipeline.recipes``)."""

    def __init__(self, n_classes: int, width: int = 16, in_channels: int = 3, extra: int = 0):
        w = width
        layers = [_conv(in_channels, w), _conv(w, w), nn.MaxPool2d(2),
                  _conv(w, 2 * w), _conv(2 * w, 2 * w), nn.MaxPool2d(2),
                  _conv(2 * w, 4 * w), _conv(4 * w, 4 * w)]
        for _ in range(extra):
            layers += [nn.MaxPool2d(2), _conv(4 * w, 4 * w), _conv(4 * w, 4 * w)]
        super().__init__(nn.Sequential(*layers), 4 * w, n_classes, in_channels)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNetNet(_PixelNet):
    """A stem and three striding residual basic blocks (ResNet's recipe), widths w, 2w, 4w, 4w.

    Every block halves the grid (32 → 4 px at 32 px input): the receptive field then covers a
    whole shape, which a full-resolution first block (the earlier layout) did not, at half the cost."""

    def __init__(self, n_classes: int, width: int = 16, extra: int = 0):
        w = width
        features = nn.Sequential(_conv(3, w), _Basic(w, 2 * w, 2), _Basic(2 * w, 4 * w, 2), _Basic(4 * w, 4 * w, 2),
                                 *(_Basic(4 * w, 4 * w, 2) for _ in range(extra)))   # extra: larger inputs (pipeline.recipes)
        super().__init__(features, 4 * w, n_classes)
        # With extra blocks (inputs over 32 px), training in channels_last corrupts the heap in backward on
        # torch 2.13's CPU kernels (SIGSEGV / "double free" at 64 px and up; 32 px is fine): contiguous then.
        self.memory_format = torch.contiguous_format if extra else torch.channels_last


class _Separable(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(_conv(cin, cin, stride, groups=cin), _conv(cin, cout, k=1))


class MobileNet(_PixelNet):
    """A stem and depthwise-separable blocks (MobileNet's recipe): 3×3 per-channel, then 1×1 mixing.

    Its channels are twice the shared ``width`` (MobileNet's width multiplier): depthwise blocks are
    cheap, and at the shared width it learned least of the three families (0.58 balanced accuracy
    at width 8, mean of 3 seeds, against 0.79 at width 16, seed 0 only; 800 steps)."""

    def __init__(self, n_classes: int, width: int = 16, extra: int = 0):
        w = 2 * width
        features = nn.Sequential(_conv(3, w), _Separable(w, 2 * w, 2), _Separable(2 * w, 2 * w, 1),
                                 _Separable(2 * w, 4 * w, 2), _Separable(4 * w, 4 * w, 1),
                                 _Separable(4 * w, 4 * w, 2),
                                 *(_Separable(4 * w, 4 * w, 2) for _ in range(extra)))   # extra: larger inputs
        super().__init__(features, 4 * w, n_classes)


PIXEL_NETS = {"vgg": VGGNet, "resnet": ResNetNet, "mobilenet": MobileNet}


AUGMENTATIONS = ("none", "flip", "dihedral")


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving geometry for one minibatch (N, C, H, W): ``flip`` mirrors each image with
    probability ½, ``dihedral`` also turns it by a random multiple of 90° (the eight symmetries of
    the square: right for shapes, wrong for digits, where a turned 6 is a 9)."""
    if kind == "none":
        return x
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {kind!r}")
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if kind == "dihedral":
        turns = torch.randint(4, (len(x),), generator=gen)
        x = x.clone()
        for k in (1, 2, 3):
            x[turns == k] = torch.rot90(x[turns == k], k, (2, 3))
    return x


def balanced_class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``: n / (classes · count), 0 for absent classes."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.divide(len(y), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return torch.as_tensor(w, dtype=torch.float32)


def fit_classifier(model: _Normalised, x: np.ndarray, y: np.ndarray, *, steps: int, batch_size: int = 64,
                   lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0, device="cpu",
                   class_weight: bool = False, augment: str = "none", n_classes: int | None = None) -> list[float]:
    """AdamW (cosine-decayed learning rate) + cross-entropy for ``steps`` seeded minibatches;
    the input normalisation is fitted on ``x`` first (training data only). ``class_weight``
    weighs the loss by :func:`balanced_class_weights` (``n_classes`` defaults to ``y.max() + 1``);
    ``augment`` is applied to every minibatch (:func:`augment_batch`)."""
    xt, yt = _inputs(x), as_tensor(y, np.int64)
    model.fit_normalisation(xt)
    fmt = getattr(model, "memory_format", torch.channels_last)
    model.to(device, memory_format=fmt)
    weight = balanced_class_weights(yt.numpy(), n_classes or int(yt.max()) + 1).to(device) if class_weight else None

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(xt), (min(batch_size, len(xt)),), generator=gen)
        xb = augment_batch(_as_float(xt[idx]), augment, gen).to(device)
        xb = channels_last(xb) if fmt == torch.channels_last else xb.contiguous()
        return nn.functional.cross_entropy(model(xb), yt[idx].to(device), weight=weight)

    return train_steps(model, batch_loss, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed, min_lr=lr * 0.05)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, *, batch_size: int = 256, device="cpu") -> np.ndarray:
    model.eval()
    xt = _inputs(x)
    out = [model(_as_float(xt[i : i + batch_size]).to(device)).argmax(1).cpu() for i in range(0, len(xt), batch_size)]
    return torch.cat(out).numpy()


FLOAT_INPUT_BYTES = 2**29   # 512 MiB: 3 000 images of 32 px are 37 MB as float32; of 256 px, 2.4 GB


def images_to_input(images: np.ndarray, max_float_bytes: int = FLOAT_INPUT_BYTES) -> np.ndarray | torch.Tensor:
    """uint8 (N, H, W, 3) → (N, 3, H, W) in [0, 1]: float32 while that takes at most ``max_float_bytes``;
    beyond (SD sizes) a uint8 tensor that :func:`fit_classifier` and :func:`predict` scale a minibatch
    at a time (the same float32 values; the normalisation statistics are then summed in float64 chunks)."""
    if images.size * 4 <= max_float_bytes:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def _inputs(x) -> torch.Tensor:
    """Inputs as a tensor: uint8 images (:func:`images_to_input`) stay bytes; anything else float32."""
    return x if isinstance(x, torch.Tensor) and x.dtype == torch.uint8 else as_tensor(x)


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float() / 255.0 if batch.dtype == torch.uint8 else batch
