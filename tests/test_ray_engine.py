"""The Ray Data engine on a real local Ray cluster (127.0.0.1, 2 CPUs): the encode and runs stages'
outputs with ``engine: ray`` equal the local engine's."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from diffusers import AutoencoderKL

from pipeline.data.store import write_image_split
from pipeline.latents.store import read_latent_split
from pipeline.shards import list_splits, shard_paths

ray = pytest.importorskip("ray", reason="the Ray engine's tests need requirements-ray.txt")

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 40, "test": 20, "artifact_train": 20, "artifact_test": 12}


def test_an_unreachable_cluster_address_is_a_clear_error(monkeypatch):
    from pipeline.distributed.cluster import RayUnavailableError, ray_cluster

    assert not ray.is_initialized()   # runs before the module's cluster starts
    with pytest.raises(RayUnavailableError, match="cannot join the Ray cluster at '127.0.0.1:1': nothing answers"):
        with ray_cluster("127.0.0.1:1"):
            pass


@pytest.fixture(scope="module")
def cluster():
    """A real local Ray cluster with 2 CPUs; yields its address on 127.0.0.1, for RAY_ADDRESS."""
    from pipeline.distributed.cluster import ray_cluster

    with ray_cluster(num_cpus=2, object_store_mb=256):
        assert ray.cluster_resources()["CPU"] == 2
        yield "127.0.0.1:" + ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny image store (shards of 16 rows, so batches and write tasks straddle shards) and a saved VAE."""
    root = tmp_path_factory.mktemp("ray-project")
    rng = np.random.default_rng(0)
    names = ["circle", "square"]
    for split, n in SIZES.items():
        images = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
        images[: n // 2, :8] = 255     # some structure, so the metrics differ between images
        labels = np.arange(n) % 2
        meta = pd.DataFrame({"id": [f"{split}-{i}" for i in range(n)], "label": labels.astype(np.int16),
                             "label_name": [names[k] for k in labels], "split": split,
                             "artifact_kind": "none", "severity": np.linspace(0, 5, n, dtype=np.float32)})
        write_image_split(root / "images", split, images, meta, names, rows_per_shard=16)
    AutoencoderKL(block_out_channels=(8, 8), norm_num_groups=4, latent_channels=4,
                  scaling_factor=0.5).save_pretrained(root / "vae")
    return root


def _run_encode(project: Path, engine: str, batch_size: int = 8, ray_address: str | None = None,
                out_name: str | None = None) -> Path:
    """The encode stage on ``project`` (:func:`_run_stage`)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"]["device"] = "cpu"
    params["encode"].update(engine=engine, batch_size=batch_size, grid_size=4)
    params["encode"]["ray"].update(actors=2, cpus_per_actor=0.5)
    out = project / (out_name or engine)
    out.mkdir(exist_ok=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--params", str(out / "params.yaml"), "--images", str(project / "images"), "--vae", str(project / "vae"),
            "--out", str(out / "latents"), "--reports", str(out / "reports")]
    _run_stage("stages.encode", argv, ray_address)
    return out


def _run_stage(module: str, argv: list[str], ray_address: str | None) -> None:
    """The stage ``module`` in this process, or with ``ray_address`` as its CLI in a new process that
    joins the cluster there through ``RAY_ADDRESS``, as a user's ``dvc repro`` would."""
    if ray_address is None:
        importlib.import_module(module).main(argv)
        return
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "RAY_ADDRESS": ray_address}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Ray: {ray_address}" in done.stderr


