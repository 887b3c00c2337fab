"""Reading the real sampler runs (the ``runs`` stage's latent store) back for the scorer benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.latents.store import read_latent_split

RUN_SUFFIX = "_run"   # a scheduler's results on its real runs are named <scheduler>_run beside the proxy's


def load_runs(directory: str | Path, schedulers, test_ids: np.ndarray, n_levels: int) -> dict[str, dict]:
    """Per scheduler: ``model_input`` (levels, N, C, H, W), the ``timesteps`` of its levels and the
    ``index`` of its images in the test split (``test_ids``). Raises ``ValueError`` naming the file
    when a scheduler is missing or its rows do not fit the test split and the noise levels."""
    out = {}
    for name in schedulers:
        runs = read_latent_split(directory, name)
        meta, n = runs.meta, len(runs.meta) // max(n_levels, 1)
        if n * n_levels != len(meta) or n == 0:
            raise ValueError(f"{directory}/{name}: {len(meta)} rows are not {n_levels} noise levels of the same images")
        ids = meta["id"].to_numpy()[:n]
        position = {v: i for i, v in enumerate(test_ids)}
        missing = [v for v in ids if v not in position]
        if missing:
            raise ValueError(f"{directory}/{name}: image {missing[0]!r} is not in the artifact test split")
        if not all(np.array_equal(meta["id"].to_numpy()[i * n:(i + 1) * n], ids) for i in range(n_levels)):
            raise ValueError(f"{directory}/{name}: the levels do not hold the same images in the same order")
        out[name] = {"model_input": runs.latents.reshape(n_levels, n, *runs.shape),
                     "timesteps": meta["timestep"].to_numpy(float)[::n].tolist(),
                     "index": np.array([position[v] for v in ids])}
    return out
