"""The fresh-noise study: predict a finished generation's artifact score from its early steps, and stop bad runs.

Runs (the ``runs`` stage, :func:`pipeline.generate.runs.fresh_rows`) start from fresh Gaussian noise
and are denoised by the artifact U-Net with every scheduler; at each check level the U-Net input
x_t and the sampler's predicted clean latent x̂₀ are kept, and the finished latent is labelled by
the judge (:mod:`pipeline.score.judge`). Each scheduler's runs are split by role: ``train`` (what
run-trained predictors learn from), ``calibration`` (where the early-exit threshold is chosen) and
``test`` (where everything reported is measured).

Predictors, per seed (the judge never is one: its seed and fit are its own):

- ``constant``: the mean judge score of the train runs;
- ``proxy cnn_t (x_t)``: the score stage's timestep-conditioned CNN, fitted on the forward-noising
  proxy of the real labelled training latents (it never sees a generation);
- ``clean cnn (x̂₀)``: the clean-latent CNN fitted on the real labelled training latents, on x̂₀;
- ``runs ridge (x_t)`` / ``runs ridge (x̂₀)``: a ridge per (scheduler, level) fitted on the train runs
  with the judge's labels;
- ``runs cnn_t (x̂₀)``: one timestep-conditioned CNN on the train runs' x̂₀ of every scheduler and level.

:func:`tabulate_fresh` scores every predictor at every level on the test runs (MAE, Spearman ρ,
AUROC for "severe" = judge score ≥ ``severe_at``) and runs the early-exit rule with a false-stop
guarantee (:func:`~pipeline.score.early_exit.risk_controlled_threshold`, chosen on the calibration
runs) on the checks at t/T ≥ ``exit_from``; the best predictor is the one that catches most on the
*calibration* runs, and only its test figures are the headline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.latents.store import read_latent_split
from pipeline.metrics.regression import artifact_metrics
from pipeline.metrics.stats import mean_std
from pipeline.score.early_exit import exit_outcome, risk_controlled_threshold
from pipeline.score.nets import CNNScorer, train_scorer

ROLES = ("train", "calibration", "test")
CONSTANT = "constant"
PROXY = "proxy cnn_t (x_t)"
CLEAN = "clean cnn (x̂₀)"
RIDGE_XT, RIDGE_X0, RUNS_CNN = "runs ridge (x_t)", "runs ridge (x̂₀)", "runs cnn_t (x̂₀)"
PREDICTORS = (PROXY, CLEAN, RIDGE_XT, RIDGE_X0, RUNS_CNN)


def split_names(scheduler: str) -> dict[str, str]:
    """The runs store's splits of one scheduler's fresh runs: x_t and x̂₀ rows (run × level) and finals (one per run)."""
    return {"x_t": f"fresh_{scheduler}", "x0": f"fresh_{scheduler}_x0", "final": f"fresh_{scheduler}_final"}


@dataclass
class FreshSet:
    """One scheduler's fresh runs: ``x_t`` / ``x0`` (levels, N, C, H, W), the judge's ``label`` and each
    run's ``role`` (N,), and the check levels (``t_fracs`` from noise towards the image)."""

    scheduler: str
    x_t: np.ndarray
    x0: np.ndarray
    label: np.ndarray
    role: np.ndarray
    t_fracs: list[float]
    timesteps: list[float]
    run_fracs: list[float]

    def part(self, role: str) -> np.ndarray:
        return np.flatnonzero(self.role == role)


def load_fresh(directory: str | Path, schedulers) -> dict[str, FreshSet]:
    """Every scheduler's :class:`FreshSet` from the runs store; ``ValueError`` naming the split when its
    rows are not each run's levels in one order, or x_t, x̂₀ and finals disagree."""
    out = {}
    for name in schedulers:
        splits = split_names(name)
        xt, x0, final = (read_latent_split(directory, splits[k]) for k in ("x_t", "x0", "final"))
        n = len(final.meta)
        if n == 0 or len(xt.meta) % n or len(xt.meta) != len(x0.meta):
            raise ValueError(f"{directory}/{splits['x_t']}: {len(xt.meta)} rows are not the levels of the "
                             f"{n} runs in {splits['final']} (x̂₀: {len(x0.meta)} rows)")
        levels = len(xt.meta) // n
        ids = xt.meta["id"].to_numpy().reshape(n, levels)
        steps = xt.meta["timestep"].to_numpy(float).reshape(n, levels)
        if (not (ids == ids[:, :1]).all() or not (steps == steps[:1]).all()
                or list(ids[:, 0]) != final.meta["id"].tolist() or not (x0.meta["id"].to_numpy() == xt.meta["id"].to_numpy()).all()):
            raise ValueError(f"{directory}/{splits['x_t']}: the rows are not each run's {levels} levels in the order of "
                             f"{splits['final']}")
        first = xt.meta.iloc[:levels]
        out[name] = FreshSet(name, np.ascontiguousarray(xt.latents.reshape(n, levels, *xt.shape).swapaxes(0, 1)),
                             np.ascontiguousarray(x0.latents.reshape(n, levels, *x0.shape).swapaxes(0, 1)),
                             final.meta["judge"].to_numpy(float), final.meta["role"].to_numpy(str),
                             first["t_frac"].tolist(), first["timestep"].astype(float).tolist(),
                             first["run_frac"].astype(float).tolist())
    return out


