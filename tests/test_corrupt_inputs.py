"""Issue 17, item 1: every store, model folder and metadata read names what is wrong.

A small real project (prepare → vae → encode through the CLI, a tiny U-Net, scorer, OOD detector and
latent→RGB preview) is corrupted one file at a time: truncated or garbage files, broken or missing
metadata keys, a bad row, mismatched shapes. Each reader raises one ``InputError`` line naming the
file and the row or key; through the stages' CLI the same faults exit with code 2, one line, no
traceback, and the previous outputs as they were."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from diffusers import AutoencoderKL

from pipeline.data.store import iter_image_batches, read_image_meta, read_image_split
from pipeline.generate.ood import MahalanobisOOD
from pipeline.generate.unet import LatentDiffusion, build_unet, load_diffusion
from pipeline.io import InputError, read_json
from pipeline.latents.rgb import LatentRGB
from pipeline.latents.store import iter_latent_batches, latent_split_facts, read_latent_split
from pipeline.latents.vae import load_saved_vae
from pipeline.score.nets import build_scorer, load_scorer, save_scorer

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (4, 8, 8)


def _run(stage: str, params: Path, args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", str(params), *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """images/, vae/, latents/ from the real stages; unet/, scorer/, ood/, rgb.json from the library."""
    root = tmp_path_factory.mktemp("project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="digits", size=16, n_images=40, n_artifact=36, rows_per_shard=8)
    params["vae"].update(source="pretrained", id=str(root / "pretrained"), kind="kl")
    params["runs"].update(inversion_images=4, batch_size=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    torch.manual_seed(0)
    AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                  sample_size=16, scaling_factor=0.5).save_pretrained(root / "pretrained")
    for stage, args in (("prepare", ["--out", "images", "--reports", "r/prepare"]),
                        ("vae", ["--images", "images", "--out", "vae", "--reports", "r/vae"]),
                        ("encode", ["--images", "images", "--vae", "vae", "--out", "latents", "--reports", "r/encode"])):
        proc = _run(stage, root / "params.yaml", [a if a.startswith("--") else str(root / a) for a in args])
        assert proc.returncode == 0, proc.stderr[-3000:]
    train = read_latent_split(root / "latents", "train")
    LatentDiffusion.centred_on(build_unet(SHAPE, [8, 16]), train.latents).save(root / "unet")
    save_scorer(root / "scorer", build_scorer({"kind": "mlp", "in_shape": list(SHAPE), "hidden": [8], "t_dim": 4,
                                               "dropout": 0.0}))
    MahalanobisOOD().fit(train.flat()).save(root / "ood")
    LatentRGB(factors=[[0.1, 0.2, 0.3]] * 4, bias=[0.0, 0.0, 0.0]).save(root / "rgb.json")
    return root


@pytest.fixture
def copy(project, tmp_path) -> Path:
    """A scratch copy of the project to corrupt."""
    shutil.copytree(project, tmp_path / "p", symlinks=True)
    return tmp_path / "p"


# -- ways to break a file ------------------------------------------------------------------------

def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not what you think it is\n" * 20)


def rewrite(path: Path, edit) -> None:
    """Rewrite a parquet shard through ``edit(table) -> table`` (which may change its metadata)."""
    pq.write_table(edit(pq.read_table(path)), path)


def set_meta(key: str, value: bytes | None):
    def edit(table: pa.Table) -> pa.Table:
        meta = dict(table.schema.metadata or {})
        if value is None:
            meta.pop(key.encode(), None)
        else:
            meta[key.encode()] = value
        return table.replace_schema_metadata(meta)
    return edit


def set_cell(column: str, row: int, value, kind=None):
    def edit(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        values[row] = value
        i = table.column_names.index(column)
        return table.set_column(i, column, pa.array(values, type=kind or table.schema.field(column).type))
    return edit


def edit_facts(key: str, **changes):
    """Change (``None``: drop) entries of the JSON facts under ``key`` in the file metadata."""
    def edit(table: pa.Table) -> pa.Table:
        meta = dict(table.schema.metadata)
        facts = {**json.loads(meta[key.encode()]), **changes}
        meta[key.encode()] = json.dumps({k: v for k, v in facts.items() if v is not None}).encode()
        return table.replace_schema_metadata(meta)
    return edit


def every_shard(edit):
    """Apply ``edit`` to every shard of the split the named shard belongs to (their facts must agree)."""
    def apply(path: Path) -> None:
        for shard in sorted(path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.parquet")):
            rewrite(shard, edit)
    return apply


def drop_column(name: str):
    return lambda table: table.drop([name])


def json_edit(edit):
    def apply(path: Path) -> None:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return apply


# (file under the project, how it breaks, the reader, words the one-line error must hold)
IMAGES, LATENTS = "images/test-00000.parquet", "latents/test-00000.parquet"
CASES = {
    "image shard truncated": (IMAGES, truncate, lambda p: read_image_split(p / "images", "test"),
                              ["test-00000.parquet", "not a readable image shard"]),
    "image shard garbage": (IMAGES, garbage, lambda p: list(iter_image_batches(p / "images", "test", 4)),
                            ["test-00000.parquet", "not a readable image shard"]),
    "image metadata key missing": (IMAGES, lambda f: rewrite(f, set_meta("latent_lab.images", None)),
                                   lambda p: read_image_meta(p / "images", "test"),
                                   ["test-00000.parquet", "lacks key latent_lab.images"]),
    "image metadata not JSON": (IMAGES, lambda f: rewrite(f, set_meta("latent_lab.images", b"{oops")),
                                lambda p: read_image_split(p / "images", "test"),
                                ["test-00000.parquet", "file metadata key latent_lab.images"]),
    "image size key wrong": (IMAGES, every_shard(edit_facts("latent_lab.images", size=[16])),
                             lambda p: read_image_split(p / "images", "test"),
                             ["test-00000.parquet", "has size [16], not two positive integers"]),
    "image row not a PNG": (IMAGES, lambda f: rewrite(f, set_cell("image", 3, b"\x89PNG broken")),
                            lambda p: read_image_split(p / "images", "test"),
                            ["test-00000.parquet: row 3 (id", "image bytes do not decode"]),
    "image row of another size": (IMAGES, None, lambda p: read_image_split(p / "images", "test"),
                                  ["row 2 (id", "image of 8×8 px, the file metadata says 16×16"]),
    "image label out of range": (IMAGES, lambda f: rewrite(f, set_cell("label", 1, 99)),
                                 lambda p: read_image_meta(p / "images", "test"),
                                 ["test-00000.parquet: row 1 (id", "has label 99"]),
    "image column missing": (IMAGES, lambda f: rewrite(f, drop_column("label")),
                             lambda p: read_image_split(p / "images", "test"),
                             ["test-00000.parquet", "missing columns label"]),
    "image shard renumbered": ("images/test-00001.parquet",
                               lambda f: f.rename(f.with_name("test-00007.parquet")),
                               lambda p: read_image_split(p / "images", "test"), ["not numbered 00000"]),
    "latent shard truncated": (LATENTS, truncate, lambda p: read_latent_split(p / "latents", "test"),
                               ["test-00000.parquet", "not a readable latent shard"]),
    "latent shape key wrong": (LATENTS, every_shard(edit_facts("latent_lab.latents", shape=[4, 8])),
                               lambda p: latent_split_facts(p / "latents", "test"),
                               ["test-00000.parquet", "has shape [4, 8], not three positive integers"]),
    "latent scaling factor missing": (LATENTS, every_shard(edit_facts("latent_lab.latents", scaling_factor=None)),
                                      lambda p: read_latent_split(p / "latents", "test"),
                                      ["test-00000.parquet", "has scaling_factor None"]),
    "latent shape does not fit the rows": (LATENTS, every_shard(edit_facts("latent_lab.latents", shape=[4, 4, 4])),
                                           lambda p: list(iter_latent_batches(p / "latents", "test", 3)),
                                           ["test-00000.parquet", "expected fixed_size_list<float>[64]"]),
    "latent row not finite": (LATENTS, None, lambda p: read_latent_split(p / "latents", "test"),
                              ["test-00000.parquet: row 2 (id", "holds a non-finite latent"]),
    "latent column missing": (LATENTS, lambda f: rewrite(f, drop_column("latent")),
                              lambda p: read_latent_split(p / "latents", "test"),
                              ["test-00000.parquet", "missing column 'latent'"]),
    "VAE weights truncated": ("vae/diffusion_pytorch_model.safetensors", truncate, lambda p: load_saved_vae(p / "vae"),
                              ["vae: not a readable VAE folder"]),
    "VAE config garbage": ("vae/config.json", garbage, lambda p: load_saved_vae(p / "vae"),
                           ["vae/config.json: not a readable VAE config"]),
    "VAE weights of another model": ("vae/config.json",
                                     json_edit(lambda c: {**c, "block_out_channels": [8, 32]}),
                                     lambda p: load_saved_vae(p / "vae"), ["vae: not a readable VAE folder"]),
    "U-Net weights garbage": ("unet/unet/diffusion_pytorch_model.safetensors", garbage,
                              lambda p: load_diffusion(p / "unet"), ["unet/unet: not a readable U-Net folder"]),
    "U-Net shift key missing": ("unet/latents.json", json_edit(lambda c: {"offset": c["shift"]}),
                                lambda p: load_diffusion(p / "unet"), ["unet/latents.json", "missing key 'shift'"]),
    "U-Net shift of another width": ("unet/latents.json", json_edit(lambda c: {"shift": c["shift"][:2]}),
                                     lambda p: load_diffusion(p / "unet"), ["unet/latents.json", "2 shift values"]),
    "scorer config garbage": ("scorer/config.json", garbage, lambda p: load_scorer(p / "scorer"),
                              ["scorer/config.json: not a readable scorer config"]),
    "scorer config key missing": ("scorer/config.json", json_edit(lambda c: {"extra": 1}),
                                  lambda p: load_scorer(p / "scorer"), ["scorer/config.json", "missing key 'model'"]),
    "scorer weights truncated": ("scorer/model.safetensors", truncate, lambda p: load_scorer(p / "scorer"),
                                 ["scorer/model.safetensors: not a readable scorer weights file"]),
    "scorer weights of another shape": ("scorer/config.json",
                                        json_edit(lambda c: {**c, "model": {**c["model"], "hidden": [16]}}),
                                        lambda p: load_scorer(p / "scorer"),
                                        ["scorer/model.safetensors does not match", "scorer/config.json"]),
    "OOD arrays truncated": ("ood/ood.safetensors", truncate, lambda p: MahalanobisOOD.load(p / "ood"),
                             ["ood/ood.safetensors: not a readable OOD detector weights file"]),
    "OOD config key missing": ("ood/config.json", json_edit(lambda c: {k: v for k, v in c.items() if k != "quantile"}),
                               lambda p: MahalanobisOOD.load(p / "ood"), ["ood/config.json", "missing key 'quantile'"]),
    "preview factors of another shape": ("rgb.json", json_edit(lambda c: {**c, "factors": [[1.0, 2.0]] * 4}),
                                         lambda p: LatentRGB.load(p / "rgb.json"),
                                         ["rgb.json", "factors of shape (4, 2)"]),
    "metrics file garbage": ("r/encode/metrics.json", truncate, lambda p: read_json(p / "r/encode/metrics.json"),
                             ["r/encode/metrics.json: not a readable JSON file"]),
}


def _smaller_image(path: Path) -> None:
    from pipeline.data.store import png_bytes

    rewrite(path, set_cell("image", 2, png_bytes(np.zeros((8, 8, 3), np.uint8))))


def _nan_latent(path: Path) -> None:
    def edit(table):
        flat = table.column("latent").combine_chunks().flatten().to_numpy().copy().reshape(table.num_rows, -1)
        flat[2, 5] = np.nan
        column = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=pa.float32()), flat.shape[1])
        return table.set_column(table.column_names.index("latent"), "latent", column)
    rewrite(path, edit)


SPECIAL = {"image row of another size": _smaller_image, "latent row not finite": _nan_latent}


@pytest.mark.parametrize("case", list(CASES))
def test_each_broken_input_is_named_in_one_line(copy, case):
    name, corrupt, read, words = CASES[case]
    (corrupt or SPECIAL[case])(copy / name)
    with pytest.raises(InputError) as err:
        read(copy)
    message = str(err.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)


def _one_line_exit(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), last
    for word in words:
        assert word in last, (word, last)
    return last


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["image row not a PNG", "VAE weights truncated", "image column missing"])
def test_the_encode_stage_stops_with_one_line_and_keeps_its_previous_outputs(copy, case):
    name, corrupt, _, words = CASES[case]
    before = {d: _tree(copy / d) for d in ("latents", "r/encode")}
    corrupt(copy / name)
    proc = _run("encode", copy / "params.yaml", ["--images", str(copy / "images"), "--vae", str(copy / "vae"),
                                                 "--out", str(copy / "latents"), "--reports", str(copy / "r/encode")])
    _one_line_exit(proc, *words)
    for d, files in before.items():
        assert _tree(copy / d) == files   # untouched, and no temporary left beside them
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in (copy / "r").iterdir()) == ["encode", "prepare", "vae"]


def test_stages_name_a_bad_latent_row_and_a_latent_shape_the_vae_does_not_make(copy):
    _nan_latent(copy / "latents/artifact_test-00000.parquet")
    proc = _run("runs", copy / "params.yaml", ["--latents", str(copy / "latents"), "--unet", str(copy / "unet"),
                                               "--out", str(copy / "runs"), "--reports", str(copy / "r/runs")])
    _one_line_exit(proc, "artifact_test-00000.parquet: row 2 (id", "non-finite latent")
    assert not (copy / "runs").exists() and not (copy / "r/runs").exists()

    # latents of another VAE (8 channels) beside this one's: named before any work
    from pipeline.latents.store import write_latent_split

    for split in ("train", "test"):
        part = read_latent_split(copy / "latents", split)
        for f in (copy / "latents").glob(f"{split}-*.parquet"):
            f.unlink()
        write_latent_split(copy / "latents", split, np.concatenate([part.latents] * 2, axis=1), part.meta,
                           scaling_factor=0.5)
    proc = _run("analyze", copy / "params.yaml", ["--images", str(copy / "images"), "--latents", str(copy / "latents"),
                                                  "--vae", str(copy / "vae"), "--reports", str(copy / "r/analyze"),
                                                  "--latent-rgb", str(copy / "rgb2.json")])
    _one_line_exit(proc, "latents of shape (8, 8, 8), but the VAE in", "makes (4, 8, 8)")


def test_a_full_disk_stops_the_stage_cleanly_and_keeps_the_previous_outputs(copy):
    """A file-size limit (``ulimit -f``) makes every write past it fail as a full disk does (EFBIG for
    ENOSPC): one line, exit 2, the previous outputs untouched and no temporary left beside them."""
    import resource

    before = {d: _tree(copy / d) for d in ("latents", "r/encode")}
    limit = 16 * 1024   # bytes: smaller than a latent shard, larger than Python's own small writes

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "stages.encode", "--params", str(copy / "params.yaml"),
                           "--images", str(copy / "images"), "--vae", str(copy / "vae"), "--out", str(copy / "latents"),
                           "--reports", str(copy / "r/encode")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, preexec_fn=small_disk)
    _one_line_exit(proc, "disk full while writing outputs", "File too large", "nothing was replaced")
    for d, files in before.items():
        assert _tree(copy / d) == files
    assert not [p for p in copy.rglob(".*") if p.name.endswith(".tmp")]
