"""The classifier benchmark's building blocks: regimes, the attention net, the pixel CNN families."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.classify.nets import (
    PIXEL_NETS,
    LatentAttention,
    fit_classifier,
    images_to_input,
    predict,
)
from pipeline.classify.regimes import Regime, cap_per_class, regimes, training_set

OPTIONS = {"smote": {"k_neighbors": 3}, "gaussian": {"sigma": 0.2}}


def _data(seed=0, n=(60, 20, 8), dim=16):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(3 * k, 1, (m, dim)) for k, m in enumerate(n)]).astype(np.float32)
    return X, np.repeat(np.arange(len(n)), n)


def test_regime_names_and_grid():
    names = [r.name for r in regimes(["real", "augmented", "synthetic", "low_data", "low_data_augmented"], ["smote", "gaussian"])]
    assert names == ["real", "real+smote", "real+gaussian", "synthetic:smote", "synthetic:gaussian",
                     "low_data", "low_data+smote", "low_data+gaussian"]
    with pytest.raises(ValueError, match="unknown regime"):
        regimes(["mixed"], ["smote"])


def test_training_sets_have_the_documented_sizes():
    X, y = _data()
    kw = dict(seed=0, cap=5, grow=3, options=OPTIONS, n_channels=1)
    Xr, yr = training_set(Regime("real"), X, y, **kw)
    assert Xr is X and yr is y
    Xa, ya = training_set(Regime("real", "smote"), X, y, **kw)
    assert np.bincount(ya).tolist() == [60, 60, 60] and np.array_equal(Xa[: len(X)], X)
    Xs, ys = training_set(Regime("synthetic", "smote"), X, y, **kw)
    assert np.bincount(ys).tolist() == [60, 20, 8]
    assert not (Xs[:, None, :] == X[None]).all(-1).any()          # no real row among them
    Xl, yl = training_set(Regime("low_data"), X, y, **kw)
    assert np.bincount(yl).tolist() == [5, 5, 5]
    Xg, yg = training_set(Regime("low_data", "gaussian"), X, y, **kw)
    assert np.bincount(yg).tolist() == [15, 15, 15] and np.array_equal(Xg[:15], Xl)
    again, _ = training_set(Regime("low_data"), X, y, **{**kw, "seed": 1})
    assert not np.array_equal(again, Xl)                           # a seed draws another subsample


def test_cap_per_class_keeps_small_classes_whole():
    y = np.repeat([0, 1], [10, 3])
    idx = cap_per_class(y, 5, np.random.default_rng(0))
    assert np.bincount(y[idx]).tolist() == [5, 3] and (np.diff(idx) > 0).all()


def _blobs(shape, seed=0, n=96):
    """Two classes that differ in the mean of the first channel's top half: easy to see, local."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 0, : shape[1] // 2] += 2.0
    return x, y


def test_attention_net_learns_and_its_map_points_at_the_evidence():
    torch.manual_seed(0)
    x, y = _blobs((4, 8, 8))
    model = LatentAttention((4, 8, 8), 2, patch=2, dim=32, depth=2, heads=4)
    losses = fit_classifier(model, x, y, steps=150, batch_size=32, lr=3e-3, seed=0)
    assert losses[-1] < losses[0]
    x_test, y_test = _blobs((4, 8, 8), seed=1)
    assert (predict(model, x_test) == y_test).mean() > 0.9
    maps = model.cls_attention(torch.as_tensor(x_test[:8]))
    assert maps.shape == (8, 4, 4) and torch.all(maps >= 0) and torch.all(maps.sum((1, 2)) <= 1 + 1e-5)


