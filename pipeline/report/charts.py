"""Interactive Vega-Lite charts for the report, built with Altair from what the stages wrote.

Every function takes data frames and returns a Vega-Lite spec (a JSON-ready dict) with its data
inlined, so the page needs nothing but the Vega bundle it carries (:mod:`pipeline.report.vega`).
Filters are Vega-Lite params bound to dropdowns, radio buttons or the legend; tooltips carry the
numbers and, where a point is an image, the decoded image itself (vega-tooltip draws a tooltip
field titled ``image`` as a picture).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

WIDTH = 520


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN → None, numpy scalars → Python."""
    clean = frame.astype(object).where(pd.notna(frame), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in clean.to_dict("records")]


def _spec(chart) -> dict:
    return chart.to_dict()


def embedding_chart(points: pd.DataFrame) -> dict:
    """Real and synthetic latents of each augmentation method in PCA or t-SNE coordinates.

    ``points`` has ``method``, ``set`` (real | synthetic), ``class``, ``pca_x``, ``pca_y``,
    ``tsne_x``, ``tsne_y`` and ``thumb`` (the decoded image as a data URI). Dropdowns pick the method
    and the projection, a radio filters real / synthetic, the legend filters classes, and hovering
    a point shows its decoded image. Each distinct image is stored once (the real points recur under every
    method) and looked up by index; coordinates keep 3 decimals."""
    methods = list(dict.fromkeys(points["method"]))
    codes, thumbs = pd.factorize(points["thumb"])
    coords = ["pca_x", "pca_y", "tsne_x", "tsne_y"]
    rows = points.drop(columns="thumb").assign(image=codes, **points[coords].astype(float).round(3))
    data = alt.Data(values=_records(rows))
    images = alt.LookupData(alt.Data(values=[{"image": i, "thumb": t} for i, t in enumerate(thumbs)]),
                            key="image", fields=["thumb"])
    method = alt.param(name="method", value=methods[0],
                       bind=alt.binding_select(options=methods, name="augmentation method "))
    proj = alt.param(name="projection", value="tsne",
                     bind=alt.binding_radio(options=["tsne", "pca"], labels=["t-SNE", "PCA"], name="projection "))
    which = alt.param(name="points", value="both",
                      bind=alt.binding_radio(options=["both", "real", "synthetic"], name="show "))
    classes = alt.selection_point(fields=["class"], bind="legend", name="classes")
    return _spec(
        alt.Chart(data).mark_point(filled=True, size=36, opacity=0.75)
        .transform_filter("datum.method == method")
        .transform_lookup(lookup="image", from_=images)
        .transform_filter("points == 'both' || datum.set == points")
        .transform_calculate(x="projection == 'pca' ? datum.pca_x : datum.tsne_x",
                             y="projection == 'pca' ? datum.pca_y : datum.tsne_y")
        .encode(
            x=alt.X("x:Q", title="component 1", scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title="component 2", scale=alt.Scale(zero=False)),
            color=alt.Color("class:N", title="class (click to filter)"),
            shape=alt.Shape("set:N", title="set", scale=alt.Scale(domain=["real", "synthetic"],
                                                                     range=["circle", "cross"])),
            opacity=alt.condition(classes, alt.value(0.8), alt.value(0.05)),
            tooltip=[alt.Tooltip("thumb:N", title="image"), alt.Tooltip("class:N"), alt.Tooltip("set:N"),
                     alt.Tooltip("method:N")],
        )
        .add_params(method, proj, which, classes)
        .properties(width=WIDTH, height=420,
                    title="Real (circles) and synthetic (crosses) train latents; hover a point for its decoded image")
    )


def gallery_chart(tiles: pd.DataFrame, per_row: int = 8, side: int = 56) -> dict:
    """A grid of decoded tiles that toggles between views (synthetic sample, nearest real image,
    its VAE reconstruction) per augmentation method. ``tiles`` has ``method``, ``tile``, ``class``,
    ``view`` and ``thumb``."""
    methods = list(dict.fromkeys(tiles["method"]))
    views = list(dict.fromkeys(tiles["view"]))
    frame = tiles.assign(col=tiles["tile"] % per_row, row=tiles["tile"] // per_row)
    rows = int(frame["row"].max()) + 1
    method = alt.param(name="gallery_method", value=methods[0],
                       bind=alt.binding_select(options=methods, name="augmentation method "))
    view = alt.param(name="gallery_view", value=views[0], bind=alt.binding_radio(options=views, name="show "))
    return _spec(
        alt.Chart(alt.Data(values=_records(frame))).mark_image(width=side - 4, height=side - 4)
        .transform_filter("datum.method == gallery_method && datum.view == gallery_view")
        .encode(
            x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None), url="thumb:N",
            tooltip=[alt.Tooltip("class:N"), alt.Tooltip("view:N"), alt.Tooltip("method:N")],
        )
        .add_params(method, view)
        .properties(width=per_row * side, height=rows * side,
                    title="Same positions, three views: a synthetic sample, its nearest real training image, "
                          "that image's VAE reconstruction")
    )


