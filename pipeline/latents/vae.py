"""Build, train and load diffusers VAEs, and move images to scaled latents and back.

Latents are always *scaled* (``z = raw * scaling_factor``), as Stable Diffusion's U-Net sees
them; the factor is read from the model's config, never hard-coded. For a VAE trained here
the factor is computed from the training latents (1 / std) and written into its config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, AutoencoderTiny
from tqdm.auto import tqdm

from pipeline.io import InputError, reading

VAE_KINDS = {"kl": AutoencoderKL, "tiny": AutoencoderTiny}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SD15_SCALING_FACTOR = 0.18215


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float32 (N, 3, H, W) in [-1, 1], the range diffusers VAEs expect."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] → uint8 (N, H, W, 3), clipped."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def build_vae(
    *,
    block_out_channels: list[int],
    latent_channels: int = 4,
    layers_per_block: int = 1,
    norm_num_groups: int = 16,
    sample_size: int = 32,
    mid_block_add_attention: bool = False,
) -> AutoencoderKL:
    """A small randomly initialised ``AutoencoderKL``; each extra block halves the latent side."""
    n = len(block_out_channels)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
        mid_block_add_attention=mid_block_add_attention,
        scaling_factor=1.0,
    )


class PretrainedVaeError(RuntimeError):
    """A pretrained VAE cannot be loaded: not a readable model folder, or not the expected kind."""


def load_vae(directory: str | Path, kind: str = "kl", *, subfolder: str | None = None, dtype=torch.float32,
             name: str | None = None):
    """Load a pretrained VAE from a local ``directory`` with ``from_pretrained`` (safetensors only): a
    folder written by ``save_pretrained``, or a Hub snapshot ``pipeline.data.hub.hub_snapshot`` fetched.
    ``name`` (default: the folder) is what errors call it, e.g. the Hub id.

    The config is read first, so a wrong ``kind`` fails with a clear message before the weights load."""
    if kind not in VAE_KINDS:
        raise ValueError(f"vae kind must be one of {sorted(VAE_KINDS)}, got {kind!r}")
    cls = VAE_KINDS[kind]
    kwargs = {"subfolder": subfolder} if subfolder else {}
    path_or_id = str(directory)
    where = f"{name or path_or_id}{'/' + subfolder if subfolder else ''}"
    if not Path(path_or_id).is_dir():
        raise PretrainedVaeError(f"vae.id {where}: not a local directory")
    try:
        config = cls.load_config(path_or_id, **kwargs)
    except (OSError, ValueError) as exc:
        raise PretrainedVaeError(f"vae.id {where}: cannot read its config.json ({exc})") from exc
    name = config.get("_class_name")
    if name and name != cls.__name__:
        kinds = {c.__name__: k for k, c in VAE_KINDS.items()}
        hint = f"set vae.kind to {kinds[name]!r}" if name in kinds else f"it is not one of {sorted(kinds)}"
        raise PretrainedVaeError(f"vae.id {where} is a {name}, but vae.kind {kind!r} expects a {cls.__name__}: {hint}")
    try:
        return cls.from_pretrained(path_or_id, torch_dtype=dtype, use_safetensors=True, **kwargs)   # never a pickle
    except (OSError, ValueError) as exc:
        raise PretrainedVaeError(f"vae.id {where}: cannot load its weights ({exc})") from exc


def load_saved_vae(directory: str | Path, device: torch.device | str = "cpu", dtype: str = "float32"):
    """Load a VAE written by ``save_pretrained`` on ``device`` in ``dtype`` (a ``DTYPES`` name);
    its class is read from ``config.json``. Encoding and decoding return float32 whatever the dtype."""
    config_path = Path(directory) / "config.json"
    if not config_path.is_file():
        raise InputError(f"{config_path} not found: run the vae stage first")
    with reading(config_path, "VAE config"):
        name = json.loads(config_path.read_text()).get("_class_name")
    classes = {cls.__name__: cls for cls in VAE_KINDS.values()}
    if name not in classes:
        raise InputError(f"{config_path}: _class_name {name!r} is not one of {sorted(classes)}")
    with reading(directory, "VAE folder (config.json + diffusion_pytorch_model.safetensors; re-run the vae stage)"):
        vae = classes[name].from_pretrained(directory, torch_dtype=DTYPES[dtype], use_safetensors=True)
    return vae.to(device).eval()


def configure_tiling(vae, mode: str, image_side: int) -> bool:
    """Tiled, one-image-at-a-time encode/decode (diffusers' ``enable_tiling`` / ``enable_slicing``)
    for images larger than the model's tile size (``auto``), always (``on``) or never (``off``).

    Tiles bound the activation memory of a 1024 px image to that of one tile at a small cost in
    seams; below the tile size diffusers does not tile, so ``on`` then only slices batches.
    Returns whether tiling is on."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"tiling must be auto, on or off, got {mode!r}")
    tile = getattr(vae, "tile_sample_min_size", None) or getattr(vae.config, "sample_size", image_side)
    tile = tile[0] if isinstance(tile, (list, tuple)) else tile
    use = mode == "on" or (mode == "auto" and image_side > tile)
    if use:
        vae.enable_tiling()
        vae.enable_slicing()
    return use


def is_sd15_vae(vae) -> bool:
    """An ``AutoencoderKL`` with SD 1.x's 4 latent channels and scaling factor 0.18215 (TAESD's config
    cannot tell SD 1.x from SDXL latents: choose ``vae.preview: sd15`` for it explicitly)."""
    cfg = vae.config
    return (isinstance(vae, AutoencoderKL) and cfg.latent_channels == 4
            and abs(float(cfg.scaling_factor) - SD15_SCALING_FACTOR) < 1e-6)


def downsampling_factor(vae) -> int:
    """Pixel side per latent cell: 2^(blocks − 1) for diffusers' KL and tiny VAEs (8 for SD and TAESD)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


# Encode / decode batches follow a memory budget, not a fixed image count: a full-resolution decoder
# block of SD's VAE holds 128 channels × H × W floats per image (256 px: ~180 MB of activations per
# image, measured; TAESD at 512 px ~270 MB), so the 64 images that suit 32 px would need 11+ GB.
VAE_MEMORY_ENV = "LATENT_LAB_VAE_MEMORY_MB"
DEFAULT_VAE_MEMORY_MB = 1024
ACTIVATIONS_PER_PIXEL = 6   # full-resolution tensors alive at once (measured peak ÷ one tensor: 5 for KL, 4 for TAESD)


def full_resolution_channels(vae) -> int:
    """Channels of the VAE's full-resolution blocks (its widest activations per pixel)."""
    return int(vae.config.block_out_channels[0])


def memory_batch(vae, image_side: int, cap: int = 64, budget_mb: float | None = None) -> int:
    """Images per encode / decode batch so that activations stay within ``budget_mb`` (default
    ``$LATENT_LAB_VAE_MEMORY_MB`` or 1 024 MiB), at most ``cap``: 64 at 32 px, 5 for SD's VAE at 256 px,
    1 at 512 px. Batching does not change the outputs (every layer acts per image)."""
    if budget_mb is None:
        raw = os.environ.get(VAE_MEMORY_ENV, "").strip()
        try:
            budget_mb = float(raw) if raw else DEFAULT_VAE_MEMORY_MB
        except ValueError:
            raise ValueError(f"{VAE_MEMORY_ENV}={raw!r} is not a number of MiB") from None
    per_image = ACTIVATIONS_PER_PIXEL * 4 * full_resolution_channels(vae) * image_side ** 2
    return int(max(1, min(cap, budget_mb * 2**20 // per_image)))


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@dataclass
class TrainResult:
    steps: int
    losses: list[float]  # mean reconstruction MSE per logging window
    log_every: int


def train_vae(
    vae: AutoencoderKL,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    seed: int,
    device: torch.device,
    log_every: int = 25,
) -> TrainResult:
    """Train ``vae`` on ``images`` ((N, 3, H, W) in [-1, 1]) with MSE + ``kl_weight`` · KL.

    A fixed number of steps (not a time budget) keeps the run deterministic for a seed. Random
    horizontal flips are the only augmentation. The learning rate decays with a cosine schedule.
    """
    gen = torch.Generator().manual_seed(seed)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    losses, window = [], []
    n = images.shape[0]
    for step in tqdm(range(steps), desc="train vae", unit="step", mininterval=2.0):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        x = images[idx]
        flip = torch.rand(batch_size, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=gen)
        recon = vae.decode(z).sample
        mse = torch.nn.functional.mse_loss(recon, x)
        loss = mse + kl_weight * posterior.kl().mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        window.append(mse.item())
        if len(window) == log_every or step == steps - 1:
            losses.append(float(np.mean(window)))
            window = []
    vae.eval()
    return TrainResult(steps=steps, losses=losses, log_every=log_every)


def _raw_latents(vae, x: torch.Tensor, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    if isinstance(vae, AutoencoderTiny):
        return vae.encode(x).latents
    dist = vae.encode(x).latent_dist
    return dist.sample(generator=generator) if sample else dist.mode()


@torch.no_grad()
def encode_images(
    vae,
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    sample: bool = False,
    generator: torch.Generator | None = None,
    scaling_factor: float | None = None,
    desc: str = "encode",
    progress: bool = True,
) -> torch.Tensor:
    """Scaled latents of ``images`` ((N, 3, H, W) in [-1, 1]); ``latent_dist.mode()`` unless ``sample``;
    ``progress=False`` hides the bar (a caller that streams keeps its own). At most ``batch_size``
    images at once, fewer where :func:`memory_batch` says so."""
    sf = vae.config.scaling_factor if scaling_factor is None else scaling_factor
    device, dtype = vae.device, vae.dtype
    batch_size = min(batch_size, memory_batch(vae, images.shape[-1], cap=batch_size))
    out = []
    for sl in tqdm(list(_batches(images.shape[0], batch_size)), desc=desc, unit="batch", mininterval=2.0,
                   disable=not progress):
        x = images[sl].to(device=device, dtype=dtype)
        out.append((_raw_latents(vae, x, sample, generator) * sf).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def iter_decoded(vae, latents: torch.Tensor, *, batch_size: int = 64, desc: str = "decode",
                 progress: bool = True) -> Iterator[torch.Tensor]:
    """Images in [-1, 1] from scaled latents (divided by the config's scaling factor first), a batch at a
    time: at most ``batch_size`` latents, fewer where :func:`memory_batch` says so."""
    sf = vae.config.scaling_factor
    device, dtype = vae.device, vae.dtype
    side = latents.shape[-1] * downsampling_factor(vae)
    batch_size = min(batch_size, memory_batch(vae, side, cap=batch_size))
    for sl in tqdm(list(_batches(latents.shape[0], batch_size)), desc=desc, unit="batch", mininterval=2.0,
                   disable=not progress):
        z = latents[sl].to(device=device, dtype=dtype) / sf
        yield vae.decode(z).sample.float().cpu()


def decode_latents(vae, latents: torch.Tensor, *, batch_size: int = 64, desc: str = "decode",
                   progress: bool = True) -> torch.Tensor:
    """Images in [-1, 1] (float) from scaled latents: every image at once, for callers that need the
    float pixels; :func:`decode_to_uint8` holds a quarter of the memory."""
    return torch.cat(list(iter_decoded(vae, latents, batch_size=batch_size, desc=desc, progress=progress)))


def decode_to_uint8(vae, latents: torch.Tensor, *, batch_size: int = 64, desc: str = "decode",
                    progress: bool = True) -> np.ndarray:
    """uint8 images (N, H, W, 3) from scaled latents, each batch converted as it comes: memory holds the
    uint8 images and one batch of float activations, never all images in float."""
    parts = [tensor_to_images(x) for x in iter_decoded(vae, latents, batch_size=batch_size, desc=desc, progress=progress)]
    if not parts:
        side = latents.shape[-1] * downsampling_factor(vae)
        return np.zeros((0, side, side, 3), np.uint8)
    return np.concatenate(parts)


def encode_batches(vae, batches, *, sample: bool = False, generator: torch.Generator | None = None):
    """Stream ``batches`` (anything with ``.images``, uint8 (N, H, W, 3), e.g. the image store's
    :func:`~pipeline.data.store.iter_image_batches`) through the VAE: yields, batch by batch, the
    batch, its scaled latents (N, C, H, W float32 numpy) and its reconstruction (uint8, as the
    images). Each batch is encoded and decoded whole, so memory holds one batch of pixels; with
    the image store's batches these are the latents :func:`encode_images` gives for the split."""
    for batch in batches:
        x = images_to_tensor(batch.images)
        z = encode_images(vae, x, batch_size=len(x), sample=sample, generator=generator, progress=False)
        recon = tensor_to_images(decode_latents(vae, z, batch_size=len(x), progress=False))
        yield batch, z.numpy(), recon


def fit_scaling_factor(vae, images: torch.Tensor, batch_size: int = 64) -> float:
    """1 / std of the unscaled latent means of ``images``: scaled latents get unit variance."""
    raw = encode_images(vae, images, batch_size=batch_size, scaling_factor=1.0, desc="scaling factor")
    return float(1.0 / raw.std())
