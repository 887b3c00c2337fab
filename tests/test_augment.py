import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression

from pipeline.augment import make_augmenter, synthesize
from pipeline.augment.gaussian import GaussianJitter


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


def test_make_augmenter_and_synthesize_return_only_new_rows(latents):
    X, y = latents
    assert isinstance(make_augmenter("smote", random_state=0), SMOTE)
    Xs, ys = synthesize(make_augmenter("smote", random_state=0, k_neighbors=3), X, y)
    assert len(Xs) == 20 and set(ys) == {1}
    Xn, yn = synthesize(make_augmenter("none", random_state=0), X, y)
    assert Xn.shape == (0, 6) and yn.shape == (0,)
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augmenter("mixup", random_state=0)
