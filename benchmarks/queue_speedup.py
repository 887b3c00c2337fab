"""Parallel sweeps with DVC's queue: does `dvc queue start -j 2` beat `-j 1` on this machine?

In a project that has run (``--project``, e.g. a ``pipeline_time.py --keep`` directory), queues a
sweep twice (``dvc exp run --queue -S KEY=V`` per value, default ``bench.logreg.C`` at 0.1 and 1, then
at twice those values so DVC's run cache cannot answer:
each experiment re-runs ``bench_latent@logreg``, ``bench`` and ``report``), runs it once with one
worker and once with ``--jobs`` workers, and prints the wall time of each from `dvc queue start`
until `dvc queue status` shows nothing queued or running, and the speed-up. Each queued
experiment runs in its own temporary copy of the workspace (DVC checks its outputs out of the
cache), which is part of what is measured.
Run: `python benchmarks/queue_speedup.py --project DIR [--values 0.1,1] [--jobs 2]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workspace import sh  # noqa: E402


def _busy(project: Path) -> bool:
    status = sh(["dvc", "queue", "status"], project).stdout
    return any(word in status for word in ("Queued", "Running"))


def run_queue(project: Path, key: str, values: list[str], jobs: int) -> float:
    for v in values:
        sh(["dvc", "exp", "run", "--queue", "-S", f"{key}={v}"], project)
    t = time.perf_counter()
    sh(["dvc", "queue", "start", "--jobs", str(jobs)], project)
    while _busy(project):
        time.sleep(2)
    seconds = time.perf_counter() - t
    status = sh(["dvc", "queue", "status"], project).stdout
    if "Failed" in status:
        raise SystemExit(f"a queued experiment failed:\n{status}")
    sh(["dvc", "queue", "remove", "--success"], project, check=False)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--key", default="bench.logreg.C")
    ap.add_argument("--values", default="0.1,1")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    project = args.project.resolve()
    if subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=project).returncode != 0:
        sh(["git", "add", "-A"], project)
        sh(["git", "commit", "-q", "-m", "the run the queue starts from"], project)
    values = args.values.split(",")
    one = run_queue(project, args.key, values, 1)
    print(f"dvc queue start -j 1: {len(values)} experiments ({args.key} = {args.values}) in {one:.1f} s")
    # other values for the second batch: the same params would be restored from DVC's run cache
    many = run_queue(project, args.key, [repr(2 * float(v)) for v in values], args.jobs)
    print(f"dvc queue start -j {args.jobs}: {len(values)} experiments in {many:.1f} s")
    print(f"speed-up with {args.jobs} workers: {one / many:.2f}×")


if __name__ == "__main__":
    main()
