import json

import pytest

from pipeline.io import atomic_dir, atomic_file, write_json


def test_atomic_dir_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("stage died")
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp leftovers


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"x": 1.23456789})
    assert json.loads(path.read_text()) == {"x": 1.234568}
    with pytest.raises(ValueError), atomic_file(path) as fh:
        fh.write("{broken")
        raise ValueError
    assert json.loads(path.read_text()) == {"x": 1.234568}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()   # reaped: its pid runs nothing now
    return proc.pid


def test_what_a_killed_writer_left_is_swept_by_the_next_writer_and_live_ones_are_kept(tmp_path):
    import os

    from pipeline.io import stale_temporaries

    dead, alive = _dead_pid(), os.getppid()
    (tmp_path / f".latents.{dead}-abc123.tmp").mkdir()          # atomic_dir of a killed encode
    (tmp_path / f".latents.{dead}-abc123.tmp" / "train-00000.parquet").write_bytes(b"half")
    (tmp_path / f".metrics.json.{dead}-x9.tmp").write_text("{")  # atomic_file of a killed stage
    (tmp_path / f".vae.old-{dead}-q1.tmp").mkdir()               # killed between its two renames
    (tmp_path / f".other.{alive}-zz.tmp").mkdir()                # a writer still at work
    (tmp_path / ".hidden-by-the-user").write_text("mine")        # not ours
    assert [p.name for p in stale_temporaries(tmp_path)] == sorted(
        [f".latents.{dead}-abc123.tmp", f".metrics.json.{dead}-x9.tmp", f".vae.old-{dead}-q1.tmp"])
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".other.{alive}-zz.tmp", ".hidden-by-the-user", "metrics.json"])
