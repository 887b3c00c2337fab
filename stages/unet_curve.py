"""A U-Net's training loss, as the stages that train one write it (own module, so only they depend on it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report.figures import loss_curve
from stages.live import log_curves


def save_unet_losses(directory: Path, losses: list[float], name: str) -> pd.DataFrame:
    """``loss.csv`` (per step, and smoothed over 50 steps), ``loss.png`` and the dvclive curve ``<name>/loss``
    into ``directory``; the curve's frame."""
    curve = pd.DataFrame({"step": np.arange(1, len(losses) + 1), "loss": losses})
    curve["smoothed"] = curve["loss"].rolling(50, min_periods=1).mean()
    curve.to_csv(directory / "loss.csv", index=False, float_format="%.6g")
    loss_curve(curve["step"].tolist(), curve["smoothed"].tolist(), directory / "loss.png")
    log_curves(directory, {f"{name}/loss": losses})
    return curve
