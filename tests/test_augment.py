import numpy as np
import pytest
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression

from pipeline.augment import METHODS, make_augmenter, make_composed, synthesize
from pipeline.augment.gaussian import GaussianJitter
from pipeline.augment.interpolation import Interpolation
from pipeline.augment.inversion import LinearInversion
from pipeline.augment.smote import check_neighbours
from pipeline.latents.geometry import lerp, slerp


@pytest.fixture
def latents():
    rng = np.random.default_rng(0)
    # 2 channels × 3 positions; channel 1 has 10× the spread of channel 0
    X = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(0, 10, (40, 3))], axis=1)
    y = np.array([0] * 30 + [1] * 10)
    return X, y


def test_gaussian_jitter_balances_classes_with_channel_relative_noise(latents):
    X, y = latents
    X_res, y_res = GaussianJitter(sigma=0.1, n_channels=2, random_state=0).fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [30, 30]
    assert np.array_equal(X_res[: len(X)], X)  # real rows first, untouched
    synth = X_res[len(X):]
    nearest = np.abs(synth[:, None, :] - X[y == 1][None]).sum(-1).argmin(1)
    offsets = synth - X[y == 1][nearest]
    per_channel = offsets.reshape(len(offsets), 2, 3).std(axis=(0, 2))
    assert per_channel[1] / per_channel[0] == pytest.approx(10, rel=0.5)


def test_gaussian_jitter_is_seeded_and_validates(latents):
    X, y = latents
    a = GaussianJitter(n_channels=2, random_state=3).fit_resample(X, y)[0]
    b = GaussianJitter(n_channels=2, random_state=3).fit_resample(X, y)[0]
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="multiple of n_channels"):
        GaussianJitter(n_channels=4).fit_resample(X, y)
    with pytest.raises(ValueError, match="sigma"):
        GaussianJitter(sigma=-1.0, n_channels=2).fit_resample(X, y)


def test_gaussian_jitter_composes_in_an_imblearn_pipeline(latents):
    X, y = latents
    pipe = make_pipeline(GaussianJitter(n_channels=2, random_state=0), LogisticRegression()).fit(X, y)
    assert pipe.predict(X).shape == (40,)


OPTIONS = {
    "gaussian": {"sigma": 0.2}, "lerp": {"lambda_min": 0.0, "lambda_max": 1.0},
    "slerp": {"lambda_min": 0.0, "lambda_max": 1.0}, "smote": {"k_neighbors": 3},
    "borderline_smote": {"k_neighbors": 3, "m_neighbors": 6, "kind": "borderline-1"},
    "adasyn": {"n_neighbors": 3}, "inversion": {"C": 1.0, "margin": 0.5, "max_shift": 5.0}, "random": {},
}


@pytest.fixture
def three_classes():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (60, 8)), rng.normal(1.5, 1, (20, 8)), rng.normal(-1.5, 1, (12, 8))])
    return X.astype(np.float32), np.array([0] * 60 + [1] * 20 + [2] * 12)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_a_seeded_sampler_that_fills_the_deficit(three_classes, method):
    X, y = three_classes
    make = lambda seed: make_augmenter(method, OPTIONS[method], random_state=seed, n_channels=2)
    Xs, ys = synthesize(make(0), X, y)
    counts = np.bincount(ys, minlength=3)
    assert counts[0] == 0 and Xs.dtype == X.dtype and Xs.shape[1] == X.shape[1]
    if method == "adasyn":  # ADASYN chooses its own per-class amounts around the target
        assert abs(counts.sum() - 88) <= 8
    else:
        assert counts.tolist() == [0, 40, 48]
    assert np.array_equal(Xs, synthesize(make(0), X, y)[0])
    assert not np.array_equal(Xs, synthesize(make(1), X, y)[0])
    assert np.isfinite(Xs).all()


