"""Latent analysis and synthetic-sample fidelity: each measure on data whose answer is known."""

import json

import numpy as np
import pytest
import torch

import pipeline.latents.analysis as la
from pipeline.latents.rgb import (
    LatentRGB,
    downsample_images,
    fit_latent_rgb,
    preview_error,
    to_uint8,
)
from pipeline.latents.study import LatentAnalysis, LatentSplits, reconstruction
from pipeline.latents.vae import build_vae
from pipeline.metrics.fidelity import (
    FidelityReference,
    class_matched,
    copying_check,
    knn_precision_recall,
)
from pipeline.metrics.image_stats import edge_density
from pipeline.metrics.pixels import pixel_features
from pipeline.metrics.stats import aggregate, mean_std


def test_knn_precision_recall_separates_fidelity_from_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 4))
    assert knn_precision_recall(real, rng.normal(size=(400, 4)), k=5) > (0.85, 0.85)
    collapsed = rng.normal(scale=0.05, size=(400, 4))  # inside the real manifold, covers little of it
    p, r = knn_precision_recall(real, collapsed, k=5)
    assert p > 0.95 and r < 0.3
    far = rng.normal(loc=8.0, size=(400, 4))
    assert knn_precision_recall(real, far, k=5) == (0.0, 0.0)


def test_copying_check_flags_copies_and_passes_fresh_draws():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 16)), rng.normal(size=(150, 16))
    fresh = copying_check(rng.normal(size=(150, 16)), train, test)
    assert 0.85 < fresh["median_ratio"] < 1.15 and fresh["near_copy_fraction"] < 0.15
    copies = copying_check(train[:150] + rng.normal(scale=0.01, size=(150, 16)), train, test)
    assert copies["median_ratio"] < 0.05 and copies["near_copy_fraction"] == 1.0


def test_class_matched_gives_both_sets_the_same_class_counts():
    a, b = np.array([0] * 50 + [1] * 10 + [2] * 5), np.array([1] * 30 + [2] * 3 + [3] * 7)
    ia, ib = class_matched(a, b, np.random.default_rng(0))
    assert np.bincount(a[ia], minlength=4).tolist() == np.bincount(b[ib], minlength=4).tolist() == [0, 10, 3, 0]
    assert len(set(ia)) == len(ia) and len(set(ib)) == len(ib)


def test_fidelity_reference_puts_a_fresh_draw_level_with_its_real_baseline():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.0, size=(3, 20))
    draw = lambda n: (lambda y: (centres[y] + rng.normal(size=(n, 20)), y))(rng.integers(0, 3, n))
    train, test, fresh = draw(600), draw(300), draw(600)
    reference = FidelityReference(train, test, components=8, k=5)
    m, idx_real, idx_syn = reference.evaluate(fresh)
    assert m["frechet"]["synthetic"] == pytest.approx(m["frechet"]["real_train"], abs=1.0)
    assert abs(m["precision"]["synthetic"] - m["precision"]["real_train"]) < 0.1
    assert m["label_agreement"]["synthetic"] == pytest.approx(m["label_agreement"]["real_test"], abs=0.1)
    assert len(idx_real) == len(idx_syn) == m["n_matched"]
    shifted = (fresh[0] + 3.0, fresh[1])
    assert reference.evaluate(shifted)[0]["frechet"]["synthetic"] > 5 * m["frechet"]["real_train"]
    # the cached copying reference equals the stand-alone check
    assert reference.evaluate(fresh)[0]["copying"] == copying_check(fresh[0][idx_syn], train[0], test[0])


def test_aggregate_turns_runs_into_mean_and_std():
    out = aggregate([{"a": 1.0, "b": {"c": 2, "name": "x"}}, {"a": 3.0, "b": {"c": 4, "name": "x"}}])
    assert out == {"a": {"mean": 2.0, "std": 1.0}, "b": {"c": {"mean": 3.0, "std": 1.0}, "name": "x"}}
    assert mean_std([5.0]) == {"mean": 5.0, "std": 0.0}


def test_latent_rgb_fit_recovers_a_known_linear_map(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=0.4, size=(40, 4, 8, 8))
    F, b = rng.normal(scale=0.3, size=(4, 3)), np.array([0.1, -0.2, 0.05])
    small = np.clip(np.einsum("nchw,ck->nhwk", z, F) + b, -1, 1)
    images = np.repeat(np.repeat(to_uint8(small), 4, 1), 4, 2)  # 32×32 images whose 4×4 blocks are constant
    fitted = fit_latent_rgb(z, images)
    assert np.allclose(fitted.factors, F, atol=0.02) and np.allclose(fitted.bias, b, atol=0.02)
    assert preview_error(fitted, z, images)["rmse"] < 0.01
    fitted.save(tmp_path / "rgb.json")
    assert LatentRGB.load(tmp_path / "rgb.json") == fitted and json.loads((tmp_path / "rgb.json").read_text())["bias"]
    with pytest.raises(ValueError, match="not a multiple"):
        downsample_images(images[:, :30, :30], 8)
    with pytest.raises(ValueError, match="3 channels"):
        fitted(z[:, :3])


def test_channel_stats_and_correlation_on_known_distributions():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 1, 8, 8))
    lat = np.concatenate([base, 2 * base + 1, rng.exponential(size=(200, 1, 8, 8))], axis=1)
    stats = la.channel_stats(lat).set_index("channel")
    assert stats.loc[1, "mean"] == pytest.approx(1.0, abs=0.05) and stats.loc[1, "std"] == pytest.approx(2.0, abs=0.05)
    assert stats.loc[2, "skew"] == pytest.approx(2.0, abs=0.3)  # exponential: skew 2
    corr = la.channel_correlation(lat)
    assert corr[0, 1] == pytest.approx(1.0) and abs(corr[0, 2]) < 0.1


