"""`dvc repro` end to end on a balanced source: over-samplers have nothing to make there, which the
pipeline reports as "no samples needed" and leaves out of its tables instead of failing."""

import json

import pandas as pd
import pytest

from benchmarks.workspace import LIGHT, SHRUNK, copy_project, sh


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    override = {**SHRUNK, **LIGHT, "data.class_weights": [1, 1, 1], "data.n_images": 120, "data.test_fraction": 0.25,
                "compare.methods": ["smote", "gaussian"], "bench.pixel_models": ["vgg"], "bench.pixel_inputs": ["pixels"],
                "bench.latent_models": ["knn"], "noise.schedulers": ["ddim"], "score.seeds": 1}
    root = copy_project(tmp_path_factory.mktemp("e2e_balanced"), override)
    sh(["dvc", "repro"], root, timeout=900)
    return root


def test_balanced_classes_give_no_samples_needed_not_a_traceback(project):
    load = lambda p: json.loads((project / p).read_text())
    counts = load("reports/prepare/metrics.json")["splits"]["train"]
    assert counts["circle"] == counts["square"] == counts["triangle"] == 30

    # sampling_strategy auto raises every class to the majority count: on balanced classes, nothing to make
    for method in ("smote", "gaussian"):
        assert load(f"reports/fidelity/{method}/metrics.json")["no_samples_needed"] is True
    compare = load("reports/compare/metrics.json")
    assert compare == {"smote": {"no_samples_needed": 1}, "gaussian": {"no_samples_needed": 1}}
    assert pd.read_csv(project / "reports/compare/table.csv").empty

    skipped = load("reports/bench_latent/knn/skipped.json")["no_samples_needed"]
    assert skipped == ["real+smote", "real+random"]
    results = load("reports/bench/metrics.json")["results"]
    assert "knn/latents/real+smote" not in results and "knn/latents/low_data+smote" in results
    summary = load("reports/bench/summary.json")
    assert "knn real+smote" in summary["no_samples_needed"]
    page = (project / "reports/index.html").read_text()
    assert "No method made samples" in page and "No samples needed" in page and "Traceback" not in page
