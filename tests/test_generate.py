"""Latent diffusion on a tiny U-Net: samplers, guidance, saving, interpolation, real sampler runs, metrics."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import UNet2DModel

from pipeline.io import InputError
from pipeline.generate.evaluate import SampleReference, path_smoothness
from pipeline.generate.interpolate import interpolation_paths, pixel_metric, same_class_pairs
from pipeline.generate.runs import end_error, fresh_rows, image_seeds, run_rows, sampler_runs
from pipeline.generate.sampling import Guide, ddim_invert, denoise, slerp_noise, starting_noise
from pipeline.generate.study import paired_verdicts
from pipeline.metrics.verdicts import agrees
from pipeline.generate.unet import load_diffusion
from pipeline.latents.noising import SCHEDULERS, oracle_trajectory
from pipeline.score.runs import load_runs
from toys import SHAPE, clustered_latents, tiny_diffusion



@pytest.fixture(scope="module")
def model():
    """A tiny U-Net trained for a few seconds on two clusters of latents that sit away from zero."""
    data = clustered_latents(256)[0]
    m, losses = tiny_diffusion(data)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    return m, data


def _dist(a, b):
    return (a - b).flatten(1).norm(dim=1)


def test_one_timestep_spacing_makes_ddim_and_euler_one_solver(model):
    """With trailing spacing both start at t = 999 on the same grid, and Euler's step in sigma space is
    DDIM's step (x̂₀ + σ'·ε̂): the same latents at every step, which is why the default grids run DDIM only."""
    from pipeline.latents.noising import make_scheduler

    m, _ = model
    assert [int(t) for t in make_scheduler("ddim", 10).timesteps] == [int(t) for t in make_scheduler("euler", 10).timesteps]
    assert int(make_scheduler("ddpm", 25).timesteps[0]) == int(make_scheduler("dpmsolver", 25).timesteps[0]) == 999
    x_T = starting_noise(6, SHAPE, seed=1)
    ddim, euler = (denoise(m.unet, name, x_T, 10, record=[0, 5, 10], seed=3) for name in ("ddim", "euler"))
    torch.testing.assert_close(euler.model_input, ddim.model_input, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(euler.final, ddim.final, atol=1e-4, rtol=1e-4)


def test_every_sampler_runs_and_deterministic_ones_repeat(model):
    m, _ = model
    x_T = starting_noise(6, SHAPE, seed=1)
    for name in SCHEDULERS:
        run = denoise(m.unet, name, x_T, 10, record=[0, 5, 10], seed=3, batch_size=4)   # two batches
        assert run.final.shape == x_T.shape and torch.isfinite(run.final).all(), name
        assert run.latents.shape == run.model_input.shape == run.x0.shape == (3, *x_T.shape)
        assert run.timesteps[-1] == 0.0 and torch.equal(run.latents[-1], run.final)
        again = denoise(m.unet, name, x_T, 10, seed=3, batch_size=4).final
        assert torch.equal(again, run.final), name
        if name != "ddpm":   # deterministic samplers: batching does not change a run
            assert torch.allclose(denoise(m.unet, name, x_T, 10).final, run.final, atol=1e-5), name
    a = denoise(m.unet, "ddpm", x_T, 10, seed=3).final
    assert not torch.allclose(a, denoise(m.unet, "ddpm", x_T, 10, seed=4).final)


def test_ddim_inversion_round_trips_within_five_percent(model):
    m, data = model
    x0 = m.to_model(torch.from_numpy(data[:16]))
    x_T = ddim_invert(m.unet, x0, 50, batch_size=5)
    assert 0.7 < float(x_T.std()) < 1.3
    back = denoise(m.unet, "ddim", x_T, 50).final
    assert float((_dist(back, x0) / x0.flatten(1).norm(dim=1)).max()) < 0.05


def test_a_guided_step_lowers_the_distance_to_the_target(model):
    m, data = model
    x_T = starting_noise(8, SHAPE, seed=2)
    target = m.to_model(torch.from_numpy(data[100:108]))
    free = denoise(m.unet, "ddim", x_T, 1).final            # one step: from noise to x̂₀
    guided = denoise(m.unet, "ddim", x_T, 1, guide=Guide(target, 0.3)).final
    assert (_dist(guided, target) < _dist(free, target)).all()
    full = denoise(m.unet, "ddim", x_T, 10, guide=Guide(target, 1.0)).final
    assert torch.allclose(full, target, atol=1e-4)          # strength 1: x̂₀ is the target at every step
    for name in ("euler", "dpmsolver", "ddpm"):              # the ε form of the hook works for every scheduler
        f, g = (denoise(m.unet, name, x_T, 10, guide=gd).final for gd in (None, Guide(target, 0.2)))
        assert _dist(g, target).mean() < _dist(f, target).mean(), name


def test_a_metric_guide_follows_its_gradient(model):
    m, data = model
    x0 = torch.zeros(4, *SHAPE)
    images = torch.from_numpy(data[:4]).tanh()
    metric = pixel_metric(torch.tanh)                       # any differentiable decoder
    moved = Guide(torch.from_numpy(data[:4]), 0.2, metric, metric_targets=images)(x0)
    assert (metric(moved, images) < metric(x0, images)).all()
    with pytest.raises(ValueError, match="metric_targets"):
        Guide(x0, 0.2, metric)
    with pytest.raises(ValueError, match="strength"):
        Guide(x0, -1.0)


def test_the_model_saves_and_loads_back_with_one_from_pretrained_call(model, tmp_path):
    m, data = model
    m.save(tmp_path)
    unet = UNet2DModel.from_pretrained(tmp_path, subfolder="unet")
    x, t = torch.from_numpy(data[:2]), torch.tensor([10, 500])
    with torch.no_grad():
        assert torch.allclose(unet(x, t).sample, m.unet(x, t).sample, atol=1e-6)
    back = load_diffusion(tmp_path)
    assert torch.allclose(back.shift, m.shift) and (tmp_path / "scheduler/scheduler_config.json").is_file()
    assert np.allclose(back.to_latents(back.to_model(data[:3])), data[:3], atol=1e-6)
    (tmp_path / "latents.json").write_text(json.dumps({"shift": [0.0]}))
    with pytest.raises(ValueError, match="1 shift values"):
        load_diffusion(tmp_path)
    with pytest.raises(InputError, match="is missing"):
        load_diffusion(tmp_path / "nowhere")


def test_interpolation_paths_keep_their_ends_and_guidance_interpolates_between_methods(model):
    m, data = model
    lams = np.linspace(0, 1, 5)
    za, zb = data[:3], data[3:6]
    p = interpolation_paths(m, za, zb, lams, steps=20, strength=0.0)
    for name in ("lerp", "slerp"):
        assert np.allclose(p.latents[name][:, 0], za, atol=1e-5) and np.allclose(p.latents[name][:, -1], zb, atol=1e-5)
    ends = np.linalg.norm((p.latents["noise_slerp"][:, [0, -1]] - np.stack([za, zb], 1)).reshape(3, 2, -1), axis=2)
    assert (ends / np.linalg.norm(za.reshape(3, -1), axis=1)[:, None]).max() < 0.1   # inversion round trip
    assert np.allclose(p.latents["guided"], p.latents["noise_slerp"], atol=1e-5)       # strength 0
    full = interpolation_paths(m, za, zb, lams, methods=("lerp", "guided"), steps=20, strength=1.0)
    assert np.allclose(full.latents["guided"], full.latents["lerp"], atol=1e-4)        # strength 1: the λ-blend
    pix = interpolation_paths(m, za, zb, lams, methods=("guided",), steps=10, strength=0.3, metric="pixels",
                              decode=torch.tanh)
    assert np.isfinite(pix.latents["guided"]).all()
    with pytest.raises(ValueError, match="decoder"):
        interpolation_paths(m, za, zb, lams, steps=5, strength=0.1, metric="pixels")
    with pytest.raises(ValueError, match="unknown interpolation"):
        interpolation_paths(m, za, zb, lams, methods=("spline",), steps=5, strength=0.1)


def test_interpolation_study_keeps_the_decoded_paths_it_measured(model):
    """The stage's strips reuse the first paths' decoded images instead of decoding them again."""
    from pipeline.generate.study import interpolation_study

    m, data = model
    y = clustered_latents(256)[1]
    decoded = []

    def decode_images(z):   # a stand-in decoder that records every latent it is given
        decoded.append(len(z))
        return (np.clip(z[:, :3], -2, 2) * 60 + 128).astype(np.uint8).transpose(0, 2, 3, 1)

    ref = SampleReference(data[:128], data[128:], n=8, components=4, k=3, seed=0)
    pairs = same_class_pairs(y, 4, np.random.default_rng(0))
    rows, paths = interpolation_study(m, ref, data, y, judge=lambda z: np.zeros(len(z), int), decode_images=decode_images,
                                      pairs=pairs, points=2, steps=4, strength=0.1, metric="latent", seed=0,
                                      methods=("lerp", "guided"), keep_pixels=1)
    assert decoded == [16, 16] and {r["method"] for r in rows} == {"lerp", "guided"}
    for method in ("lerp", "guided"):
        assert paths["pixels"][method].shape == (1, 4, *SHAPE[1:], 3)
        assert np.array_equal(paths["pixels"][method][0], decode_images(paths["latents"][method][0]))


def test_slerp_of_noises_keeps_a_gaussian_norm_and_pairs_share_a_class():
    a, b = starting_noise(200, SHAPE, 0), starting_noise(200, SHAPE, 1)
    mid = slerp_noise(a, b, 0.5)
    assert abs(float(mid.flatten(1).norm(dim=1).mean() / a.flatten(1).norm(dim=1).mean()) - 1) < 0.05
    assert float(((a + b) / 2).flatten(1).norm(dim=1).mean() / a.flatten(1).norm(dim=1).mean()) < 0.75
    y = np.array([0, 0, 0, 1, 1, 2])
    pairs = same_class_pairs(y, 7, np.random.default_rng(0))
    assert (y[pairs[:, 0]] == y[pairs[:, 1]]).all() and (pairs[:, 0] != pairs[:, 1]).all()
    assert set(y[pairs[:, 0]]) == {0, 1}                   # class 2 has one member: no pairs
    with pytest.raises(ValueError, match="two members"):
        same_class_pairs(np.array([0, 1]), 2, np.random.default_rng(0))


def test_sampler_runs_follow_the_proxy_levels_and_end_near_the_image(model):
    m, data = model
    clean = torch.from_numpy(data[:10])
    fracs = [0.1, 0.5, 0.9]
    trajs, finals = sampler_runs(m, clean, ["ddim", "euler", "ddpm"], fracs, 20, image_seeds(0, range(10)))
    for name, traj in trajs.items():
        proxy = oracle_trajectory(name, clean, fracs, 20, seed=0)
        assert traj.timesteps == proxy.timesteps and traj.steps == proxy.steps
        assert traj.model_input.shape == proxy.model_input.shape == (3, 10, *SHAPE)
    err = {n: end_error(f, clean) for n, f in finals.items()}
    assert err["ddim"].max() < 0.1 and err["euler"].max() < 0.25 and err["ddpm"].mean() > 2 * err["ddim"].mean()
    # the least noisy recorded input is near √ᾱ·x0 in data space (the shift mapped back)
    low = trajs["ddim"]
    scaled = low.alpha_bars[0] ** 0.5 * clean
    assert float(_dist(low.model_input[0], scaled).mean()) < float(_dist(torch.zeros_like(clean), scaled).mean())


def test_per_image_noise_seeds_make_a_ddpm_run_independent_of_its_batch(model):
    m, data = model
    x_T = starting_noise(6, SHAPE, seed=2)
    seeds = image_seeds(7, [f"i{k}" for k in range(6)])
    assert len(set(seeds)) == 6 and seeds == image_seeds(7, [f"i{k}" for k in range(6)]) != image_seeds(8, range(6))
    whole = denoise(m.unet, "ddpm", x_T, 10, noise_seeds=seeds).final
    assert torch.allclose(denoise(m.unet, "ddpm", x_T, 10, noise_seeds=seeds, batch_size=4).final, whole, atol=1e-5)
    alone = denoise(m.unet, "ddpm", x_T[3:4], 10, noise_seeds=seeds[3:4]).final   # the image alone, elsewhere
    assert torch.allclose(alone, whole[3:4], atol=1e-5)
    assert not torch.allclose(denoise(m.unet, "ddpm", x_T, 10, seed=0).final, whole)   # one generator: batch-bound
    with pytest.raises(ValueError, match="noise_seeds has 2 seeds for 6 latents"):
        denoise(m.unet, "ddpm", x_T, 10, noise_seeds=seeds[:2])


def test_run_rows_of_chunks_are_the_rows_of_the_whole_and_load_back_for_the_scorer(model, tmp_path):
    import pandas as pd
    from pipeline.latents.store import LatentSplitWriter

    m, data = model
    clean = torch.from_numpy(data[:9])
    meta = pd.DataFrame({"id": [f"i{k}" for k in range(9)], "severity": np.arange(9, dtype=np.float32) % 6})
    fracs, schedulers = [0.1, 0.5, 0.9], ["ddim", "ddpm"]
    whole = run_rows(m, clean, meta, schedulers, fracs, 2, 20, seed=3)
    for name in schedulers:
        with LatentSplitWriter(tmp_path, name, scaling_factor=1.0, rows_per_shard=7) as writer:
            parts = [run_rows(m, clean[a:b], meta.iloc[a:b], schedulers, fracs, 2, 20, seed=3)[name]
                     for a, b in ((0, 4), (4, 9))]
            for part in parts:
                writer.append(part.latents, part.meta)
        np.testing.assert_allclose(np.concatenate([p.latents for p in parts]), whole[name].latents, atol=1e-4)
        np.testing.assert_allclose(np.concatenate([p.end_error for p in parts]), whole[name].end_error, atol=1e-4)
        rows = whole[name].meta
        assert list(rows["id"][:4]) == ["i0", "i0", "i0", "i1"] and list(rows["heldout"][:3]) == [False, False, True]
    trajs, _ = sampler_runs(m, clean, ["ddim"], fracs, 20, image_seeds(3, meta["id"]))
    # the runs store round-trips into the scorer's layout (levels, images, ...)
    test_ids = np.array([f"i{k}" for k in range(12)][::-1])
    runs = load_runs(tmp_path, ["ddim"], test_ids, 3)["ddim"]
    assert runs["model_input"].shape == (3, 9, *SHAPE) and runs["timesteps"] == trajs["ddim"].timesteps
    np.testing.assert_allclose(runs["model_input"], trajs["ddim"].model_input.numpy(), atol=1e-4)
    assert list(test_ids[runs["index"]]) == list(meta["id"])
    with pytest.raises(ValueError, match="not 4 noise levels"):
        load_runs(tmp_path, ["ddim"], test_ids, 4)
    with pytest.raises(ValueError, match="not each image's 9 levels"):
        load_runs(tmp_path, ["ddim"], test_ids, 9)   # 27 rows are 9 × 3, but not one image per 9 rows
    with pytest.raises(ValueError, match="not in the artifact test split"):
        load_runs(tmp_path, ["ddim"], test_ids[:3], 3)
    with pytest.raises(InputError):
        load_runs(tmp_path, ["euler"], test_ids, 3)


def test_fresh_runs_are_chunk_free_record_x0_and_load_back_for_the_study(model, tmp_path):
    import pandas as pd
    from pipeline.latents.store import LatentSplitWriter
    from pipeline.score.fresh import load_fresh, split_names

    m, data = model
    checks = [0.9, 0.5, 0.2]
    for name in ("ddim", "ddpm"):
        whole = fresh_rows(m, range(7), SHAPE, name, checks, 20, seed=4)
        parts = [fresh_rows(m, ids, SHAPE, name, checks, 20, seed=4) for ids in (range(3), range(3, 7))]
        for key in ("x_t", "x0"):
            torch.testing.assert_close(torch.cat([p[key] for p in parts], dim=1), whole[key], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(torch.cat([p["final"] for p in parts]), whole["final"], atol=1e-4, rtol=1e-4)
        assert whole["x_t"].shape == whole["x0"].shape == (3, 7, *SHAPE)
        assert whole["run_fracs"] == sorted(whole["run_fracs"]) and whole["timesteps"][0] > whole["timesteps"][-1]
    ddim = fresh_rows(m, range(7), SHAPE, "ddim", checks, 20, seed=4)
    # x̂₀ closes in on the finished latent as the run goes on; fresh noise ends at new latents, not at one another
    gap = [float(_dist(ddim["x0"][i], ddim["final"]).mean()) for i in range(3)]
    assert gap[2] < gap[0]
    assert float(_dist(ddim["final"][:1], ddim["final"][1:]).min()) > 0.1
    with pytest.raises(ValueError, match="same step"):
        fresh_rows(m, range(2), SHAPE, "ddim", [0.5, 0.51], 4, seed=0)
    # the store round trip into the study's layout
    levels = pd.DataFrame({"t_frac": checks, "timestep": ddim["timesteps"], "run_frac": ddim["run_fracs"]})
    runs = pd.DataFrame({"id": range(7), "role": ["train"] * 3 + ["calibration"] * 2 + ["test"] * 2, "judge": np.arange(7.0)})
    meta = pd.concat([runs.loc[runs.index.repeat(3)].reset_index(drop=True), pd.concat([levels] * 7, ignore_index=True)], axis=1)
    for key, split in split_names("ddim").items():
        with LatentSplitWriter(tmp_path, split, scaling_factor=1.0) as writer:
            if key == "final":
                writer.append(ddim["final"].numpy(), runs)
            else:
                writer.append(ddim[key].transpose(0, 1).reshape(21, *SHAPE).numpy(), meta)
    fs = load_fresh(tmp_path, ["ddim"])["ddim"]
    np.testing.assert_allclose(fs.x0, ddim["x0"].numpy(), atol=1e-6)
    assert fs.t_fracs == checks and list(fs.part("calibration")) == [3, 4] and fs.label[6] == 6.0
    with pytest.raises(InputError):
        load_fresh(tmp_path, ["ddpm"])


def test_sample_reference_scores_real_data_as_real_and_noise_as_noise():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 64))
    make = lambda n: rng.normal(size=(n, 6)) @ basis + 0.05 * rng.normal(size=(n, 64))
    train, test = make(400), make(200)
    ref = SampleReference(train, test, n=100, components=6, k=5, seed=0)
    real, noise = ref.measure(make(100)), ref.measure(rng.normal(size=(100, 64)) * train.std())
    assert real["frechet"] < 0.1 * noise["frechet"]
    assert real["precision"] > 0.8 and noise["precision"] < 0.2 and real["coverage"] > noise["coverage"]
    assert 0.7 < real["copy_ratio"] < 1.4 and noise["near_copy_fraction"] == 0
    base = ref.baselines(0)
    assert base["real_train"]["near_copy_fraction"] == 1.0 and base["gaussian"]["frechet"] > real["frechet"]
    with pytest.raises(ValueError, match="expected 100"):
        ref.measure(make(99))
    with pytest.raises(ValueError, match="only 400 train"):
        SampleReference(train, test, n=300)


def test_path_smoothness_and_paired_verdicts():
    line = np.linspace(0, 1, 5)[None, :, None] * np.ones((2, 1, 3))
    assert path_smoothness(line) == pytest.approx({"jump_ratio": 1.0, "length_ratio": 1.0})
    jumpy = line.copy()
    jumpy[:, 2] = jumpy[:, 1]
    assert path_smoothness(jumpy)["jump_ratio"] > 1.5
    wide = pd.DataFrame({("acc", "a"): [0.9, 0.8, 0.85], ("acc", "b"): [0.5, 0.45, 0.5], ("acc", "c"): [0.55, 0.45, 0.5],
                         ("fd", "a"): [0.9, 0.8, 0.85], ("fd", "b"): [0.5, 0.45, 0.5], ("fd", "c"): [0.5, 0.6, 0.4]})
    table = paired_verdicts(wide, {"a_vs_b": ("a", "b"), "c_vs_b": ("c", "b")}, {"acc": True, "fd": False})
    assert table["a_vs_b"]["acc"]["verdict"] == "better" and table["a_vs_b"]["fd"]["verdict"] == "worse"
    assert table["c_vs_b"]["fd"]["verdict"] == "no clear difference"
    assert all(v["comparisons"] == 4 and agrees(v) and v["higher_is_better"] == (m == "acc")
               for block in table.values() for m, v in block.items())
