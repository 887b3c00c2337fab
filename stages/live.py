"""Learning curves through dvclive, so `dvc plots show / diff` draws them per experiment.

Each training stage hands :func:`log_curves` the per-step losses its training loops return and
writes them under ``<reports>/live/`` inside its own output (one TSV per curve:
``live/plots/metrics/<name>.tsv`` with ``step`` and the value; ``dvc.yaml``'s top-level ``plots``
points at them). The curves are written when the loop has finished — from the loss it recorded
at every step — rather than streamed while it trains; DVC's run cache and the stage's atomic
output directory then keep them in step with the model. dvclive's own DVC integration (its
``dvc.yaml``, experiment saving, HTML report) stays off: DVC already owns the stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

LIVE_DIR = "live"


def log_curves(reports: str | Path, curves: Mapping[str, Sequence[float]], *,
               steps: Mapping[str, Sequence[int]] | None = None, every: int = 1) -> Path:
    """Write each curve (``name`` → value per step; ``steps[name]`` gives its step numbers, else
    1, 2, …) to ``<reports>/live`` with dvclive, every ``every``-th point (the last one always)."""
    from dvclive import Live

    directory = Path(reports) / LIVE_DIR
    with Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None, monitor_system=False) as live:
        for name, values in curves.items():
            xs = list(steps[name]) if steps and name in steps else list(range(1, len(values) + 1))
            for i, (x, v) in enumerate(zip(xs, values)):
                if i % every == 0 or i == len(values) - 1:
                    live.step = int(x)
                    live.log_metric(name, float(v))
    return directory
