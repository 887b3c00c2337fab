"""The runs stage's sampling on Ray Data: artifact test latents in, one runs split per scheduler out.

``ray.data.read_parquet`` reads the latent shards (``limit`` keeps the first images); ``map_batches``
runs :class:`UnetSampler`, a callable class that loads the saved U-Net once per actor and does per
batch exactly what the local engine does per chunk (:func:`~pipeline.generate.runs.run_rows`: DDIM
inversion, then every scheduler's run, each image drawing its noise from its own seed, so a batch's
rows do not depend on which actor runs it); :class:`~pipeline.distributed.latent_sink.LatentStoreSink`
writes every scheduler's split from the workers in the store's layout, and only each image's end
error travels back to the driver.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.distributed.cluster import RayPlan, import_ray
from pipeline.distributed.latent_sink import LatentStoreSink, SinkSplit
from pipeline.generate.runs import run_rows
from pipeline.generate.unet import load_diffusion
from pipeline.latents.store import latent_split_facts, latent_table, table_latents
from pipeline.runtime import resolve_device
from pipeline.shards import iter_shards, shard_paths

SPLIT = "_scheduler"   # the column routing each row to its scheduler's split (not stored)


class UnetSampler:
    """A Ray Data actor: holds the saved latent diffusion model and turns batches of latent-store
    rows (``id``, ``severity``, ``latent``) into runs-store rows of every scheduler, with the
    scheduler in column :data:`SPLIT` and each image's ``end_error`` beside its rows."""

    def __init__(self, unet_dir: str, *, device: str, shape: tuple[int, int, int], schedulers: list[str],
                 t_fracs: list[float], n_trained: int, num_inference_steps: int, seed: int, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.model = load_diffusion(unet_dir, resolve_device(device))
        self.shape, self.schedulers, self.t_fracs = tuple(shape), list(schedulers), list(t_fracs)
        self.n_trained, self.steps, self.seed = n_trained, num_inference_steps, seed

    def __call__(self, rows: pa.Table) -> pa.Table:
        import torch

        clean = torch.from_numpy(np.array(table_latents(rows, self.shape), dtype=np.float32))   # a writable copy
        out = run_rows(self.model, clean, rows.select(["id", "severity"]).to_pandas(), self.schedulers,
                       self.t_fracs, self.n_trained, self.steps, self.seed)
        levels = len(self.t_fracs)
        return pa.concat_tables([
            latent_table(r.latents, r.meta.assign(**{SPLIT: name, "end_error": np.repeat(r.end_error, levels)}))
            for name, r in out.items()])


def sampler_runs_ray(latents_dir: str | Path, split: str, n: int, out_dir: str | Path, *, unet_dir: str | Path,
                     device: str, schedulers: list[str], t_fracs: list[float], n_trained: int,
                     num_inference_steps: int, seed: int, plan: RayPlan,
                     rows_per_shard: int = 4096) -> dict[str, np.ndarray]:
    """Run the first ``n`` latents of ``split`` through every scheduler on the connected Ray cluster and
    write each scheduler's split into ``out_dir`` (the local engine's layout); each scheduler's per-image
    end errors, in split order."""
    ray = import_ray()
    if n < 1:
        raise ValueError(f"split {split!r}: no latents to run")
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    facts = latent_split_facts(latents_dir, split)
    paths = shard_paths(latents_dir, split)
    ids = [i for t in iter_shards(paths, columns=["id"]) for i in t.column("id").to_pylist()][:n]
    levels = len(t_fracs)
    info = {"levels": levels}
    sink = LatentStoreSink(
        out_dir, [SinkSplit(name, [i for i in ids for _ in range(levels)], {"scheduler": name, **info}) for name in schedulers],
        shape=facts.shape, scaling_factor=facts.scaling_factor, side_columns=["end_error"], split_column=SPLIT,
        rows_per_shard=rows_per_shard)
    ray.data.read_parquet([str(p) for p in paths], columns=["id", "severity", "latent"]).limit(n).map_batches(
        UnetSampler,
        fn_constructor_kwargs=dict(unet_dir=str(unet_dir), device=device, shape=facts.shape, schedulers=list(schedulers),
                                   t_fracs=list(t_fracs), n_trained=n_trained, num_inference_steps=num_inference_steps,
                                   seed=seed, threads=max(1, int(plan.num_cpus))),
        batch_size=plan.batch_size, batch_format="pyarrow", concurrency=plan.concurrency,
        num_gpus=plan.num_gpus, num_cpus=plan.num_cpus,
    ).write_datasink(sink)
    return {name: sink.side[name]["end_error"].to_numpy()[::levels] for name in schedulers}
