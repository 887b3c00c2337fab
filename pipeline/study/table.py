"""One source's study table: per (cell, model, method), the scores, the gains over no augmentation and
over random over-sampling with their intervals and verdicts, the Classification Accuracy Score and the
fidelity at equal n; its metrics file, and the sentence that says what the numbers say.

Every gain is paired by seed (the same kept images, the same test images) and carries both variance
parts of :func:`pipeline.metrics.bootstrap.paired_gain`; the gains over each reference are one family
under Holm's procedure (:func:`pipeline.metrics.verdicts.decide`), so a verdict is given exactly where
the printed interval, at its Holm level, excludes 0. :func:`rows_from_metrics` reads the table back
from the metrics file, which is how the cross-source table (:mod:`pipeline.study.aggregate`) and the
tests see it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.metrics.bootstrap import paired_gain
from pipeline.metrics.verdicts import decide, family

REFERENCES = {"none": "no augmentation", "random": "random over-sampling"}
WORDS = ("improved", "hurt", "no clear change")
GAIN_KEYS = ("mean", "std", "lo", "hi", "lo95", "hi95", "level", "p_holm", "verdict", "seeds")
INTERVAL = "t over seeds of the paired gain, plus its paired-bootstrap variance over test images; Holm per reference"


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def source_table(rows: pd.DataFrame, preds: Mapping[tuple, np.ndarray], fidelity: pd.DataFrame, y_test: np.ndarray, *,
                 draws: int = 1000) -> pd.DataFrame:
    """The table of one source. ``rows``: every fit and CAS row of :mod:`pipeline.study.fits`;
    ``preds``: (kind, cell, model, method, seed) → test predictions of each row that ran; ``fidelity``:
    one row per (cell, method, seed) with ``frechet``, ``frechet_floor`` and ``frechet_n``."""
    fits = rows[rows["kind"] == "fit"]
    ok = fits[fits["status"] == "ok"]
    out, estimates = [], {ref: {} for ref in REFERENCES}
    for (cell, model, method), g in fits.groupby(["cell", "model", "method"], sort=False):
        good = g[g["status"] == "ok"].sort_values("seed")
        rec = {"cell": cell, "shots": str(g["shots"].iloc[0]), "imbalance": str(g["imbalance"].iloc[0]), "model": model,
               "method": method, "seeds": int(len(good)), "n_real": float(g["n_real"].mean()),
               "n_minority": float(g["n_minority"].mean()), "n_synthetic": float(g["n_synthetic"].mean()),
               "status": "ok" if len(good) else str(g["status"].iloc[0])}
        if len(good):
            rec.update(balanced_accuracy=float(good["balanced_accuracy"].mean()),
                       balanced_accuracy_std=float(good["balanced_accuracy"].std(ddof=0)),
                       minority_recall=float(good["minority_recall"].mean()),
                       minority_recall_std=float(good["minority_recall"].std(ddof=0)))
            for ref in REFERENCES:
                if method == ref or (ref == "random" and method == "none"):
                    continue
                r = ok[(ok["cell"] == cell) & (ok["model"] == model) & (ok["method"] == ref)]
                seeds = sorted(set(good["seed"]) & set(r["seed"]))
                if len(seeds) < 2:
                    continue
                mine = np.stack([preds[("fit", cell, model, method, s)] for s in seeds])
                theirs = np.stack([preds[("fit", cell, model, ref, s)] for s in seeds])
                estimates[ref][len(out)] = paired_gain(y_test, mine, theirs, draws=draws)
        out.append(rec)
    for ref, family_estimates in estimates.items():
        for i, v in decide(family_estimates, words=WORDS).items():
            out[i].update({f"gain_{ref}_{k}": x for k, x in (
                ("mean", v["difference"]), ("std", v["std"]), ("lo", v["ci"][0]), ("hi", v["ci"][1]),
                ("lo95", v["ci95"][0]), ("hi95", v["ci95"][1]), ("level", v["level"]), ("p_holm", v["p_holm"]),
                ("verdict", v["verdict"]), ("seeds", v["seeds"]))})
    table = pd.DataFrame(out)
    return _with_cas_and_fidelity(table, rows, fidelity)


def _with_cas_and_fidelity(table: pd.DataFrame, rows: pd.DataFrame, fidelity: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, method): the CAS (its model's balanced accuracy on the method's samples only, as a
    fraction of the same model's on the real kept images, by seed) and the Fréchet means."""
    cas = rows[(rows["kind"] == "cas") & (rows["status"] == "ok")]
    real = rows[(rows["kind"] == "fit") & (rows["method"] == "none") & (rows["status"] == "ok")]
    extra = {}
    for (cell, method), g in cas.groupby(["cell", "method"], sort=False):
        ref = real[(real["cell"] == cell) & (real["model"] == g["model"].iloc[0])].set_index("seed")["balanced_accuracy"]
        fractions = [r.balanced_accuracy / ref[r.seed] for r in g.itertuples() if r.seed in ref.index and ref[r.seed] > 0]
        extra[(cell, method)] = {"cas_model": g["model"].iloc[0], "cas_balanced_accuracy": float(g["balanced_accuracy"].mean()),
                                 "cas_fraction": float(np.mean(fractions)) if fractions else float("nan")}
    if len(fidelity):
        for (cell, method), g in fidelity.groupby(["cell", "method"], sort=False):
            extra.setdefault((cell, method), {}).update(
                frechet=float(g["frechet"].mean()), frechet_floor=float(g["frechet_floor"].mean()),
                frechet_n=float(g["frechet_n"].mean()))
    cols = ("cas_model", "cas_balanced_accuracy", "cas_fraction", "frechet", "frechet_floor", "frechet_n")
    for col in cols:
        table[col] = [extra.get((c, m), {}).get(col) for c, m in zip(table["cell"], table["method"])]
    return table