def bench_chart(table: pd.DataFrame, majority: float) -> dict:
    """Balanced accuracy (mean ± std over seeds) per model and regime, filterable by input and
    regime (legend), with the majority-class baseline as a rule. ``table`` is ``bench/table.csv``."""
    frame = table.assign(
        lo=table["balanced_accuracy_mean"] - table["balanced_accuracy_std"],
        hi=table["balanced_accuracy_mean"] + table["balanced_accuracy_std"],
        gain=table["gain_mean"] if "gain_mean" in table else np.nan,
        verdict=table["verdict"] if "verdict" in table else None,
    )[["model", "input", "regime", "balanced_accuracy_mean", "balanced_accuracy_std", "lo", "hi", "gain",
       "verdict"]]
    inputs = ["all", *dict.fromkeys(frame["input"])]
    inp = alt.param(name="bench_input", value="all", bind=alt.binding_select(options=inputs, name="input "))
    regimes = alt.selection_point(fields=["regime"], bind="legend", name="bench_regimes")
    base = (alt.Chart(alt.Data(values=_records(frame)))
            .transform_filter("bench_input == 'all' || datum.input == bench_input"))
    y = alt.Y("model:N", title=None)
    color = alt.Color("regime:N", title="regime (click to filter)")
    bars = base.mark_point(filled=True, size=60).encode(
        x=alt.X("balanced_accuracy_mean:Q", title="balanced accuracy (mean ± std over seeds)",
                scale=alt.Scale(domain=[0, 1])),
        y=y, yOffset="regime:N", color=color,
        opacity=alt.condition(regimes, alt.value(1.0), alt.value(0.08)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("input:N"), alt.Tooltip("regime:N"),
                 alt.Tooltip("balanced_accuracy_mean:Q", title="balanced accuracy", format=".3f"),
                 alt.Tooltip("balanced_accuracy_std:Q", title="std", format=".3f"),
                 alt.Tooltip("gain:Q", title="gain vs reference", format="+.3f"), alt.Tooltip("verdict:N")],
    ).add_params(inp, regimes)
    errors = base.mark_rule().encode(x="lo:Q", x2="hi:Q", y=y, yOffset="regime:N", color=color,
                                     opacity=alt.condition(regimes, alt.value(0.9), alt.value(0.05)))
    rule = alt.Chart(alt.Data(values=[{"baseline": "majority class", "value": majority}])).mark_rule(
        color="black", strokeDash=[4, 3]).encode(x="value:Q", tooltip=["baseline:N", alt.Tooltip("value:Q", format=".3f")])
    return _spec(alt.layer(errors, bars, rule).properties(
        width=WIDTH, height=40 * frame["model"].nunique(), title="Classifier benchmark (dashed: majority-class baseline)"))


SCORER_METRICS = {"mae": "MAE (lower is better)", "spearman": "Spearman ρ", "auroc_severe": "AUROC, severe artifacts"}


def scorer_chart(summary: pd.DataFrame, constant: dict, study: dict | None = None) -> dict:
    """Each scorer's test metric against the noise level (t / T), one scheduler at a time (dropdown),
    the metric picked by a radio, the constant train-mean predictor drawn as the baseline.
    ``summary`` is ``score/summary.csv``; ``constant`` the constant predictor's metrics; ``study`` the
    fresh-noise study (``metrics.json``'s ``fresh``), whose schedulers come first as "<name> (fresh noise)"
    (their metrics are against the judge's label)."""
    noisy = summary[summary["scheduler"] != "clean"]
    rows = []
    for name, block in (study or {}).items():
        if not isinstance(block, dict) or "predictors" not in block:
            continue
        for series, levels in block["predictors"].items():
            for level, cell in levels.items():
                rows += [{"scheduler": f"{name} (fresh noise)", "series": series, "t_frac": float(level), "metric": m,
                          "mean": cell[m]["mean"], "std": cell[m]["std"]} for m in SCORER_METRICS]
    for r in noisy.itertuples():
        for m in SCORER_METRICS:
            rows.append({"scheduler": r.scheduler, "series": r.series + (" (held-out level)" if r.heldout else ""),
                         "t_frac": r.t_frac, "metric": m, "mean": getattr(r, f"{m}_mean"), "std": getattr(r, f"{m}_std")})
    frame = pd.DataFrame(rows).assign(lo=lambda f: f["mean"] - f["std"], hi=lambda f: f["mean"] + f["std"])
    schedulers = list(dict.fromkeys(frame["scheduler"]))
    first = "ddim (fresh noise)" if "ddim (fresh noise)" in schedulers else schedulers[0]   # the headline, when run
    sched = alt.param(name="scorer_scheduler", value=first,
                      bind=alt.binding_select(options=schedulers, name="scheduler "))
    metric = alt.param(name="scorer_metric", value="mae",
                       bind=alt.binding_radio(options=list(SCORER_METRICS), labels=list(SCORER_METRICS.values()),
                                              name="metric "))
    base = (alt.Chart(alt.Data(values=_records(frame)))
            .transform_filter("datum.scheduler == scorer_scheduler && datum.metric == scorer_metric"))
    x = alt.X("t_frac:Q", title="noise level t / T (0 = finished image)")
    color = alt.Color("series:N", title="scorer")
    band = base.mark_area(opacity=0.15).encode(x=x, y="lo:Q", y2="hi:Q", color=color)
    lines = base.mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title="metric (mean ± std over seeds)", scale=alt.Scale(zero=False)), color=color,
        tooltip=[alt.Tooltip("series:N", title="scorer"), alt.Tooltip("t_frac:Q"), alt.Tooltip("metric:N"),
                 alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("std:Q", format=".3f")],
    ).add_params(sched, metric)
    const = pd.DataFrame([{"metric": m, "value": constant[m], "baseline": "constant train-mean predictor"}
                          for m in SCORER_METRICS])
    rule = (alt.Chart(alt.Data(values=_records(const))).transform_filter("datum.metric == scorer_metric")
            .mark_rule(color="black", strokeDash=[4, 3])
            .encode(y="value:Q", tooltip=["baseline:N", alt.Tooltip("value:Q", format=".3f")]))
    return _spec(alt.layer(band, lines, rule).properties(
        width=WIDTH, height=300, title="Artifact scorers across noise levels (dashed: constant predictor)"))
