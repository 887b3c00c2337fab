import numpy as np
import pytest

from pipeline.metrics.classification import classification_metrics, majority_baseline
from pipeline.metrics.fidelity import PCAFrechet, frechet_distance
from pipeline.metrics.reconstruction import reconstruction_table, summarise
from pipeline.metrics.regression import constant_baselines, regression_metrics
from pipeline.classify.estimators import CLASSIFIERS, make_classifier


def test_reconstruction_metrics_known_values():
    a = np.full((2, 16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[1] += 51  # error of 0.2 on [0, 1] pixels → MSE 0.04 → PSNR ≈ 13.98 dB
    t = reconstruction_table(a, b)
    assert t["mse"].iloc[0] == 0 and t["ssim"].iloc[0] == pytest.approx(1.0)
    assert t["mse"].iloc[1] == pytest.approx(0.04) and t["psnr"].iloc[1] == pytest.approx(13.979, abs=1e-3)
    assert summarise(t.assign(g=["x", "y"]), by="g")["y"]["psnr"] == pytest.approx(13.979, abs=1e-3)


@pytest.mark.parametrize("side", [7, 16, 32])
def test_batched_ssim_equals_scikit_image_per_image(side):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(side)
    a = rng.integers(0, 256, (5, side, side, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    b[0] = 255 - a[0]   # one anti-correlated pair: SSIM well below 0
    got = reconstruction_table(a, b)["ssim"].to_numpy()
    win = min(7, side - (1 - side % 2))
    want = [structural_similarity(x / 255.0, y / 255.0, channel_axis=-1, data_range=1.0, win_size=win) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert got[0] < 0 < got[1:].min()


def test_majority_baseline_balanced_accuracy_is_one_over_k():
    names = ["a", "b", "c"]
    y_true = np.array([0, 0, 1, 2])
    base = majority_baseline(np.array([0, 0, 0, 1]), y_true, names)
    assert base["balanced_accuracy"] == pytest.approx(1 / 3)
    perfect = classification_metrics(y_true, y_true, names)
    assert perfect["balanced_accuracy"] == 1.0 and perfect["per_class_recall"] == {"a": 1.0, "b": 1.0, "c": 1.0}


def test_regression_metrics_expose_a_constant_predictor():
    y = np.array([0.0, 1, 2, 3, 4, 5])
    m = regression_metrics(y, np.full(6, 2.5))
    assert m["spearman"] == 0.0 and m["pred_std"] == 0.0 and m["mae"] == pytest.approx(1.5)
    assert constant_baselines(y, y)["train_mean"]["mae"] == pytest.approx(1.5)
    assert regression_metrics(y, y)["spearman"] == pytest.approx(1.0)


def test_frechet_distance_of_a_mean_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-3)
    fd = PCAFrechet(n_components=2).fit(a)
    assert fd.distance(a, a) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifiers_fit_separable_data(name):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(4, 1, (30, 5))])
    y = np.repeat([0, 1], 30)
    X_test = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(4, 1, (20, 5))])
    y_test = np.repeat([0, 1], 20)
    model = make_classifier(name, {"trees": 10, "max_iter": 20}, random_state=0).fit(X, y)
    assert (model.predict(X_test) == y_test).mean() > 0.9
    assert model.steps[0][0] == "standardscaler"


def test_classifier_options_reach_the_model():
    assert make_classifier("rbf_svm", {"C": 3.0, "gamma": 0.5}, random_state=0)[-1].get_params()["C"] == 3.0
    assert make_classifier("hgb", {"max_iter": 7}, random_state=0)[-1].max_iter == 7
    with pytest.raises(ValueError, match="unknown classifier"):
        make_classifier("xgboost", {}, random_state=0)




def test_a_class_absent_from_the_test_set_is_undefined_not_zero():
    names = ["a", "b", "c"]
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])
    m = classification_metrics(y_true, y_pred, names)
    assert np.isnan(m["per_class_recall"]["c"]) and m["per_class_recall"]["b"] == 0.5
    # macro-F1 over the two classes the test set has: a (1.0) and b (2/3), not a third 0 for c
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert m["balanced_accuracy"] == pytest.approx(0.75)


def test_fd_infinity_and_kid_do_not_depend_on_n_where_frechet_does():
    from pipeline.metrics.fidelity import frechet_infinity, kernel_distance

    rng = np.random.default_rng(0)
    fd, fd_inf, kid = {}, {}, {}
    for n in (120, 960):
        reps = [(rng.standard_normal((n, 16)), rng.standard_normal((n, 16)) + 0.3) for _ in range(4)]
        fd[n] = np.mean([frechet_distance(a, b) for a, b in reps])
        fd_inf[n] = np.mean([frechet_infinity(a, b, seed=i) for i, (a, b) in enumerate(reps)])
        kid[n] = np.mean([kernel_distance(a, b) for a, b in reps])
    truth = 16 * 0.3 ** 2                                     # the two Gaussians' Fréchet distance
    assert fd[120] > fd[960] + 0.5 > truth + 0.5              # plain Fréchet: biased upward, more at small n
    assert abs(fd_inf[120] - truth) < 0.35 and abs(fd_inf[960] - truth) < 0.15
    assert kid[120] == pytest.approx(kid[960], rel=0.25)
    same = rng.standard_normal((300, 16))
    assert abs(kernel_distance(same, rng.standard_normal((300, 16)))) < 0.01 < kernel_distance(same, same + 0.3)
