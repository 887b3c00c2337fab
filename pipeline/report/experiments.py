"""The experiments dashboard: every DVC experiment of a repository side by side, as one offline page.

Input is what ``dvc exp show --json`` prints (DVC's stable interface to experiments: the workspace,
each baseline commit and the experiments branched from it, each with its params and metrics).
:func:`parse_exp_show` flattens that into :class:`Experiment` rows; :func:`experiments_page` shows
the params that differ, the headline metrics each beside its baseline, every metric that differs,
a parallel-coordinates view of the swept params against the headline metrics across experiments
(one line per experiment; DVC's CLI no longer draws one), and, for a numeric param that was swept,
each changed metric against it (interactive charts).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from pipeline.report.cards import augmented, best_real, trained_levels
from pipeline.report.html import chart_figure, page, table_html

PARAMS_FILE = "params.yaml"


@dataclass
class Experiment:
    name: str                                        # experiment name, branch / commit, or "workspace"
    rev: str                                         # short git revision
    baseline: str                                    # the commit it was run from (its own name for a commit)
    params: dict = field(default_factory=dict)       # flattened: "section.key" (other params files: "file:key")
    metrics: dict = field(default_factory=dict)      # flattened: "reports/x/metrics.json:dotted.key" → number
    nested: dict = field(default_factory=dict)       # metrics file → its JSON, for the headline functions


def flatten(value, prefix: str = "") -> dict:
    """Nested dicts → ``{"a.b.c": leaf}`` (lists kept as leaves), as `dvc metrics diff` names keys."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _state(entry: dict, baseline: str) -> Experiment | None:
    data = entry.get("data") or {}
    if entry.get("error") or not data:
        return None
    params = {}
    for file, block in (data.get("params") or {}).items():
        for k, v in flatten((block or {}).get("data") or {}).items():
            params[k if file == PARAMS_FILE else f"{file}:{k}"] = v
    metrics, nested = {}, {}
    for file, block in (data.get("metrics") or {}).items():
        doc = (block or {}).get("data") or {}
        nested[file] = doc
        for k, v in flatten(doc).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[f"{file}:{k}"] = v
    rev = _short(entry.get("rev", ""))
    return Experiment(entry.get("name") or rev, rev, baseline, params, metrics, nested)


def _short(rev: str) -> str:
    """A git sha shortened to 7 characters; "workspace" kept whole."""
    return rev[:7] if len(rev) == 40 else rev


def parse_exp_show(entries: list[dict]) -> list[Experiment]:
    """``dvc exp show --json`` → the workspace, each baseline commit and its experiments, in that order."""
    out = []
    for entry in entries:
        base = entry.get("name") or _short(entry.get("rev", ""))
        me = _state(entry, base)
        if me is not None:
            out.append(me)
        for group in entry.get("experiments") or []:
            revs = group.get("revs") or []
            if revs:
                exp = _state(revs[0], base)   # a group's first rev is the experiment's latest state
                if exp is not None:
                    exp.name = group.get("name") or exp.name
                    out.append(exp)
    return out


def _differs(values: list) -> bool:
    present = [v for v in values if v is not None]
    return len(present) > 1 and any(v != present[0] for v in present[1:]) or 0 < len(present) < len(values)


# The parts of a verdict entry that are not headline numbers (its intervals, p-values, family size)
VERDICT_DETAIL = (".ci", ".ci95", ".lo", ".hi", ".p", ".p_holm", ".level", ".seeds", ".comparisons", ".higher_is_better")


def differing(experiments: list[Experiment], attr: str, skip=(), skip_suffix=()) -> list[str]:
    """Keys of ``attr`` (params or metrics) whose values are not the same in every experiment, less those
    containing a ``skip`` string or ending in a ``skip_suffix`` (lists are leaves)."""
    keys = list(dict.fromkeys(k for e in experiments for k in getattr(e, attr)))
    return [k for k in keys if not any(s in k for s in skip)
            and not k.endswith(tuple(skip_suffix))
            and _differs([getattr(e, attr).get(k) for e in experiments])]


# Headline metrics: (question, label, function of a run's metrics files → (value, baseline, baseline label)).
def _vae(m):
    e = m.get("reports/encode/metrics.json")
    return e and (e["test"]["psnr"], e["baseline_mean_image_test"]["psnr"], "mean training image")


def _bench(m):
    b = m.get("reports/bench/metrics.json") or {}
    best = best_real(b)
    return best and (b["results"][best]["balanced_accuracy"]["mean"], b["baseline_majority"]["balanced_accuracy"],
                     "majority class")


def _augment(m):
    gains = [v["gain"]["mean"] for v in augmented(m.get("reports/bench/metrics.json") or {}).values()]
    return gains and (max(gains), 0.0, "no augmentation")


