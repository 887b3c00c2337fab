"""Data sources: DiffusionDB + AI-Horde ratings (through a local Hub on 127.0.0.1), emoji, digits."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hubdata import diffusiondb_table, image_id, rated_records, ratings_table, write_diffusiondb_repo
from hubserver import LocalHub
from PIL import Image

from pipeline.data import diffusiondb as ddb
from pipeline.data.digits import load_colour_digits
from pipeline.data.emoji import EmojiUnavailable, list_emoji, render_emoji_set
from pipeline.data.imaging import decode_image, resize_center_crop
from pipeline.data.store import read_image_split

ROOT = Path(__file__).resolve().parents[1]


NULLS_PER_20 = 4   # hubdata.rated_records: the null-artifact rows it adds for 20 images (every fifth image)


# -- ratings aggregation ------------------------------------------------------------------------
def _hand_made_ratings() -> pd.DataFrame:
    rows = [
        # image A: u1 twice (the later duplicate says 5), u3 is anonymous (kudos -50)
        ("A", "u1", 1.0, 4, 5), ("A", "u2", 2.0, 6, 5), ("A", "u1", 5.0, 9, 5), ("A", "u3", 5.0, 1, -50),
        ("A", "u4", 3.0, 8, 5),
        # image B: three rows, but one is a duplicate and one anonymous → 1 rating left
        ("B", "u1", 4.0, 2, 5), ("B", "u1", 0.0, 2, 5), ("B", "u2", 4.0, 3, -50),
        # image C: three users, one without an artifact rating
        ("C", "u1", 4.0, 7, 5), ("C", "u2", None, 7, 5), ("C", "u3", 5.0, 9, 5),
        # image D: four clean ratings
        ("D", "u1", 0.0, 10, 5), ("D", "u2", 1.0, 9, 5), ("D", "u3", 1.0, 8, 5), ("D", "u4", 4.0, 1, 5),
    ]
    frame = pd.DataFrame(rows, columns=["id", "user_id", "artifacts", "rating", "kudos"])
    return frame.assign(created_at=pd.date_range("2023-01-01", periods=len(frame), freq="h"))


def test_ratings_are_filtered_before_grouping():
    out = ddb.aggregate_ratings(_hand_made_ratings(), min_ratings=3).set_index("id")
    assert out.index.tolist() == ["A", "D"]          # B: 1 rating left; C: 2 artifact ratings
    # A keeps u1's first rating (1), u2 (2), u4 (3): by hand median 2, mean 2, ratings 4, 6, 8
    assert out.loc["A", "artifacts_median"] == 2.0 and out.loc["A", "artifacts_mean"] == 2.0
    assert out.loc["A", "artifacts_count"] == 3
    assert out.loc["A", "rating_median"] == 6.0 and out.loc["A", "rating_mean"] == 6.0
    assert out.loc["D", "artifacts_median"] == 1.0 and out.loc["D", "artifacts_mean"] == 1.5
    assert out.loc["D", "rating_median"] == 8.5 and out.loc["D", "rating_count"] == 4
    # The public anchors' bug (filters computed, then the unfiltered frame grouped) gives A median 3.
    assert _hand_made_ratings().groupby("id")["artifacts"].median()["A"] == 3.0
    # anonymous raters (kudos -50) are not spam: keeping them is a param, and they are counted either way
    trusting = ddb.aggregate_ratings(_hand_made_ratings(), min_ratings=3, drop_anonymous=False).set_index("id")
    assert trusting.loc["A", "artifacts_count"] == 4 and trusting.loc["A", "artifacts_median"] == 2.5
    assert ddb.filter_ratings(_hand_made_ratings())[1] == {"rating_rows": 15, "null_artifacts": 1, "duplicate_ratings": 2,
                                                          "anonymous_ratings": 2}
    lenient = ddb.aggregate_ratings(_hand_made_ratings(), min_ratings=2).set_index("id")
    # C's row without an artifact score is not a rating at all (its aesthetic 7 is not counted either)
    assert lenient.loc["C", "artifacts_median"] == 4.5 and lenient.loc["C", "rating_count"] == 2


def test_null_artifact_rows_are_not_ratings_and_never_displace_a_real_one():
    """The real export's early-2023 rows have ``artifacts`` null: an earlier null row of a (user, image)
    pair must not be kept as "the earliest rating" in place of the user's real one."""
    frame = pd.DataFrame([("E", "u1", None, 2, 5), ("E", "u1", 4.0, 3, 5), ("E", "u2", 5.0, 4, 5),
                          ("E", "u3", None, 9, 5), ("E", "u3", None, 9, 5), ("F", "u1", None, 5, 5), ("F", "u2", None, 5, 5)],
                         columns=["id", "user_id", "artifacts", "rating", "kudos"])
    frame = frame.assign(created_at=pd.date_range("2023-01-01", periods=len(frame), freq="h"))
    kept, counts = ddb.filter_ratings(frame)
    assert counts == {"rating_rows": 7, "null_artifacts": 5, "duplicate_ratings": 0, "anonymous_ratings": 0}
    assert kept["artifacts"].notna().all() and sorted(kept["user_id"]) == ["u1", "u2"]
    out = ddb.aggregate_ratings(frame, min_ratings=2).set_index("id")
    assert out.index.tolist() == ["E"]                     # F: no artifact rating at all
    assert out.loc["E", "artifacts_count"] == 2 and out.loc["E", "artifacts_median"] == 4.5   # u1's real 4, u2's 5


