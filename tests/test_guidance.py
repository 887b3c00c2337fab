"""Metric guidance on a tiny U-Net: noise-aware classifier and discriminator guidance (ε hooks), and the
Mahalanobis out-of-distribution score as a detector and a differentiable metric."""

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.io import InputError
from pipeline.generate.evaluate import SampleReference
from pipeline.generate.guidance import (
    ClassifierGuide,
    CombinedGuide,
    DiscriminatorGuide,
    OODGuide,
    SYMMETRIES,
    load_guide_model,
    noise_aware_classifier,
    noise_aware_discriminator,
    save_guide_model,
    symmetry_views,
    train_noise_aware,
)
from pipeline.generate.guided import GuidingModels, guidance_study, make_guide, select_scales, sweep_points
from pipeline.generate.ood import MahalanobisOOD, detector_metrics
from pipeline.classify.regimes import Regime, regimes, training_set
from pipeline.generate.oversample import ClassGuided, GuidedInterpolation, make_generated
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


def test_symmetry_averaged_normalised_classifier_guidance_is_invariant_steers_and_has_the_set_size(toy):
    model, clf, centres = toy
    x = torch.randn(6, *SHAPE, generator=torch.Generator().manual_seed(2))
    views = symmetry_views(x, "dihedral")
    assert len(views) == 8 and len({v.numpy().tobytes() for v in views}) == 8 and torch.equal(views[0], x)
    assert [len(symmetry_views(x, s)) for s in SYMMETRIES] == [1, 2, 8]
    want = torch.tensor([0, 1, 0, 1, 0, 1])
    with torch.no_grad():   # the averaged objective does not change when the latent is turned or mirrored
        avg = ClassifierGuide(clf, want, 1.0, symmetry="dihedral")
        turned = torch.rot90(x.flip(-1), 1, (2, 3))
        assert torch.allclose(avg.objective(turned, 300), avg.objective(x, 300), atol=1e-5)
        plain = ClassifierGuide(clf, want, 1.0)
        assert not torch.allclose(plain.objective(turned, 300), plain.objective(x, 300), atol=1e-5)
    # normalised: every sample's correction has RMS scale · √(1 − ᾱ_t), however sure the classifier is
    ab = torch.tensor(0.36)
    step = ClassifierGuide(clf, want, 0.2, model.shift, symmetry="flip", normalise=True)(x, 500, ab)
    assert torch.allclose(step.flatten(1).pow(2).mean(1).sqrt(), torch.full((6,), 0.2 * 0.8), atol=1e-5)
    # and it steers like the plain guide: a guided run lands on the requested class more often
    x_T, ones = starting_noise(32, SHAPE, seed=3), torch.ones(32, dtype=torch.long)
    plain_run = model.to_latents(denoise(model.unet, "ddim", x_T, 10).final)
    guide = ClassifierGuide(clf, ones, 0.5, model.shift, symmetry="dihedral", normalise=True)
    guided_run = model.to_latents(denoise(model.unet, "ddim", x_T, 10, eps_guide=guide).final)
    assert (_nearest(guided_run, centres) == 1).mean() > (_nearest(plain_run, centres) == 1).mean()
    assert guide.select(slice(0, 4)).symmetry == "dihedral" and guide.select(slice(0, 4)).normalise
    with pytest.raises(ValueError, match="symmetry must be one of"):
        ClassifierGuide(clf, want, 1.0, symmetry="rotate")
    with pytest.raises(ValueError, match="square latents"):
        symmetry_views(torch.zeros(1, 4, 8, 6), "dihedral")
    data, y, _ = clustered_latents(64)   # trained on random views of the same group: seeded, so repeatable

    def run(augment):
        torch.manual_seed(0)
        return train_noise_aware(noise_aware_classifier(SHAPE, 2, channels=(8,), t_dim=4), data, y, steps=5, seed=0,
                                 augment=augment)

    runs = [run(a) for a in ("dihedral", "dihedral", "none")]
    assert runs[0] == runs[1] != runs[2]
    with pytest.raises(ValueError, match="augment must be one of"):
        train_noise_aware(clf, data, y, steps=1, augment="rotate")


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


def test_the_noisy_gaussian_score_is_the_mahalanobis_score_at_t0_and_an_ood_guided_step_is_more_typical(toy, tmp_path):
    model, _, centres = toy
    data = clustered_latents(400, seed=2)[0]
    ood = MahalanobisOOD().fit(data)
    x = torch.from_numpy(data[:16] + 0.5).float()
    assert torch.allclose(ood.noisy_log_density(x, 1.0), -0.5 * ood.torch_score(x), rtol=1e-3)
    far = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0)) * 3
    assert (ood.noisy_log_density(far, 0.5) < ood.noisy_log_density(far * 0 + 0.5 ** 0.5 * torch.from_numpy(
        ood.mean_.reshape(SHAPE)).float(), 0.5)).all()                              # the noisy mean is the mode
    guide = OODGuide(ood, 1.0, shift=model.shift)   # (scale 3 in 5 steps overshoots: the sweep shows where)
    x_T = starting_noise(64, SHAPE, seed=8) * 1.5                                  # over-dispersed start: atypical runs
    plain = model.to_latents(denoise(model.unet, "ddim", x_T, 5).final).numpy()
    guided = model.to_latents(denoise(model.unet, "ddim", x_T, 5, eps_guide=guide).final).numpy()
    assert np.median(ood.score(guided)) < np.median(ood.score(plain))
    ood.save(tmp_path / "ood")
    back = MahalanobisOOD.load(tmp_path / "ood")
    assert np.allclose(back.score(guided), ood.score(guided)) and back.shape_ == SHAPE
    (tmp_path / "ood" / "ood.safetensors").unlink()
    with pytest.raises(InputError, match="ood.safetensors is missing"):
        MahalanobisOOD.load(tmp_path / "ood")