def test_interpolation_stays_on_the_path_between_two_members(three_classes):
    X, y = three_classes
    Xs, ys = synthesize(Interpolation(kind="lerp", lambda_min=0.25, lambda_max=0.75, random_state=0), X, y)
    members = X[y == 2]
    # each synthetic point is (1-λ)a + λb for some members a ≠ b: check by least squares on all pairs
    for z in Xs[ys == 2][:5]:
        best = min(np.linalg.norm(z - ((1 - lam) * a + lam * b))
                   for i, a in enumerate(members) for b in members[i + 1:]
                   for lam in [np.clip(np.dot(z - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0, 1)])
        assert best < 1e-4
    with pytest.raises(ValueError, match="lambda_min"):
        Interpolation(lambda_min=0.8, lambda_max=0.2).fit_resample(X, y)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 64))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    X, y = a, np.array([0] * 150 + [1] * 50)
    for kind, check in (("slerp", lambda n: np.allclose(n, 1.0, atol=1e-6)), ("lerp", lambda n: n.mean() < 0.9)):
        Xs, _ = synthesize(Interpolation(kind=kind, lambda_min=0.4, lambda_max=0.6, random_state=0), X, y)
        assert check(np.linalg.norm(Xs, axis=1)), kind


def test_slerp_and_lerp_endpoints_and_midpoint():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(slerp(a, b, 0.5), [np.sqrt(0.5)] * 2) and np.allclose(lerp(a, b, 0.5), [0.5, 0.5])
    assert np.allclose(slerp(a, a, 0.3), a)  # parallel: falls back to lerp, no division by zero


def test_linear_inversion_flips_its_classifier_by_the_margin(three_classes):
    X, y = three_classes
    sampler = LinearInversion(C=1.0, margin=0.5, max_shift=5.0, random_state=0)
    Xs, ys = synthesize(sampler, X, y)
    scores = sampler.classifier_.decision_function(sampler.scaler_.transform(Xs))
    target = scores[np.arange(len(ys)), ys]
    runner_up = np.sort(scores, axis=1)[:, -2]
    assert np.all(target - runner_up >= 0.5 - 1e-4)  # float32 output: the exact step, rounded
    assert 0 < sampler.flip_rate_ <= 1 and len(sampler.shift_) == len(ys) and (sampler.shift_ <= 5.0).all()
    # an impossible budget: no move is accepted, nothing is made, the flip rate says so
    tight = LinearInversion(C=1.0, margin=50.0, max_shift=0.01, max_attempts=2, random_state=0)
    Xt, _ = synthesize(tight, X, y)
    assert len(Xt) == 0 and tight.flip_rate_ == 0.0


def test_composed_splits_the_deficit_and_fits_each_method_on_real_data(three_classes):
    X, y = three_classes
    sampler = make_composed(["smote", "gaussian"], OPTIONS, random_state=0, n_channels=2)
    Xs, ys = synthesize(sampler, X, y)
    assert np.bincount(ys, minlength=3).tolist() == [0, 40, 48]
    assert sorted(np.unique(sampler.sources_, return_counts=True)[1].tolist()) == [44, 44]
    # the gaussian share is identical to running gaussian alone for half the deficit on real data
    alone = make_augmenter("gaussian", OPTIONS["gaussian"], random_state=0, n_channels=2,
                           sampling_strategy={1: 40, 2: 36})
    assert np.array_equal(Xs[sampler.sources_ == "gaussian"], synthesize(alone, X, y)[0])
    assert len(synthesize(make_composed([], OPTIONS, random_state=0), X, y)[0]) == 0


def test_smote_family_names_small_classes_before_failing(three_classes):
    y = three_classes[1]
    sampler = make_augmenter("smote", {"k_neighbors": 15}, random_state=0)
    with pytest.raises(ValueError, match=r"classes \{2: 12\}"):
        check_neighbours(sampler, y)
    check_neighbours(make_augmenter("smote", {"k_neighbors": 5}, random_state=0), y)
    with pytest.raises(ValueError, match="unknown augmentation method 'mixup'"):
        make_augmenter("mixup", {}, random_state=0)


def test_random_over_sampling_copies_and_samples_needed_counts_the_deficit(latents):
    from pipeline.augment import samples_needed

    X, y = latents
    sampler = make_augmenter("random", {}, random_state=0)
    assert samples_needed(sampler, y) == 20
    Xs, ys = synthesize(sampler, X, y)
    assert len(ys) == 20 and set(ys) == {1}
    assert all(any(np.array_equal(row, real) for real in X[y == 1]) for row in Xs)   # copies of real samples
    balanced = np.array([0, 1] * 20)
    assert samples_needed(make_augmenter("smote", {"k_neighbors": 3}, random_state=0), balanced) == 0
