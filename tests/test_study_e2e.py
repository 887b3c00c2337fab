"""The cross-dataset study from its one command, on two sources, through DVC's queue (the quick grid)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.browser import CHARTS_DRAWN, drawn_charts, offline_page
from benchmarks.workspace import LIGHT, SHRUNK, copy_project, sh
from pipeline.metrics.verdicts import agrees
from pipeline.study.table import WORDS, rows_from_metrics, source_sentence

SOURCES = ("shapes", "digits")
# the upstream the study needs (prepare, vae, encode, diffusion, guide), shrunk as the other e2e projects
STUDY = {**SHRUNK, **LIGHT, "data.n_images": 160, "data.n_artifact": 40, "study.workers": 1}
NUMBERS = ("balanced_accuracy", "minority_recall", "gain_none_mean", "gain_none_lo", "gain_none_hi", "gain_random_mean",
           "gain_random_lo", "gain_random_hi", "cas_fraction", "frechet", "frechet_floor")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("study"), STUDY)
    run = sh(["python", "-m", "stages.study_all", "--quick", "--sources", *SOURCES], root, timeout=2400)
    return root, run


def test_one_command_runs_every_source_and_gathers_one_table(study):
    root, run = study
    out = root / "reports/study_all"
    table = pd.read_csv(out / "table.csv", keep_default_na=False, na_values=[""])
    assert set(table["source"]) == set(SOURCES)
    assert set(table["experiment"]) == {f"study-{s}-quick" for s in SOURCES}
    assert all(re.fullmatch(r"[0-9a-f]{7}", str(r)) for r in table["rev"])
    # the small grid (params.yaml): 2 shot counts × 2 imbalances × 2 models × 5 methods, per source
    for source, g in table.groupby("source"):
        assert sorted(set(g["cell"])) == ["20/1:10", "20/own", "5/1:10", "5/own"], source
        assert set(g["model"]) == {"knn", "latent_cnn"}
        assert set(g["method"]) == {"none", "class_weights", "random", "smote", "class_guided"}
        assert len(g) == 4 * 2 * 5
    said = json.loads((out / "summary.json").read_text())["sources"]
    for source in SOURCES:
        assert said[source] == source_sentence(source, table[table["source"] == source])   # computed from the numbers
        assert said[source] in run.stdout

    # every verdict agrees with its interval, and Holm's interval holds the plain 95 % one
    for ref in ("none", "random"):
        rows = table[table[f"gain_{ref}_verdict"].notna()]
        assert len(rows) > 0, ref
        for r in rows.to_dict("records"):
            assert agrees({"ci": [r[f"gain_{ref}_lo"], r[f"gain_{ref}_hi"]], "verdict": r[f"gain_{ref}_verdict"]}, WORDS)
            assert r[f"gain_{ref}_lo"] <= r[f"gain_{ref}_lo95"] <= r[f"gain_{ref}_hi95"] <= r[f"gain_{ref}_hi"]
            assert r[f"gain_{ref}_seeds"] == 3
    ok = table[table["status"] == "ok"]
    assert ok["balanced_accuracy"].between(0, 1).all()
    assert (table[table["model"] == "knn"].set_index("method").loc["class_weights", "status"] == "n/a: knn has no class weights").all()
    methods = table[table["method"].isin(["random", "smote", "class_guided"]) & table["frechet"].notna()]
    assert len(methods) and (methods["frechet_floor"] > 0).all() and (methods["cas_fraction"] > 0).all()

    # the page: sentences, the chart drawn offline (one panel per source and imbalance), the table
    page = out / "index.html"
    assert all(s in page.read_text() for s in SOURCES)
    with offline_page(page.as_uri()) as (view, log):
        view.wait_for_function(CHARTS_DRAWN, timeout=60_000)
        charts = drawn_charts(view)
        assert [c["id"] for c in charts] == ["study-gain"] and charts[0]["svg"] == 1 and charts[0]["marks"] > 20
        assert view.locator("table.sortable tbody tr").count() == len(table)
    assert log.blocked == [] and log.errors == [], log


def _bring_back(root: Path, source: str) -> None:
    """The run behind a source's rows, as a user brings it back: a branch of its experiment, checked out."""
    sh(["dvc", "exp", "branch", f"study-{source}-quick", f"study-{source}"], root)
    sh(["git", "checkout", "-q", f"study-{source}"], root)
    sh(["dvc", "checkout", "--with-deps", "study_table"], root)


def test_the_aggregate_equals_each_sources_own_metrics(study):
    root, _ = study
    table = pd.read_csv(root / "reports/study_all/table.csv", keep_default_na=False, na_values=[""])
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], root).stdout)
    for source in SOURCES:
        _bring_back(root, source)
        own_doc = json.loads((root / "reports/study/table.json").read_text())
        assert own_doc["source"] == source
        own = rows_from_metrics(own_doc).set_index(["cell", "model", "method"]).sort_index()
        agg = table[table["source"] == source].set_index(["cell", "model", "method"]).sort_index()
        assert list(own.index) == list(agg.index)
        for col in NUMBERS:
            if col in own:
                a, b = own[col].astype(float).to_numpy(), agg[col].astype(float).to_numpy()
                assert np.allclose(a, b, rtol=1e-5, equal_nan=True), (source, col)
        assert (own["gain_random_verdict"].fillna("") == agg["gain_random_verdict"].fillna("")).all()
        # DVC's own metrics of the experiment (dvc exp show) count the aggregate's verdicts
        exp = next(g["revs"][0] for e in shown for g in e.get("experiments") or [] if g["name"] == f"study-{source}-quick")
        head = exp["data"]["metrics"]["reports/study/metrics.json"]["data"]
        assert head == json.loads((root / "reports/study/metrics.json").read_text())
        for method, entry in head.items():
            v = agg[agg.index.get_level_values("method") == method]["gain_none_verdict"].dropna()
            assert entry["vs_none"] == {"comparisons": len(v), "improved": int((v == "improved").sum()),
                                        "hurt": int((v == "hurt").sum())}, (source, method)


def test_a_change_to_one_methods_params_reruns_only_its_fits(study):
    root, _ = study
    if (root / ".git/refs/heads/study-shapes").exists():
        sh(["git", "checkout", "-q", "study-shapes"], root)
        sh(["dvc", "checkout", "--with-deps", "study_table"], root)
    else:
        _bring_back(root, "shapes")
    before = json.loads((root / "reports/study/table.json").read_text())["cells"]
    run = sh(["dvc", "exp", "run", "-S", "augment.class_guided.steps=4", "study_table"], root, timeout=900)
    ran = re.findall(r"Running stage '([^']+)'", run.stdout)
    assert ran == ["study@class_guided", "study_table"], run.stdout[-2000:]
    after = json.loads((root / "reports/study/table.json").read_text())["cells"]
    keep = ("status", "balanced_accuracy", "minority_recall", "n_real", "n_synthetic")
    for cell in before:   # the other methods' fits are the ones they had (Holm's levels move with the family)
        for method in ("none", "random", "smote"):
            for model, m in before[cell][method]["models"].items():
                assert {k: m.get(k) for k in keep} == {k: after[cell][method]["models"][model].get(k) for k in keep}
