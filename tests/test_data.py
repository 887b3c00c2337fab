import numpy as np
import pandas as pd
import pytest

from pipeline.data.artifacts import ARTIFACT_KINDS, apply_artifact
from pipeline.data.shapes import CLASS_NAMES, class_counts, generate_shapes
from pipeline.data.store import image_split_facts, iter_image_batches, read_image_meta, read_image_split, write_image_split


def test_class_counts_follow_weights_and_sum():
    counts = class_counts(170, [8, 4, 2, 1, 1, 1])
    assert counts.tolist() == [80, 40, 20, 10, 10, 10]
    assert class_counts(7, [1, 1, 1]).sum() == 7


def test_generate_shapes_is_seeded_and_labelled():
    a, la = generate_shapes(30, [2, 1], 32, np.random.default_rng(1))
    b, lb = generate_shapes(30, [2, 1], 32, np.random.default_rng(1))
    c, _ = generate_shapes(30, [2, 1], 32, np.random.default_rng(2))
    assert a.shape == (30, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert np.bincount(la).tolist() == [20, 10]


def test_generate_shapes_rejects_too_many_classes():
    with pytest.raises(ValueError, match="class_weights"):
        generate_shapes(10, [1] * (len(CLASS_NAMES) + 1), 32, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_artifact_damage_grows_with_severity(kind):
    rng = np.random.default_rng(0)
    images, _ = generate_shapes(12, [1, 1, 1], 32, rng)
    damage = []
    for severity in range(6):
        errs = [np.abs(apply_artifact(img, kind, severity, rng).astype(float) - img).mean() for img in images]
        damage.append(np.mean(errs))
    assert damage[0] == 0.0
    assert damage[5] > damage[1] > 0.0
    assert damage[5] >= damage[3]


def test_artifact_rejects_unknown_kind_and_severity():
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown artifact kind"):
        apply_artifact(img, "smudge", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="severity"):
        apply_artifact(img, "blur", 6, np.random.default_rng(0))


def _meta(n):
    return pd.DataFrame({"id": [f"x{i}" for i in range(n)], "label": np.arange(n) % 2, "label_name": "a",
                         "split": "train", "artifact_kind": "none", "severity": 0})


def test_image_store_roundtrip_in_shards(tmp_path):
    images, _ = generate_shapes(5, [1, 1], 16, np.random.default_rng(0))
    paths = write_image_split(tmp_path, "train", images, _meta(5), ["a", "b"], rows_per_shard=2)
    assert [p.name for p in paths] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    back = read_image_split(tmp_path, "train")
    assert np.array_equal(back.images, images)  # PNG is lossless
    assert back.class_names == ["a", "b"] and back.meta["id"].tolist() == [f"x{i}" for i in range(5)]


def test_image_store_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        read_image_split(tmp_path, "test")
    with pytest.raises(ValueError, match="severity"):
        write_image_split(tmp_path, "train", np.zeros((1, 8, 8, 3), np.uint8), _meta(1).drop(columns="severity"), ["a"])


def test_image_batches_stream_across_shards_and_equal_the_whole_split(tmp_path):
    images, _ = generate_shapes(11, [1, 1], 16, np.random.default_rng(1))
    write_image_split(tmp_path, "train", images, _meta(11), ["a", "b"], rows_per_shard=4)   # shards of 4, 4, 3
    assert image_split_facts(tmp_path, "train") == (["a", "b"], (16, 16), 11)
    whole = read_image_split(tmp_path, "train")
    batches = list(iter_image_batches(tmp_path, "train", 3))                                # batches straddle shards
    assert [len(b) for b in batches] == [3, 3, 3, 2]
    assert np.array_equal(np.concatenate([b.images for b in batches]), whole.images)
    pd.testing.assert_frame_equal(pd.concat([b.meta for b in batches], ignore_index=True), whole.meta)
    pd.testing.assert_frame_equal(read_image_meta(tmp_path, "train"), whole.meta)
    assert batches[1].meta.index.tolist() == [0, 1, 2] and batches[0].class_names == ["a", "b"]
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_image_batches(tmp_path, "train", 0))
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        image_split_facts(tmp_path, "test")
