"""Neural artifact scorers, their metrics, and the early-exit rule, on data with a known answer."""

import numpy as np
import pytest
import torch

from pipeline.io import InputError
from pipeline.metrics.regression import artifact_metrics
from pipeline.score.early_exit import best_operating_point, stop_steps, tradeoff_curve
from pipeline.score.nets import (
    CNNScorer,
    ExpertMixture,
    MLPScorer,
    load_scorer,
    save_scorer,
    timestep_embedding,
    train_scorer,
)

SHAPE = [4, 4, 4]


def _data(n=2048, seed=0, shape=SHAPE):
    """Score = mean of channel 0 (a visible signal), blurred by noise that grows with t."""
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(n, *shape)).astype(np.float32)
    score = np.clip(2.5 + 2 * clean[:, 0].mean(axis=(1, 2)), 0, 5)
    t = rng.choice([100.0, 500.0, 900.0], size=n)
    noisy = clean + (t / 1000.0)[:, None, None, None] * rng.normal(size=clean.shape).astype(np.float32)
    return noisy.astype(np.float32), t, score


@pytest.mark.parametrize("make", [
    lambda: MLPScorer(SHAPE, [32], t_dim=8),
    lambda: CNNScorer(SHAPE, [16, 16], t_dim=8),
    lambda: ExpertMixture([MLPScorer(SHAPE, [32]) for _ in range(3)], [900.0, 100.0, 500.0]),
])
def test_scorers_learn_a_visible_signal_and_reload_identically(make, tmp_path):
    torch.manual_seed(0)
    X, t, y = _data()
    Xt, tt, yt = _data(seed=1)
    model = make()
    losses = train_scorer(model, X, t, y, steps=400, batch_size=64, lr=3e-3, seed=0)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    save_scorer(tmp_path / "m", model, {"max_score": 5.0, "target": "toy"})
    scorer = load_scorer(tmp_path / "m")
    pred = scorer.score(Xt, tt)
    assert pred.min() >= 0 and pred.max() <= 5
    constant = np.abs(yt - y.mean()).mean()
    assert artifact_metrics(yt, pred)["mae"] < 0.8 * constant
    with torch.no_grad():
        direct = model.eval()(torch.from_numpy(Xt), torch.from_numpy(tt.astype(np.float32))).clamp(0, 5).numpy()
    assert np.allclose(pred, direct, atol=1e-5)
    assert scorer.score(Xt[0], int(tt[0])).shape == (1,)  # one latent, an int timestep
    with pytest.raises(ValueError, match="trained on"):
        scorer.score(Xt[:, :3], 100)


def test_training_is_seeded():
    X, t, y = _data(64)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MLPScorer(SHAPE, [16], t_dim=4, dropout=0.0)
        runs.append(train_scorer(model, X, t, y, steps=20, seed=3))
    assert runs[0] == runs[1]


def test_mixture_interpolates_between_bracketing_experts():
    mix = ExpertMixture([MLPScorer(SHAPE, [4]) for _ in range(3)], [100.0, 500.0, 900.0])
    w = mix.weights(torch.tensor([0.0, 100.0, 300.0, 800.0, 999.0]))
    assert torch.allclose(w.sum(1), torch.ones(5))
    assert torch.allclose(w[2], torch.tensor([0.5, 0.5, 0.0])) and torch.allclose(w[3], torch.tensor([0.0, 0.25, 0.75]))
    assert w[0, 0] == 1 and w[4, 2] == 1


def test_timestep_embedding_distinguishes_timesteps():
    e = timestep_embedding(torch.tensor([0.0, 500.0, 999.0]), 9)
    assert e.shape == (3, 9) and not torch.allclose(e[0], e[1])


def test_load_scorer_names_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        load_scorer(tmp_path)


def test_artifact_metrics_auroc_and_ranges():
    y = np.array([0, 1, 2, 3, 4, 5], dtype=float)
    m = artifact_metrics(y, y + np.array([0.5, 0.5, 0, 0, 1, 1]))
    assert m["auroc_severe"] == 1.0 and m["mae_0_2"] == 0.5 and m["mae_2_4"] == 0.0 and m["mae_4_5"] == 1.0
    # fractional labels (median ratings) land in exactly one half-open range
    frac = artifact_metrics(np.array([1.5, 2.0, 3.5, 4.0, 5.0]), np.array([1.5, 3.0, 3.5, 4.5, 5.0]))
    assert frac["mae_0_2"] == 0.0 and frac["mae_2_4"] == 0.5 and frac["mae_4_5"] == 0.25
    assert artifact_metrics(y, np.full(6, 2.5))["auroc_severe"] == 0.5
    assert np.isnan(artifact_metrics(np.zeros(4), np.zeros(4))["auroc_severe"])