def test_ratings_duplicates_keep_the_earliest_rating():
    frame = _hand_made_ratings()
    shuffled = frame.iloc[::-1]   # file order reversed; created_at decides which duplicate stays
    a = ddb.aggregate_ratings(shuffled, 3).set_index("id")
    assert a.loc["A", "artifacts_median"] == 2.0


@pytest.mark.parametrize("batch_rows", [1, 4, 1000])
def test_ratings_read_in_batches_as_codes_aggregate_as_the_whole_frame_does(tmp_path, batch_rows):
    frame = _hand_made_ratings()
    frame.loc[9, "user_id"] = None                       # a rating without a user
    frame = pd.concat([frame, frame.assign(id="Z")], ignore_index=True)   # an image nobody asked for
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "r.parquet", row_group_size=5)
    wanted = ["D", "C", "A", "B", "missing"]
    expect = ddb.aggregate_ratings(frame[frame["id"].isin(wanted)], 2)
    read = ddb.read_ratings(tmp_path / "r.parquet", wanted, batch_rows=batch_rows)
    assert isinstance(read["id"].dtype, pd.CategoricalDtype) and set(read["id"]) == {"A", "B", "C", "D"}
    assert read["user_id"].isna().sum() == 1
    pd.testing.assert_frame_equal(ddb.aggregate_ratings(read, 2), expect)
    every = ddb.read_ratings(tmp_path / "r.parquet", batch_rows=batch_rows)   # no id filter: codes in first-seen order
    pd.testing.assert_frame_equal(ddb.aggregate_ratings(every, 2), ddb.aggregate_ratings(frame, 2))
    assert ddb.read_ratings(tmp_path / "r.parquet", ["nobody"]).empty


def test_missing_rating_column_is_named():
    with pytest.raises(ddb.DataError, match="artifacts"):
        ddb.aggregate_ratings(_hand_made_ratings().drop(columns="artifacts"), 3, "ratings.parquet")


@pytest.mark.parametrize("value,bucket", [(0.0, "artifacts_0-2"), (1.99, "artifacts_0-2"), (2.0, "artifacts_2-4"),
                                          (3.5, "artifacts_2-4"), (4.0, "artifacts_4-5"), (5.0, "artifacts_4-5")])
def test_artifact_buckets_are_half_open(value, bucket):
    frame = pd.DataFrame({"artifacts_median": [value], "rating_median": [5.0], "sampler": ["ddim"]})
    assert ddb.label_names(frame, "artifact_bucket").tolist() == [bucket]


def test_rating_buckets_and_sampler_labels():
    frame = pd.DataFrame({"artifacts_median": [1.0] * 3, "rating_median": [1.0, 4.0, 9.5], "sampler": ["ddim", "plms", "k_lms"]})
    assert ddb.label_names(frame, "rating_bucket").tolist() == ["rating_1-4", "rating_4-7", "rating_7-10"]
    assert ddb.label_names(frame, "sampler").tolist() == ["ddim", "plms", "k_lms"]


