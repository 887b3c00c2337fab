"""The classifier benchmark's results: one row per fit (model, input, regime, seed), and the summary table.

A result row holds the model, its input (``latents``, ``pixels`` or ``reconstructed`` pixels),
the regime, the seed, balanced accuracy, macro-F1, per-class recall, the training-set size and
the training time. :func:`summarise` turns the rows into the benchmark's table: mean ± std over
seeds, and beside every number its baselines: the majority class, and the same model without
augmentation (``real`` for latents, original ``pixels`` for the CNNs) as a paired gain per seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.metrics.classification import classification_metrics
from pipeline.metrics.bootstrap import paired_gain
from pipeline.metrics.verdicts import decide, family


VERDICT_WORDS = ("improved", "hurt", "no clear change")   # a gain's verdict: above, below or around 0


def timed_fit(fit: Callable[[], Callable[[], np.ndarray]]) -> tuple[np.ndarray, float]:
    """Run ``fit`` (which trains and returns a predict callable) and time the training only."""
    start = time.perf_counter()
    predict = fit()
    seconds = time.perf_counter() - start
    return predict(), seconds


def result_row(model: str, input_: str, regime: str, seed: int, y_test: np.ndarray, pred: np.ndarray,
               class_names: list[str], *, n_train: int, seconds: float) -> dict:
    m = classification_metrics(y_test, pred, class_names)
    return {"model": model, "input": input_, "regime": regime, "seed": seed, "n_train": n_train,
            "train_seconds": seconds, "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"],
            **{f"recall:{k}": v for k, v in m["per_class_recall"].items()}}


def predictions_frame(rows: list[dict], preds: list[np.ndarray]) -> pd.DataFrame:
    """One row per fit (model, input, regime, seed) with its test predictions as a list column."""
    keys = ["model", "input", "regime", "seed"]
    return pd.DataFrame([{**{k: r[k] for k in keys}, "pred": np.asarray(p, dtype=np.int16)} for r, p in zip(rows, preds)])


def minority_classes(y_train: np.ndarray, class_names: list[str], share: float = 0.5) -> list[str]:
    """Classes with fewer than ``share`` × the mean class count in training: the ones called out
    (shapes by default: star, cross and ring)."""
    counts = np.bincount(y_train, minlength=len(class_names))
    return [n for n, c in zip(class_names, counts) if c < share * counts.mean()]


def reference_of(input_: str, regime: str) -> tuple[str, str] | None:
    """The (input, regime) a result is compared with: reconstructions with original pixels, augmented
    and synthetic regimes with real-only, low-data + method with low-data; None for the references."""
    if input_ == "reconstructed":
        return "pixels", regime
    if regime.startswith("low_data+"):
        return input_, "low_data"
    if "+" in regime or regime.startswith("synthetic:"):
        return input_, "real"
    return None


def summarise(rows: pd.DataFrame, minority: list[str], predictions: pd.DataFrame | None = None,
              y_test: np.ndarray | None = None, *, draws: int = 1000) -> pd.DataFrame:
    """One row per (model, input, regime): mean ± std over seeds of balanced accuracy and macro-F1,
    mean minority-class recall, mean training time, and the gain over :func:`reference_of`, paired
    by seed. With ``predictions`` (:func:`predictions_frame`) and ``y_test`` every gain gets an
    interval with its seed and test-set variance (:func:`~pipeline.metrics.bootstrap.paired_gain`),
    the whole table is one family under Holm's procedure (:func:`~pipeline.metrics.verdicts.decide`),
    and a verdict is given only where the gain's Holm-level interval (``gain_lo`` … ``gain_hi``)
    excludes 0; the plain 95 % interval is ``gain_lo95`` … ``gain_hi95``."""
    out, estimates = [], {}
    for (model, input_, regime), g in rows.groupby(["model", "input", "regime"], sort=False):
        g = g.sort_values("seed")
        rec = {"model": model, "input": input_, "regime": regime, "seeds": int(len(g)),
               "balanced_accuracy_mean": g["balanced_accuracy"].mean(),
               "balanced_accuracy_std": g["balanced_accuracy"].std(ddof=0),
               "macro_f1_mean": g["macro_f1"].mean(), "macro_f1_std": g["macro_f1"].std(ddof=0),
               "minority_recall_mean": _nanmean(g[[f"recall:{c}" for c in minority]].to_numpy()) if minority else np.nan,
               "train_seconds_mean": g["train_seconds"].mean(), "n_train_mean": g["n_train"].mean()}
        ref = reference_of(input_, regime)
        if ref is not None:
            r = rows[(rows["model"] == model) & (rows["input"] == ref[0]) & (rows["regime"] == ref[1])].sort_values("seed")
            if r["seed"].tolist() == g["seed"].tolist():
                gain = g["balanced_accuracy"].to_numpy() - r["balanced_accuracy"].to_numpy()
                rec.update(reference=f"{ref[0]} / {ref[1]}", gain_mean=float(gain.mean()), gain_std=float(gain.std()))
                if predictions is not None:
                    estimates[len(out)] = paired_gain(y_test, _preds(predictions, model, input_, regime, g["seed"]),
                                                      _preds(predictions, model, *ref, g["seed"]), draws=draws)
        out.append(rec)
    for i, v in decide(estimates, words=VERDICT_WORDS).items():
        out[i].update(gain_lo=v["ci"][0], gain_hi=v["ci"][1], gain_lo95=v["ci95"][0], gain_hi95=v["ci95"][1],
                      gain_level=v["level"], gain_p=v["p"], gain_p_holm=v["p_holm"], comparisons=v["comparisons"],
                      verdict=v["verdict"])
    return pd.DataFrame(out)


def verdict_family(table: pd.DataFrame) -> dict:
    """How the table's verdicts were made (:func:`~pipeline.metrics.verdicts.family`)."""
    m = int(table["comparisons"].max()) if "comparisons" in table and table["comparisons"].notna().any() else 0
    return family(m, "t over seeds of the paired gain, plus its paired-bootstrap variance over test images")


