"""Artifact-severity regressors on (noisy) latents, stored as safetensors + json, never pickles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass
class LinearScorer:
    """``score = ((z − mean) / scale) · coef + intercept`` on flattened latents."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit_ridge(cls, X: np.ndarray, y: np.ndarray, alpha: float) -> "LinearScorer":
        pipe = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X, y)
        scaler, ridge = pipe.steps[0][1], pipe.steps[1][1]
        return cls(scaler.mean_, scaler.scale_, ridge.coef_, float(ridge.intercept_))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.mean": self.mean.astype(np.float32),
            f"{prefix}.scale": self.scale.astype(np.float32),
            f"{prefix}.coef": self.coef.astype(np.float32),
            f"{prefix}.intercept": np.array([self.intercept], dtype=np.float32),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str) -> "LinearScorer":
        return cls(
            tensors[f"{prefix}.mean"].astype(np.float64),
            tensors[f"{prefix}.scale"].astype(np.float64),
            tensors[f"{prefix}.coef"].astype(np.float64),
            float(tensors[f"{prefix}.intercept"][0]),
        )


def scorer_key(scheduler: str, t_frac: float) -> str:
    return f"{scheduler}@{t_frac:g}"


def save_scorers(directory: str | Path, scorers: dict[str, LinearScorer], config: dict) -> None:
    """One ``scorers.safetensors`` (all weights) and a ``config.json`` describing them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, scorer in scorers.items():
        tensors.update(scorer.tensors(key))
    save_file(tensors, str(directory / "scorers.safetensors"))
    (directory / "config.json").write_text(json.dumps({**config, "keys": sorted(scorers)}, indent=2) + "\n")


def load_scorers(directory: str | Path) -> tuple[dict[str, LinearScorer], dict]:
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    tensors = load_file(str(directory / "scorers.safetensors"))
    return {k: LinearScorer.from_tensors(tensors, k) for k in config["keys"]}, config
