import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.io import InputError
from pipeline.data.artifacts import ARTIFACT_KINDS, apply_artifact
from pipeline.data.shapes import CLASS_NAMES, class_counts, generate_shapes
from pipeline.data.sources import shapes_sets
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


def test_shapes_are_held_as_the_png_bytes_of_the_images_generate_shapes_renders():
    """The shapes source keeps each image as PNG bytes as it renders (a fraction of the pixels' memory at
    SD sizes): the very images of generate_shapes with the same draws, and the artifact set after them."""
    from stages.config import load_params

    data = load_params(Path(__file__).resolve().parents[1] / "params.yaml").data.model_copy(
        update={"n_images": 24, "n_artifact": 24, "class_weights": [1, 1], "size": 64})
    sets = shapes_sets(data, 0, np.random.default_rng(3))
    kw = {"texture_prob": data.texture_prob, "distractor_prob": data.distractor_prob,
          "scale_range": tuple(data.scale_range), "position_jitter": data.position_jitter,
          "min_contrast": data.min_contrast}
    images, labels = generate_shapes(24, [1, 1], 64, np.random.default_rng(3), **kw)
    for split in ("train", "test"):
        part = sets.splits[split]
        assert part.images is None and len(part.pngs) == len(part.meta)
        rows = [int(i.split("-")[1]) for i in part.meta["id"]]
        decoded = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in part.pngs])
        assert np.array_equal(decoded, images[rows]) and part.meta["label"].tolist() == labels[rows].tolist()
    held = sum(len(b) for p in sets.splits.values() for b in p.pngs)
    assert held < (24 + 24) * 64 * 64 * 3 / 2   # compressed: under half the pixels even at 64 px
    assert sorted(sets.splits["artifact_train"].meta["severity"].tolist() + sets.splits["artifact_test"].meta["severity"].tolist()) == \
        sorted(list(range(6)) * 4)


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
    with pytest.raises(InputError, match="split 'test'"):
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
    with pytest.raises(InputError, match="split 'test'"):
        image_split_facts(tmp_path, "test")


def test_an_image_split_written_in_pieces_holds_the_same_rows_as_the_split_written_at_once(tmp_path):
    import pyarrow.parquet as pq

    from pipeline.data.store import ImageSplitWriter, png_bytes

    images, _ = generate_shapes(11, [1, 1], 16, np.random.default_rng(3))
    whole = write_image_split(tmp_path / "whole", "train", images, _meta(11), ["a", "b"], rows_per_shard=4)
    with ImageSplitWriter(tmp_path / "parts", "train", ["a", "b"], (16, 16), rows_per_shard=4) as writer:
        for lo, hi in [(0, 1), (1, 6), (6, 11)]:                                  # pieces that straddle shards
            writer.append([png_bytes(img) for img in images[lo:hi]], _meta(11).iloc[lo:hi])
    assert [p.name for p in writer.paths] == [p.name for p in whole]
    assert [pq.read_metadata(p).num_rows for p in writer.paths] == [4, 4, 3]
    assert pq.read_metadata(writer.paths[0]).num_row_groups == 2                 # written as the rows came
    a, b = read_image_split(tmp_path / "whole", "train"), read_image_split(tmp_path / "parts", "train")
    assert np.array_equal(a.images, b.images) and a.class_names == b.class_names
    pd.testing.assert_frame_equal(a.meta, b.meta)
    assert pq.read_schema(writer.paths[0]).equals(pq.read_schema(whole[0]), check_metadata=True)
    with pytest.raises(ValueError, match="2 images but 1 metadata rows"):
        writer.append([b"", b""], _meta(1))
    empty = ImageSplitWriter(tmp_path / "empty", "test", ["a"], (16, 16)).close()
    assert [p.name for p in empty] == ["test-00000.parquet"] and len(read_image_meta(tmp_path / "empty", "test")) == 0


def test_the_spool_hands_rows_back_in_key_order_across_buckets_and_spills(tmp_path):
    from pipeline.data.spool import OrderedSpool

    keys = np.random.default_rng(0).permutation(200)
    spool = OrderedSpool(tmp_path / "spool", bucket_rows=16, max_bytes=300)      # many buckets, a spill every ~30 rows
    for k in keys:
        spool.add(int(k), f"value-{k}".encode())
    assert len(list((tmp_path / "spool").glob("*.parquet"))) > 13                 # spilled, not held
    assert list(spool) == [(k, f"value-{k}".encode()) for k in range(200)]
    spool.add(5, b"again")
    with pytest.raises(ValueError, match="key 5 was added twice"):
        list(spool)
    with pytest.raises(ValueError, match="≥ 0"):
        spool.add(-1, b"")
