"""Latent → RGB linear approximation: ``rgb = z (H×W×C) @ F (C×3) + bias``, in [-1, 1].

Used for cheap previews mid-generation (the public artifact estimator fed such 8×-smaller
images to CLIP). For SD 1.x there are published factors; for any VAE, including one trained
here, :func:`fit_latent_rgb` fits them by least squares from the *training* latents to the
images area-downsampled to the latent grid. Stored as JSON (never pickled).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.io import InputError, reading

# Published SD 1.x factors (rows: latent channels 1..4, columns: R, G, B), no bias.
SD15_FACTORS = {
    "v1_4_forum": [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]],
    "comfyui_sd15": [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
                     [-0.2120, -0.2616, -0.7177]],
}
SD15_PREVIEW = "comfyui_sd15"   # the set previews use for an SD 1.x VAE (the closer fit in public comparisons)


@dataclass
class LatentRGB:
    factors: list[list[float]]   # (C, 3)
    bias: list[float]            # (3,)
    source: str = "fitted"

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        """(N, C, h, w) scaled latents → (N, h, w, 3) float RGB in [-1, 1] (clipped)."""
        F, b = np.asarray(self.factors, dtype=np.float64), np.asarray(self.bias, dtype=np.float64)
        if latents.shape[1] != len(F):
            raise ValueError(f"latents have {latents.shape[1]} channels but the factors expect {len(F)}")
        return np.clip(np.einsum("nchw,ck->nhwk", latents.astype(np.float64), F) + b, -1.0, 1.0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "LatentRGB":
        with reading(path, "latent→RGB preview file (re-run the analyze stage)"):
            data = json.loads(Path(path).read_text())
            factors, bias = np.asarray(data["factors"], dtype=float), np.asarray(data["bias"], dtype=float)
            if factors.ndim != 2 or factors.shape[1] != 3 or bias.shape != (3,) or not np.isfinite(factors).all():
                raise InputError(f"{path}: factors of shape {factors.shape} and bias of shape {bias.shape}, expected "
                                 "(C, 3) and (3,), finite")
        return cls(factors=data["factors"], bias=data["bias"], source=data.get("source", "fitted"))


def downsample_images(images: np.ndarray, side: int, chunk_bytes: int = 2**27) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, side, side, 3) float in [-1, 1] by block averaging (H divisible by side).
    Images go through float64 ``chunk_bytes`` at a time (128 MiB: 5 461 images of 32 px, 85 of 256 px),
    never all at once (3 000 train images of 256 px are 4.7 GB in float64)."""
    n, h, w, _ = images.shape
    if h % side or w % side:
        raise ValueError(f"image side {h}×{w} is not a multiple of the latent side {side}")
    step = max(1, chunk_bytes // (h * w * 3 * 8))
    blocks = np.empty((n, side, side, 3), dtype=np.float64)
    for i in range(0, n, step):
        part = images[i:i + step]
        blocks[i:i + step] = part.astype(np.float64).reshape(len(part), side, h // side, side, w // side, 3).mean(axis=(2, 4))
    return blocks / 127.5 - 1.0


def fit_latent_rgb(latents: np.ndarray, images: np.ndarray) -> LatentRGB:
    """Least-squares (C×3 factors + bias) from latent pixels to block-averaged image pixels."""
    target = downsample_images(images, latents.shape[-1]).reshape(-1, 3)
    design = np.moveaxis(latents, 1, -1).reshape(-1, latents.shape[1]).astype(np.float64)
    design = np.hstack([design, np.ones((len(design), 1))])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return LatentRGB(factors=coef[:-1].tolist(), bias=coef[-1].tolist())


def preview_error(rgb: LatentRGB, latents: np.ndarray, images: np.ndarray) -> dict:
    """RMSE (on [-1, 1]) and PSNR (dB, peak 2) of the preview against the downsampled images."""
    target = downsample_images(images, latents.shape[-1])
    rmse = float(np.sqrt(((rgb(latents) - target) ** 2).mean()))
    return {"rmse": rmse, "psnr": float(20 * np.log10(2.0 / max(rmse, 1e-10)))}


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round((np.clip(rgb, -1, 1) + 1.0) * 127.5).astype(np.uint8)


def published_rgb(name: str) -> LatentRGB:
    """One of the published SD 1.x factor sets (no bias) as a preview."""
    if name not in SD15_FACTORS:
        raise ValueError(f"unknown published factors {name!r}; known: {', '.join(SD15_FACTORS)}")
    return LatentRGB(factors=SD15_FACTORS[name], bias=[0.0, 0.0, 0.0], source=name)


def compare_published(fitted: LatentRGB, latents: np.ndarray, images: np.ndarray) -> dict:
    """How far each published SD 1.x factor set is from ``fitted``: its preview error on
    ``latents``/``images`` and the relative Frobenius distance ‖F_pub − F_fit‖ / ‖F_fit‖."""
    fit = np.asarray(fitted.factors)
    out = {}
    for name in SD15_FACTORS:
        pub = published_rgb(name)
        out[name] = {**preview_error(pub, latents, images),
                     "relative_factor_distance": float(np.linalg.norm(np.asarray(pub.factors) - fit) / np.linalg.norm(fit))}
    return out
