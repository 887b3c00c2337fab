"""Latent U-Net training, DDIM inversion and per-scheduler reverse trajectories on a tiny model."""

import numpy as np
import pytest
import torch

from pipeline.generate.sampling import ddim_invert, reverse_trajectory
from pipeline.generate.unet import build_unet, train_unet
from pipeline.latents.noising import make_scheduler


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(1, 4, 8, 8)) + 0.3 * rng.normal(size=(256, 4, 8, 8))).astype(np.float32)
    unet = build_unet([4, 8, 8], [16, 32])
    losses = train_unet(unet, data, steps=150, lr=2e-3, seed=0)
    return unet, torch.from_numpy(data[:8]), losses


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_unet_training_reduces_the_noise_prediction_loss_and_is_seeded(trained):
    losses = trained[2]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train_unet(build_unet([4, 8, 8], [16, 32]), np.ones((8, 4, 8, 8), np.float32), steps=3, seed=5))
    assert runs[0] == runs[1]


def test_ddim_inversion_round_trips_and_ode_samplers_land_nearby(trained):
    unet, x0, _ = trained
    x_T = ddim_invert(unet, x0, 50)
    assert 0.7 < float(x_T.std()) < 1.3  # noise-like
    ends = {s: reverse_trajectory(unet, s, x_T, 50, record=[50])["final"] for s in ("ddim", "euler", "dpmsolver", "ddpm")}
    assert _rel(ends["ddim"], x0) < 0.1
    assert _rel(ends["euler"], x0) < 0.2 and _rel(ends["dpmsolver"], x0) < 0.2
    assert _rel(ends["ddpm"], x0) > 0.5  # stochastic: fresh noise each step ends elsewhere


def test_trajectories_record_what_the_loop_holds(trained):
    unet, x0, _ = trained
    x_T = ddim_invert(unet, x0, 20)
    for name in ("ddim", "euler"):
        run = reverse_trajectory(unet, name, x_T, 20, record=[0, 10, 20], seed=1)
        assert run["latents"].shape == (3, *x0.shape) and run["timesteps"][-1] == 0.0
        assert run["timesteps"][0] > run["timesteps"][1] > 0
        assert torch.equal(run["latents"][2], run["final"])
    euler = make_scheduler("euler", 20)
    start = reverse_trajectory(unet, "euler", x_T, 20, record=[0])["latents"][0]
    assert torch.allclose(start, x_T * (euler.sigmas[0] ** 2 + 1).sqrt())  # sigma space
    a = reverse_trajectory(unet, "ddpm", x_T, 20, record=[20], seed=3)["final"]
    assert torch.equal(a, reverse_trajectory(unet, "ddpm", x_T, 20, record=[20], seed=3)["final"])
    with pytest.raises(ValueError, match="record steps"):
        reverse_trajectory(unet, "ddim", x_T, 20, record=[21])