def test_ray_encode_stage_equals_the_local_engine(cluster, project):
    local, distributed = _run_encode(project, "local"), _run_encode(project, "ray", batch_size=6, ray_address=cluster)
    assert list_splits(distributed / "latents") == list_splits(local / "latents") == sorted(SIZES)
    for split, n in SIZES.items():
        a, b = read_latent_split(local / "latents", split), read_latent_split(distributed / "latents", split)
        assert len(b.latents) == n and b.shape == a.shape == (4, 8, 8)
        np.testing.assert_allclose(b.latents, a.latents, rtol=1e-5, atol=1e-5)
        pd.testing.assert_frame_equal(b.meta, a.meta)                         # same rows, same order, same dtypes
        assert (b.scaling_factor, b.info) == (a.scaling_factor, a.info)
        paths = shard_paths(distributed / "latents", split)
        assert [p.name for p in paths] == [f"{split}-{i:05d}.parquet" for i in range(len(paths))]
        assert pq.read_schema(paths[0]).equals(pq.read_schema(shard_paths(local / "latents", split)[0]),
                                               check_metadata=True)
    assert not [p for p in (distributed / "latents").iterdir() if p.name.startswith(".")]   # no staged files left
    ma = json.loads((local / "reports" / "metrics.json").read_text())
    mb = json.loads((distributed / "reports" / "metrics.json").read_text())
    assert mb.keys() == ma.keys() and mb["latent_shape"] == ma["latent_shape"]
    # metrics.json keeps 6 decimals, and a reconstructed pixel may round the other way (below): the random
    # test images' SSIM is about 0.005, so one unit in the last place is 2e-4 of it
    for key in ("test", "baseline_mean_image_test"):
        for metric, value in ma[key].items():
            assert mb[key][metric] == pytest.approx(value, rel=1e-3, abs=2e-6), (key, metric)
    pa_, pb = pd.read_csv(local / "reports" / "per_image.csv"), pd.read_csv(distributed / "reports" / "per_image.csv")
    # batches of 6 on one thread against 8 on two: a reconstructed pixel may round the other way
    pd.testing.assert_frame_equal(pb, pa_, rtol=1e-3, atol=1e-3)
    assert (distributed / "reports" / "recon_grid.png").stat().st_size > 0


def test_a_bad_row_met_by_a_ray_worker_stops_the_stage_with_one_line(cluster, project, tmp_path):
    """A PNG that does not decode, met inside a Ray actor: the stage exits 2 with the one line the worker
    raised (not Ray's wrapped traceback), and the previous outputs stay as they were."""
    import shutil

    import pyarrow as pa

    shutil.copytree(project / "images", tmp_path / "images")
    shutil.copytree(project / "vae", tmp_path / "vae")
    shard = tmp_path / "images" / "test-00000.parquet"
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[3] = b"\x89PNG broken"
    pq.write_table(table.set_column(table.column_names.index("image"), "image", pa.array(images, pa.binary())), shard)
    (tmp_path / "latents").mkdir()
    (tmp_path / "latents" / "train-00000.parquet").write_bytes(b"the previous output")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["encode"].update(engine="ray", batch_size=6)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, "-m", "stages.encode", "--params", str(tmp_path / "params.yaml"),
                           "--images", str(tmp_path / "images"), "--vae", str(tmp_path / "vae"),
                           "--out", str(tmp_path / "latents"), "--reports", str(tmp_path / "reports")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "RAY_ADDRESS": cluster}, timeout=600)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last.startswith(f"error: {tmp_path / 'images'} split ") and "(id " in last, last
    assert "image bytes do not decode" in last, last
    assert [p.name for p in (tmp_path / "latents").iterdir()] == ["train-00000.parquet"]
    assert (tmp_path / "latents" / "train-00000.parquet").read_bytes() == b"the previous output"
    assert not (tmp_path / "reports").exists()


def test_ray_engine_with_posterior_sampling_is_refused_naming_the_key(tmp_path):
    from stages.config import ParamsError, load_params

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["encode"].update(engine="ray", sample=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"encode: .*engine: local"):
        load_params(tmp_path / "params.yaml")
    params["encode"].update(sample=False)
    params["base"]["device"] = "cuda"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="encode.ray.gpus_per_actor is 0"):
        load_params(tmp_path / "params.yaml")
    params["encode"]["ray"]["gpus_per_actor"] = 1.0
    params["runs"]["engine"] = "ray"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="runs.ray.gpus_per_actor is 0"):
        load_params(tmp_path / "params.yaml")
    params["runs"]["engine"] = "local"
    params["base"]["device"] = "cpu"
    params["encode"]["ray"].update(num_cpus=2, actors=3, cpus_per_actor=1.0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"encode.ray: .*exceeds num_cpus 2"):
        load_params(tmp_path / "params.yaml")


