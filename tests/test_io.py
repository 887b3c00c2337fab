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