# -- images -------------------------------------------------------------------------------------
def test_resize_keeps_aspect_and_crops_the_centre():
    img = np.zeros((40, 80, 3), np.uint8)   # h 40, w 80: red | green (middle half) | blue
    img[:, :20] = (255, 0, 0)
    img[:, 20:60] = (0, 255, 0)
    img[:, 60:] = (0, 0, 255)
    out = resize_center_crop(Image.fromarray(img), 20)
    assert out.shape == (20, 20, 3)
    assert (out[..., 1] > 200).all() and (out[..., 0] < 30).all() and (out[..., 2] < 30).all()


def test_undecodable_bytes_give_none():
    assert decode_image(b"\x89PNG\r\n\x1a\ngarbage", 16) is None
    assert decode_image(b"", 16) is None


def test_candidates_drop_blurred_and_unrated_images_and_sampling_is_seeded(tmp_path):
    rng = np.random.default_rng(0)
    table = diffusiondb_table(24, rng, blurred={0, 1}, corrupt={7})
    pq.write_table(table, tmp_path / "0000.parquet")
    ids = [image_id(i) for i in range(24)]
    records = rated_records(ids[:20], rng) + [{"id": ids[21], "user_id": "u0", "artifacts": 3.0}]  # 21: one rating only
    records += [{"id": ids[5], "user_id": "u1", "artifacts": 0.0},                # u1 again on 5: a later duplicate
                {"id": ids[6], "user_id": "anon", "artifacts": 5.0, "kudos": -50},  # an anonymous rater on 6 ...
                {"id": ids[0], "user_id": "anon", "artifacts": 5.0, "kudos": -50}]  # ... and on a blurred image
    pq.write_table(ratings_table(records), tmp_path / "ratings.parquet")
    files = ddb.parquet_files(tmp_path / "0000.parquet")
    cand = ddb.find_candidates(files, tmp_path / "ratings.parquet", min_ratings=3)
    # the ratings of the 22 unblurred images: 18 × 4 + 1 + the duplicate + one anonymous (the blurred image's is not read)
    assert cand.counts == {"rows": 24, "blurred": 2, "unrated": 4, "rated": 18, "rating_rows": 75 + NULLS_PER_20,
                           "null_artifacts": NULLS_PER_20, "duplicate_ratings": 1, "anonymous_ratings": 1, "anonymous_dropped": True}
    kept = ddb.find_candidates(files, tmp_path / "ratings.parquet", min_ratings=3, drop_anonymous=False)
    assert kept.counts == {**cand.counts, "anonymous_dropped": False}
    count = lambda c, i: int(c.frame.set_index("id").loc[ids[i], "artifacts_count"])
    assert (count(cand, 6), count(kept, 6)) == (4, 5) and count(cand, 5) == count(kept, 5) == 4
    assert set(cand.frame["id"]) == set(ids[2:20])
    assert cand.frame["artifacts_count"].min() >= 3

    a_img, a, a_failed = ddb.sample_images(files, cand.frame, 10, 16, np.random.default_rng(1))
    b_img, b, _ = ddb.sample_images(files, cand.frame, 10, 16, np.random.default_rng(1))
    c_img, c, _ = ddb.sample_images(files, cand.frame, 10, 16, np.random.default_rng(2))
    assert a_img.shape == (10, 16, 16, 3) and a["id"].tolist() == b["id"].tolist() and np.array_equal(a_img, b_img)
    assert a["id"].tolist() != c["id"].tolist()
    every, every_meta, failed = ddb.sample_images(files, cand.frame, 100, 16, np.random.default_rng(1))
    assert failed == 1 and len(every_meta) == 17 and ids[7] not in set(every_meta["id"])


# -- the prepare stage against a local Hub --------------------------------------------------------
def _params(tmp_path: Path, **data) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(data)
    path = tmp_path / f"params-{len(list(tmp_path.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


DDB = dict(source="diffusiondb", label="artifact_bucket", size=16, n_images=40, test_fraction=0.25)


