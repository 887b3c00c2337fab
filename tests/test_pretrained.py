"""Pretrained VAEs: tiny random AutoencoderKL / AutoencoderTiny saved with save_pretrained, loaded
through the same from_pretrained path as real ones (local directory and a local Hub on 127.0.0.1)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import AutoencoderKL, AutoencoderTiny
from hubserver import LocalHub

from pipeline.latents.rgb import SD15_FACTORS, compare_published, fit_latent_rgb, published_rgb
from pipeline.latents.store import read_latent_split
from pipeline.latents.vae import (
    configure_tiling,
    downsampling_factor,
    encode_images,
    images_to_tensor,
    is_sd15_vae,
    load_saved_vae,
)

ROOT = Path(__file__).resolve().parents[1]


def tiny_kl(scaling_factor: float = 0.18215, sample_size: int = 16) -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                         sample_size=sample_size, scaling_factor=scaling_factor)


def tiny_taesd() -> AutoencoderTiny:
    torch.manual_seed(0)
    return AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                           num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Both tiny models as local directories and as hub repos (models/<owner>/<name>) under one root."""
    root = tmp_path_factory.mktemp("models")
    tiny_kl().save_pretrained(root / "local_kl")
    tiny_taesd().save_pretrained(root / "local_tiny")
    tiny_kl().save_pretrained(root / "hub/models/test-org/sd-vae-tiny/vae")   # a full-pipeline layout: subfolder vae
    tiny_taesd().save_pretrained(root / "hub/models/test-org/taesd-tiny")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A small digits image set (16 px) written by the real prepare stage."""
    out = tmp_path_factory.mktemp("data")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="digits", size=16, n_images=60, n_artifact=36)
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    _run("prepare", out / "params.yaml", ["--out", str(out / "images"), "--reports", str(out / "prep")])
    return out


def _run(stage: str, params: Path, args: list[str], env: dict | None = None, check: bool = True):
    proc = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", str(params), *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _vae_params(images: Path, tmp_path: Path, **vae) -> Path:
    params = yaml.safe_load((images / "params.yaml").read_text())
    params["vae"].update(source="pretrained", **vae)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _vae_then_encode(params: Path, images: Path, tmp_path: Path, env: dict | None = None):
    _run("vae", params, ["--images", str(images / "images"), "--out", str(tmp_path / "vae"),
                         "--reports", str(tmp_path / "vae_reports")], env)
    _run("encode", params, ["--images", str(images / "images"), "--vae", str(tmp_path / "vae"),
                            "--out", str(tmp_path / "latents"), "--reports", str(tmp_path / "enc_reports")], env)
    return read_latent_split(tmp_path / "latents", "test"), json.loads((tmp_path / "vae_reports/metrics.json").read_text())


@pytest.mark.parametrize("kind,local", [("kl", "local_kl"), ("tiny", "local_tiny")])
def test_encode_stage_runs_a_pretrained_vae_from_a_local_directory(models, images, tmp_path, kind, local):
    params = _vae_params(images, tmp_path, id=str(models / local), kind=kind)
    latents, vae_metrics = _vae_then_encode(params, images, tmp_path)
    reference = (AutoencoderKL if kind == "kl" else AutoencoderTiny).from_pretrained(models / local)
    sf = float(reference.config.scaling_factor)      # 0.18215 (KL) and 1.0 (TAESD): from the config
    assert latents.scaling_factor == pytest.approx(sf) and vae_metrics["scaling_factor"] == pytest.approx(sf)
    assert vae_metrics["sd15"] is (kind == "kl")
    test_images = read_image_test(images)
    expected = encode_images(reference, images_to_tensor(test_images)).numpy()
    assert latents.latents.shape == (len(test_images), 4, 8, 8)
    np.testing.assert_allclose(latents.latents, expected, rtol=1e-4, atol=1e-5)


def read_image_test(images: Path) -> np.ndarray:
    from pipeline.data.store import read_image_split

    return read_image_split(images / "images", "test").images


def test_encode_stage_downloads_pretrained_vaes_from_the_hub(models, images, tmp_path):
    with LocalHub(models / "hub") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "LATENT_LAB_HUB_BACKOFF": "0.01"}
        # hub faults on the way: a 5xx, then a corrupt copy of the weights; both retried, neither kept
        hub.inject(503, "sd-vae-tiny/resolve")
        hub.inject("corrupt", "sd-vae-tiny/resolve")
        kl = _vae_params(images, tmp_path, id="test-org/sd-vae-tiny", subfolder="vae", kind="kl")
        latents, metrics = _vae_then_encode(kl, images, tmp_path / "kl", env)
        assert metrics["id"] == "test-org/sd-vae-tiny" and latents.scaling_factor == pytest.approx(0.18215)
        assert metrics["revision"] == "main" and re.fullmatch(r"[0-9a-f]{40}", metrics["commit"])   # recorded: pinnable
        pin = "c" * 40   # vae.revision reaches the download and is recorded as the commit served
        tiny = _vae_params(images, tmp_path, id="test-org/taesd-tiny", kind="tiny", revision=pin)
        latents_tiny, tiny_metrics = _vae_then_encode(tiny, images, tmp_path / "tiny", env)
        assert (tiny_metrics["revision"], tiny_metrics["commit"]) == (pin, pin)
        paths = [p for _, p in hub.requests]
        assert hub.faults_served == 2
    assert any(re.search(r"/test-org/sd-vae-tiny/resolve/[^/]+/vae/config.json$", p) for p in paths)
    assert any(f"taesd-tiny/resolve/{pin}/" in p and p.endswith("diffusion_pytorch_model.safetensors") for p in paths)
    assert latents_tiny.shape == (4, 8, 8)


def test_pretrained_errors_are_clear(models, images, tmp_path):
    wrong_kind = _vae_params(images, tmp_path, id=str(models / "local_tiny"), kind="kl")
    proc = _run("vae", wrong_kind, ["--images", str(images / "images"), "--out", str(tmp_path / "vae"),
                                    "--reports", str(tmp_path / "rep")], check=False)
    assert proc.returncode == 2 and "AutoencoderTiny" in proc.stderr and "vae.kind to 'tiny'" in proc.stderr
    too_small = _vae_params(images, tmp_path, id="stabilityai/sd-vae-ft-mse", kind="kl")   # SD's VAE at 16 px: 2×2
    proc = _run("vae", too_small, ["--images", str(images / "images")], check=False)
    assert proc.returncode == 2 and "gives 2×2 latents" in proc.stderr and "at least 64" in proc.stderr
    unreachable = _vae_params(images, tmp_path, id="test-org/absent-vae", kind="kl")
    proc = _run("vae", unreachable, ["--images", str(images / "images"), "--out", str(tmp_path / "vae"),
                                     "--reports", str(tmp_path / "rep")],
                {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty")}, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "vae.id test-org/absent-vae is missing: HF_HUB_OFFLINE is set" in proc.stderr and "local directory" in proc.stderr
    assert not (tmp_path / "vae").exists()


def test_reduced_precision_encode_stays_close(models, images, tmp_path):
    vae32 = load_saved_vae(models / "local_kl")
    vae16 = load_saved_vae(models / "local_kl", dtype="bfloat16")
    x = images_to_tensor(read_image_test(images))
    z32, z16 = encode_images(vae32, x), encode_images(vae16, x)
    assert vae16.dtype == torch.bfloat16 and z16.dtype == torch.float32
    assert (z32 - z16).abs().mean() < 0.05 * z32.abs().mean() + 1e-3


def test_tiling_switches_on_for_images_larger_than_the_tile(models):
    vae = load_saved_vae(models / "local_kl")          # sample_size 16 = tile size
    assert configure_tiling(vae, "auto", 16) is False and not vae.use_tiling
    assert configure_tiling(vae, "off", 64) is False
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = encode_images(vae, x)
    assert configure_tiling(vae, "auto", 32) is True and vae.use_tiling and vae.use_slicing
    tiled = encode_images(vae, x)
    assert tiled.shape == plain.shape == (2, 4, 16, 16)
    assert downsampling_factor(vae) == 2 and downsampling_factor(tiny_taesd()) == 2


def test_sd15_detection_and_published_factor_comparison():
    assert is_sd15_vae(tiny_kl()) and not is_sd15_vae(tiny_kl(scaling_factor=0.13025)) and not is_sd15_vae(tiny_taesd())
    rng = np.random.default_rng(0)
    latents = 0.4 * rng.normal(size=(50, 4, 4, 4))   # small enough that clipping rarely bites
    F = np.asarray(SD15_FACTORS["comfyui_sd15"])
    rgb = np.clip(np.einsum("nchw,ck->nhwk", latents, F), -1, 1)
    images = np.round((np.repeat(np.repeat(rgb, 2, 1), 2, 2) + 1) * 127.5).astype(np.uint8)   # 8 px = 2× the grid
    fitted = fit_latent_rgb(latents, images)
    cmp = compare_published(fitted, latents, images)
    assert cmp["comfyui_sd15"]["rmse"] < cmp["v1_4_forum"]["rmse"]
    assert cmp["comfyui_sd15"]["relative_factor_distance"] < 0.2 < cmp["v1_4_forum"]["relative_factor_distance"]
    assert published_rgb("v1_4_forum").source == "v1_4_forum"
