"""Metric guidance on a tiny U-Net: noise-aware classifier and discriminator guidance (ε hooks), and the
Mahalanobis out-of-distribution score as a detector and a differentiable metric."""

import numpy as np
import pytest
import torch

from pipeline.generate.guidance import (
    ClassifierGuide,
    DiscriminatorGuide,
    noise_aware_classifier,
    noise_aware_discriminator,
    train_noise_aware,
)
from pipeline.generate.ood import MahalanobisOOD, detector_metrics
from pipeline.generate.oversample import GuidedInterpolation
from pipeline.generate.sampling import denoise, starting_noise
from pipeline.score.nets import CNNScorer, build_scorer
from toys import SHAPE, clustered_latents, tiny_diffusion


@pytest.fixture(scope="module")
def toy():
    """Two classes of latents around two centres, a U-Net and a noise-aware classifier trained on them."""
    data, y, centres = clustered_latents(400)
    model, _ = tiny_diffusion(data)
    clf = noise_aware_classifier(SHAPE, 2, channels=(16, 16), t_dim=16)
    losses = train_noise_aware(clf, data, y, steps=200, batch_size=64, lr=3e-3, seed=0)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    return model, clf, centres


def _nearest(x: torch.Tensor, centres: np.ndarray) -> np.ndarray:
    d = ((x.numpy()[:, None] - centres[None]) ** 2).reshape(len(x), len(centres), -1).sum(2)
    return d.argmin(1)


def test_the_noise_aware_classifier_reads_noisy_latents_and_gets_worse_with_noise(toy):
    model, clf, centres = toy
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x0 = torch.from_numpy((centres[y] + 0.3 * rng.normal(size=(200, *SHAPE))).astype(np.float32))
    guide = ClassifierGuide(clf, torch.from_numpy(y), 1.0)
    acc = {}
    with torch.no_grad():
        for t, ab in ((10, 0.99), (900, 0.01)):
            xt = ab ** 0.5 * x0 + (1 - ab) ** 0.5 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
            acc[t] = float((guide.log_prob(xt, t) > np.log(0.5)).float().mean())
    assert acc[10] > 0.95 and acc[10] > acc[900]


def test_a_classifier_guided_step_raises_the_requested_class_probability(toy):
    model, clf, centres = toy
    x_T = starting_noise(32, SHAPE, seed=3)
    want = torch.ones(32, dtype=torch.long)
    guide = ClassifierGuide(clf, want, 3.0, shift=model.shift)
    free = model.to_latents(denoise(model.unet, "ddim", x_T, 1).final)     # one step: noise → x̂₀
    steered = model.to_latents(denoise(model.unet, "ddim", x_T, 1, eps_guide=guide).final)
    with torch.no_grad():
        assert guide.log_prob(steered, 0).mean() > guide.log_prob(free, 0).mean()
    for name in ("ddim", "euler", "dpmsolver", "ddpm"):    # over a whole run, judged by the nearest centre
        plain = model.to_latents(denoise(model.unet, name, x_T, 10, seed=1).final)
        guided = model.to_latents(denoise(model.unet, name, x_T, 10, seed=1, eps_guide=guide).final)
        assert (_nearest(guided, centres) == 1).mean() > (_nearest(plain, centres) == 1).mean(), name
    zero = ClassifierGuide(clf, want, 0.0, shift=model.shift)
    assert torch.equal(denoise(model.unet, "ddim", x_T, 5, eps_guide=zero).final, denoise(model.unet, "ddim", x_T, 5).final)
    with pytest.raises(ValueError, match="scale"):
        ClassifierGuide(clf, want, -1.0)


def test_the_scorer_cnn_gains_logits_without_changing_saved_scorers():
    one = CNNScorer([4, 8, 8], [8], t_dim=4)
    assert "outputs" not in one.config and one(torch.zeros(3, 4, 8, 8), torch.zeros(3)).shape == (3,)
    many = build_scorer(noise_aware_classifier((4, 8, 8), 5, channels=(8,), t_dim=4).config)
    assert many(torch.zeros(3, 4, 8, 8), torch.zeros(3)).shape == (3, 5)
    with pytest.raises(ValueError, match="2 classes"):
        noise_aware_classifier((4, 8, 8), 1)


