"""Stage CLIs called in-process (they take argv), on tiny inputs."""

import importlib
import json
from pathlib import Path

import pytest
import yaml
from diffusers import AutoencoderKL

ROOT = Path(__file__).resolve().parents[1]
STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_answers_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"stages.{name}").main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def test_vae_stage_loads_a_pretrained_model_from_a_local_directory(tmp_path):
    source = tmp_path / "hub-copy"
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4, scaling_factor=0.25).save_pretrained(source)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["vae"].update(source="pretrained", id=str(source), kind="kl")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, reports = tmp_path / "vae", tmp_path / "reports"
    importlib.import_module("stages.vae").main(
        ["--params", str(tmp_path / "params.yaml"), "--images", str(tmp_path / "none"), "--out", str(out), "--reports", str(reports)]
    )
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["source"] == "pretrained" and metrics["scaling_factor"] == 0.25  # read from the model's config
    assert (out / "diffusion_pytorch_model.safetensors").exists()
    assert AutoencoderKL.from_pretrained(out).config.block_out_channels == [8]


def test_device_choice_is_made_at_run_time():
    import torch

    from pipeline.runtime import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_score_labels_are_refused_with_the_split_and_row():
    import numpy as np

    from pipeline.score.summary import check_labels

    with pytest.raises(ValueError, match="data/latents/artifact_train: row 2 has artifact score 7.5"):
        check_labels(np.array([0.0, 3.0, 7.5]), "artifact_train", 3.0, "data/latents")
    with pytest.raises(ValueError, match="both severe and non-severe"):
        check_labels(np.array([0.0, 1.0, 2.0]), "artifact_test", 3.0, "data/latents")


def test_a_last_partial_round_of_fits_gets_the_idle_cores(monkeypatch):
    import pipeline.runtime as rt

    monkeypatch.setattr(rt, "configure_threads", lambda torch=True: 2)
    assert rt.worker_plan(0) == (2, 1) and rt.worker_plan(8) == (2, 1)
    assert rt.task_threads(3, 2) == [1, 1, 2]      # the third fit runs alone on both cores
    assert rt.task_threads(4, 2) == [1, 1, 1, 1]
    assert rt.task_threads(1, 2) == [2]            # fewer fits than workers: they share the cores
    monkeypatch.setattr(rt, "configure_threads", lambda torch=True: 8)
    assert rt.task_threads(10, 4) == [2] * 8 + [4, 4]


def test_stage_main_gives_one_line_for_a_bad_input_raised_here_or_in_a_ray_worker(capsys):
    from pipeline.io import InputError
    from stages.cli import stage_main

    def local(argv=None):
        raise InputError("data/latents/test-00000.parquet: row 2 (id a) holds a non-finite latent")

    ray_exceptions = pytest.importorskip("ray.exceptions")
    worker = ray_exceptions.RayTaskError(
        "UnetSampler.__call__", "Traceback (most recent call last):\n  File \"x.py\", line 1\nInputError: …",
        InputError("data/images/train-00001.parquet: row 7 (id b): image bytes do not decode")).as_instanceof_cause()

    def remote(argv=None):
        raise RuntimeError("the Ray Data job failed") from worker

    for main, line in ((local, "row 2 (id a) holds a non-finite latent"), (remote, "row 7 (id b): image bytes")):
        with pytest.raises(SystemExit) as exit_:
            stage_main(main)([])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and line in err and "Traceback" not in err, err

    def bug(argv=None):
        raise KeyError("a bug, not an input")

    with pytest.raises(KeyError):   # anything else keeps its traceback
        stage_main(bug)([])
