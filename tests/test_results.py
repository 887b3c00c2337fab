"""The README's results are the committed run's: generated from the files dvc.lock records, never by hand."""

import json
from pathlib import Path

import pytest
import yaml

from pipeline.report.results import (
    MANIFEST,
    SOURCES,
    file_md5,
    folder_hash,
    folder_manifest,
    generated_block,
    lock_hashes,
    results_markdown,
    splice,
)

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "docs/results"
FIX = ("run `dvc repro`, then `python -m stages.results`, and commit README.md, docs/results.md, docs/results and "
       "dvc.lock together")


def test_readme_and_results_page_are_rendered_from_the_snapshot():
    readme, page = (ROOT / "README.md").read_text(), (ROOT / "docs/results.md").read_text()
    assert generated_block(readme) == results_markdown(SNAPSHOT, paragraphs=False), \
        f"README results are stale or edited by hand: {FIX}"
    assert generated_block(page) == results_markdown(SNAPSHOT), f"docs/results.md is stale or edited by hand: {FIX}"
    assert "**Classifier benchmark.**" in page and "**Classifier benchmark.**" not in readme


def test_snapshot_is_the_run_that_dvc_lock_records():
    manifests = json.loads((SNAPSHOT / MANIFEST).read_text())
    locked = lock_hashes(yaml.safe_load((ROOT / "dvc.lock").read_text()))
    assert set(manifests) == set(SOURCES)
    for stage, files in SOURCES.items():
        assert folder_hash(manifests[stage]) == locked[stage], f"reports/{stage} differs from dvc.lock's: {FIX}"
        for name in files:
            assert file_md5(SNAPSHOT / stage / name) == manifests[stage][name], f"docs/results/{stage}/{name}: {FIX}"


def test_folder_hash_is_dvcs(tmp_path):
    """The .dir hash DVC 3 writes to dvc.lock for a folder output, recomputed from the folder's files."""
    import subprocess

    work = tmp_path / "repo"
    (work / "out/sub").mkdir(parents=True)
    (work / "out/a.json").write_text('{"x": 1}\n')
    (work / "out/sub/b.csv").write_text("a,b\n1,2\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "add", "-q", "out"]):
        subprocess.run(cmd, cwd=work, check=True, capture_output=True, env={**__import__("os").environ,
                                                                             "DVC_NO_ANALYTICS": "1"})
    recorded = yaml.safe_load((work / "out.dvc").read_text())["outs"][0]["md5"]
    assert folder_hash(folder_manifest(work / "out")) == recorded


def test_splice_replaces_only_the_block_and_needs_the_markers():
    from pipeline.report.results import END, START

    text = f"intro\n{START}\nold\n{END}\noutro\n"
    new = splice(text, "new\n")
    assert new == f"intro\n{START}\nnew\n{END}\noutro\n" and generated_block(new) == "new\n"
    with pytest.raises(ValueError, match="markers"):
        splice("no markers", "x")


def test_readme_study_block_is_rendered_from_its_snapshot():
    """The cross-dataset study's answer in the README is what its copied table and sentences say, and
    the README quotes no study without that copy."""
    from pipeline.study.aggregate import STUDY_END, STUDY_START, study_block

    readme = (ROOT / "README.md").read_text()
    if not (SNAPSHOT / "study_all").is_dir():
        assert STUDY_START not in readme, "the README quotes a study but docs/results/study_all is missing"
        return
    assert STUDY_START in readme and STUDY_END in readme
    assert generated_block(readme, START=STUDY_START, END=STUDY_END) == study_block(SNAPSHOT / "study_all"), (
        "the README's study block is stale or edited by hand: run `python -m stages.study_all`, then "
        "`python -m stages.results --study reports/study_all`")


def test_snapshot_without_a_run_fails_before_touching_the_copy(tmp_path):
    """A fresh clone has no reports/ until `dvc repro` or `dvc pull`: the snapshot names the first missing file
    and leaves the committed copy as it was."""
    from pipeline.report.results import snapshot

    out = tmp_path / "results"
    stage, name = next(iter(SOURCES.items()))[0], next(iter(SOURCES.values()))[0]
    (out / stage).mkdir(parents=True)
    (out / stage / name).write_text("committed")
    with pytest.raises(FileNotFoundError, match=f"{stage}/{name}"):
        snapshot(tmp_path / "reports", out)
    assert (out / stage / name).read_text() == "committed"
