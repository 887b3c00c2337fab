"""The cross-dataset study's library: cells, fits, the per-source table and its verdicts, the aggregate."""

import numpy as np
import pandas as pd
import pytest

from pipeline.metrics.verdicts import agrees
from pipeline.study.cells import ALL, OWN, Cell, cell_counts, fill_target, minority_class, subsample, synthetic_only_target
from pipeline.study.fits import StudyData, StudyTask, run_task
from pipeline.study.table import WORDS, headline_metrics, rows_from_metrics, source_sentence, source_table, table_metrics


def test_cells_keep_the_sources_proportions_and_cut_the_minority():
    counts = np.array([100, 50, 20, 0, 10])
    minority = minority_class(np.repeat(np.arange(5), counts))
    assert minority == 4                                                   # fewest images (absent classes aside)
    assert cell_counts(counts, Cell(ALL, OWN), minority).tolist() == [100, 50, 20, 0, 10]
    assert cell_counts(counts, Cell(10, OWN), minority).tolist() == [10, 5, 2, 0, 1]       # at least one each
    assert cell_counts(counts, Cell(ALL, 100), minority).tolist() == [100, 50, 20, 0, 1]
    assert cell_counts(counts, Cell(ALL, 5), minority).tolist() == [100, 50, 20, 0, 10]    # never raised
    assert cell_counts(counts, Cell(20, 10), minority).tolist() == [20, 10, 4, 0, 2]
    assert Cell(5, 100).key == "5/1:100" and Cell(ALL, OWN).key == "all/own"


def test_a_cells_draw_depends_on_cell_and_seed_only():
    y = np.repeat(np.arange(3), [30, 20, 8])
    a, b = subsample(y, Cell(5, OWN), 0, 2), subsample(y, Cell(5, OWN), 0, 2)
    assert np.array_equal(a, b) and np.bincount(y[a]).tolist() == [5, 3, 1]
    assert not np.array_equal(a, subsample(y, Cell(5, OWN), 1, 2))
    assert fill_target(y[a], 4) == {0: 5, 1: 5, 2: 5} and fill_target(y[a], 8) == {0: 8, 1: 8, 2: 8}
    assert synthetic_only_target(y[a]) == {0: 10, 1: 6, 2: 2}


