"""The interactive report's parts, fast: charts compile and draw (Vega via vl-convert), thumbnails
round-trip, card pointers resolve, the experiments parser reads `dvc exp show --json`, and the
committed DVC plots template is the one the pinned bundle makes."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import vl_convert
from PIL import Image

from pipeline.report.cards import pointer, resolve
from pipeline.report.charts import bench_chart, embedding_chart, gallery_chart, scorer_chart
from pipeline.report.experiments import (differing, experiments_page, parallel_chart, parallel_rows, parse_exp_show,
                                         swept_params)
from pipeline.report.html import Card, Section, render_html
from pipeline.report.thumbs import thumbnail_uri
from pipeline.report.vega import dvc_plots_template, vega_bundle

ROOT = Path(__file__).resolve().parents[1]


def _image(seed=0, side=32):
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), 40, np.uint8)
    img[8:24, 8:24] = rng.integers(100, 255, 3)
    return img


def test_thumbnail_round_trips_as_webp():
    img = _image()
    uri = thumbnail_uri(img)
    assert uri.startswith("data:image/webp;base64,")
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")).astype(int)
    assert back.shape == img.shape and np.abs(back - img).mean() < 6
    assert np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbnail_uri(img, side=16).split(",")[1])))).shape[:2] == (16, 16)


def test_pointer_escapes_slashes_and_tildes():
    doc = {"results": {"knn/latents/real": {"a~b": {"0.6": 1.25}}}}
    ptr = pointer("results", "knn/latents/real", "a~b", "0.6")
    assert ptr == "/results/knn~1latents~1real/a~0b/0.6" and resolve(doc, ptr) == 1.25


def _points():
    rows = []
    for method in ("gaussian", "smote"):
        for i in range(12):
            rows.append({"method": method, "set": "real" if i % 2 else "synthetic", "class": f"c{i % 3}",
                         "pca_x": float(i), "pca_y": float(-i), "tsne_x": float(i % 4), "tsne_y": float(i // 4),
                         "thumb": thumbnail_uri(_image(i))})
    return pd.DataFrame(rows)


def _svg(spec) -> str:
    return vl_convert.vegalite_to_svg(spec)


def test_embedding_and_gallery_charts_draw_their_points_and_images():
    spec = embedding_chart(_points())
    assert {p["name"] for p in spec["params"]} >= {"method", "projection", "points", "classes"}
    svg = _svg(spec)
    assert svg.count("<path") >= 12   # the first method's 12 points (and legend symbols)
    tiles = pd.DataFrame([{"method": m, "tile": t, "class": "c0", "view": v, "thumb": thumbnail_uri(_image(t))}
                          for m in ("gaussian", "smote") for v in ("synthetic", "nearest real image") for t in range(10)])
    g = gallery_chart(tiles, per_row=5)
    assert g["height"] == 2 * 56
    assert _svg(g).count("<image") == 10   # one method, one view: its 10 tiles


def test_bench_and_scorer_charts_draw_their_baselines():
    table = pd.DataFrame({"model": ["knn", "knn", "vgg"], "input": ["latents", "latents", "pixels"],
                          "regime": ["real", "real+smote", "real"], "balanced_accuracy_mean": [0.4, 0.5, 0.9],
                          "balanced_accuracy_std": [0.01, 0.02, 0.03], "gain_mean": [np.nan, 0.1, np.nan],
                          "verdict": [None, "improved", None]})
    spec = bench_chart(table, majority=0.167)
    assert any(v.get("value") == 0.167 for layer in spec["layer"] if "data" in layer
               for v in layer["data"].get("values", []))
    assert "<path" in _svg(spec)
    summary = pd.DataFrame([{"scheduler": s, "series": "cnn_t", "heldout": False, "t_frac": t,
                             **{f"{m}_{k}": 0.5 for m in ("mae", "spearman", "auroc_severe") for k in ("mean", "std")}}
                            for s in ("ddim", "ddim_run") for t in (0.1, 0.5, 0.9)])
    constant = {"mae": 1.5, "spearman": 0.0, "auroc_severe": 0.5}
    spec = scorer_chart(summary, constant)
    assert next(p for p in spec["params"] if p["name"] == "scorer_scheduler")["value"] == "ddim"
    assert "<path" in _svg(spec)
    # with the fresh-noise study, its DDIM runs open the chart (the headline), the other rows stay selectable
    cell = {m: {"mean": 0.4, "std": 0.1} for m in ("mae", "spearman", "auroc_severe")}
    study = {"judge": {"seed": 1000}, "ddim": {"predictors": {"runs ridge (x̂₀)": {"0.9": cell, "0.5": cell}}}}
    spec = scorer_chart(summary, constant, study)
    sched = next(p for p in spec["params"] if p["name"] == "scorer_scheduler")
    assert sched["value"] == "ddim (fresh noise)" and {"ddim", "ddim_run"} <= set(sched["bind"]["options"])
    assert "<path" in _svg(spec)


def test_page_inlines_the_bundle_and_needs_no_network():
    section = Section("S", "a sentence", tables=[("t", pd.DataFrame({"a": [2, 1]}))],
                      charts=[("c", embedding_chart(_points()))])
    card = Card("Q", "finding", "1.00", "0.50", "better", "good", "x/metrics.json", "/a", 1.0)
    page = render_html("title", "sub", [section], [card])
    assert "window.vegaEmbed" in page and '<script src' not in page and "cdn.jsdelivr" not in page
    assert page.index("vega-chart") < page.index("a sentence") < page.index("<details>")   # figure, sentence, tables
    assert 'data-key="/a"' in page and 'class="dataframe sortable"' in page


EXP_SHOW = [
    {"rev": "workspace", "name": None, "error": None, "experiments": None,
     "data": {"rev": "workspace", "params": {"params.yaml": {"data": {"augment": {"gaussian": {"sigma": 0.1}}, "base": {"seed": 0}}}},
              "metrics": {"reports/encode/metrics.json": {"data": {"test": {"psnr": 26.0},
                                                                     "baseline_mean_image_test": {"psnr": 12.0}}}}}},
    {"rev": "a" * 40, "name": "main", "error": None,
     "data": {"rev": "a" * 40, "params": {"params.yaml": {"data": {"augment": {"gaussian": {"sigma": 0.1}}, "base": {"seed": 0}}}},
              "metrics": {"reports/encode/metrics.json": {"data": {"test": {"psnr": 26.0},
                                                                     "baseline_mean_image_test": {"psnr": 12.0}}}}},
     "experiments": [
         {"name": f"exp-{s}", "executor": None,
          "revs": [{"rev": f"{i}" * 40, "name": f"exp-{s}", "error": None, "experiments": None,
                    "data": {"rev": f"{i}" * 40,
                             "params": {"params.yaml": {"data": {"augment": {"gaussian": {"sigma": s}}, "base": {"seed": 0}}}},
                             "metrics": {"reports/encode/metrics.json": {"data": {"test": {"psnr": 26.0 - s},
                                                                                    "baseline_mean_image_test": {"psnr": 12.0}}}}}}]}
         for i, s in ((1, 0.5), (2, 1.0))]},
]


def test_experiments_dashboard_reads_dvc_exp_show():
    exps = parse_exp_show(json.loads(json.dumps(EXP_SHOW)))
    assert [e.name for e in exps] == ["workspace", "main", "exp-0.5", "exp-1.0"]
    assert [e.baseline for e in exps] == ["workspace", "main", "main", "main"]
    assert differing(exps, "params") == ["augment.gaussian.sigma"]
    assert differing(exps, "metrics") == ["reports/encode/metrics.json:test.psnr"]
    assert swept_params(exps, ["augment.gaussian.sigma"]) == ["augment.gaussian.sigma"]
    page = experiments_page(exps)
    assert "augment.gaussian.sigma" in page and "25.5 (baseline 12: mean training image)" in page
    assert page.count('class="vega-chart"') == 2 and 'id="parallel"' in page   # parallel coordinates, the sweep
    rows = parallel_rows(exps, ["augment.gaussian.sigma"])
    by = {(r["experiment"], r["axis"]): r for r in rows}
    assert by[("exp-1.0", "augment.gaussian.sigma")]["scaled"] == 1.0 and by[("main", "augment.gaussian.sigma")]["scaled"] == 0.0
    psnr = [r for r in rows if r["kind"] == "metric"]
    assert {r["experiment"]: r["value"] for r in psnr} == {"workspace": 26.0, "main": 26.0, "exp-0.5": 25.5, "exp-1.0": 25.0}
    assert "<path" in _svg(parallel_chart(rows))
    assert "Nothing to compare yet" in experiments_page(exps[:1])


def test_committed_dvc_plots_template_is_current_and_offline():
    committed = (ROOT / ".dvc/plots_template.html").read_text()
    assert committed == dvc_plots_template(), "run `python -m stages.plots_template` after changing vl-convert-python"
    assert "{plot_divs}" in committed and "{scripts}" not in committed and "cdn.jsdelivr" not in committed
    assert "plots_template.html" in (ROOT / ".dvc/config").read_text()


@pytest.mark.parametrize("version", [None, "5.21"])
def test_bundle_is_a_classic_script(version):
    code = vega_bundle(version)
    assert code.startswith("(function(){") and "window.vegaEmbed" in code and "import.meta" not in code


def test_parallel_coordinates_draw_one_line_per_experiment_offline(tmp_path):
    """The experiments page in Chromium with the network cut off: the parallel-coordinates view draws a
    line per experiment across the swept param and the headline metric, with no console error."""
    from benchmarks.browser import CHARTS_DRAWN, drawn_charts, offline_page

    exps = parse_exp_show(json.loads(json.dumps(EXP_SHOW)))
    path = tmp_path / "experiments.html"
    path.write_text(experiments_page(exps))
    with offline_page(path.as_uri()) as (view, log):
        view.wait_for_function(CHARTS_DRAWN, timeout=60_000)
        assert {c["id"] for c in drawn_charts(view)} == {"parallel", "sweep0"}
        assert view.locator("#parallel svg g.mark-line.role-mark path").count() == len(exps)
        assert view.locator("#parallel svg g.mark-symbol.role-mark path").count() == 2 * len(exps)   # two axes
    assert log.blocked == [] and log.errors == [], log
