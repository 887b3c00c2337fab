"""The real CLI end to end: `dvc repro` on a shrunk copy of the project, then a classifier sweep."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmarks.browser import CHARTS_DRAWN, drawn_charts, offline_page
from benchmarks.faults import KILLED, kill_mid_stage, second_repro_refused, stage_outs
from benchmarks.workspace import SHRUNK, copy_project, sh
from pipeline.classify.results import VERDICT_WORDS
from pipeline.latents.store import read_latent_split
from pipeline.metrics.verdicts import agrees
from pipeline.report.cards import resolve

SECTIONS = ["At a glance", "Data", "VAE reconstruction", "Latent-space analysis",
            "Synthetic latents: every method compared", "Classifier benchmark",
            "Cross-dataset study: augmentation and generation against re-balancing",
            "Generation: the latent U-Net and its samplers",
            "Sample-guided generation: interpolation between same-class pairs",
            "Metric-guided generation: classifier, discriminator and OOD guidance", "Artifact scorer across noise levels"]


# seeded training and sampling in torch, scikit-learn and worker processes (the U-Net's training and
# samplers repeat exactly in tests/test_diffusion.py and tests/test_generate.py)
DETERMINISM_STAGES = ["vae", "bench_latent@knn", "guide", "score"]


def _metrics(project: Path) -> dict[str, bytes]:
    return {p: (project / p).read_bytes() for p in yaml.safe_load((project / "dvc.yaml").read_text())["metrics"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("e2e"), SHRUNK)
    sh(["dvc", "repro"], root, timeout=900)
    return root


def test_repro_writes_every_metric_with_its_baseline(project):
    load = lambda p: json.loads((project / p).read_text())
    counts = load("reports/prepare/metrics.json")["splits"]
    assert counts["train"]["n"] + counts["test"]["n"] == 170
    assert counts["artifact_train"]["n"] + counts["artifact_test"]["n"] == SHRUNK["data.n_artifact"]

    vae, enc = load("reports/vae/metrics.json"), load("reports/encode/metrics.json")
    assert vae["steps"] == 80 and enc["latent_shape"] == [4, 16, 16]
    assert enc["scaling_factor"] == pytest.approx(vae["scaling_factor"], abs=1e-6)
    assert enc["test"]["psnr"] > enc["baseline_mean_image_test"]["psnr"] + 1     # the VAE beats the mean image

    test = read_latent_split(project / "data/latents", "test")
    assert test.scaling_factor == pytest.approx(vae["scaling_factor"], abs=1e-6) and test.shape == (4, 16, 16)

    analysis = load("reports/analyze/metrics.json")
    assert analysis["reconstruction"]["psnr_mean"] == pytest.approx(enc["test"]["psnr"], abs=1e-3)
    rgb = analysis["latent_rgb"]
    assert rgb["test"]["rmse"] < rgb["baseline_constant_colour_test"]["rmse"]
    assert np.array(json.loads((project / "models/latent_rgb.json").read_text())["factors"]).shape == (4, 3)
    assert 0 <= analysis["separability"]["linear_probe_balanced_accuracy"]["latents"] <= 1
    assert [row["sigma"] for row in analysis["perturbation"]["curve"]] == [0.05, 0.1, 0.25, 0.5, 1.0, 2.0]

    # the fidelity matrix follows compare.methods, one instance per method
    compare = load("reports/compare/metrics.json")
    assert list(compare) == ["gaussian", "slerp", "inversion"]
    for method, row in compare.items():
        fid = load(f"reports/fidelity/{method}/metrics.json")
        assert fid["method"] == method and set(fid["frechet"]["synthetic"]) == {"mean", "std"}
        assert row["frechet"] == pytest.approx(fid["frechet"]["synthetic"]["mean"], abs=1e-5)
        assert row["frechet_real"] > 0 and 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    assert 0 < load("reports/fidelity/inversion/metrics.json")["flip_rate"]["mean"] <= 1
    assert not (project / "reports/fidelity/lerp").exists()

    bench = load("reports/bench/metrics.json")
    assert bench["baseline_majority"]["balanced_accuracy"] == pytest.approx(1 / 6, abs=1e-6)
    results = bench["results"]
    sklearn_regimes = ["real", "low_data"] + [f"{k}{m}" for m in ("smote", "random")
                                              for k in ("real+", "synthetic:", "low_data+")]
    sklearn_regimes += ["low_data+class_guided", "low_data+guided_interpolation"]   # bench.generated_regimes
    expected = ({f"{m}/latents/{r}" for m in ("logreg", "knn") for r in sklearn_regimes}
                | {"attention/latents/real", "attention/latents/real+smote", "attention/latents/real+random"}
                | {f"{m}/{i}/real" for m in ("vgg", "mobilenet") for i in ("pixels", "reconstructed")})
    assert set(results) == expected
    majority = bench["baseline_majority"]["balanced_accuracy"]
    assert max(r["balanced_accuracy"]["mean"] for r in results.values()) > majority + 0.1   # some classifier learns
    for key, r in results.items():
        assert 0 <= r["balanced_accuracy"]["mean"] <= 1 and "train_seconds" not in r   # timings: table.csv
        assert ("verdict" in r) == (key.split("/")[2] not in ("real", "low_data") or key.split("/")[1] == "reconstructed")
        if "verdict" in r:   # the interval at Holm's level decides; the plain 95 % one lies inside it
            g = r["gain"]
            assert g["lo"] <= g["ci95_lo"] <= g["mean"] <= g["ci95_hi"] <= g["hi"] and g["level"] >= 0.95
            assert agrees({"ci": [g["lo"], g["hi"]], "verdict": r["verdict"]}, VERDICT_WORDS)
    assert bench["verdicts"]["comparisons"] == sum("verdict" in r for r in results.values())
    assert results["logreg/latents/real"]["balanced_accuracy"]["std"] == 0       # deterministic: one fit for both seeds
    assert results["logreg/latents/real+smote"]["reference"] == "latents / real"
    assert results["logreg/latents/low_data+random"]["reference"] == "latents / low_data"
    assert results["knn/latents/low_data+class_guided"]["reference"] == "latents / low_data"
    assert results["vgg/reconstructed/real"]["reference"] == "pixels / real"
    assert (pd.read_csv(project / "reports/bench/table.csv")["train_seconds_mean"] >= 0).all()
    for model, n_regimes in (("logreg", 10), ("knn", 10), ("attention", 3)):
        rows = pd.read_csv(project / f"reports/bench_latent/{model}/results.csv")
        preds = pd.read_parquet(project / f"reports/bench_latent/{model}/predictions.parquet")
        assert len(rows) == len(preds) == 2 * n_regimes and set(rows["seed"]) == {0, 1}, model
        assert all(len(p) == len(test.meta) for p in preds["pred"])
    words = load("reports/bench/summary.json")
    assert {"star", "cross", "ring"} <= set(words["minority_classes"])
    assert "Majority class: 0.167" in words["summary"]
    for png in ("bench/latents.png", "bench/pixels.png", "bench_latent/attention/attention.png"):
        assert (project / "reports" / png).stat().st_size > 10_000

    # the latent U-Net: saved in diffusers' layout, every sampler × steps measured beside its baselines
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(project / "models/unet", subfolder="unet")
    assert unet.config.in_channels == 4 and unet.config.sample_size == 16
    diff = load("reports/diffusion/metrics.json")
    assert diff["prediction"] == "epsilon" and set(diff["samplers"]) == {"ddpm", "ddim", "euler", "dpmsolver"}
    gauss, real = diff["baselines"]["gaussian"], diff["baselines"]["real_train"]
    assert real["frechet"]["mean"] < gauss["frechet"]["mean"]
    for steps in diff["samplers"].values():
        assert set(steps) == {"5", "10"}
        for cell in steps.values():
            assert cell["frechet"]["mean"] > 0 and 0 <= cell["coverage"]["mean"] <= 1
    assert len(pd.read_csv(project / "reports/diffusion/runs.csv")) == 2 * (4 * 2 + 2)   # seeds × (cells + baselines)
    timed = pd.read_csv(project / "reports/diffusion/samplers.csv")     # timings stay out of metrics.json
    assert (timed.loc[timed["steps"] > 0, "seconds_per_sample_mean"] > 0).all()
    for png in ("gallery", "trajectories", "paths", "loss"):
        assert (project / f"reports/diffusion/{png}.png").stat().st_size > 1_000, png

    interp = load("reports/interpolate/metrics.json")
    assert set(interp["methods"]) == {"lerp", "slerp", "noise_slerp", "guided"} and interp["class_prior"] == pytest.approx(1 / 6, abs=1e-6)
    for name, m in interp["methods"].items():
        assert 0 <= m["class_kept"]["mean"] <= 1 and m["frechet"]["mean"] > 0, name
    assert interp["methods"]["lerp"]["end_error"]["mean"] == pytest.approx(0, abs=1e-6)   # naive paths keep their ends
    for other in ("slerp", "noise_slerp"):
        v = interp["guided_vs"][other]["class_kept"]
        assert v["ci95"][0] <= v["difference"] <= v["ci95"][1] and v["verdict"] in ("better", "worse", "no clear difference")

    guide = load("reports/guide/metrics.json")
    assert set(guide["kinds"]) == {"unguided", "classifier", "discriminator", "ood", "combined"}
    assert guide["class_prior"] == pytest.approx(1 / 6, abs=1e-6) and guide["samples"] == 24
    for kind, m in guide["kinds"].items():
        assert 0 <= m["class_accuracy"]["mean"] <= 1 and m["frechet"]["mean"] > 0 and 0 <= m["far_fraction"]["mean"] <= 1
    assert set(guide["validation"]["sweep"]["classifier"]) == {"0.05", "0.15"}       # the candidates, swept on validation
    assert guide["operating"]["classifier"] in (0.05, 0.15) and guide["chosen_by"]["test_split_used"] is False
    assert interp["strength"] in (0.1, 0.3) and set(interp["validation"]["class_kept"]) == {"0.1", "0.3"}
    for name, det in guide["ood_detector"].items():
        assert 0 <= det["auroc"] <= 1 and 0 <= det["fpr_at_95_tpr"] <= 1, name
    v = guide["vs_unguided"]["discriminator"]["frechet"]
    assert v["ci95"][0] <= v["difference"] <= v["ci95"][1]
    for table in (guide["vs_unguided"], interp["guided_vs"]):          # every verdict agrees with its printed interval
        entries = [v for block in table.values() for v in block.values()]
        assert all(agrees(v) and v["comparisons"] == len(entries) for v in entries)
    table = pd.read_csv(project / "reports/guide/table.csv")
    assert len(table) == 5 and (table["seconds_per_sample_mean"] > 0).all()     # the chosen points; timings: table.csv
    for png in ("curves", "ood_roc", "gallery"):
        assert (project / f"reports/guide/{png}.png").stat().st_size > 1_000, png
    # every guiding model loads back with one call
    from pipeline.generate.guidance import load_guide_model
    from pipeline.generate.ood import MahalanobisOOD

    clf, config = load_guide_model(project / "models/guide/classifier")
    assert config["class_names"][:2] == ["circle", "square"] and clf.outputs == 6
    how = config["guidance"]
    assert {k: how[k] for k in ("symmetry", "normalise")} == {"symmetry": "dihedral", "normalise": True} \
        == guide["classifier_guidance"]
    assert how["scale"] == guide["operating"]["classifier"] and how["chosen_by"] == guide["chosen_by"]
    assert load_guide_model(project / "models/guide/discriminator")[0].outputs == 1
    assert MahalanobisOOD.load(project / "models/guide/ood").shape_ == (4, 16, 16)

    runs = load("reports/runs/metrics.json")
    n_test = counts["artifact_test"]["n"]
    inv = runs["inversion"]
    assert inv["images"] == n_test and set(inv["end_error"]) == {"ddpm", "ddim", "euler", "dpmsolver"}
    held = read_latent_split(project / "data/runs", "ddim")
    assert len(held.meta) == 4 * n_test and sorted(set(held.meta["t_frac"])) == [0.1, 0.3, 0.5, 0.9]
    # the judge: fitted on real labelled train latents, with its own seed, its test quality beside the constant's
    judge = runs["judge"]
    assert judge["seed"] == 1000 and judge["test"]["mae"] < judge["constant"]["mae"]
    assert json.loads((project / "models/judge/config.json").read_text())["seed"] == 1000
    # fresh-noise runs: every scheduler, its roles, x_t / x̂₀ at every check, the judge's label on each finished run
    fresh = read_latent_split(project / "data/runs", "fresh_ddpm_final")
    assert list(fresh.meta["role"].value_counts().sort_index()) == [100, 60, 20]   # calibration, test, train
    assert fresh.meta["judge"].between(0, 5).all() and fresh.meta["judge"].std() > 0
    assert len(read_latent_split(project / "data/runs", "fresh_euler_x0").meta) == 3 * 180
    for name in ("ddpm", "ddim", "euler", "dpmsolver"):
        assert runs["fresh"][name]["test"]["runs"] == 60

    score = load("reports/score/metrics.json")
    schedulers = {"ddpm", "ddim", "euler", "dpmsolver"}
    assert set(score) == {"baseline_constant", "clean", "fresh", *schedulers, *(f"{s}_run" for s in schedulers)}
    study = score["fresh"]
    assert set(study) == {"judge", *schedulers} and study["judge"]["seed"] == 1000
    ddim = study["ddim"]
    assert ddim["runs"] == {"train": 20, "calibration": 100, "test": 60} and set(ddim["levels"]) == {"0.9", "0.5", "0.2"}
    assert set(ddim["predictors"]) == set(ddim["early_exit"]) == {
        "proxy cnn_t (x_t)", "clean cnn (x̂₀)", "runs ridge (x_t)", "runs ridge (x̂₀)", "runs cnn_t (x̂₀)"}
    assert ddim["early_exit_rule"]["checks_t_frac"] == [0.9, 0.5] and ddim["best"]["test_split_used"] is False
    for e in ddim["early_exit"].values():
        assert len(e["threshold"]) == 2 and 0 <= e["caught"]["mean"] <= 1 and e["caught"]["lower"] <= e["caught"]["mean"]
        assert 0 <= e["false_stop"]["mean"] <= e["false_stop"]["upper"] and e["test_severe"] + e["test_non_severe"] == 60
    assert set(score["ddim_run"]["cnn_t"]) == set(score["ddim"]["cnn_t"])   # the same scorers on real runs
    assert score["baseline_constant"]["train_mean"]["auroc_severe"] == 0.5
    assert set(score["clean"]) == {"ridge", "mlp", "cnn"}
    constant = score["baseline_constant"]["train_mean"]["mae"]
    # some scorer beats the constant predictor (420 training images suffice for a weak but real signal)
    assert min(m["mae"]["mean"] for m in score["clean"].values()) < constant
    assert max(m["spearman"]["mean"] for m in score["clean"].values()) > 0.1
    assert set(score["euler"]) == {"ridge", "mlp", "rgb ridge", "cnn_t", "mixture", "early_exit"}
    assert set(score["euler"]["cnn_t"]) == {"0.1", "0.5", "0.9", "0.3 heldout"}
    assert set(score["euler"]["ridge"]) == {"0.1", "0.5", "0.9"}
    for level in score["ddim"]["cnn_t"].values():
        assert 0 <= level["mae"]["mean"] <= 5 and level["mae"]["std"] >= 0
    exit_ = score["dpmsolver"]["early_exit"]
    assert exit_["model"] == "cnn_t" and exit_["seeds_with_a_point"] <= 2
    summary = pd.read_csv(project / "reports/score/summary.csv")
    # clean + (schedulers + their sampler runs) × (level models × levels + cross × all levels)
    assert len(summary) == 3 + 8 * (3 * 3 + 2 * 4)
    for png in ("mae", "spearman", "auroc", "scatter", "early_exit", "runs", "fresh", "fresh_exit"):
        assert (project / f"reports/score/{png}.png").stat().st_size > 10_000

    # the saved scorer loads from its directory and scores latents the way a generation loop holds them
    from pipeline.score.nets import load_scorer

    scorer = load_scorer(project / "models/scorers/ddim/cnn_t")
    latents = read_latent_split(project / "data/latents", "artifact_test").latents[:5]
    out = scorer.score(latents, 500)
    assert out.shape == (5,) and ((out >= 0) & (out <= 5)).all()
    assert scorer.config["scheduler"] == "ddim" and scorer.config["input"] == "model_input"


def test_report_is_self_contained(project):
    page = (project / "reports/index.html").read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    # scripts are inline (the Vega bundle, the specs); nothing is fetched: no src / href to a URL
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "<script src" not in page
    assert page.count("data:image/png;base64,") >= 6
    assert len(page.encode()) < 4 * 10**6   # figures in a palette, each thumbnail once (docs/benchmarks.md)


def test_same_params_give_identical_metrics(project):
    """The stages that train or sample (torch, scikit-learn, worker processes, seeded draws) run again
    from scratch — each alone, on the same inputs — and every metrics file stays byte-identical
    (a forced re-run of the whole pipeline says the same at twice the suite time)."""
    before = _metrics(project)
    out = sh(["dvc", "repro", "--force", "--single-item", *DETERMINISM_STAGES], project, timeout=900).stdout
    assert all(f"Running stage '{stage}'" in out for stage in DETERMINISM_STAGES)
    assert _metrics(project) == before


def test_classifier_sweep_reruns_only_downstream_and_diff_shows_it(project):
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-q", "-m", "baseline run"], project)
    out = sh(["dvc", "exp", "run", "-S", "bench.logreg.C=10"], project, timeout=900).stdout
    for stage in ("bench_latent@logreg", "bench", "report"):
        assert f"Running stage '{stage}'" in out, stage
    for upstream in ("prepare", "vae", "encode", "score", "bench_pixels", "bench_latent@knn", "bench_latent@attention"):
        assert f"Running stage '{upstream}'" not in out, upstream
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json"], project).stdout)
    changed = diff["reports/bench/metrics.json"]
    assert any(k.startswith("results.logreg/latents/real.balanced_accuracy") for k in changed)
    assert not any(k.startswith("results.knn/") for k in changed)      # knn does not read logreg.C
    params = json.loads(sh(["dvc", "params", "diff", "--json"], project).stdout)
    change = params["params.yaml"]["bench.logreg.C"]
    assert (change["old"], change["new"]) == (0.01, 10)
    shown = sh(["dvc", "exp", "show", "--md", "--only-changed"], project).stdout
    assert "bench.logreg.C" in shown


def test_one_sweep_of_augmentation_interpolation_and_guidance_reruns_only_their_stages(project):
    """One `dvc exp run` with three -S (each sweep is its own experiment in practice; together they cost
    one run of the suite): each changed key re-runs its stages only, and `dvc metrics diff` shows it."""
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-q", "-m", "after the classifier sweep"], project)
    others = {m: (project / f"reports/fidelity/{m}/metrics.json").read_bytes() for m in ("slerp", "inversion")}
    before = json.loads((project / "reports/interpolate/metrics.json").read_text())
    guided_before = json.loads((project / "reports/guide/metrics.json").read_text())
    out = sh(["dvc", "exp", "run", "-S", "augment.gaussian.sigma=0.5", "-S", "interpolate.strengths=[0.5]",
              "-S", "guide.scales.classifier=[0.3]"], project, timeout=900).stdout
    for stage in ("fidelity", "compare", "interpolate", "guide", "report"):
        assert f"Running stage '{stage}'" in out, stage
    for stage in ("prepare", "vae", "analyze", "encode", "diffusion", "runs", "score", "bench_pixels"):
        assert f"Running stage '{stage}'" not in out, stage
    # augmentation: only the swept method's fidelity changes
    assert json.loads((project / "reports/fidelity/gaussian/metrics.json").read_text())["options"] == {"sigma": 0.5}
    assert {m: (project / f"reports/fidelity/{m}/metrics.json").read_bytes() for m in others} == others
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json"], project).stdout)
    # interpolation strength: the guided paths move toward naive lerp, the unguided methods stay
    interp = diff["reports/interpolate/metrics.json"]
    assert interp["strength"]["old"] in (0.1, 0.3) and interp["strength"]["new"] == 0.5   # the only candidate left
    assert any(k.startswith("methods.guided.") for k in interp)
    assert not any(k.startswith(("methods.lerp.", "methods.noise_slerp.")) for k in interp)
    after = json.loads((project / "reports/interpolate/metrics.json").read_text())
    assert after["methods"]["noise_slerp"] == before["methods"]["noise_slerp"]
    gap = lambda m: abs(m["methods"]["guided"]["copy_ratio"]["mean"] - m["methods"]["lerp"]["copy_ratio"]["mean"])
    assert gap(after) < gap(before)
    # guidance scale: the classifier's operating point moves; unguided sampling and the detector do not
    guide = diff["reports/guide/metrics.json"]
    assert guide["operating.classifier"]["old"] in (0.05, 0.15) and guide["operating.classifier"]["new"] == 0.3
    assert any(k.startswith("kinds.classifier.") for k in guide)
    assert not any(k.startswith(("kinds.unguided.", "ood_detector.")) for k in guide)
    guided_after = json.loads((project / "reports/guide/metrics.json").read_text())
    assert guided_after["kinds"]["unguided"] == guided_before["kinds"]["unguided"]
    assert set(guided_after["validation"]["sweep"]["classifier"]) == {"0.3"}          # the candidates, on validation


def test_report_renders_offline_in_a_headless_browser(project, tmp_path):
    """Chromium with the network cut off: every chart draws, nothing is requested, no console error,
    each headline card shows the number its metrics file holds, tooltips carry decoded images, tables sort."""
    reports = project / "reports"
    with offline_page((reports / "index.html").as_uri()) as (page, log):
        page.wait_for_function(CHARTS_DRAWN, timeout=60_000)
        charts = drawn_charts(page)
        assert len(charts) == 5, charts            # embedding, gallery, benchmark, study gains, scorer curves
        assert all(c["svg"] == 1 and c["marks"] > 10 for c in charts), charts
        assert [h for h in page.locator("h2").all_inner_texts()] == SECTIONS
        cards = page.evaluate("""Array.from(document.querySelectorAll('.card')).map(c => ({
            source: c.dataset.source, key: c.dataset.key, shown: c.querySelector('.value').innerText}))""")
        assert len(cards) == 5
        for card in cards:
            value = resolve(json.loads((reports / card["source"]).read_text()), card["key"])
            decimals = len(card["shown"].split(".")[1])
            assert float(card["shown"]) == pytest.approx(value, abs=0.51 * 10 ** -decimals), card
        # hovering a point of the embedding shows its decoded image
        page.locator(f"#{charts[0]['id']} svg g.mark-symbol path").nth(3).hover(force=True)
        page.wait_for_selector("#vg-tooltip-element.visible img", timeout=10_000)
        # the radio filter redraws with the synthetic points only
        before = page.locator(f"#{charts[0]['id']} svg g.mark-symbol path").count()
        page.locator(f"#{charts[0]['id']} input[type=radio][value=synthetic]").check()
        page.wait_for_function(f"document.querySelectorAll('#{charts[0]['id']} svg g.mark-symbol path').length < {before}")
        # a folded table sorts by the clicked column
        table = page.locator("details table.sortable").first
        page.locator("details").first.evaluate("d => d.open = true")
        table.locator("thead th").nth(1).click()
        column = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
        assert column == sorted(column, key=_sort_key)
        shot = tmp_path / "first-screen.png"
        page.screenshot(path=str(shot))
    assert log.blocked == [] and log.errors == [], log
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert ((pixels.max(-1) - pixels.min(-1)) > 60).mean() > 0.01   # the cards' pictures put colour on screen


def _sort_key(text: str):
    try:
        return (0, float(text.replace("−", "-")), "")
    except ValueError:
        return (1, 0.0, text)


def test_experiments_dashboard_and_dvc_plots_render_offline(project, tmp_path):
    """After the sweeps: the experiments dashboard names every experiment and swept param and draws
    offline; `dvc plots show` and `dvc plots diff` between two experiments draw offline through the
    repository's template, the dvclive learning curves among them."""
    shown = json.loads(sh(["dvc", "exp", "show", "--json", "--all-commits"], project).stdout)
    names = [g["name"] for e in shown for g in (e.get("experiments") or [])]
    assert len(names) >= 2, names   # one experiment from each of the two commits the sweeps ran from
    sh(["python", "-m", "stages.experiments", "--all-commits"], project)
    page = project / "reports/experiments.html"
    text = page.read_text()
    assert all(n in text for n in names)
    for key in ("bench.logreg.C", "augment.gaussian.sigma", "interpolate.strengths", "guide.scales.classifier"):
        assert key in text, key
    with offline_page(page.as_uri()) as (view, log):
        view.wait_for_function(CHARTS_DRAWN, timeout=60_000)
        charts = drawn_charts(view)
        assert charts and all(c["svg"] == 1 and c["marks"] > 5 for c in charts), charts
        # parallel coordinates: one line per experiment over the swept params and headline metrics
        parallel = next(c for c in charts if c["id"] == "parallel")
        assert view.locator("#parallel svg g.mark-line.role-mark path").count() >= len(names), parallel
        assert view.locator("table.sortable").count() >= 3
    assert log.blocked == [] and log.errors == [], log

    curves = sorted((project / "reports").glob("*/live/plots/metrics/**/*.tsv"))
    assert {p.relative_to(project / "reports").parts[0] for p in curves} >= {"vae", "diffusion", "guide", "score",
                                                                              "bench_pixels"}
    assert (project / "reports/bench_latent/attention/live/plots/metrics/attention").is_dir()
    first = pd.read_csv(curves[0], sep="\t")
    assert list(first.columns[:1]) == ["step"] and len(first) > 1
    for args, out in ((["show"], tmp_path / "show"), (["diff", *names[:2]], tmp_path / "diff")):
        sh(["dvc", "plots", *args, "-o", str(out)], project, timeout=300)
        html = (out / "index.html").read_text()
        assert "cdn.jsdelivr" not in html and "reports/vae/live/plots/metrics" in html
        plots = html.count("vegaEmbed(")
        with offline_page((out / "index.html").as_uri()) as (view, log):
            view.wait_for_function(f"document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= {plots}",
                                   timeout=60_000)
        assert log.blocked == [] and log.errors == [], (args, log)


