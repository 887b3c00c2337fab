"""`dvc repro` end to end on the emoji dataset with a pretrained VAE (a tiny AutoencoderKL with SD 1.x's
config saved by save_pretrained, loaded by path): the real-data path of the pipeline."""

import json

import pytest
import torch
from diffusers import AutoencoderKL

from benchmarks.workspace import LIGHT, SHRUNK, copy_project, sh


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    vae_dir = tmp_path_factory.mktemp("vae") / "sd15-tiny"
    torch.manual_seed(0)
    AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  block_out_channels=(16, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8,
                  sample_size=32, scaling_factor=0.18215).save_pretrained(vae_dir)
    override = {**SHRUNK, **LIGHT, "data.source": "emoji", "data.n_images": 360, "data.n_artifact": 120,
                "vae.source": "pretrained", "vae.id": str(vae_dir), "vae.kind": "kl",
                "compare.methods": ["smote"], "score.seeds": 1}
    root = copy_project(tmp_path_factory.mktemp("e2e_emoji"), override)
    sh(["dvc", "repro"], root, timeout=900)
    return root


def test_emoji_repro_uses_nine_groups_and_the_pretrained_vae(project):
    load = lambda p: json.loads((project / p).read_text())
    prep = load("reports/prepare/metrics.json")
    assert prep["source"] == "emoji" and len(prep["classes"]) == 9
    splits = prep["splits"]
    assert splits["train"]["n"] + splits["test"]["n"] == 360
    assert all(splits["test"][c] >= 1 for c in prep["classes"])
    assert splits["artifact_test"]["severity"] == {str(s): 6 for s in range(6)}   # 36 = 30 % of 120, even

    vae = load("reports/vae/metrics.json")
    assert vae["source"] == "pretrained" and vae["sd15"] is True and vae["scaling_factor"] == pytest.approx(0.18215)
    enc = load("reports/encode/metrics.json")
    assert enc["scaling_factor"] == pytest.approx(0.18215) and enc["latent_shape"] == [4, 16, 16]

    rgb = load("reports/analyze/metrics.json")["latent_rgb"]
    assert rgb["used"] == "comfyui_sd15" and set(rgb["published"]) == {"v1_4_forum", "comfyui_sd15"}
    assert json.loads((project / "models/latent_rgb.json").read_text())["source"] == "comfyui_sd15"

    score = load("reports/score/metrics.json")
    assert score and (project / "reports/score/mae.png").exists()
    page = (project / "reports/index.html").read_text()
    assert "Source: emoji" in page and "Smileys &amp; Emotion" in page and "published SD 1.x factors" in page
