"""The study across sources: one table from every source's experiment, and the study page.

Each source's study is one DVC experiment (``python -m stages.study_all`` queues them): ``dvc exp
show --json`` names them and their git revisions, and each one's ``reports/study/table.json``
(:func:`pipeline.study.table.table_metrics`) is read at that revision from the DVC cache
(``dvc.api.read``), so every row of the study table names the experiment and revision it came from, and
``dvc exp apply <experiment>`` brings back the run behind any cell. :func:`study_page` draws the
gains against training images per class, one panel per source (and imbalance), each gain's interval
at its Holm level, random over-sampling's gain as the reference line, and beside it the sentence each
source's numbers give (:func:`pipeline.study.table.source_sentence`).
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd

from pipeline.report.experiments import Experiment
from pipeline.report.html import chart_figure, page, table_html
from pipeline.study.table import rows_from_metrics, source_sentence

TABLE_FILE = "reports/study/table.json"
SHOW = {"balanced_accuracy": "balanced acc.", "minority_recall": "minority recall", "gain_none_mean": "gain vs none",
        "gain_none_verdict": "vs none", "gain_random_mean": "gain vs random", "gain_random_lo": "lo",
        "gain_random_hi": "hi", "gain_random_verdict": "vs random", "cas_fraction": "CAS / real",
        "frechet": "Fréchet", "frechet_floor": "floor (real)"}


def study_rows(experiments: list[Experiment], read, names: list[str] | None = None) -> pd.DataFrame:
    """Every study row of ``experiments`` (those in ``names`` when given) with its source, experiment
    name and git revision; ``read(experiment)`` returns its table document (None where it has none);
    the first experiment per source where several ran."""
    frames, seen = [], set()
    for e in experiments:
        if names is not None and e.name not in names:
            continue
        doc = read(e)
        if not doc:
            continue
        source = doc.get("source", e.name)
        if source in seen:
            continue
        seen.add(source)
        frames.append(rows_from_metrics(doc).assign(source=source, experiment=e.name, rev=e.rev,
                                                    minority_class=doc.get("minority_class")))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    first = ["source", "experiment", "rev", "cell", "shots", "imbalance", "model", "method"]
    return out[first + [c for c in out.columns if c not in first]]


def sentences(table: pd.DataFrame) -> dict[str, str]:
    """One sentence per source, computed from its rows."""
    return {s: source_sentence(s, g) for s, g in table.groupby("source", sort=False)}


def _shots_order(values) -> list[str]:
    return sorted({str(v) for v in values}, key=lambda s: float("inf") if s == "all" else float(s))


def gain_chart(table: pd.DataFrame) -> dict:
    """Gain in balanced accuracy over no augmentation against training images per class: one panel per
    source (columns) and imbalance (rows), one line per method, the interval at its Holm level as a
    bar, random over-sampling as the dashed reference; a menu picks the model."""
    data = table[table["gain_none_mean"].notna()].copy() if "gain_none_mean" in table else table[:0].copy()
    data = data[["source", "shots", "imbalance", "model", "method", "gain_none_mean", "gain_none_lo", "gain_none_hi",
                 "gain_none_verdict"]].rename(columns={"gain_none_mean": "gain", "gain_none_lo": "lo",
                                                        "gain_none_hi": "hi", "gain_none_verdict": "verdict"})
    data["imbalance"] = data["imbalance"].map(lambda v: "own" if v == "own" else f"1:{v}")
    models = sorted(data["model"].unique()) or [""]
    pick = alt.param(name="model", value=models[0], bind=alt.binding_select(options=models, name="model "))
    x = alt.X("shots:O", sort=_shots_order(data["shots"]), title="training images per class (largest class)")
    base = alt.Chart().transform_filter(alt.datum.model == pick)
    others = base.transform_filter(alt.datum.method != "random")
    lines = others.mark_line(point=True).encode(
        x=x, y=alt.Y("gain:Q", title="gain vs none (balanced acc.)"), color=alt.Color("method:N"),
        tooltip=["method", "shots", "imbalance", alt.Tooltip("gain:Q", format="+.3f"), alt.Tooltip("lo:Q", format="+.3f"),
                 alt.Tooltip("hi:Q", format="+.3f"), "verdict"])
    bars = others.mark_rule(opacity=0.5).encode(x=x, y="lo:Q", y2="hi:Q", color="method:N")
    ref = base.transform_filter(alt.datum.method == "random").mark_line(strokeDash=[6, 3], color="black").encode(
        x=x, y="gain:Q", tooltip=[alt.Tooltip("gain:Q", format="+.3f", title="random over-sampling")])
    zero = alt.Chart().mark_rule(color="grey").encode(y=alt.datum(0))
    chart = alt.layer(zero, bars, lines, ref, data=data).properties(width=220, height=160).facet(
        column=alt.Column("source:N", title=None), row=alt.Row("imbalance:N", title="imbalance")).add_params(pick)
    return chart.to_dict()


def study_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: its keys and the columns of :data:`SHOW`, renamed."""
    cols = [c for c in ("source", "experiment", "rev", "cell", "model", "method", *SHOW) if c in table]
    return table[cols].rename(columns=SHOW)