def _scores(model, x: np.ndarray, timestep: float, max_score: float) -> np.ndarray:
    with torch.no_grad():
        xt = torch.from_numpy(np.array(x, dtype=np.float32))   # a writable copy (x may be a read-only memmap)
        return model(xt, torch.full((len(xt),), float(timestep))).clamp(0, max_score).numpy().astype(np.float64)


def proxy_predictions(cond, fresh: dict[str, FreshSet], max_score: float) -> dict[str, dict[str, np.ndarray]]:
    """The proxy-trained ``cnn_t`` on every scheduler's calibration and test runs' x_t: (levels, N_eval)."""
    out = {}
    for name, fs in fresh.items():
        idx = np.flatnonzero(fs.role != "train")
        out[name] = {PROXY: np.stack([_scores(cond, fs.x_t[i][idx], t, max_score) for i, t in enumerate(fs.timesteps)])}
    return out


def runs_predictions(clean_cnn, fresh: dict[str, FreshSet], *, ridge_alpha: float, cnn_channels: list[int], t_dim: int,
                     steps: int, batch_size: int, lr: float, seed: int, max_score: float) -> dict[str, dict[str, np.ndarray]]:
    """Per scheduler, the clean CNN on x̂₀ and the run-trained predictors (fitted on the train runs'
    judge labels), each on the calibration and test runs: (levels, N_eval) per predictor."""
    torch.manual_seed(seed)
    pooled_x, pooled_t, pooled_y = [], [], []
    for fs in fresh.values():
        tr = fs.part("train")
        for i, t in enumerate(fs.timesteps):
            pooled_x.append(fs.x0[i][tr])
            pooled_t.append(np.full(len(tr), t))
            pooled_y.append(fs.label[tr])
    shape = list(next(iter(fresh.values())).x0.shape[2:])
    runs_cnn = CNNScorer(shape, list(cnn_channels), t_dim=t_dim)
    train_scorer(runs_cnn, np.concatenate(pooled_x), np.concatenate(pooled_t), np.concatenate(pooled_y), steps=steps,
                 batch_size=batch_size, lr=lr, seed=seed)
    runs_cnn.eval()
    out = {}
    for name, fs in fresh.items():
        tr, ev = fs.part("train"), np.flatnonzero(fs.role != "train")
        preds = {CLEAN: [], RIDGE_XT: [], RIDGE_X0: [], RUNS_CNN: []}
        for i, t in enumerate(fs.timesteps):
            preds[CLEAN].append(_scores(clean_cnn, fs.x0[i][ev], 0.0, max_score))
            preds[RUNS_CNN].append(_scores(runs_cnn, fs.x0[i][ev], t, max_score))
            for key, x in ((RIDGE_XT, fs.x_t[i]), (RIDGE_X0, fs.x0[i])):
                ridge = make_pipeline(StandardScaler(), Ridge(alpha=ridge_alpha))
                ridge.fit(x[tr].reshape(len(tr), -1), fs.label[tr])
                preds[key].append(np.clip(ridge.predict(x[ev].reshape(len(ev), -1)), 0, max_score))
        out[name] = {k: np.stack(v) for k, v in preds.items()}
    return out