def _prepare(params: Path, out: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.prepare", "--params", str(params), "--out", str(out / "images"),
                           "--reports", str(out / "reports")], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    rng = np.random.default_rng(0)
    tables = [diffusiondb_table(30, rng, blurred={3}, corrupt={5}), diffusiondb_table(30, rng, start=30)]
    ids = [image_id(i) for i in range(60)]
    write_diffusiondb_repo(root, tables, ratings_table(rated_records(ids[:56], rng)))
    return root


def test_prepare_downloads_diffusiondb_through_the_hub_api_then_works_offline(hub_root, tmp_path):
    params = _params(tmp_path, **DDB)
    home = {"HF_HOME": str(tmp_path / "hf")}
    with LocalHub(hub_root) as hub:
        proc = _prepare(params, tmp_path / "online", {**home, "HF_ENDPOINT": hub.url})
        assert proc.returncode == 0, proc.stderr[-2000:]
        paths = [p for _, p in hub.requests]
    assert any("/api/datasets/poloclub/diffusiondb/revision/refs%2Fconvert%2Fparquet" in p for p in paths)
    assert any(p.endswith("2m_random_1k/train/0001.parquet") for p in paths)
    assert any(p.endswith("/resolve/main/diffusiondb_export.parquet") for p in paths)

    metrics = json.loads((tmp_path / "online/reports/metrics.json").read_text())
    q = metrics["quality"]
    # the revisions asked for and the commits the Hub served are recorded, so the run can be pinned
    sha1 = lambda text: hashlib.sha1(text.encode()).hexdigest()   # tests/hubserver.py: commit = sha1(repo id)
    assert q["revisions"] == {
        "diffusiondb": {"requested": "refs/convert/parquet", "commit": sha1("poloclub/diffusiondb"), "local": None},
        "ratings": {"requested": "main", "commit": sha1("Haidra-Org/AI-Horde-Ratings"), "local": None}}
    # 60 rows: 1 blurred, 4 without ratings (ids 56..59) → 55 candidates; 40 sampled, ≤ 1 undecodable
    assert (q["rows"], q["blurred"], q["unrated"], q["rated"]) == (60, 1, 4, 55)
    assert q["used"] == 40 and q["decode_failed"] == q["decode_attempted"] - 40 <= 1
    splits = metrics["splits"]
    assert splits["train"]["n"] + splits["test"]["n"] == 40 - q["dropped_images"]
    train = read_image_split(tmp_path / "online/images", "train")
    art = read_image_split(tmp_path / "online/images", "artifact_train")
    assert train.images.shape[1:] == (16, 16, 3) and set(train.class_names) <= {"artifacts_0-2", "artifacts_2-4", "artifacts_4-5"}
    assert train.meta["id"].tolist() == art.meta["id"].tolist()
    labels = pd.read_csv(tmp_path / "online/reports/labels.csv").set_index("id")
    sev = art.meta.set_index("id")["severity"]
    assert np.allclose(sev.to_numpy(), labels.loc[sev.index, "artifacts_median"].to_numpy())
    assert (labels["artifacts_count"] >= 3).all()

    # the report's data section states the data-quality counts
    from pipeline.report.sections import data_section

    (tmp_path / "r").mkdir()
    (tmp_path / "r/prepare").symlink_to(tmp_path / "online/reports")
    section = data_section(tmp_path / "r")
    assert "Source: diffusiondb (label: artifact_bucket)" in section.summary
    assert "Of 60 DiffusionDB rows, 1 were blurred" in section.summary
    assert q["anonymous_dropped"] is True and q["rating_rows"] >= 4 * 55 and q["anonymous_ratings"] == 0
    assert q["null_artifacts"] == 11   # hubdata.rated_records: every fifth of the 56 rated images
    assert (f"Of their {q['rating_rows']} rating rows, 11 had no artifact score (not counted), 0 repeated a user's "
            "earlier rating and 0 came from anonymous raters "
            "(kudos −50), dropped (data.drop_anonymous)") in section.summary

    # HF_HUB_OFFLINE with a warm cache: the same data, no server at all
    offline = _prepare(params, tmp_path / "offline", {**home, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr[-2000:]
    again = read_image_split(tmp_path / "offline/images", "train")
    assert again.meta["id"].tolist() == train.meta["id"].tolist() and np.array_equal(again.images, train.images)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_prepare_without_hub_or_cache_names_the_file_and_data_path(tmp_path, env):
    proc = _prepare(_params(tmp_path, **DDB), tmp_path, {"HF_HOME": str(tmp_path / "empty"), **env})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "2m_random_1k/train/*.parquet" in proc.stderr and "data.path" in proc.stderr
    assert not (tmp_path / "images").exists()


def test_prepare_reads_a_local_copy_with_the_same_result(hub_root, tmp_path):
    local = hub_root / "datasets"
    params = _params(tmp_path, **DDB, path=str(local / "poloclub/diffusiondb/2m_random_1k"),
                     ratings_path=str(local / "Haidra-Org/AI-Horde-Ratings/diffusiondb_export.parquet"))
    proc = _prepare(params, tmp_path, {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "empty")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "reports/metrics.json").read_text())["quality"]["rated"] == 55


def test_prepare_names_a_missing_column_and_too_many_bad_images(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "db").mkdir()
    pq.write_table(diffusiondb_table(30, rng, corrupt=set(range(10))), tmp_path / "db/0000.parquet")
    ids = [image_id(i) for i in range(30)]
    pq.write_table(ratings_table(rated_records(ids, rng)), tmp_path / "ratings.parquet")
    pq.write_table(ratings_table(rated_records(ids, rng)).drop_columns(["kudos"]), tmp_path / "bad_ratings.parquet")

    proc = _prepare(_params(tmp_path, **{**DDB, "n_images": 20}, path=str(tmp_path / "db"),
                            ratings_path=str(tmp_path / "bad_ratings.parquet")), tmp_path / "a", {})
    assert proc.returncode == 2 and "kudos" in proc.stderr and "bad_ratings.parquet" in proc.stderr

    proc = _prepare(_params(tmp_path, **{**DDB, "n_images": 20}, path=str(tmp_path / "db"),
                            ratings_path=str(tmp_path / "ratings.parquet")), tmp_path / "b", {})
    assert proc.returncode == 2 and "data.max_bad_fraction" in proc.stderr and "could not be decoded" in proc.stderr
    assert not (tmp_path / "b/images").exists()


# -- offline real datasets ----------------------------------------------------------------------
def test_emoji_render_nine_uneven_groups():
    images, labels, groups, names, skipped = render_emoji_set(24)
    assert len(groups) == 9 and "Component" not in groups
    counts = np.bincount(labels)
    assert images.shape == (len(labels), 24, 24, 3) and len(labels) >= 1800 and skipped == 0
    assert counts.max() / counts.min() > 3          # imbalanced: People & Body vs Activities
    assert (images.reshape(len(images), -1).std(axis=1) > 5).all()   # every tile has a drawn glyph
    assert not any(chr(0x1F3FB) in e.text for e in list_emoji())


def test_emoji_without_the_packages_says_what_to_install(tmp_path):
    with pytest.raises(EmojiUnavailable, match="fonts-noto-color-emoji unicode-data"):
        render_emoji_set(24, font_path=tmp_path / "missing.ttf")
    with pytest.raises(EmojiUnavailable, match="unicode-data"):
        list_emoji(tmp_path / "emoji-test.txt")


def test_digits_are_colour_and_seeded():
    a, labels, names = load_colour_digits(24, np.random.default_rng(0))
    b, _, _ = load_colour_digits(24, np.random.default_rng(0))
    assert a.shape == (1797, 24, 24, 3) and names == [str(d) for d in range(10)] and np.array_equal(a, b)
    assert np.bincount(labels).min() > 170
    spread = a.reshape(len(a), -1, 3).std(axis=1).mean(axis=1)
    assert (spread > 10).all()        # foreground and background differ in every image


def test_ids_come_from_image_name_or_the_image_path(tmp_path):
    import pyarrow as pa

    rng = np.random.default_rng(5)
    table = diffusiondb_table(6, rng)
    flat = table.set_column(0, "image", table.column("image").combine_chunks().field("bytes"))
    named = flat.append_column("image_name", pa.array([f"sub/{image_id(i)}.webp" for i in range(6)]))
    pq.write_table(named, tmp_path / "named.parquet")
    pq.write_table(flat, tmp_path / "flat.parquet")
    pq.write_table(ratings_table(rated_records([image_id(i) for i in range(6)], rng)), tmp_path / "r.parquet")
    cand = ddb.find_candidates([tmp_path / "named.parquet"], tmp_path / "r.parquet", 3)
    assert sorted(cand.frame["id"]) == [image_id(i) for i in range(6)]
    images, meta, failed = ddb.sample_images([tmp_path / "named.parquet"], cand.frame, 3, 8, np.random.default_rng(0))
    assert images.shape == (3, 8, 8, 3) and failed == 0
    with pytest.raises(ddb.DataError, match="no file name"):
        ddb.find_candidates([tmp_path / "flat.parquet"], tmp_path / "r.parquet", 3)


def test_streamed_sample_through_the_spool_equals_the_sample_in_memory(tmp_path):
    """Small row groups (each read alone) and a spool that spills: the same images in the same order."""
    from pipeline.data.spool import OrderedSpool
    from pipeline.data.store import png_bytes

    rng = np.random.default_rng(0)
    for k in range(2):
        pq.write_table(diffusiondb_table(15, rng, corrupt={4}, start=15 * k), tmp_path / f"{k:04d}.parquet",
                       row_group_size=4)
    ids = [image_id(i) for i in range(30)]
    pq.write_table(ratings_table(rated_records(ids, rng)), tmp_path / "ratings.parquet")
    files = [tmp_path / "0000.parquet", tmp_path / "0001.parquet"]
    cand = ddb.find_candidates(files, tmp_path / "ratings.parquet", min_ratings=3)
    images, frame, failed = ddb.sample_images(files, cand.frame, 20, 16, np.random.default_rng(5))
    spool = OrderedSpool(tmp_path / "spool", bucket_rows=3, max_bytes=2000)
    streamed, streamed_failed = ddb.decode_sample(files, cand.frame, 20, 16, np.random.default_rng(5),
                                                  lambda position, image: spool.add(position, png_bytes(image)))
    assert failed == streamed_failed and len(frame) == 20
    pd.testing.assert_frame_equal(streamed, frame)
    # the seeded order, independently: a permutation of the candidates, the undecodable rows skipped
    order = cand.frame["id"].to_numpy()[np.random.default_rng(5).permutation(len(cand.frame))]
    corrupt = {image_id(4), image_id(19)}
    usable = [i for i in order if i not in corrupt]
    attempted = list(order[:list(order).index(usable[19]) + 1])
    assert frame["id"].tolist() == usable[:20] and failed == sum(i in corrupt for i in attempted) >= 1
    assert [blob for _, blob in spool] == [png_bytes(img) for img in images]


def test_prepare_downloads_the_pinned_revisions(hub_root, tmp_path):
    """data.revision and data.ratings_revision reach every download (a commit hash pins what the Hub serves)."""
    pin_images, pin_ratings = "a" * 40, "b" * 40
    params = _params(tmp_path, **DDB, revision=pin_images, ratings_revision=pin_ratings)
    with LocalHub(hub_root) as hub:
        proc = _prepare(params, tmp_path / "pinned", {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url})
        assert proc.returncode == 0, proc.stderr[-2000:]
        paths = [p for _, p in hub.requests]
    assert any(f"/diffusiondb/resolve/{pin_images}/2m_random_1k/train/0001.parquet" in p for p in paths)
    assert any(p.endswith(f"/resolve/{pin_ratings}/diffusiondb_export.parquet") for p in paths)
    assert not any("refs%2Fconvert%2Fparquet" in p or "/resolve/main/" in p for p in paths)
    q = json.loads((tmp_path / "pinned/reports/metrics.json").read_text())["quality"]
    assert q["revisions"]["diffusiondb"] == {"requested": pin_images, "commit": pin_images, "local": None}
    assert q["revisions"]["ratings"] == {"requested": pin_ratings, "commit": pin_ratings, "local": None}