def test_separability_probe_and_silhouette_see_structure_only_where_it_exists():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = rng.normal(size=(300, 10)) + 3.0 * np.eye(3, 10)[y]
    assert la.linear_probe((X[:200], y[:200]), (X[200:], y[200:]), C=1.0) > 0.9
    assert la.silhouette(X, y, sample_size=300) > 0.1
    assert abs(la.silhouette(rng.normal(size=(300, 10)), y, sample_size=300)) < 0.05


def test_block_averages_are_the_same_in_chunks_and_the_pixel_baseline_is_pooled_only_above_64_px():
    """SD-sized images go through float64 a chunk at a time (bit-identical to all at once), and the pixel
    baseline of the probe and silhouette is block-averaged to ≤ 64 px (its memory bounded), untouched below."""
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, size=(7, 256, 256, 3), dtype=np.uint8)
    whole = big.astype(np.float64).reshape(7, 32, 8, 32, 8, 3).mean(axis=(2, 4)) / 127.5 - 1.0
    assert np.array_equal(downsample_images(big, 32, chunk_bytes=3 * 256 * 256 * 3 * 8), whole)   # chunks of 3
    small = big[:, :32, :32]
    assert np.array_equal(pixel_features(small), small.reshape(7, -1).astype(np.float32) / 255.0)
    pooled = pixel_features(big)
    assert pooled.shape == (7, 64 * 64 * 3) and pooled.dtype == np.float32
    assert pooled[0, :3] == pytest.approx(big[0, :4, :4].reshape(-1, 3).mean(0) / 255.0, abs=1e-6)
    assert pixel_features(rng.integers(0, 256, size=(2, 96, 96, 3), dtype=np.uint8)).shape == (2, 48 * 48 * 3)


def test_the_reconstruction_table_is_the_same_a_chunk_of_images_at_a_time():
    """SSIM's float64 temporaries are about ten copies of its input: SD-sized test sets go through in chunks,
    with exactly the table of one pass."""
    import pandas as pd

    torch.manual_seed(0)
    vae = build_vae(sample_size=16, block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=8).eval()
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(7, 4, 8, 8)).astype(np.float32)
    images = rng.integers(0, 256, size=(7, 16, 16, 3), dtype=np.uint8)
    meta = pd.DataFrame({"label_name": list("abababa"), "id": [f"i{k}" for k in range(7)]})
    d = LatentSplits(latents, np.arange(7) % 2, images, latents, np.arange(7) % 2, images, meta, ["a", "b"])
    whole, chunked = LatentAnalysis(), LatentAnalysis()
    reconstruction(vae, d, whole, edge_threshold=0.1, worst_k=2)
    reconstruction(vae, d, chunked, edge_threshold=0.1, worst_k=2, chunk_bytes=3 * 16 * 16 * 3 * 8)   # 3 a chunk
    pd.testing.assert_frame_equal(whole.table, chunked.table, check_exact=True)
    assert whole.metrics == chunked.metrics and len(whole.table) == 7


def test_stratified_subsample_keeps_every_class():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    idx = la.stratified_subsample(y, 20, np.random.default_rng(0))
    assert set(y[idx]) == {0, 1, 2} and len(idx) <= 21


def test_paths_and_perturbation_through_a_tiny_vae():
    torch.manual_seed(0)
    vae = build_vae(sample_size=16, block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=8).eval()
    z = np.random.default_rng(0).normal(size=(6, 4, 8, 8)).astype(np.float32)
    path = la.interpolation_path(z[0], z[1], 5, "slerp")
    assert path.shape == (5, 4, 8, 8) and np.allclose(path[0], z[0]) and np.allclose(path[-1], z[1], atol=1e-5)
    frames = la.decode_to_images(vae, path)
    assert frames.shape == (5, 16, 16, 3) and frames.dtype == np.uint8
    assert la.path_pixel_change(frames).shape == (4,)
    curve, strip = la.perturbation_curve(vae, z, [0.01, 0.5, 2.0], seed=0)
    assert curve["psnr_mean"].is_monotonic_decreasing and strip.shape == (3, 16, 16, 3)


def test_edge_density_counts_edges():
    flat = np.full((1, 16, 16, 3), 128, np.uint8)
    edge = flat.copy()
    edge[0, :, 8:] = 255
    assert edge_density(flat)[0] == 0.0 and edge_density(edge)[0] > 0.05


def test_analysis_sentence_reads_correctly_for_a_tie_and_a_gap():
    from pipeline.report.summaries import analysis_sentence

    def metrics(latents, pixels):
        return {
            "reconstruction": {"spearman_psnr_vs_edge_density": -0.5},
            "separability": {"linear_probe_balanced_accuracy": {"latents": latents, "pixels": pixels, "chance": 0.2},
                             "silhouette": {"latents": 0.0, "pixels": 0.0}},
            "perturbation": {"largest_sigma_within_reconstruction_error": None, "vae_reconstruction_psnr": 25.0},
            "latent_rgb": {"test": {"rmse": 0.2}, "baseline_constant_colour_test": {"rmse": 0.4}},
        }

    assert "about as easily from latents (0.500 balanced accuracy) as from pixels" in analysis_sentence(metrics(0.5, 0.49))
    assert "more easily from latents (0.700 balanced accuracy) than from pixels" in analysis_sentence(metrics(0.7, 0.5))
    assert "Even the smallest perturbation" in analysis_sentence(metrics(0.7, 0.5))