def test_a_dvc_remote_carries_the_models_and_latents_to_another_clone(project, tmp_path):
    """Team workflow: one clone pushes its run to a local-path DVC remote; a fresh git clone pulls it
    and `dvc repro` re-trains nothing (every stage is up to date), with byte-identical models."""
    remote = tmp_path / "remote"
    sh(["dvc", "remote", "add", "-d", "team", str(remote)], project)
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-q", "-m", "the run to share"], project)
    pushed = sh(["dvc", "push"], project, timeout=300).stdout
    assert "pushed" in pushed and any(remote.rglob("*"))
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(project), str(other)], check=True, capture_output=True)
    assert not (other / "models/vae").exists() and not (other / "data/latents").exists()
    sh(["dvc", "pull"], other, timeout=300)
    for path in ("models/vae/diffusion_pytorch_model.safetensors", "data/latents/train-00000.parquet",
                 "models/unet/unet/diffusion_pytorch_model.safetensors"):
        assert (other / path).read_bytes() == (project / path).read_bytes(), path
    out = sh(["dvc", "repro"], other, timeout=300).stdout
    assert "Running stage" not in out, out
    assert sh(["dvc", "status", "--json"], other).stdout.strip() in ("{}", "")


# -- interruptions and concurrency (issue 17, item 4) ----------------------------------------------
# each long stage is SIGKILLed mid-work: the stage process alone, or (encode) dvc with it, as a CI
# timeout or the OOM killer would (benchmarks/faults.py prints the same as a table)

def test_sigkill_mid_stage_leaves_no_partial_output_and_repro_recovers(project):
    for stage, mode in KILLED.items():
        o = kill_mid_stage(project, stage, mode, checkout=stage == "vae")
        assert o.dvc_exit != 0 and o.partial == [], o   # nothing partial ever at an output path
        # the previous output back from DVC's cache (checkout, run cache) or the stage re-run
        assert o.recovered in (("checkout",) if stage == "vae" else ("run cache", "re-run")), o
        assert o.identical or o.recovered == "re-run", o
        assert all(out.exists() for out in stage_outs(project, stage)), o
        assert o.left_after_rerun == [], o   # a killed writer's hidden temporary goes with the next run
    assert sh(["dvc", "status", "--json"], project).stdout.strip() in ("{}", "")


def test_a_second_repro_while_one_runs_refuses_clearly(project):
    rc, why, first = second_repro_refused(project)
    assert rc != 0 and "is busy, it is being blocked by" in why, why
    assert first == 0
    assert sh(["dvc", "status", "--json"], project).stdout.strip() in ("{}", "")