def tabulate_fresh(fresh: dict[str, FreshSet], predictions: dict[int, dict[str, dict[str, np.ndarray]]], *,
                   severe_at: float, exit_from: float, alpha: float, delta: float, judge=None) -> dict:
    """The study's metrics from every seed's predictions (``predictions[seed][scheduler][predictor]``:
    (levels, N_eval) on the non-train runs in store order): per scheduler, the label's make-up, every
    predictor's test metrics per level (mean / std over seeds, the constant beside) and its early exit.
    With the ``judge`` model, ``judge_on_x0`` adds a diagnostic, never a predictor: the judge itself on each
    level's x̂₀ — how much of its own verdict x̂₀ already shows (it labels the runs, so it may not predict them)."""
    seeds = sorted(predictions)
    out = {}
    for name, fs in fresh.items():
        ev = np.flatnonzero(fs.role != "train")
        cal, test = (np.flatnonzero(fs.role[ev] == r) for r in ("calibration", "test"))
        y_cal, y_test = fs.label[ev][cal], fs.label[ev][test]
        sev_cal, sev_test = y_cal >= severe_at, y_test >= severe_at
        const = float(fs.label[fs.part("train")].mean())
        levels = {f"{f:g}": {"timestep": t, "run_frac": r} for f, t, r in zip(fs.t_fracs, fs.timesteps, fs.run_fracs)}
        block = {"runs": {r: int((fs.role == r).sum()) for r in ROLES},
                 "label": {"mean": float(fs.label.mean()), "std": float(fs.label.std()),
                           "severe_share_test": float(sev_test.mean())},
                 "levels": levels,
                 "constant": artifact_metrics(y_test, np.full(len(y_test), const), severe_at=severe_at),
                 "predictors": {}, "early_exit": {}}
        if judge is not None:
            test_idx = ev[test]
            block["judge_on_x0"] = {
                f"{f:g}": {m: v for m, v in artifact_metrics(y_test, _scores(judge, fs.x0[i][test_idx], 0.0, 5.0),
                                                               severe_at=severe_at).items() if m in ("spearman", "auroc_severe")}
                for i, f in enumerate(fs.t_fracs)}
        checks = [i for i, f in enumerate(fs.t_fracs) if f >= exit_from]
        two_sided = all(sev.any() and not sev.all() for sev in (sev_cal, sev_test))
        if not two_sided:   # a result, not bad input: say so and leave early exit undefined
            block["early_exit_note"] = (f"no early exit: the judge rates {sev_cal.mean():.0%} of the calibration and "
                                        f"{sev_test.mean():.0%} of the test runs severe (≥ {severe_at:g}); the rule needs "
                                        "severe and non-severe runs in both")
        for p in PREDICTORS:
            if p not in predictions[seeds[0]][name]:
                continue
            per_level = {}
            for i, f in enumerate(fs.t_fracs):
                rows = [artifact_metrics(y_test, predictions[s][name][p][i][test], severe_at=severe_at) for s in seeds]
                per_level[f"{f:g}"] = {m: mean_std([r[m] for r in rows]) for m in ("mae", "spearman", "auroc_severe")}
            block["predictors"][p] = per_level
            if two_sided:
                block["early_exit"][p] = _exit(predictions, seeds, name, p, checks, fs, cal, test, sev_cal, sev_test,
                                               alpha=alpha, delta=delta)
        ok = {p: e["calibration_caught"]["mean"] for p, e in block["early_exit"].items() if e["calibration_caught"]["mean"] is not None}
        best = max(ok, key=ok.get) if ok and max(ok.values()) > 0 else None
        if best is None and "early_exit_note" not in block:
            negatives = int((~sev_cal).sum())
            block["early_exit_note"] = (f"no early exit: no predictor's threshold passes the risk control and stops a "
                                        f"calibration run ({negatives} non-severe calibration runs; the guarantee needs "
                                        f"more than {np.log(delta) / np.log(1 - alpha):.0f} even for a perfect predictor)")
        block["best"] = {"predictor": best, "chosen_by": "the most severe runs caught on the calibration runs (mean over "
                         "seeds); the test runs only report", "test_split_used": False}
        block["early_exit_rule"] = {"checks_t_frac": [fs.t_fracs[i] for i in checks], "exit_from": exit_from,
                                    "max_false_stop": alpha, "delta": delta,
                                    "guarantee": f"Learn then Test (fixed-sequence binomial tests on the calibration runs): "
                                                 f"P(false-stop rate > {alpha:g}) ≤ {delta:g} for each seed's threshold"}
        out[name] = block
    return out


def _exit(predictions, seeds, name, p, checks, fs: FreshSet, cal, test, sev_cal, sev_test, *, alpha, delta) -> dict:
    """One predictor's early exit per seed (threshold by risk control on calibration, outcome on test), summarised."""
    run_fracs = np.asarray(fs.run_fracs)[checks]
    order = np.argsort(run_fracs)                   # checks from noise towards the image
    per = []
    for s in seeds:
        ev = predictions[s][name][p][checks][order].T   # (N_eval, checks)
        chosen = risk_controlled_threshold(ev[cal], sev_cal, alpha=alpha, delta=delta)
        per.append({**chosen, **exit_outcome(ev[test], run_fracs[order], sev_test, chosen["threshold"])})
    S = len(seeds)
    caught = np.array([r["caught"] for r in per])
    fs_rate = np.array([r["false_stop"] for r in per])
    n_sev, n_neg = per[0]["severe"], per[0]["non_severe"]
    # the caught share's interval: t over seeds plus the test runs' binomial variance (the verdicts' rule)
    se = np.sqrt((caught.std(ddof=1) ** 2 / S if S > 1 else 0.0) + caught.mean() * (1 - caught.mean()) / max(n_sev, 1))
    tq = stats.t.ppf(0.95, S - 1) if S > 1 else np.inf
    fs_se = np.sqrt((fs_rate.std(ddof=1) ** 2 / S if S > 1 else 0.0) + fs_rate.mean() * (1 - fs_rate.mean()) / max(n_neg, 1))
    cal_caught = [r.get("calibration_caught") or 0.0 for r in per]
    return {"threshold": [r["threshold"] for r in per],
            "caught": {**mean_std(caught), "lower": float(caught.mean() - tq * se)},
            "false_stop": {**mean_std(fs_rate), "upper": float(fs_rate.mean() + tq * fs_se),
                           "ci95_first_seed": per[0]["false_stop_ci95"]},
            "saved": mean_std([r["saved"] for r in per]),
            "calibration_caught": {"mean": float(np.mean(cal_caught))},
            "seeds_with_threshold": int(sum(r["threshold"] is not None for r in per)),
            "test_severe": n_sev, "test_non_severe": n_neg, "seeds": S}
