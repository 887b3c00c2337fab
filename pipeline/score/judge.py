"""The judge of the fresh-noise study: a clean-latent scorer that labels finished generations.

A generation from fresh noise has no human rating, so its label is the artifact score an
independent judge gives its finished latent. The judge is a :class:`~pipeline.score.nets.CNNScorer`
on clean latents (t = 0), fitted on the real labelled *training* latents only, with a seed of its
own (``pipeline.validation.validation_seeds``: never one of the predictors' seeds), so no predictor
shares its weights. Its own test MAE / Spearman ρ on the real labelled test latents go beside every
result, so the label's quality is visible: a predictor can agree with the judge no better than the
judge agrees with people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.metrics.regression import artifact_metrics, constant_baselines
from pipeline.score.nets import CNNScorer, train_scorer


@dataclass(frozen=True)
class JudgeSpec:
    """The judge's recipe: the ``runs.judge`` params section."""

    channels: list[int]
    steps: int
    batch_size: int
    lr: float
    max_score: float = 5.0


def train_judge(clean_train: np.ndarray, y_train: np.ndarray, spec: JudgeSpec, seed: int) -> CNNScorer:
    """The judge fitted on real labelled clean training latents (``seed``: its own, disjoint from the predictors')."""
    torch.manual_seed(seed)
    model = CNNScorer(list(clean_train.shape[1:]), list(spec.channels))
    train_scorer(model, clean_train, np.zeros(len(clean_train)), y_train, steps=spec.steps, batch_size=spec.batch_size,
                 lr=spec.lr, seed=seed)
    return model.eval()


@torch.no_grad()
def judge_scores(model: torch.nn.Module, latents, max_score: float = 5.0, batch_size: int = 1024) -> np.ndarray:
    """The judge's scores (0..``max_score``) of clean latents (N, C, H, W)."""
    x = torch.from_numpy(np.array(latents, dtype=np.float32))   # a writable copy
    device = next(model.parameters()).device
    out = [model(x[i:i + batch_size].to(device), torch.zeros(len(x[i:i + batch_size]), device=device)).clamp(0, max_score).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def judge_quality(model: torch.nn.Module, clean_test: np.ndarray, y_test: np.ndarray, y_train: np.ndarray, *,
                  severe_at: float, max_score: float = 5.0) -> dict:
    """The judge's own test metrics on real labelled latents, beside the constant (train mean) predictor's."""
    return {"test": artifact_metrics(y_test, judge_scores(model, clean_test, max_score), severe_at=severe_at),
            "constant": constant_baselines(y_train, y_test, severe_at=severe_at)["train_mean"],
            "test_images": int(len(y_test))}
