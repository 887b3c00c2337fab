"""Peak memory of the encode and prepare stages at N and 10·N images: does it stay flat as the data grows?

encode: writes an image store of N procedural shape images (four splits: half train, a quarter
test, an eighth each artifact split, ``--size`` px) and a randomly initialised VAE of the default
configuration (encoding costs the same whatever the weights) and runs the real stage
``python -m stages.encode`` on them. prepare: writes N rated DiffusionDB generations as local
parquet files in the Hub's schema (files of 1 000 rows in row groups of 100, as the Hub's
conversion; the ratings export beside them) and runs ``python -m stages.prepare`` with
``data.source: diffusiondb`` on them, sampling all N at ``--prepare-size`` px. Each stage runs as
a child process; its peak resident memory comes from the kernel (``wait4``'s ``ru_maxrss``). Then
the same at ``--factor`` × N. Prints both, their ratio (target ≤ 1.2) and the wall times.
``--repo DIR`` runs another checkout's stages (say, a commit before streaming) on the same data.
Run: `python benchmarks/encode_memory.py [--stages encode prepare] [--images 4000] [--factor 10] [--repo DIR]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

SHARES = {"train": 0.5, "test": 0.25, "artifact_train": 0.125, "artifact_test": 0.125}
CHUNK = 2000   # images generated and written per shard, so this script's own memory stays small too


def write_store(directory: Path, n: int, size: int) -> None:
    """``n`` shape images over the four splits, written shard by shard."""
    import numpy as np
    import pandas as pd

    from pipeline.data.shapes import CLASS_NAMES, generate_shapes
    from pipeline.data.store import write_image_split

    rng = np.random.default_rng(0)
    names = list(CLASS_NAMES[:6])
    for split, share in SHARES.items():
        total, shard = int(n * share), 0
        for start in range(0, total, CHUNK):
            m = min(CHUNK, total - start)
            images, labels = generate_shapes(m, [1.0] * len(names), size, rng)
            meta = pd.DataFrame({"id": [f"{split}-{start + i}" for i in range(m)], "label": labels,
                                 "label_name": [names[k] for k in labels], "split": split,
                                 "artifact_kind": "none", "severity": 0.0})
            tmp = directory / f".{split}-{shard}"
            write_image_split(tmp, split, images, meta, names, rows_per_shard=CHUNK)
            (tmp / f"{split}-00000.parquet").rename(directory / f"{split}-{shard:05d}.parquet")
            tmp.rmdir()
            shard += 1


def write_vae(directory: Path, size: int) -> None:
    import yaml

    from pipeline.latents.vae import build_vae

    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())["vae"]
    vae = build_vae(block_out_channels=cfg["block_out_channels"], layers_per_block=cfg["layers_per_block"],
                    norm_num_groups=cfg["norm_num_groups"], sample_size=size)
    vae.save_pretrained(directory, safe_serialization=True)


def write_diffusiondb(directory: Path, n: int) -> None:
    """``n`` rated generations in DiffusionDB's parquet schema (files of 1 000 rows) and the ratings
    export, with the test suite's generator of the Hub's schema (tests/hubdata.py)."""
    import numpy as np
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "tests"))
    from hubdata import diffusiondb_table, image_id, rated_records, ratings_table

    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for k, start in enumerate(range(0, n, 1000)):
        pq.write_table(diffusiondb_table(min(1000, n - start), rng, start=start), directory / f"{k:04d}.parquet",
                       row_group_size=100)
    pq.write_table(ratings_table(rated_records([image_id(i) for i in range(n)], rng, per_image=3)),
                   directory.parent / "ratings.parquet")


def run_encode(work: Path, repo: Path) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of one encode stage run on ``work``'s images and VAE."""
    return run_stage([sys.executable, "-m", "stages.encode", "--params", str(repo / "params.yaml"), "--images",
                      str(work / "images"), "--vae", str(work / "vae"), "--out", str(work / "latents"), "--reports",
                      str(work / "reports")], repo)


def run_prepare(work: Path, repo: Path, n: int, size: int) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of one prepare stage run sampling all ``n`` DiffusionDB images of ``work``."""
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update(source="diffusiondb", path=str(work / "diffusiondb"), ratings_path=str(work / "ratings.parquet"),
                          label="artifact_bucket", size=size, n_images=n, min_ratings=3)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return run_stage([sys.executable, "-m", "stages.prepare", "--params", str(work / "params.yaml"), "--out",
                      str(work / "prepared"), "--reports", str(work / "prepare-reports")], repo)


# Starts the stage and reports its peak RSS. A child's ru_maxrss also counts what it shared with the
# process that forked it before exec, and this script holds torch and the data by then: so a small
# launcher process forks the stage instead, and only its ~10 MiB can leak into the figure.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=sys.stderr)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_stage(args: list[str], repo: Path) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of one stage process."""
    with tempfile.TemporaryFile("w+") as err:   # a file, not a pipe: a chatty stage cannot block on it
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", LAUNCHER, *args], cwd=repo, stdout=subprocess.PIPE, stderr=err,
                              text=True, env={**os.environ, "PYTHONPATH": str(repo)})
        wall = time.perf_counter() - start
        code, maxrss = (int(v) for v in done.stdout.split())
        if code:
            err.seek(0)
            raise SystemExit(f"{args[2]} failed:\n{err.read()[-2000:]}")
    return maxrss / 1024, wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=["encode", "prepare"], choices=["encode", "prepare"])
    parser.add_argument("--images", type=int, default=4000, help="N (default %(default)s)")
    parser.add_argument("--factor", type=int, default=10, help="the larger run has factor × N images")
    parser.add_argument("--size", type=int, default=32, help="encode: image side in px (default %(default)s)")
    parser.add_argument("--prepare-size", type=int, default=128, help="prepare: data.size in px (default %(default)s)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose stages run (default: this one)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    for stage in args.stages:
        results = {}
        for n in (args.images, args.images * args.factor):
            with tempfile.TemporaryDirectory(prefix=f"{stage}-memory-") as tmp:
                work = Path(tmp)
                if stage == "encode":
                    write_store(work / "images", n, args.size)
                    write_vae(work / "vae", args.size)
                    results[n] = run_encode(work, repo)
                    size = args.size
                else:
                    write_diffusiondb(work / "diffusiondb", n)
                    results[n] = run_prepare(work, repo, n, args.prepare_size)
                    size = args.prepare_size
            pixels = n * size * size * 3
            print(f"{stage}: {n:>7} images of {size} px ({pixels / 2**20:.0f} MiB as uint8, {4 * pixels / 2**20:.0f} MiB "
                  f"as float32): peak RSS {results[n][0]:.0f} MiB, {results[n][1]:.1f} s", flush=True)
        small, large = (results[n][0] for n in sorted(results))
        print(f"{stage}: peak RSS ratio {large / small:.2f} at {args.factor}× the images (target ≤ 1.2; stage of {repo})",
              flush=True)


if __name__ == "__main__":
    main()
