"""Peak memory of the encode stage at N and 10·N images: does it stay flat as the data grows?

Writes an image store of N procedural shape images (four splits: half train, a quarter test, an
eighth each artifact split, ``--size`` px) and a randomly initialised VAE of the default
configuration (encoding costs the same whatever the weights), runs the real stage
``python -m stages.encode`` on them as a child process and reads its peak resident memory from
the kernel (``wait4``'s ``ru_maxrss``); then the same at ``--factor`` × N. Prints both, their
ratio (target ≤ 1.2) and the wall times. ``--repo DIR`` runs another checkout's stage (say, a
commit before streaming) on the same data.
Run: `python benchmarks/encode_memory.py [--images 4000] [--factor 10] [--size 32] [--repo DIR]`.
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


def run_encode(work: Path, repo: Path) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of one encode stage run on ``work``'s images and VAE."""
    args = [sys.executable, "-m", "stages.encode", "--params", str(repo / "params.yaml"), "--images",
            str(work / "images"), "--vae", str(work / "vae"), "--out", str(work / "latents"), "--reports",
            str(work / "reports")]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"encode failed in {work}:\n{proc.stderr.read()[-2000:]}")
    return usage.ru_maxrss / 1024, wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000, help="N (default %(default)s)")
    parser.add_argument("--factor", type=int, default=10, help="the larger run has factor × N images")
    parser.add_argument("--size", type=int, default=32, help="image side in px (default %(default)s)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose stage runs (default: this one)")
    args = parser.parse_args(argv)
    results = {}
    for n in (args.images, args.images * args.factor):
        with tempfile.TemporaryDirectory(prefix="encode-memory-") as tmp:
            work = Path(tmp)
            write_store(work / "images", n, args.size)
            write_vae(work / "vae", args.size)
            results[n] = run_encode(work, args.repo.resolve())
            pixels = n * args.size * args.size * 3
            print(f"{n:>7} images of {args.size} px ({pixels / 2**20:.0f} MiB as uint8, {4 * pixels / 2**20:.0f} MiB as "
                  f"float32): peak RSS {results[n][0]:.0f} MiB, {results[n][1]:.1f} s", flush=True)
    small, large = (results[n][0] for n in sorted(results))
    print(f"peak RSS ratio {large / small:.2f} at {args.factor}× the images (target ≤ 1.2; stage of {args.repo.resolve()})")


if __name__ == "__main__":
    main()
