"""Recipes that follow the latent geometry (pipeline.recipes, stages.common.follow_geometry): unchanged at
the default 16×16 latents, deeper at SD geometry, and every scaled model builds and runs on its input."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.classify.nets import PIXEL_NETS, LatentAttention, VGGNet
from pipeline.generate.unet import build_unet
from pipeline.recipes import Geometry, deepen, doublings, patch_for
from pipeline.score.nets import CNNScorer
from stages.common import extra_stages, follow_geometry
from stages.config import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_doublings_and_scaling_rules():
    assert [doublings(s, 16) for s in (8, 16, 24, 32, 64, 128)] == [0, 0, 0, 1, 2, 3]
    assert deepen([16, 32, 32], 2) == [16, 32, 32, 32, 32] and deepen([8], 0) == [8]
    assert patch_for(4, 64, 2) == 16 and patch_for(4, 40, 2) == 4   # 16 does not divide 40: as written
    geo = Geometry.of(32)
    assert (geo.image_side, geo.latent_doublings, geo.image_doublings) == (64, 1, 1)
    assert Geometry.of(64, 512, follow=False).latent_doublings == 0


def test_default_geometry_leaves_params_untouched():
    params = load_params(ROOT / "params.yaml")
    assert follow_geometry(params, (4, 16, 16), 32) is params
    assert extra_stages(params, 16, pixels=False) == extra_stages(params, 32, pixels=True) == 0


@pytest.mark.parametrize("side,image", [(32, 256), (64, 512)])
def test_sd_geometry_recipes_deepen_and_every_model_runs(side, image):
    params = load_params(ROOT / "params.yaml")
    k = doublings(side, 16)
    scaled = follow_geometry(params, (4, side, side), image)
    assert scaled.diffusion.block_out_channels == params.diffusion.block_out_channels + [32] * k
    assert len(scaled.score.cnn_channels) == len(params.score.cnn_channels) + k
    assert len(scaled.guide.channels) == len(params.guide.channels) + k
    assert len(scaled.runs.judge.channels) == len(params.runs.judge.channels) + k
    assert scaled.bench.attention.patch == params.bench.attention.patch * 2 ** k
    assert params.diffusion.block_out_channels == [16, 32, 32]   # the original is not modified

    z = torch.randn(2, 4, side, side)
    unet = build_unet((4, side, side), scaled.diffusion.block_out_channels, 1, 8)
    assert unet(z, torch.tensor([10, 500])).sample.shape == z.shape
    # the deepest U-Net block sees the reference's grid: 16 / 2^(3-1) = 4
    assert side // 2 ** (len(scaled.diffusion.block_out_channels) - 1) == 4
    scorer = CNNScorer([4, side, side], scaled.score.cnn_channels)
    assert scorer(z, torch.zeros(2)).shape == (2,)
    a = scaled.bench.attention
    att = LatentAttention((4, side, side), 3, patch=a.patch, dim=a.dim, depth=a.depth, heads=a.heads, stem=a.stem)
    assert att.grid == (16 // params.bench.attention.patch,) * 2 and att(z).shape == (2, 3)   # the reference's tokens
    cnn = VGGNet(3, width=4, in_channels=4, extra=extra_stages(params, side, pixels=False))
    assert cnn(z).shape == (2, 3) and cnn.features(z).shape[-1] == 4   # pooled to the reference's 4×4
    x = torch.randn(1, 3, image, image)
    for name, net in PIXEL_NETS.items():
        out = net(3, width=4, extra=extra_stages(params, image, pixels=True))
        assert out(x).shape == (1, 3), name
        assert out.features(x).shape[-1] <= 8, name   # at most the 32 px recipe's final grid (8 for VGG)


def test_vae_batches_follow_a_memory_budget_and_do_not_change_the_images(monkeypatch):
    from diffusers import AutoencoderKL, AutoencoderTiny

    from pipeline.latents.vae import decode_latents, decode_to_uint8, memory_batch, tensor_to_images

    sd = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                       block_out_channels=(128, 256, 512, 512), norm_num_groups=32)   # SD 1.x's widths
    assert memory_batch(sd, 256) == 5 and memory_batch(sd, 512) == 1 and memory_batch(AutoencoderTiny(), 512) == 2
    torch.manual_seed(0)
    small = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                          block_out_channels=(8, 16), norm_num_groups=4).eval()
    assert memory_batch(small, 32) == 64                              # the default geometry: batches as before
    z = torch.randn(7, 4, 16, 16)
    whole = tensor_to_images(decode_latents(small, z, batch_size=64, progress=False))
    monkeypatch.setenv("LATENT_LAB_VAE_MEMORY_MB", "0.5")             # ~2 images per batch at 32 px
    assert memory_batch(small, 32) == 2
    np.testing.assert_array_equal(decode_to_uint8(small, z, progress=False), whole)
    monkeypatch.setenv("LATENT_LAB_VAE_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="LATENT_LAB_VAE_MEMORY_MB"):
        memory_batch(small, 32)