def table_metrics(table: pd.DataFrame, *, source: str, minority: str, n_classes: int) -> dict:
    """The whole table as one document (``table.json``): ``cells.<cell>.<method>`` holds the CAS and Fréchet
    numbers and, per model, the scores and each gain (numbers, and its verdict as a word)."""
    cells: dict = {}
    for r in table.to_dict("records"):
        entry = cells.setdefault(r["cell"], {}).setdefault(r["method"], {"models": {}})
        for k in ("cas_fraction", "cas_balanced_accuracy", "frechet", "frechet_floor", "frechet_n"):
            if _num(r.get(k)) is not None:
                entry[k] = _num(r[k])
        model = {"status": r["status"], "seeds": r["seeds"], "n_real": r["n_real"], "n_minority": r["n_minority"],
                 "n_synthetic": r["n_synthetic"]}
        for k in ("balanced_accuracy", "balanced_accuracy_std", "minority_recall", "minority_recall_std"):
            if _num(r.get(k)) is not None:
                model[k] = _num(r[k])
        for ref in REFERENCES:
            if isinstance(r.get(f"gain_{ref}_verdict"), str):
                model[f"gain_{ref}"] = {k: (r[f"gain_{ref}_{k}"] if k == "verdict" else _num(r[f"gain_{ref}_{k}"]))
                                        for k in GAIN_KEYS}
        entry["models"][r["model"]] = model
    fam = {ref: family(int(table[f"gain_{ref}_verdict"].notna().sum()) if f"gain_{ref}_verdict" in table else 0, INTERVAL)
           for ref in REFERENCES}
    return {"source": source, "minority_class": minority, "classes": n_classes, "verdicts": fam, "cells": cells}


def headline_metrics(table: pd.DataFrame) -> dict:
    """The few numbers DVC tracks as the study's metrics (``metrics.json``; the table is too wide for
    ``dvc exp show``): per method, how many of its cell × model comparisons are clearly better or worse
    than random over-sampling and than no augmentation, and its mean gain over no augmentation."""
    out = {}
    for method, g in table.groupby("method", sort=False):
        entry = {}
        for ref in REFERENCES:
            col = f"gain_{ref}_verdict"
            if col in g and g[col].notna().any():
                v = g[col].dropna()
                entry[f"vs_{ref}"] = {"comparisons": int(len(v)), "improved": int((v == WORDS[0]).sum()),
                                      "hurt": int((v == WORDS[1]).sum())}
        if "gain_none_mean" in g and g["gain_none_mean"].notna().any():
            entry["mean_gain_vs_none"] = float(g["gain_none_mean"].mean())
        if entry:
            out[method] = entry
    return out


def rows_from_metrics(metrics: Mapping) -> pd.DataFrame:
    """The table back from a document of :func:`table_metrics` (one row per cell, model, method)."""
    out = []
    for cell, methods in (metrics.get("cells") or {}).items():
        shots, imbalance = cell.split("/", 1)
        for method, entry in methods.items():
            shared = {k: entry.get(k) for k in ("cas_fraction", "cas_balanced_accuracy", "frechet", "frechet_floor",
                                                "frechet_n")}
            for model, m in entry["models"].items():
                rec = {"cell": cell, "shots": shots, "imbalance": imbalance.removeprefix("1:"), "model": model,
                       "method": method, **shared, **{k: v for k, v in m.items() if not k.startswith("gain_")}}
                for ref in REFERENCES:
                    for k, v in (m.get(f"gain_{ref}") or {}).items():
                        rec[f"gain_{ref}_{k}"] = v
                out.append(rec)
    return pd.DataFrame(out)


def _where(g: pd.DataFrame, limit: int = 4) -> str:
    items = [f"{r.cell} {r.model}" for r in g.itertuples()]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def source_sentence(source: str, table: pd.DataFrame) -> str:
    """What one source's numbers say, in words: which method, if any, beats re-balancing (random
    over-sampling) and where, which are worse, and how many beat no augmentation."""
    col = "gain_random_verdict"
    if col not in table or table[col].isna().all():
        return f"On {source}, no method was compared with random over-sampling (too few seeds or cells)."
    comp = table[table[col].notna()]
    wins, losses = comp[comp[col] == "improved"], comp[comp[col] == "hurt"]
    n = len(comp)
    if len(wins) == 0:
        text = (f"On {source}, no method beats re-balancing: none of the {n} method × model × cell comparisons with "
                "random over-sampling is clearly better")
    else:
        parts = [f"{m} in {len(g)} of {int((comp['method'] == m).sum())} ({_where(g)})"
                 for m, g in wins.groupby("method", sort=False)]
        text = f"On {source}, beating re-balancing (random over-sampling): " + "; ".join(parts)
    if len(losses):
        worse = ", ".join(f"{m} {len(g)}" for m, g in losses.groupby("method", sort=False))
        text += f"; clearly worse than it in {len(losses)} of {n} ({worse})"
    none = table[table["gain_none_verdict"].notna()] if "gain_none_verdict" in table else table[:0]
    if len(none):
        better = none[none["gain_none_verdict"] == "improved"]
        text += (f". Against no augmentation, {len(better)} of {len(none)} comparisons are clearly better "
                 f"(re-balancing itself: {int((better['method'] == 'random').sum())} of {int((none['method'] == 'random').sum())})")
    return text + "."