def _data(seed=0, n=60, shift=1.5):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), [n, n, n // 3])
    X = rng.normal(size=(len(y), 4, 4, 4)).astype(np.float32) + shift * y[:, None, None, None]
    y_test = np.repeat(np.arange(3), 20)
    X_test = rng.normal(size=(len(y_test), 4, 4, 4)).astype(np.float32) + shift * y_test[:, None, None, None]
    from pipeline.metrics.fidelity import PCAFrechet

    return StudyData(X, y, X_test, y_test, ["a", "b", "c"], minority_class(y), PCAFrechet(4).fit(X.reshape(len(y), -1)))


OPTIONS = {"knn": {"neighbors": 3}, "rf": {"trees": 10, "max_features": "sqrt"}}


def test_a_task_trains_every_model_and_measures_cas_and_fidelity_at_equal_n():
    data = _data()
    out = run_task(StudyTask(Cell(10, 10), "smote", 0, ("knn", "rf"), OPTIONS, {"k_neighbors": 5}, fill=12,
                             cas_model="knn"), data)
    fits = [r for r in out.rows if r["kind"] == "fit"]
    assert [r["model"] for r in fits] == ["knn", "rf"] and fits[0]["n_real"] == 10 + 10 + 1 and fits[0]["n_minority"] == 1
    # the minority class has one image: SMOTE cannot grow it ("n/a", not an error), nor make a CAS set
    assert all(r["status"].startswith("n/a: smote needs two images") for r in out.rows) and out.rows[-1]["kind"] == "cas"
    assert out.preds == [None, None, None] and out.fidelity is None
    out = run_task(StudyTask(Cell(20, OWN), "smote", 0, ("knn", "rf"), OPTIONS, {"k_neighbors": 5}, fill=30,
                             cas_model="knn"), data)
    fits = [r for r in out.rows if r["kind"] == "fit"]
    assert all(r["status"] == "ok" for r in out.rows)
    assert fits[0]["n_synthetic"] == 3 * 30 - (20 + 20 + 7)              # every class raised to fill
    cas = out.rows[-1]
    assert cas["n_synthetic"] == 20 + 20 + 7 and 0 <= cas["balanced_accuracy"] <= 1
    assert out.fidelity["frechet_n"] > 3 and out.fidelity["frechet_floor"] >= 0
    # class weights: the k-NN has none
    base = run_task(StudyTask(Cell(20, OWN), "class_weights", 0, ("knn", "rf"), OPTIONS), data)
    assert [r["status"] for r in base.rows] == ["n/a: knn has no class weights", "ok"] and base.preds[0] is None


def test_pairwise_methods_say_why_they_cannot_grow_a_class_of_one():
    data = _data()
    out = run_task(StudyTask(Cell(5, 100), "slerp", 0, ("knn",), OPTIONS, {"lambda_min": 0.0, "lambda_max": 1.0},
                             fill=5, cas_model="knn"), data)
    assert out.rows[0]["status"].startswith("n/a: slerp needs two images of a class") and out.preds[0] is None


def _table(effect: float, seeds=5, shift=1.5):
    """A source table of none / random / gaussian on one cell where gaussian moves predictions by ``effect``."""
    data = _data(shift=shift)
    rows, preds, fidelity = [], {}, []
    for method, aug in (("none", {}), ("random", {}), ("gaussian", {"sigma": effect})):
        for s in range(seeds):
            out = run_task(StudyTask(Cell(10, OWN), method, s, ("knn",), OPTIONS, aug, fill=15,
                                     cas_model=None if method == "none" else "knn"), data)
            for r, p in zip(out.rows, out.preds):
                rows.append(r)
                if p is not None:
                    preds[(r["kind"], r["cell"], r["model"], r["method"], r["seed"])] = p
            if out.fidelity:
                fidelity.append(out.fidelity)
    return source_table(pd.DataFrame(rows), preds, pd.DataFrame(fidelity), data.y_test, draws=200), data


def test_every_verdict_agrees_with_its_interval_and_the_metrics_read_back():
    table, data = _table(0.5)
    gains = table[table["gain_none_verdict"].notna()]
    assert set(gains["method"]) == {"random", "gaussian"}
    assert set(table[table["gain_random_verdict"].notna()]["method"]) == {"gaussian"}
    for ref in ("none", "random"):
        for r in table[table[f"gain_{ref}_verdict"].notna()].to_dict("records"):
            assert agrees({"ci": [r[f"gain_{ref}_lo"], r[f"gain_{ref}_hi"]], "verdict": r[f"gain_{ref}_verdict"]}, WORDS)
            assert r[f"gain_{ref}_lo"] <= r[f"gain_{ref}_lo95"] <= r[f"gain_{ref}_hi95"] <= r[f"gain_{ref}_hi"]
    g = table.set_index("method").loc["gaussian"]
    assert 0 < g["cas_fraction"] and g["frechet"] > 0 and g["frechet_floor"] > 0
    metrics = table_metrics(table, source="toy", minority="c", n_classes=3)
    back = rows_from_metrics(metrics).set_index(["cell", "model", "method"])
    for r in table.to_dict("records"):
        b = back.loc[(r["cell"], r["model"], r["method"])]
        for col in ("balanced_accuracy", "gain_none_mean", "gain_none_lo", "gain_random_hi", "cas_fraction", "frechet"):
            if isinstance(r.get(col), float) and not np.isnan(r[col]):
                assert b[col] == pytest.approx(r[col])
        assert b.get("gain_none_verdict", None) == r.get("gain_none_verdict") or pd.isna(r.get("gain_none_verdict"))
    assert metrics["verdicts"]["none"]["comparisons"] == 2 and metrics["verdicts"]["random"]["comparisons"] == 1
    head = headline_metrics(table)
    assert set(head) == {"random", "gaussian"} and head["gaussian"]["vs_random"]["comparisons"] == 1
    assert head["random"]["mean_gain_vs_none"] == pytest.approx(g_random := table.set_index("method").loc["random",
                                                                                                          "gain_none_mean"])
    assert isinstance(g_random, float)


def test_the_sentence_says_no_method_beats_re_balancing_when_none_does():
    table = pd.DataFrame([
        {"cell": "5/own", "model": "knn", "method": "smote", "gain_random_verdict": "no clear change",
         "gain_none_verdict": "improved"},
        {"cell": "5/own", "model": "knn", "method": "random", "gain_random_verdict": None, "gain_none_verdict": "improved"},
        {"cell": "5/own", "model": "rf", "method": "class_guided", "gain_random_verdict": "hurt",
         "gain_none_verdict": "no clear change"}])
    text = source_sentence("digits", table)
    assert text.startswith("On digits, no method beats re-balancing: none of the 2 ")
    assert "clearly worse than it in 1 of 2 (class_guided 1)" in text
    assert "2 of 3 comparisons are clearly better (re-balancing itself: 1 of 1)" in text
    table.loc[0, "gain_random_verdict"] = "improved"
    assert "beating re-balancing (random over-sampling): smote in 1 of 1 (5/own knn)" in source_sentence("digits", table)


def test_the_readme_block_counts_each_methods_verdicts_per_source():
    from pipeline.study.aggregate import study_markdown, study_page

    table = pd.DataFrame([
        {"source": "digits", "cell": "5/own", "shots": "5", "imbalance": "own", "model": "knn", "method": "smote",
         "gain_random_verdict": "hurt", "gain_none_verdict": "improved", "gain_none_mean": 0.1, "gain_none_lo": 0.01,
         "gain_none_hi": 0.2},
        {"source": "digits", "cell": "5/1:10", "shots": "5", "imbalance": "10", "model": "knn", "method": "smote",
         "gain_random_verdict": "no clear change", "gain_none_verdict": "no clear change", "gain_none_mean": 0.0,
         "gain_none_lo": -0.1, "gain_none_hi": 0.1},
        {"source": "digits", "cell": "5/own", "shots": "5", "imbalance": "own", "model": "knn", "method": "random",
         "gain_random_verdict": None, "gain_none_verdict": "improved", "gain_none_mean": 0.2, "gain_none_lo": 0.1,
         "gain_none_hi": 0.3}])
    said = {"digits": "On digits, no method beats re-balancing."}
    text = study_markdown(table, said)
    assert text.startswith("Across sources: smote beats re-balancing (random over-sampling) in no comparison on digits; "
                           "1 comparison is clearly worse than re-balancing.\n\n- On digits, no method beats re-balancing.\n")
    assert "| digits | smote | better 0, worse 1 of 2 | better 1, worse 0 of 2 |" in text
    assert "| digits | random | – | better 1, worse 0 of 1 |" in text
    page = study_page(table, said)
    assert "On digits, no method beats re-balancing." in page and 'id="study-gain"' in page


def test_across_sentence_names_where_a_method_beats_re_balancing_and_where_none_does():
    from pipeline.study.aggregate import across_sentence

    rows = [("a", "5", "smote", "no clear change"), ("a", "5", "class_guided", "improved"),
            ("a", "all", "class_guided", "no clear change"), ("b", "5", "smote", "no clear change"),
            ("b", "5", "class_guided", "no clear change"), ("a", "5", "random", None)]
    table = pd.DataFrame(rows, columns=["source", "shots", "method", "gain_random_verdict"])
    said = across_sentence(table)
    assert said.startswith("Across sources: smote beats re-balancing (random over-sampling) in no comparison on any of the 2 sources")
    assert "class_guided beats it in 1 of 3 comparisons (a at 5 images per class) and nowhere on b" in said
    assert said.endswith("none is clearly worse than re-balancing.")
    table.loc[0, "gain_random_verdict"] = "hurt"
    assert "1 comparison is clearly worse" in across_sentence(table)
    assert across_sentence(table.assign(gain_random_verdict=None)).startswith("No method was compared")