@pytest.mark.parametrize("name", list(PIXEL_NETS))
def test_pixel_cnn_families_learn_a_visible_difference(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, size=(96, 16, 16, 3), dtype=np.uint8)
    y = np.arange(96) % 2
    images[y == 1, :8] += 120                                     # the top half brighter
    model = PIXEL_NETS[name](2, width=8)
    fit_classifier(model, images_to_input(images), y, steps=60, batch_size=32, lr=3e-3, seed=0)
    assert (predict(model, images_to_input(images)) == y).mean() > 0.9
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_images_too_large_for_float_stay_bytes_and_train_as_the_float_copy_does():
    """At SD sizes the pixel CNNs hold the images as uint8 and scale each minibatch (3 000 train images of
    256 px are 2.4 GB as float32, in each worker): the same minibatch values, normalisation statistics
    equal to float32 rounding, so the same training."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, size=(64, 16, 16, 3), dtype=np.uint8)
    y = np.arange(64) % 2
    images[y == 1, :8] += 120
    as_float, as_bytes = images_to_input(images), images_to_input(images, max_float_bytes=0)
    assert isinstance(as_float, np.ndarray) and as_float.dtype == np.float32
    assert isinstance(as_bytes, torch.Tensor) and as_bytes.dtype == torch.uint8 and tuple(as_bytes.shape) == (64, 3, 16, 16)
    models, losses = [], []
    for x in (as_float, as_bytes):
        torch.manual_seed(0)
        model = PIXEL_NETS["vgg"](2, width=8)
        losses.append(fit_classifier(model, x, y, steps=20, batch_size=16, lr=3e-3, seed=0, augment="dihedral"))
        models.append(model)
    assert torch.allclose(models[0].mean, models[1].mean, atol=1e-6) and torch.allclose(models[0].std, models[1].std, atol=1e-6)
    assert np.allclose(losses[0], losses[1], rtol=1e-3, atol=1e-4)
    assert (predict(models[1], as_bytes) == predict(models[0], as_float)).mean() > 0.95


def test_a_resnet_for_larger_images_trains_without_corrupting_the_heap():
    """The geometry-scaled ResNet (an extra block per doubling over 32 px) crashed in backward in
    channels_last (torch's CPU kernels); it trains in the contiguous format. A subprocess, so a crash
    fails this test instead of the run."""
    import subprocess
    import sys

    code = ("import numpy as np, torch; from pipeline.classify.nets import ResNetNet, fit_classifier, images_to_input; "
            "x = np.random.default_rng(0).integers(0, 256, (64, 64, 64, 3), dtype=np.uint8); torch.manual_seed(0); "
            "m = ResNetNet(6, 8, extra=1); assert m.memory_format == torch.contiguous_format; "
            "fit_classifier(m, images_to_input(x), np.arange(64) % 6, steps=3, batch_size=32, seed=0, augment='dihedral'); "
            "print('trained')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
    assert PIXEL_NETS["resnet"](6, 8).memory_format == torch.channels_last   # 32 px: as before


def test_fit_is_seeded():
    x, y = _blobs((4, 8, 8))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LatentAttention((4, 8, 8), 2, dim=16, depth=1, heads=2)
        runs.append(fit_classifier(model, x, y, steps=5, batch_size=16, seed=3))
    assert runs[0] == runs[1]


def _rows(copies: int = 40):
    """Result rows and predictions on a test set of ``copies`` × the same 8 images (so the bootstrap
    interval is narrow), plus a regime that differs from ``real`` by a single test image."""
    from pipeline.classify.results import predictions_frame, result_row

    names = ["a", "b", "c"]
    y = np.tile([0, 0, 0, 0, 1, 1, 2, 2], copies)
    rows, preds_out = [], []
    # real: 5/8 right; real+smote: one more right (improves every seed); synthetic: worse; pixels vs reconstructed
    preds = {"real": [0, 0, 0, 0, 1, 0, 0, 0], "real+smote": [0, 0, 0, 0, 1, 1, 0, 0],
             "synthetic:smote": [1, 1, 0, 0, 1, 0, 0, 0]}
    for seed in range(5):
        for regime, p in preds.items():
            p = np.array(p)
            if regime == "real+smote" and seed in (2, 4):
                p = np.array([0, 0, 0, 0, 1, 1, 2, 0])
            p = np.tile(p, copies)
            rows.append(result_row("logreg", "latents", regime, seed, y, p, names, n_train=10, seconds=0.1))
            preds_out.append(p)
        one_more = np.tile(preds["real"], copies)
        one_more[5] = 1                                         # one test image of 320 more right
        rows.append(result_row("logreg", "latents", "real+gaussian", seed, y, one_more, names, n_train=10, seconds=0.1))
        preds_out.append(one_more)
        for input_, p in (("pixels", [0, 0, 0, 0, 1, 1, 2, 2]), ("reconstructed", preds["real"])):
            p = np.tile(p, copies)
            rows.append(result_row("vgg", input_, "real", seed, y, p, names, n_train=10, seconds=1.0))
            preds_out.append(p)
    return pd.DataFrame(rows), predictions_frame(rows, preds_out), names, y


def test_summary_pairs_each_result_with_its_reference():
    from pipeline.classify.results import benchmark_sentence, minority_classes, summarise

    rows, preds, names, y = _rows()
    assert minority_classes(np.array([0] * 10 + [1] * 4 + [2] * 2), names) == ["c"]
    table = summarise(rows, ["c"], preds, y, draws=300).set_index(["model", "input", "regime"])
    real = table.loc[("logreg", "latents", "real")]
    assert real["balanced_accuracy_mean"] == pytest.approx((1 + 0.5 + 0) / 3) and real["balanced_accuracy_std"] == 0
    assert pd.isna(real.get("verdict"))
    aug = table.loc[("logreg", "latents", "real+smote")]
    assert aug["reference"] == "latents / real" and aug["verdict"] == "improved"
    assert aug["gain_mean"] == pytest.approx((3 / 6 + 2 / 3) / 5) and 0 < aug["gain_lo"] < aug["gain_mean"] < aug["gain_hi"]
    # four gains in the family (smote, synthetic, gaussian, reconstructed): Holm's levels, wider than 95 %
    assert aug["comparisons"] == 4 and aug["gain_level"] > 0.95 and aug["gain_lo"] < aug["gain_lo95"]
    assert aug["gain_p_holm"] <= 0.05 < table.loc[("logreg", "latents", "real+gaussian"), "gain_p_holm"]
    assert table.loc[("logreg", "latents", "synthetic:smote"), "verdict"] == "hurt"
    tiny = table.loc[("logreg", "latents", "real+gaussian")]      # one image better: a gain, but no verdict
    assert tiny["gain_mean"] > 0 and tiny["gain_lo"] <= 0 and tiny["verdict"] == "no clear change"
    recon = table.loc[("vgg", "reconstructed", "real")]
    assert recon["reference"] == "pixels / real" and recon["gain_mean"] == pytest.approx(0.5 - 1.0)
    assert table.loc[("vgg", "pixels", "real"), "minority_recall_mean"] == 1.0
    text = benchmark_sentence(summarise(rows, ["c"], preds, y, draws=300), majority=1 / 3)
    assert "Majority class: 0.333" in text and "Augmentation helped 1 of 2 model × regime pairs: logreg real+smote" in text
    assert "Holm over the table's 4 comparisons" in text
    assert "on pixels the best is vgg (real) at 1.000 ± 0.000" in text and "reconstructed" in text
    assert "no better than the majority class" not in text
    strict = benchmark_sentence(summarise(rows, ["c"]), majority=0.6)
    assert "on reconstructed the best is vgg (real) at 0.500 ± 0.000 balanced accuracy, no better than the majority class" in strict
    assert strict.count("no better than the majority class") == 1
    flat = rows[~rows["regime"].str.contains("+", regex=False)]
    assert "No augmented regime was run" in benchmark_sentence(summarise(flat, ["c"], preds, y, draws=100), 1 / 3)


def test_gain_interval_widens_with_fewer_test_images():
    from pipeline.metrics.bootstrap import paired_gain

    rng = np.random.default_rng(0)
    for n, expect in ((2000, True), (40, False)):
        y = rng.integers(0, 3, n)
        ref = np.where(rng.random((5, n)) < 0.6, y, (y + 1) % 3)
        better = np.where(rng.random((5, n)) < 0.1, y, ref)         # ~4 % more right, every seed
        est = paired_gain(y, better, ref, draws=500)
        lo, hi = est.interval(0.95)
        assert lo < est.mean < hi and (lo > 0) == expect, (n, lo, hi)
    same = paired_gain(y, ref, ref, draws=100)
    assert same.mean == same.se == 0 and same.p == 1.0
    with pytest.raises(ValueError, match="must both be"):
        paired_gain(y, ref[:2], ref)


def test_minibatch_augmentation_and_class_weights():
    from pipeline.classify.nets import augment_batch, balanced_class_weights

    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augment_batch(x, "none", gen), x)
    out = augment_batch(x, "dihedral", gen)
    for a, b in zip(out, x):   # every output is one of the eight symmetries of its input, same values
        syms = [torch.rot90(f, k, (1, 2)) for f in (b, b.flip(-1)) for k in range(4)]
        assert any(torch.equal(a, s) for s in syms)
    with pytest.raises(ValueError, match="augment must be"):
        augment_batch(x, "shear", gen)
    w = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_attention_gallery_overlays_the_map(tmp_path):
    from PIL import Image as PILImage

    from pipeline.report.overlays import attention_gallery, upsample_map

    att = np.zeros((4, 4), np.float32)
    att[0, 0] = 1.0
    up = upsample_map(att, 16)
    assert up.shape == (16, 16) and up[:3, :3].mean() > 0.5 > up[8:, 8:].max()
    images = np.full((3, 16, 16, 3), 128, np.uint8)
    attention_gallery(images, np.stack([att] * 3), ["a", "b", "c"], tmp_path / "g.png", columns=3, title="t")
    assert PILImage.open(tmp_path / "g.png").size[0] > 100


def test_training_set_names_a_class_too_small_for_smote():
    X, y = _data(n=(60, 20, 3))                                  # class 2 has 3 members, SMOTE wants k=3 neighbours
    with pytest.raises(ValueError, match=r"needs more than 3 samples per class.*\{2: 3\}"):
        training_set(Regime("real", "smote"), X, y, seed=0, cap=5, grow=3, options=OPTIONS, n_channels=1)
    Xg, yg = training_set(Regime("real", "gaussian"), X, y, seed=0, cap=5, grow=3, options=OPTIONS, n_channels=1)
    assert np.bincount(yg).tolist() == [60, 60, 60]              # jitter needs no neighbours