def test_the_ray_engine_without_ray_installed_stops_the_stage_with_the_install_line(project, monkeypatch, capsys):
    out = project / "ray-missing"
    out.mkdir()
    (out / "latents").mkdir()
    (out / "latents" / "earlier.txt").write_text("a previous run's output")
    monkeypatch.setitem(sys.modules, "ray", None)   # what `import ray` meets without requirements-ray.txt
    with pytest.raises(SystemExit) as stop:
        _run_encode(project, "ray", out_name="ray-missing")
    assert stop.value.code == 2
    assert "encode.engine=ray: the ray engine needs Ray Data, which is not installed (pip install -r " \
           "requirements-ray.txt)" in capsys.readouterr().err
    assert [p.name for p in (out / "latents").iterdir()] == ["earlier.txt"]   # the earlier output stays, nothing half-written
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_ray_parts_from_parallel_actors_are_numbered_in_row_order(cluster, project, tmp_path):
    """Small shards: several write tasks fed by two actors; the store still reads back in the split's order."""
    import torch

    from pipeline.data.store import image_split_facts, iter_image_batches, read_image_meta
    from pipeline.distributed.cluster import RayPlan
    from pipeline.distributed.encode import encode_split_ray
    from pipeline.latents.encode import encode_split
    from pipeline.latents.store import LatentSplitWriter
    from pipeline.latents.vae import load_saved_vae

    images, vae_dir = project / "images", project / "vae"
    names, _, _ = image_split_facts(images, "train")
    ids = read_image_meta(images, "train")["id"].tolist()
    vae = load_saved_vae(vae_dir)
    with LatentSplitWriter(tmp_path / "local", "train", scaling_factor=0.5, info={}, rows_per_shard=8) as writer:
        local = encode_split(vae, iter_image_batches(images, "train", 5), writer, total=len(ids), sum_pixels=True, keep=3)
    torch.set_num_threads(2)
    remote = encode_split_ray(images, "train", tmp_path / "ray", vae_dir=vae_dir, device="cpu", dtype="float32",
                              tiling="off", image_side=16, class_names=names, ids=ids, latent_shape=(4, 8, 8),
                              scaling_factor=0.5, info={}, plan=RayPlan(concurrency=2, num_cpus=0.5, batch_size=5),
                              sum_pixels=True, keep=3, rows_per_shard=8)
    paths = shard_paths(tmp_path / "ray", "train")
    assert len(paths) >= 3 and [p.name for p in paths] == [f"train-{i:05d}.parquet" for i in range(len(paths))]
    a, b = read_latent_split(tmp_path / "local", "train"), read_latent_split(tmp_path / "ray", "train")
    assert b.meta["id"].tolist() == ids
    np.testing.assert_allclose(b.latents, a.latents, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(remote.pixel_sum, local.pixel_sum)
    np.testing.assert_array_equal(remote.originals, local.originals)
    assert remote.recon.shape == local.recon.shape == (3, 16, 16, 3)
    assert np.abs(remote.recon.astype(int) - local.recon.astype(int)).max() <= 1
    pd.testing.assert_frame_equal(remote.metrics, local.metrics, rtol=1e-3, atol=1e-3)
    assert remote.baseline is None and local.baseline is None


def _run_runs(project: Path, engine: str, batch_size: int, ray_address: str | None = None) -> Path:
    """The runs stage on ``project``'s artifact test latents and U-Net (:func:`_run_stage`)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"]["device"] = "cpu"
    params["noise"].update(num_inference_steps=10, t_fracs=[0.1, 0.5, 0.9], heldout_fracs=[0.3])
    params["runs"].update(inversion_images=11, batch_size=batch_size, engine=engine,
                          fresh={"train": 2, "calibration": 10, "test": 10, "steps": 4, "checks": [0.9, 0.5]},
                          judge={"channels": [8], "steps": 5, "batch_size": 8, "lr": 0.01})
    params["runs"]["ray"].update(actors=2, cpus_per_actor=0.5)
    out = project / f"runs-{engine}"
    out.mkdir(exist_ok=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--params", str(out / "params.yaml"), "--latents", str(project / "runs-latents"),
            "--unet", str(project / "unet"), "--out", str(out / "runs"), "--judge", str(out / "judge"),
            "--reports", str(out / "reports")]
    _run_stage("stages.runs", argv, ray_address)
    return out


def test_ray_runs_stage_equals_the_local_engine(cluster, project):
    """The U-Net engine: 11 of 12 artifact test latents in shards of 5, run by every scheduler (DDPM's
    noise included) in chunks of 4 locally and batches of 3 on two actors: the same runs store."""
    import torch

    from pipeline.generate.unet import LatentDiffusion, build_unet
    from pipeline.latents.store import write_latent_split

    rng = np.random.default_rng(1)
    latents = (rng.normal(size=(12, 4, 8, 8)) + np.linspace(-1, 1, 4)[:, None, None]).astype(np.float32)
    meta = pd.DataFrame({"id": [f"a{i}" for i in range(12)], "severity": np.arange(12, dtype=np.float32) % 6,
                         "label": np.zeros(12, np.int16)})
    write_latent_split(project / "runs-latents", "artifact_test", latents, meta, scaling_factor=0.5, rows_per_shard=5)
    write_latent_split(project / "runs-latents", "artifact_train", latents[::-1].copy(), meta, scaling_factor=0.5)
    torch.manual_seed(0)
    model = LatentDiffusion.centred_on(build_unet((4, 8, 8), [8, 16]), latents)
    model.train(latents, steps=20, seed=0)
    model.save(project / "unet")

    local, distributed = _run_runs(project, "local", 4), _run_runs(project, "ray", 3, ray_address=cluster)
    schedulers = yaml.safe_load((ROOT / "params.yaml").read_text())["noise"]["schedulers"]
    fresh = [f"fresh_{n}{end}" for n in schedulers for end in ("", "_final", "_x0")]
    assert list_splits(distributed / "runs") == list_splits(local / "runs") == sorted([*schedulers, *fresh])
    for name in schedulers:
        a, b = read_latent_split(local / "runs", name), read_latent_split(distributed / "runs", name)
        assert len(b.latents) == 11 * 4 and b.meta["id"].tolist()[:5] == ["a0"] * 4 + ["a1"]
        np.testing.assert_allclose(b.latents, a.latents, rtol=1e-4, atol=1e-4, err_msg=name)
        pd.testing.assert_frame_equal(b.meta, a.meta)
        assert (b.scaling_factor, b.info) == (a.scaling_factor, a.info) == (0.5, {"scheduler": name, "levels": 4})
        assert pq.read_schema(shard_paths(distributed / "runs", name)[0]).equals(
            pq.read_schema(shard_paths(local / "runs", name)[0]), check_metadata=True)
    assert not [p for p in (distributed / "runs").iterdir() if p.name.startswith(".")]
    ma = json.loads((local / "reports" / "metrics.json").read_text())
    mb = json.loads((distributed / "reports" / "metrics.json").read_text())
    ma, mb = ma["inversion"], mb["inversion"]
    assert mb["images"] == ma["images"] == 11
    for name in schedulers:
        for stat, value in ma["end_error"][name].items():
            assert mb["end_error"][name][stat] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, stat)


def test_the_score_grid_as_ray_tasks_equals_the_local_process_pool(cluster):
    """The scorer engine: clean and noisy cells of two seeds as Ray tasks (at most 2 at once, 1 CPU
    each) give the local pool's rows, predictions and models."""
    from pipeline.distributed.cluster import RayPlan
    from pipeline.distributed.score import run_grid_ray
    from pipeline.score.benchmark import ScorerSpec, ScorerTask, run_grid

    rng = np.random.default_rng(0)
    clean = rng.normal(size=(120, 4, 4, 4)).astype(np.float32)
    score = np.clip(2.5 + 6 * clean[:, 0].mean(axis=(1, 2)), 0, 5)
    spec = ScorerSpec(ridge_alpha=1.0, mlp_hidden=[16], cnn_channels=[4, 4], t_dim=4, level_steps=20, cond_steps=20,
                      batch_size=32, lr=1e-3, level_models=["ridge", "mlp"], expert_model="mlp", rgb_models=[], severe_at=3.0)
    common = {"clean_train": clean[:80], "y_train": score[:80], "clean_test": clean[80:], "y_test": score[80:],
              "spec": spec, "threads": 1}
    tasks = [ScorerTask("clean", s, **common) for s in (0, 1)]
    tasks += [ScorerTask("noisy", s, **common, schedulers=("ddim", "ddpm"), t_fracs=(0.1, 0.6), heldout_fracs=(0.3,),
                         num_inference_steps=10, keep_models=s == 0) for s in (0, 1)]
    local = run_grid(tasks, 2)
    remote = run_grid_ray(tasks, RayPlan(concurrency=2, num_cpus=1.0))
    assert [(r["scheduler"], r["seed"]) for r in remote] == [(r["scheduler"], r["seed"]) for r in local]
    assert len(remote) == 2 + 2 * 2
    for a, b in zip(local, remote):
        assert pd.DataFrame(b["rows"]).equals(pd.DataFrame(a["rows"]))
        for kind, pred in a.get("test_pred", {}).items():
            np.testing.assert_array_equal(b["test_pred"][kind], pred)
        for kind, (config, state) in a.get("models", {}).items():
            assert b["models"][kind][0] == config and all(np.array_equal(b["models"][kind][1][k], v) for k, v in state.items())