def test_early_exit_accumulates_evidence_before_stopping():
    prob = np.array([[0.9, 0.9, 0.9],    # severe, confident from the start
                     [0.1, 0.9, 0.9],    # severe, seen late: running mean 0.1, 0.5, 0.63
                     [0.9, 0.1, 0.1],    # clean, one bad early reading
                     [0.1, 0.1, 0.1]])   # clean
    assert stop_steps(prob, 0.6).tolist() == [0, 2, 0, -1]
    assert stop_steps(prob, 0.6, min_checks=2).tolist() == [1, 2, -1, -1]
    curve = tradeoff_curve(prob, [0.25, 0.5, 0.75], np.array([1, 1, 0, 0], bool), [0.6, 0.95], min_checks=2)
    first = curve.iloc[0]
    assert (first["caught"], first["false_stop"]) == (1.0, 0.0)
    assert first["saved"] == pytest.approx((0.5 + 0.25) / 4)
    assert curve.iloc[1]["caught"] == 0.0
    best = best_operating_point(curve)
    assert best["threshold"] == 0.6 and best["caught"] == 1.0
    with pytest.raises(ValueError, match="both severe and non-severe"):
        tradeoff_curve(prob, [0.25, 0.5, 0.75], np.ones(4, bool), [0.5])


def test_oracle_trajectories_hold_what_each_sampler_holds():
    from pipeline.latents.noising import oracle_trajectory

    x0 = torch.randn(4000, 4, 4, 4)
    fracs = [0.1, 0.5, 0.9]
    ddim, euler = (oracle_trajectory(n, x0, fracs, 20, seed=0) for n in ("ddim", "euler"))
    # same starting noise: at the same timestep the U-Net inputs coincide, and Euler holds them in sigma space
    assert ddim.steps == sorted(ddim.steps, reverse=True) and ddim.run_fracs[0] > ddim.run_fracs[-1]
    assert euler.latents[2].std() > 5 * euler.model_input[2].std()
    for traj in (ddim, euler):
        ab = torch.tensor(traj.alpha_bars)[:, None, None, None, None]
        eps = (traj.model_input - ab.sqrt() * x0) / (1 - ab).sqrt()
        assert torch.allclose(eps[0], eps[2], atol=0.05)          # one ε along a deterministic run
    ddpm = oracle_trajectory("ddpm", x0, fracs, 20, seed=0)
    ab = torch.tensor(ddpm.alpha_bars)[:, None, None, None, None]
    eps = (ddpm.model_input - ab.sqrt() * x0) / (1 - ab).sqrt()
    assert abs(float(eps[1].std()) - 1) < 0.02                   # the right marginal ...
    corr = float((eps[0] * eps[2]).mean())
    assert 0.0 < corr < 0.5                                      # ... with fresh noise added along the way
    assert torch.equal(oracle_trajectory("ddpm", x0, fracs, 20, seed=0).latents, ddpm.latents)