def _unet(m):
    d = m.get("reports/diffusion/metrics.json")
    cells = [c["frechet"]["mean"] for s in (d or {}).get("samplers", {}).values() for c in s.values()]
    return cells and (min(cells), d["baselines"]["real_train"]["frechet"]["mean"], "real train latents")


def _guide(m):
    g = m.get("reports/guide/metrics.json")
    return g and (g["kinds"]["classifier"]["class_accuracy"]["mean"], g["kinds"]["unguided"]["class_accuracy"]["mean"],
                  "unguided sampling")


def _interp(m):
    i = m.get("reports/interpolate/metrics.json")
    return i and (i["methods"]["guided"]["class_kept"]["mean"], i["methods"]["slerp"]["class_kept"]["mean"], "naive slerp")


def _score(m):
    s = m.get("reports/score/metrics.json")
    fresh = ((s or {}).get("fresh") or {}).get("ddim")
    if fresh and fresh.get("best", {}).get("predictor"):
        return (fresh["early_exit"][fresh["best"]["predictor"]]["caught"]["mean"], 0.0,
                "constant predictor (severe DDIM runs stopped early)")
    cnn = (s or {}).get("ddim_run", (s or {}).get("ddim", {})).get("cnn_t", {})
    levels = trained_levels(cnn)
    if not levels:
        return None
    mid = levels[len(levels) // 2]
    return cnn[mid]["spearman"]["mean"], 0.0, f"constant predictor (Spearman at t/T {float(mid):g})"


HEADLINES = [
    ("VAE reconstruction", "test PSNR (dB)", _vae),
    ("classification", "best balanced accuracy, real regime", _bench),
    ("augmentation", "largest paired gain of an augmenter", _augment),
    ("generation", "best sampler's Fréchet distance", _unet),
    ("generation", "guided interpolation: class kept", _interp),
    ("guided generation", "classifier guidance: requested class kept", _guide),
    ("artifact scoring", "early exit: severe fresh-noise runs caught", _score),
]


def headline_frame(experiments: list[Experiment]) -> pd.DataFrame:
    """One row per headline metric: its value in each experiment and its baseline beside it."""
    rows = []
    for question, label, fn in HEADLINES:
        row, seen = {"question": question, "metric": label}, False
        for e in experiments:
            try:
                got = fn(e.nested)
            except (KeyError, TypeError, ValueError):
                got = None
            if got:
                value, base, base_label = got
                row[e.name] = f"{value:.4g} (baseline {base:.4g}: {base_label})"
                seen = True
            else:
                row[e.name] = "–"
        if seen:
            rows.append(row)
    return pd.DataFrame(rows)


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def swept_params(experiments: list[Experiment], params: list[str]) -> list[str]:
    """The differing params that are numbers in every experiment (a chart's x axis)."""
    return [p for p in params if all(_numeric(e.params.get(p)) for e in experiments)]


def sweep_chart(experiments: list[Experiment], param: str, metrics: list[str]) -> dict:
    """Each metric in ``metrics`` (picked in a dropdown) against the swept ``param``, one point per
    experiment, labelled and with a tooltip."""
    rows = [{"experiment": e.name, "x": float(e.params[param]), "metric": m, "value": float(e.metrics[m])}
            for e in experiments for m in metrics if m in e.metrics]
    pick = alt.param(name="sweep_metric", value=metrics[0],
                     bind=alt.binding_select(options=metrics, name="metric "))
    base = alt.Chart(alt.Data(values=rows)).transform_filter("datum.metric == sweep_metric")
    x = alt.X("x:Q", title=param, scale=alt.Scale(zero=False))
    y = alt.Y("value:Q", title="metric value", scale=alt.Scale(zero=False))
    xs = [r["x"] for r in rows if r["metric"] == metrics[0]]
    # a line where each value of the param is one run; points alone where runs share a value
    mark = (base.mark_line(point=alt.OverlayMarkDef(size=70, filled=True)) if len(set(xs)) == len(xs)
            else base.mark_point(size=70, filled=True))
    line = mark.encode(
        x=x, y=y, order="x:Q",
        tooltip=[alt.Tooltip("experiment:N"), alt.Tooltip("x:Q", title=param), alt.Tooltip("value:Q", format=".4g")],
    ).add_params(pick)
    labels = base.mark_text(dy=-10, fontSize=11).encode(x=x, y=y, text="experiment:N")
    return alt.layer(line, labels).properties(width=560, height=300, title=f"Metric against {param}").to_dict()


def headline_values(e: Experiment) -> dict[str, float]:
    """The experiment's headline numbers (:data:`HEADLINES`), by label, where its metrics have them."""
    out = {}
    for _, label, fn in HEADLINES:
        try:
            got = fn(e.nested)
        except (KeyError, TypeError, ValueError):
            got = None
        if got and _numeric(got[0]):
            out[label] = float(got[0])
    return out


def parallel_rows(experiments: list[Experiment], params: list[str]) -> list[dict]:
    """One row per experiment and axis (each numeric param in ``params``, then each headline metric that
    every experiment has): the raw value and the value scaled to the axis' range (0.5 where it is flat)."""
    heads = [headline_values(e) for e in experiments]
    metrics = [label for _, label, _ in HEADLINES if all(label in h for h in heads)]
    axes = [(p, "param", [float(e.params[p]) for e in experiments]) for p in swept_params(experiments, params)]
    axes += [(m, "metric", [h[m] for h in heads]) for m in metrics]
    rows = []
    for axis, kind, values in axes:
        lo, hi = min(values), max(values)
        for e, v in zip(experiments, values):
            rows.append({"experiment": e.name, "axis": axis, "kind": kind, "value": v,
                         "scaled": 0.5 if hi == lo else (v - lo) / (hi - lo)})
    return rows


def parallel_chart(rows: list[dict]) -> dict:
    """Parallel coordinates: an axis per swept param and headline metric, each scaled to its own range,
    one coloured line per experiment; hovering a point shows the raw value, the legend picks experiments."""
    order = list(dict.fromkeys(r["axis"] for r in rows))
    pick = alt.selection_point(fields=["experiment"], bind="legend", name="runs")
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("axis:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=220)),
        y=alt.Y("scaled:Q", title="scaled to each axis' range (0 = lowest, 1 = highest)",
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("experiment:N", title="experiment (click to pick)"),
        detail="experiment:N",
        opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
        tooltip=[alt.Tooltip("experiment:N"), alt.Tooltip("axis:N"), alt.Tooltip("kind:N"),
                 alt.Tooltip("value:Q", format=".4g")],
    )
    lines = base.mark_line(strokeWidth=2).add_params(pick)
    points = base.mark_point(size=60, filled=True)
    return alt.layer(lines, points).properties(
        width=max(360, 130 * len(order)), height=320,
        title="Swept params against the headline metrics, one line per experiment").to_dict()


def experiments_page(experiments: list[Experiment], *, max_metrics: int = 400) -> str:
    """The dashboard as a self-contained HTML page (see the module docstring)."""
    title = "latent lab experiments"
    unrun = [e.name for e in experiments if not e.metrics]
    experiments = [e for e in experiments if e.metrics]   # a commit from before any run has nothing to compare
    if len(experiments) < 2:
        return page(title, "Nothing to compare yet.", [
            "<p>Only one run was found. Run a sweep first, e.g. "
            "<code>dvc exp run -S augment.gaussian.sigma=0.5</code>, then write this page again.</p>"])
    params = differing(experiments, "params")
    metrics = differing(experiments, "metrics", skip=(".std", "ci95", ".seconds", "seconds_per", "train_seconds"),
                        skip_suffix=VERDICT_DETAIL)
    names = [e.name for e in experiments]
    runs = pd.DataFrame([{"experiment": e.name, "rev": e.rev, "run from": e.baseline,
                          **{p: e.params.get(p, "–") for p in params}} for e in experiments])
    metrics.sort(key=lambda m: not m.endswith(".mean"))   # means first: the sweep chart opens on one
    skipped = f" Left out, with no metrics (never reproduced): {', '.join(unrun)}." if unrun else ""
    body = [f"<p>{len(experiments)} runs (the workspace, each commit and the experiments run from it). "
            f"{len(params)} params differ; {len(metrics)} metric values differ.{html.escape(skipped)}</p>",
            table_html("Runs and the params that differ", runs),
            table_html("Headline metrics, each beside its baseline", headline_frame(experiments))]
    rows = parallel_rows(experiments, params)
    if len({r["axis"] for r in rows}) >= 2:
        body.append(chart_figure("parallel", "Parallel coordinates: each swept param and headline metric on its own "
                                 "axis, scaled to its range; hover a point for its value", parallel_chart(rows)))
    n = 0
    for param in swept_params(experiments, params):
        if metrics:
            body.append(chart_figure(f"sweep{n}", f"Every metric that differs, against {param} (pick one)",
                                     sweep_chart(experiments, param, metrics[:max_metrics])))
            n += 1
    changed = pd.DataFrame([{"metric": m, **{e.name: e.metrics.get(m) for e in experiments}} for m in metrics[:max_metrics]])
    more = f" (the first {max_metrics} of {len(metrics)})" if len(metrics) > max_metrics else ""
    body.append("<details open><summary>Every metric that differs" + html.escape(more) + "</summary>"
                + (table_html("Metric values per run", changed) if len(changed) else "<p>None.</p>") + "</details>")
    return page(title, "Params that differ and metrics side by side: " + ", ".join(names), body)
