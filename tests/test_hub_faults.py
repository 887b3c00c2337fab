"""Hub faults through the local test hub: each is retried with backoff, a persistent one ends in a clear
error, and a partial or corrupt download is never returned (nor left in the cache as a complete file)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError
from hubserver import LocalHub

from pipeline.data.hub import ChecksumError, HubFileError, RetryPolicy, hub_file, hub_files, is_transient, with_retries

ROOT = Path(__file__).resolve().parents[1]
REPO = "test-org/faults"
FAST = RetryPolicy(attempts=4, backoff=0.01)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    data = root / "datasets" / REPO
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.bin", "shards/0.bin", "shards/1.bin"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(rng.bytes(300_000))
    with LocalHub(root) as server:
        _point_at(monkeypatch, server.url, tmp_path / "hf")
        server.data = data
        yield server


def _point_at(monkeypatch, url: str, home: Path) -> None:
    """HF_ENDPOINT and HF_HUB_CACHE as huggingface_hub reads them (its constants are set at import)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _gets(hub, name: str) -> int:
    return sum(1 for method, path in hub.requests if method == "GET" and path.endswith(name))


def _blobs_are_whole(home: Path) -> None:
    """Every complete blob in the cache matches the SHA-256 it is named by."""
    for blob in home.rglob("blobs/*"):
        if blob.suffix != ".incomplete" and len(blob.name) == 64:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "drop", "truncate", "corrupt"])
def test_each_fault_once_is_survived_with_the_right_bytes(hub, tmp_path, fault):
    hub.inject(fault, "a.bin")
    path = hub_file(REPO, "a.bin", hint="(hint)", retry=FAST)
    assert path.read_bytes() == (hub.data / "a.bin").read_bytes()
    assert hub.faults_served == 1 and _gets(hub, "a.bin") == 2   # the fault, then the good copy
    _blobs_are_whole(tmp_path / "hf")


@pytest.mark.parametrize("fault, words", [("503", "503"), ("truncate", "Consistency check failed"),
                                          ("corrupt", "does not match the Hub's")])
def test_a_persistent_fault_ends_in_a_clear_error_and_no_partial_file(hub, tmp_path, fault, words):
    hub.inject(fault, "a.bin", times=10)
    with pytest.raises(HubFileError) as err:
        hub_file(REPO, "a.bin", hint="Or set data.path.", retry=RetryPolicy(attempts=3, backoff=0.01))
    message = str(err.value)
    assert "'a.bin' of dataset 'test-org/faults'" in message and "after 3 attempts" in message
    assert words in message and message.endswith("Or set data.path.") and "\n" not in message
    assert hub.faults_served == 3
    _blobs_are_whole(tmp_path / "hf")
    assert not list((tmp_path / "hf").rglob("snapshots/*/a.bin"))   # nothing a later call could take as done

    hub.faults.clear()   # the Hub recovers: the next call downloads the whole file
    assert hub_file(REPO, "a.bin", hint="", retry=FAST).read_bytes() == (hub.data / "a.bin").read_bytes()


def test_a_snapshot_retries_only_what_failed(hub, tmp_path):
    hub.inject("503", "shards/1.bin")
    hub.inject("corrupt", "shards/1.bin")
    files = hub_files(REPO, "shards/*.bin", hint="", retry=FAST)
    assert [f.name for f in files] == ["0.bin", "1.bin"]
    assert all(f.read_bytes() == (hub.data / "shards" / f.name).read_bytes() for f in files)
    assert _gets(hub, "shards/0.bin") == 1 and _gets(hub, "shards/1.bin") == 3
    _blobs_are_whole(tmp_path / "hf")


def test_backoff_doubles_and_permanent_errors_are_not_retried(hub):
    waits = []
    calls = iter([ChecksumError("x"), ChecksumError("y"), "done"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert with_retries(flaky, "f", RetryPolicy(attempts=3, backoff=0.5), "", sleep=waits.append) == "done"
    assert waits == [0.5, 1.0]
    assert RetryPolicy(backoff=1, max_wait=3).wait(5) == 3

    with pytest.raises(HubFileError, match="does not exist on"):   # a missing file: one request, no wait
        hub_file(REPO, "missing.bin", hint="", retry=RetryPolicy(attempts=3, backoff=10))
    assert not is_transient(ValueError("bad"))
    # unreachable: huggingface_hub already retried the request five times with backoff
    assert not is_transient(LocalEntryNotFoundError("no connection"))
    with pytest.raises(HubFileError, match="LATENT_LAB_HUB_ATTEMPTS='many'"):
        RetryPolicy.from_env({"LATENT_LAB_HUB_ATTEMPTS": "many"})
    assert RetryPolicy.from_env({"LATENT_LAB_HUB_BACKOFF": "0.25"}) == RetryPolicy(backoff=0.25)


def test_the_prepare_stage_survives_faults_on_every_file(tmp_path):
    """The real stage, through the CLI: a 503 on a DiffusionDB shard, a dropped connection and a corrupt
    copy of the ratings; the images equal a clean run's."""
    from hubdata import diffusiondb_table, image_id, rated_records, ratings_table, write_diffusiondb_repo

    from pipeline.data.store import read_image_split

    rng = np.random.default_rng(0)
    root = tmp_path / "hub"
    ids = [image_id(i) for i in range(60)]
    write_diffusiondb_repo(root, [diffusiondb_table(30, rng), diffusiondb_table(30, rng, start=30)],
                           ratings_table(rated_records(ids, rng)))
    params = tmp_path / "params.yaml"
    import yaml

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["data"].update(source="diffusiondb", label="artifact_bucket", size=16, n_images=40, test_fraction=0.25)
    params.write_text(yaml.safe_dump(base))
    runs = {}
    for name, faults in (("clean", []), ("faulty", [("503", "0000.parquet"), ("drop", "diffusiondb_export"),
                                                   ("corrupt", "diffusiondb_export")])):
        with LocalHub(root) as server:
            for fault, where in faults:
                server.inject(fault, where)
            env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / f"hf-{name}"),
                   "LATENT_LAB_HUB_BACKOFF": "0.01"}
            out = tmp_path / name
            proc = subprocess.run([sys.executable, "-m", "stages.prepare", "--params", str(params),
                                   "--out", str(out / "images"), "--reports", str(out / "reports")],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr[-2000:]
            assert server.faults_served == len(faults)
        runs[name] = read_image_split(out / "images", "train")
    assert np.array_equal(runs["clean"].images, runs["faulty"].images)
    assert runs["clean"].meta["id"].tolist() == runs["faulty"].meta["id"].tolist()