def test_combined_guidance_adds_its_terms_and_guiding_models_load_back_with_one_call(toy, tmp_path):
    model, clf, _ = toy
    ood = MahalanobisOOD().fit(clustered_latents(200)[0])
    want = torch.ones(8, dtype=torch.long)
    parts = [ClassifierGuide(clf, want, 1.0, model.shift), OODGuide(ood, 0.5, model.shift)]
    x, ab = torch.randn(8, *SHAPE, generator=torch.Generator().manual_seed(1)), torch.tensor(0.4)
    total = CombinedGuide(parts)(x, 500, ab)
    assert torch.allclose(total, parts[0](x, 500, ab) + parts[1](x, 500, ab), atol=1e-6)
    assert torch.allclose(CombinedGuide(parts).select(slice(0, 3))(x[:3], 500, ab), total[:3], atol=1e-6)
    save_guide_model(tmp_path / "clf", clf, {"class_names": ["a", "b"]})
    back, config = load_guide_model(tmp_path / "clf")
    assert config["class_names"] == ["a", "b"]
    with torch.no_grad():
        assert torch.allclose(back(x, torch.full((8,), 500.0)), clf(x, torch.full((8,), 500.0)))
    wrong = noise_aware_classifier(SHAPE, 3, channels=(16, 16), t_dim=16)
    save_guide_model(tmp_path / "wrong", wrong)
    (tmp_path / "wrong" / "model.safetensors").replace(tmp_path / "clf" / "model.safetensors")
    with pytest.raises(ValueError, match="does not match"):
        load_guide_model(tmp_path / "clf")


def test_the_guidance_study_grades_every_kind_with_models_that_do_not_guide(toy):
    model, clf, centres = toy
    data, y, _ = clustered_latents(300, seed=3)
    real = clustered_latents(300, seed=4)
    disc = noise_aware_discriminator(SHAPE, channels=(16, 16), t_dim=16)
    models = GuidingModels(clf, disc, MahalanobisOOD().fit(data))
    reference = SampleReference(data, real[0], n=40, components=8, k=3, seed=0)
    judge = lambda z: _nearest(torch.as_tensor(z), centres)                   # noqa: E731 - an independent judge
    sweep, operating = {"classifier": [1.0, 4.0], "discriminator": [], "ood": [0.5]}, \
        {"classifier": 2.0, "discriminator": 1.0, "ood": 0.5}
    assert sweep_points(sweep, operating) == [("unguided", 0.0), ("classifier", 1.0), ("classifier", 2.0),
                                              ("classifier", 4.0), ("discriminator", 1.0), ("ood", 0.5),
                                              ("combined", 1.0)]
    rows, finals = guidance_study(model, reference, models, judge, n_classes=2, sweep=sweep, operating=operating,
                                  sampler="ddim", steps=5, seed=0)
    assert len(rows) == 7 and set(finals["samples"]) == {"unguided", "classifier", "discriminator", "ood", "combined"}
    assert finals["requested"].tolist() == [0, 1] * 20
    acc = rows.set_index(["kind", "scale"])["class_accuracy"]
    assert acc[("classifier", 4.0)] > acc[("unguided", 0.0)] and acc[("classifier", 4.0)] >= 0.9
    assert rows[["frechet", "recall", "far_fraction"]].notna().all().all()
    with pytest.raises(ValueError, match="unknown guidance kind"):
        make_guide("clip", {}, models, finals["requested"], None)

    # a validation sweep: no operating point, no combined set; the operating scales are chosen from it
    assert sweep_points(sweep, None) == [("unguided", 0.0), ("classifier", 1.0), ("classifier", 4.0), ("ood", 0.5)]
    val = pd.DataFrame([{"kind": k, "scale": sc, "class_accuracy": a, "frechet": f, "far_fraction": o}
                        for k, sc, a, f, o in [("unguided", 0, 0.5, 10, 0.1), ("classifier", 1, 0.7, 11, 0.1),
                                               ("classifier", 4, 0.9, 30, 0.2), ("classifier", 4, 0.8, 30, 0.2),
                                               ("discriminator", 2, 0.5, 9, 0.1), ("discriminator", 8, 0.5, 12, 0.1),
                                               ("ood", 0.5, 0.5, 10, 0.05), ("ood", 2, 0.5, 10, 0.05)]])
    assert select_scales(val, 5.0) == {"classifier": 4.0, "discriminator": 2.0, "ood": 0.5}   # ties: the smaller scale
    # a realism budget of 1.5 × unguided's Fréchet (15) rules out classifier 4 (Fréchet 30); none within it → most real
    assert select_scales(val, 1.5) == {"classifier": 1.0, "discriminator": 2.0, "ood": 0.5}
    assert select_scales(val.assign(frechet=val["frechet"] + 100 * (val["kind"] == "classifier")), 1.5)["classifier"] == 1.0
    with pytest.raises(ValueError, match="no ood scale"):
        select_scales(val[val["kind"] != "ood"], 1.5)