def study_page(table: pd.DataFrame, said: dict[str, str], *, title: str = "latent lab study") -> str:
    """The study page: the sentences, the gain chart and the table (every cell)."""
    body = ["<h2>What the numbers say</h2>",
            "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in said.values()) + "</ul>",
            "<p>Gains are paired by seed (the same kept images and test images); each interval carries the seed and "
            "test-set variance and is drawn at the level Holm's procedure tests it at (one family per reference), "
            "so a verdict is given exactly where it excludes 0. Random over-sampling (copies of real images) is the "
            "re-balancing reference; CAS / real is a classifier trained on the method's samples only, as a fraction "
            "of the same classifier on the real images; Fréchet is measured at equal n beside the real-vs-real floor.</p>"]
    if len(table) and "gain_none_mean" in table:
        body.append(chart_figure("study-gain", "Gain over no augmentation against training images per class: one "
                                 "panel per source and imbalance, intervals at their Holm level, random over-sampling "
                                 "dashed (pick the model)", gain_chart(table)))
    body.append(table_html("Every cell, model and method", study_columns(table)))
    sources = ", ".join(said) or "none"
    return page(title, f"Does generated data make better training data than re-balancing? Sources: {sources}.", body)


STUDY_START = "<!-- study: generated by `python -m stages.results --study reports/study_all`; do not edit by hand -->"
STUDY_END = "<!-- end of the generated study -->"


def across_sentence(table: pd.DataFrame) -> str:
    """What every source's rows say together: the methods that beat re-balancing (random over-sampling)
    nowhere, and for each that does, on which sources and at how many images per class."""
    col = "gain_random_verdict"
    judged = table[table[col].notna()] if col in table else table.iloc[:0]
    if judged.empty:
        return "No method was compared with random over-sampling on any source."
    sources = judged["source"].unique()
    wins = judged[judged[col] == "improved"]
    won = set(wins["method"])
    never = [m for m in judged["method"].unique() if m not in won]
    parts = []
    if never:
        parts.append(f"{', '.join(never)} beat{'s' if len(never) == 1 else ''} re-balancing (random over-sampling) "
                     f"in no comparison on {f'any of the {len(sources)} sources' if len(sources) > 1 else sources[0]}")
    for method, g in wins.groupby("method", sort=False):
        where = "; ".join(f"{source} at {', '.join(_shots_order(h['shots'].astype(str).unique()))} images per class"
                          for source, h in g.groupby("source", sort=False))
        lost = [s for s in sources if s not in set(g["source"])]   # this method's sources without a win
        parts.append(f"{method} beats it in {len(g)} of {int((judged['method'] == method).sum())} comparisons ({where})"
                     + (f" and nowhere on {', '.join(lost)}" if lost else ""))
    hurt = judged[judged[col] == "hurt"]
    parts.append(f"{len(hurt)} {'comparison is' if len(hurt) == 1 else 'comparisons are'} clearly worse than "
                 "re-balancing" if len(hurt)
                 else "none is clearly worse than re-balancing")
    return "Across sources: " + "; ".join(parts) + "."


def study_markdown(table: pd.DataFrame, said: dict[str, str]) -> str:
    """The README's study block: what the sources say together (:func:`across_sentence`), the sentence of each
    source, then per source and method how many of its cell × model comparisons are clearly better or worse
    than random over-sampling and than none."""
    rows = []
    for (source, method), g in table.groupby(["source", "method"], sort=False):
        entry = {"source": source, "method": method}
        for ref, label in (("random", "vs random over-sampling"), ("none", "vs no augmentation")):
            v = g[f"gain_{ref}_verdict"].dropna() if f"gain_{ref}_verdict" in g else pd.Series(dtype=object)
            entry[label] = (f"better {int((v == 'improved').sum())}, worse {int((v == 'hurt').sum())} of {len(v)}"
                            if len(v) else "–")
        rows.append(entry)
    counts = pd.DataFrame(rows)
    lines = [across_sentence(table), ""] + [f"- {s}" for s in said.values()] + [""]
    lines += ["| " + " | ".join(counts.columns) + " |", "|" + "---|" * len(counts.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in counts.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def study_block(snapshot) -> str:
    """The README's study block from a copy of ``python -m stages.study_all``'s ``table.csv`` and
    ``summary.json`` (``docs/results/study_all``)."""
    import json
    from pathlib import Path

    snapshot = Path(snapshot)
    table = pd.read_csv(snapshot / "table.csv", keep_default_na=False, na_values=[""])
    said = json.loads((snapshot / "summary.json").read_text())["sources"]
    return study_markdown(table, said)
