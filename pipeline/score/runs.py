"""Reading the real sampler runs (the ``runs`` stage's latent store) back for the scorer benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.latents.store import read_latent_split

RUN_SUFFIX = "_run"   # a scheduler's results on its real runs are named <scheduler>_run beside the proxy's


def load_runs(directory: str | Path, schedulers, test_ids: np.ndarray, n_levels: int) -> dict[str, dict]:
    """Per scheduler: ``model_input`` (levels, N, C, H, W), the ``timesteps`` of its levels and the
    ``index`` of its images in the test split (``test_ids``). The store holds the rows image by image,
    each image's ``n_levels`` levels in order. Raises ``ValueError`` naming the file when a scheduler
    is missing or its rows do not fit the test split and the noise levels."""
    out = {}
    position = {v: i for i, v in enumerate(test_ids)}
    for name in schedulers:
        runs = read_latent_split(directory, name)
        meta, n = runs.meta, len(runs.meta) // max(n_levels, 1)
        if n * n_levels != len(meta) or n == 0:
            raise ValueError(f"{directory}/{name}: {len(meta)} rows are not {n_levels} noise levels of the same images")
        ids = meta["id"].to_numpy().reshape(n, n_levels)
        steps = meta["timestep"].to_numpy(float).reshape(n, n_levels)
        if not (ids == ids[:, :1]).all() or not (steps == steps[:1]).all():
            raise ValueError(f"{directory}/{name}: the rows are not each image's {n_levels} levels in the same order")
        missing = [v for v in ids[:, 0] if v not in position]
        if missing:
            raise ValueError(f"{directory}/{name}: image {missing[0]!r} is not in the artifact test split")
        out[name] = {"model_input": np.ascontiguousarray(runs.latents.reshape(n, n_levels, *runs.shape).swapaxes(0, 1)),
                     "timesteps": steps[0].tolist(),
                     "index": np.array([position[v] for v in ids[:, 0]])}
    return out