def test_class_guided_samples_over_sample_like_an_augmenter_and_join_only_the_regimes_asked(toy, tmp_path):
    model, clf, centres = toy
    data, y, _ = clustered_latents(60)
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:6]]          # class 1 is rare
    X, labels = data[keep].reshape(len(keep), -1), y[keep]
    sampler = ClassGuided(model, clf, scale=3.0, steps=10, random_state=0)
    X_res, y_res = sampler.fit_resample(X, labels)
    assert np.bincount(y_res).tolist() == [int((labels == 0).sum())] * 2 and np.array_equal(X_res[:len(X)], X)
    new = torch.from_numpy(X_res[len(X):].reshape(-1, *SHAPE))
    free = ClassGuided(model, clf, scale=0.0, steps=10, random_state=0).fit_resample(X, labels)[0][len(X):]
    hit = lambda z: (_nearest(torch.from_numpy(z.reshape(-1, *SHAPE)), centres) == 1).mean()   # noqa: E731
    assert hit(new.numpy()) > hit(free) + 0.1                                      # guidance makes the rare class
    assert np.array_equal(ClassGuided(model, clf, scale=3.0, steps=10, random_state=0).fit_resample(X, labels)[0], X_res)
    with pytest.raises(ValueError, match="U-Net makes latents"):
        sampler.fit_resample(X[:, :10], labels)

    # built from saved models, as the benchmark's workers do, and only in the regime kinds asked for
    model.save(tmp_path / "unet")
    save_guide_model(tmp_path / "classifier", clf, {"guidance": {"symmetry": "flip", "normalise": True, "scale": 3.0}})
    options = {"class_guided": {"steps": 10, "unet": str(tmp_path / "unet"), "classifier": str(tmp_path / "classifier")}}
    built = make_generated("class_guided", options["class_guided"], random_state=0)
    assert (built.symmetry, built.normalise, built.scale) == ("flip", True, 3.0)   # guides as its guide stage chose
    save_guide_model(tmp_path / "unchosen", clf, {"guidance": {"symmetry": "flip", "normalise": True}})
    with pytest.raises(InputError, match="no guidance.scale"):
        make_generated("class_guided", {**options["class_guided"], "classifier": str(tmp_path / "unchosen")},
                       random_state=0)
    Xf, yf = training_set(Regime("low_data", "class_guided"), X, labels, seed=0, cap=4, grow=3, options=options)
    assert len(Xf) == 2 * 4 * 3 and np.bincount(yf).tolist() == [12, 12]
    with pytest.raises(ValueError, match="needs the saved models"):
        make_generated("class_guided", {"scale": 1.0, "steps": 2}, random_state=0)
    names = [r.name for r in regimes(["real", "augmented", "low_data_augmented"], ["smote", "class_guided"],
                                     generated_kinds=["low_data_augmented"])]
    assert names == ["real", "real+smote", "low_data+smote", "low_data+class_guided"]


def test_ood_pools_sd_sized_latents_and_keeps_its_noisy_calibration(tmp_path):
    """4×64×64 latents (16 384 dimensions) are average-pooled to 4×16×16 before the covariance: the fit
    takes seconds, not a 2 GB eigendecomposition, and noised training latents still fall inside the
    noisy region at the fitted quantile (the pooled noise's variance is accounted for)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4, 64, 64)).astype(np.float32)
    ood = MahalanobisOOD().fit(X, quantile=0.9)
    assert ood.pool_ == 4 and ood.mean_.shape == (4 * 16 * 16,)
    fresh = torch.as_tensor(X)   # the training latents under noise other than the fit's: inside at the quantile
    noise = torch.randn(fresh.shape, generator=torch.Generator().manual_seed(1))
    for a in (0.05, 0.5, 0.95):
        inside = float((ood.noisy_excess(a ** 0.5 * fresh + (1 - a) ** 0.5 * noise, a) == 0).float().mean())
        assert abs(inside - 0.9) < 0.06, (a, inside)
    x = (3 * fresh[:2]).requires_grad_(True)
    ood.noisy_excess(x, 0.5).sum().backward()
    assert x.grad.shape == (2, 4, 64, 64) and x.grad.abs().sum() > 0
    ood.save(tmp_path / "ood")
    again = MahalanobisOOD.load(tmp_path / "ood")
    assert again.pool_ == 4 and np.allclose(again.score(X[:5]), ood.score(X[:5]))