def test_benchmark_sees_a_signal_that_noise_hides(tmp_path):
    from pipeline.score.benchmark import ScorerSpec, run_clean, run_schedulers
    from pipeline.score.nets import build_scorer

    rng = np.random.default_rng(0)
    clean = rng.normal(size=(600, 4, 4, 4)).astype(np.float32)
    score = np.clip(2.5 + 6 * clean[:, 0].mean(axis=(1, 2)), 0, 5)
    spec = ScorerSpec(ridge_alpha=1.0, mlp_hidden=[32], cnn_channels=[8, 8], t_dim=8, level_steps=150, cond_steps=300,
                      batch_size=64, lr=1e-3, level_models=["ridge", "mlp"], expert_model="mlp", rgb_models=[], severe_at=3.0)
    tr, te = slice(0, 400), slice(400, 600)
    clean_rows, clean_cnn = run_clean(clean[tr], score[tr], clean[te], score[te], spec, seed=0)
    assert clean_cnn.config["kind"] == "cnn" and not clean_cnn.training
    assert {r["model"] for r in clean_rows} == {"ridge", "mlp", "cnn"}
    assert min(r["mae"] for r in clean_rows) < 0.5 * np.abs(score[te] - score[tr].mean()).mean()
    out = run_schedulers(["ddim", "euler"], clean[tr], score[tr], clean[te], score[te], t_fracs=[0.05, 0.95],
                         heldout_fracs=[0.5], num_inference_steps=20, spec=spec, seed=0)
    res = out["ddim"]
    rho = {(r["model"], r["t_frac"]): r["spearman"] for r in res.rows}
    assert rho[("ridge", 0.05)] > 0.8 and rho[("ridge", 0.95)] < rho[("ridge", 0.05)] - 0.3
    assert rho[("mlp", 0.05)] > 0.3                                     # trained on fresh noise, scored on the runs
    assert {("cnn_t", 0.5), ("mixture", 0.5)} <= set(rho)              # held-out level scored by the cross models
    assert res.test_pred["cnn_t"].shape == (2, 200)
    # the mixture at a training level is exactly that level's expert
    assert np.allclose(res.test_pred["mixture"], res.test_pred["mlp"], atol=1e-5)
    model = build_scorer(res.models["mixture"].config)
    model.load_state_dict(res.models["mixture"].state_dict())
    # one cnn_t for every scheduler, each scheduler scored on its own runs: with one timestep spacing for all, the
    # deterministic samplers' oracle runs reach the same U-Net input at the same timestep (Euler's sigma-space latent
    # scaled back), so DDIM and Euler agree to float precision
    assert out["euler"].models["cnn_t"] is res.models["cnn_t"]
    assert out["euler"].test_pred["cnn_t"] is not res.test_pred["cnn_t"]
    np.testing.assert_allclose(out["euler"].test_pred["cnn_t"], res.test_pred["cnn_t"], atol=1e-4)
    no_mix = run_schedulers(["ddim"], clean[tr], score[tr], clean[te], score[te], t_fracs=[0.05], heldout_fracs=[],
                            num_inference_steps=20, seed=0, spec=ScorerSpec(**{**spec.__dict__, "expert_model": "none"}))
    assert set(no_mix["ddim"].models) == {"cnn_t"} and "mixture" not in no_mix["ddim"].test_pred


def test_scorer_training_draws_fresh_noise_every_minibatch():
    from pipeline.score.nets import MLPScorer, forward_noise, train_scorer

    x0 = torch.zeros(4, 1, 2, 2)
    gen = torch.Generator().manual_seed(0)
    a, b = forward_noise(x0, torch.full((4,), 0.5), gen), forward_noise(x0, torch.full((4,), 0.5), gen)
    assert not torch.equal(a, b) and abs(float(torch.cat([a, b]).std()) - 0.5**0.5) < 0.3
    assert torch.equal(forward_noise(x0 + 1, torch.ones(4), gen), x0 + 1)   # ᾱ = 1: clean
    seen = []

    class Spy(MLPScorer):
        def forward(self, x, t):
            seen.append(x.clone())
            return super().forward(x, t)

    clean = np.zeros((8, 1, 2, 2), np.float32)
    train_scorer(Spy([1, 2, 2], [4]), clean, np.zeros(8), np.ones(8), steps=3, batch_size=8, alpha_bars=np.full(8, 0.5))
    assert len(seen) == 3 and not torch.equal(seen[0], seen[1])   # each step its own draw around the same images
    with pytest.raises(ValueError, match="alpha_bars"):
        train_scorer(MLPScorer([1, 2, 2], [4]), clean, np.zeros(8), np.ones(8), steps=1, alpha_bars=np.ones(3))


def test_early_exit_threshold_is_measured_out_of_sample():
    from pipeline.score.early_exit import calibrate_and_evaluate

    rng = np.random.default_rng(0)
    severe = rng.random(400) < 0.5
    evidence = np.where(severe[:, None], 4.0, 1.0) + rng.normal(0, 0.5, (400, 3))
    res = calibrate_and_evaluate(evidence, [0.1, 0.5, 0.9], severe, np.linspace(0, 5, 51), max_false_stop=0.05)
    assert res["caught"] > 0.9 and res["false_stop"] <= 0.1 and res["saved"] > 0.35
    none = calibrate_and_evaluate(evidence, [0.1, 0.5, 0.9], severe, [0.0], max_false_stop=0.05)
    assert none["threshold"] is None