def test_a_discriminator_guided_run_looks_more_real_to_its_discriminator(toy):
    model, _, centres = toy
    real = clustered_latents(300, seed=5)[0]
    fake = model.to_latents(denoise(model.unet, "ddim", starting_noise(300, SHAPE, seed=6), 5).final).numpy()
    disc = noise_aware_discriminator(SHAPE, channels=(16, 16), t_dim=16)
    train_noise_aware(disc, np.concatenate([real, fake]), np.r_[np.ones(300), np.zeros(300)].astype(int), steps=200,
                      lr=3e-3, seed=0)
    guide = DiscriminatorGuide(disc, 3.0, shift=model.shift)
    x_T = starting_noise(64, SHAPE, seed=7)
    plain = model.to_latents(denoise(model.unet, "ddim", x_T, 5).final)
    guided = model.to_latents(denoise(model.unet, "ddim", x_T, 5, eps_guide=guide).final)
    with torch.no_grad():
        assert guide.logit(guided, 0).mean() > guide.logit(plain, 0).mean()
    with pytest.raises(ValueError, match="labels must lie"):
        train_noise_aware(disc, real[:4], np.array([0, 1, 2, 1]), steps=1)


def test_the_mahalanobis_score_separates_a_shifted_distribution_and_guides_toward_the_data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 64))
    make = lambda n, shift=0.0: rng.normal(size=(n, 5)) @ basis + 0.1 * rng.normal(size=(n, 64)) + shift   # noqa: E731
    ood = MahalanobisOOD().fit(make(500))
    same, shifted = ood.score(make(200)), ood.score(make(200, shift=0.5))
    m = detector_metrics(same, shifted)
    assert m["auroc"] > 0.99 and m["fpr_at_95_tpr"] < 0.05
    assert detector_metrics(same, ood.score(make(200)))["auroc"] < 0.65           # a fresh draw is in-distribution
    x = torch.from_numpy(make(8, shift=0.5)).float().requires_grad_(True)
    s = ood.torch_score(x)
    assert np.allclose(s.detach().numpy(), ood.score(x.detach().numpy()), rtol=1e-3)
    grad, = torch.autograd.grad(s.sum(), x)
    assert (ood.torch_score(x.detach() - 1e-3 * grad) < s.detach()).all()         # a step down the gradient is more typical


def test_guided_interpolation_over_samples_like_an_augmenter_and_keeps_the_class(toy):
    model, _, centres = toy
    data, y, _ = clustered_latents(60)                                        # the centres the U-Net learned
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:6]]          # imbalanced: class 1 is rare
    X, labels = data[keep].reshape(len(keep), -1), y[keep]
    sampler = GuidedInterpolation(model, steps=10, strength=0.2, random_state=0)
    X_res, y_res = sampler.fit_resample(X, labels)
    assert np.bincount(y_res).tolist() == [int((labels == 0).sum())] * 2         # "auto": every class to the majority
    assert np.array_equal(X_res[:len(X)], X)
    new = torch.from_numpy(X_res[len(X):].reshape(-1, *SHAPE))
    assert (_nearest(new, centres) == 1).mean() > 0.9                            # the rare class is kept
    again = GuidedInterpolation(model, steps=10, strength=0.2, random_state=0).fit_resample(X, labels)[0]
    assert np.array_equal(again, X_res)
    lerped = GuidedInterpolation(model, steps=10, strength=1.0, lambda_min=0.5, lambda_max=0.5,
                                 random_state=0).fit_resample(X, labels)[0][len(X):]
    ones = X[labels == 1]
    assert all(np.abs(0.5 * (ones[:, None] + ones[None]) - row).max(-1).min() < 1e-3 for row in lerped)   # midpoints
    with pytest.raises(ValueError, match="U-Net makes latents"):
        sampler.fit_resample(X[:, :10], labels)