def _nanmean(values: np.ndarray) -> float:
    """Mean over the defined values (a class with no test image has no recall); NaN if none is."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def _preds(predictions: pd.DataFrame, model: str, input_: str, regime: str, seeds) -> np.ndarray:
    sel = predictions[(predictions["model"] == model) & (predictions["input"] == input_)
                      & (predictions["regime"] == regime)].set_index("seed")
    return np.stack([np.asarray(sel.loc[s, "pred"]) for s in seeds])


def benchmark_sentence(table: pd.DataFrame, majority: float) -> str:
    """Plain words: the best model per input against the majority class, and whether any
    augmentation beat its un-augmented counterpart (95 % interval over seeds and test images)."""
    parts = []
    for input_, g in table.groupby("input", sort=False):
        best = g.loc[g["balanced_accuracy_mean"].idxmax()]
        text = (f"on {input_} the best is {best['model']} ({best['regime']}) at "
                f"{best['balanced_accuracy_mean']:.3f} ± {best['balanced_accuracy_std']:.3f} balanced accuracy")
        if best["balanced_accuracy_mean"] - best["balanced_accuracy_std"] <= majority:
            text += ", no better than the majority class"
        parts.append(text)
    text = f"Majority class: {majority:.3f}; " + "; ".join(parts) + "."
    if "verdict" not in table:
        return text
    aug = table[table["regime"].str.contains("+", regex=False) & table["verdict"].notna()]
    if len(aug) == 0:
        return text + " No augmented regime was run."
    family = (f"intervals over seeds (t) and test images, Holm over the table's {int(table['comparisons'].max())} "
              f"comparisons at family-wise 5 %")
    for label, want in (("helped", "improved"), ("hurt", "hurt")):
        hit = aug[aug["verdict"] == want]
        if len(hit):
            names = ", ".join(f"{r.model} {r.regime} ({r.gain_mean:+.3f}, {r.gain_level:.1%} interval {r.gain_lo:+.3f} … "
                              f"{r.gain_hi:+.3f})" for r in hit.itertuples())
            text += f" Augmentation {label} {len(hit)} of {len(aug)} model × regime pairs: {names}."
    if not (aug["verdict"] != "no clear change").any():
        text += f" No augmentation changed its model's balanced accuracy ({len(aug)} model × regime pairs)."
    return text + f" ({family}.)"