def test_rows_train_on_every_timestep_without_copies_as_the_tiled_arrays_did():
    from pipeline.score.nets import CNNScorer, channel_stats, train_scorer

    rng = np.random.default_rng(0)
    clean = rng.normal(size=(20, 4, 8, 8)).astype(np.float32) + 0.5
    y = rng.uniform(0, 5, 20).astype(np.float32)
    ts = np.repeat([100.0, 500.0, 900.0], 20)
    abars = np.repeat([0.9, 0.5, 0.1], 20)
    chunks = [torch.from_numpy(clean[a:a + 7]) for a in range(0, 20, 7)]
    for a, b in zip(channel_stats(chunks), channel_stats(torch.from_numpy(clean))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    def fit(rows, **kw):
        torch.manual_seed(0)
        model = CNNScorer([4, 8, 8], [8, 8], t_dim=8)
        x = clean if rows is not None else np.tile(clean, (3, 1, 1, 1))
        losses = train_scorer(model, x, ts, np.tile(y, 3), steps=6, batch_size=16, seed=1, rows=rows, **kw)
        return model, losses

    rows = np.tile(np.arange(20), 3)
    (m1, l1), (m2, l2) = fit(rows), fit(None)
    torch.testing.assert_close(m1.mean, m2.mean, rtol=1e-5, atol=1e-6)   # the same batches; stats summed in float64
    np.testing.assert_allclose(l1, l2, rtol=1e-4)
    (m1, l1), (m2, l2) = fit(rows, alpha_bars=abars), fit(None, alpha_bars=abars)
    torch.testing.assert_close(m1.std, m2.std, rtol=1e-4, atol=1e-5)   # noised chunk by chunk, summed in float64
    np.testing.assert_allclose(l1, l2, rtol=1e-3)
    with pytest.raises(ValueError, match="rows must index the 20 latents"):
        train_scorer(CNNScorer([4, 8, 8], [8], t_dim=8), clean, ts[:1], y[:1], steps=1, rows=np.array([20]))


def test_risk_control_keeps_false_stops_within_budget_with_the_stated_probability():
    """Learn then Test: over many calibration draws the chosen threshold's *true* false-stop rate exceeds α in at
    most about δ of them, where the plug-in choice (the empirical rate ≤ α) exceeds it about half the time."""
    from scipy.stats import norm

    from pipeline.score.early_exit import risk_controlled_threshold

    alpha, delta, n = 0.1, 0.05, 300
    rng = np.random.default_rng(0)
    true_fs = lambda lam: float(norm.sf(lam))            # non-severe peaks ~ N(0, 1): FS(λ) = P(peak ≥ λ)
    over_ltt = over_plugin = 0
    trials = 300
    for _ in range(trials):
        severe = rng.random(n) < 0.6
        peak = np.where(severe, rng.normal(1.5, 1, n), rng.normal(0, 1, n))
        chosen = risk_controlled_threshold(peak[:, None], severe, alpha=alpha, delta=delta)
        over_ltt += true_fs(chosen["threshold"]) > alpha
        neg = np.sort(peak[~severe])
        plug = neg[int(np.ceil((1 - alpha) * len(neg)))]   # the loosest threshold stopping ≤ α of them here
        over_plugin += true_fs(plug) > alpha
    assert over_ltt / trials <= delta + 0.03 and over_plugin / trials > 0.25
    # more checks: a run stops at its first check over the threshold, and stops iff its peak reaches it
    from pipeline.score.early_exit import exit_outcome, first_passage

    ev = np.array([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert first_passage(ev, 1.5).tolist() == [1, 0, -1]
    out = exit_outcome(ev, [0.1, 0.3, 0.5], np.array([True, False, False]), 1.5)
    assert out["caught"] == 1.0 and out["false_stop"] == 0.5 and abs(out["saved"] - (0.7 + 0.9) / 3) < 1e-12
    assert exit_outcome(ev, [0.1, 0.3, 0.5], np.array([True, False, False]), None)["saved"] == 0.0
    # too few calibration negatives for the guarantee: no threshold, nothing stopped
    tiny = risk_controlled_threshold(np.array([[1.0], [2.0], [0.5]]), np.array([True, False, False]), alpha=0.1, delta=0.05)
    assert tiny["threshold"] is None
