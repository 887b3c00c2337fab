"""Time the full default `dvc repro` from a clean state: wall time and peak memory per stage.

Copies the project into a temporary git repo (nothing cached), then runs
`dvc repro --single-item <stage>` for each stage in dvc.yaml order, so every figure is one
stage's cost including DVC's own overhead. Peak memory is the largest resident set of the
stage's process tree (wait4's ru_maxrss). With ``--sweep``, it then commits the run and times
one model's sweep (`dvc exp run -S bench.logreg.C=7` by default) in the same directory, as a
share of the full run. Run: `python benchmarks/pipeline_time.py [--keep DIR] [--sweep]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workspace import copy_project, run_env, stage_names  # noqa: E402


def timed(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        sys.stderr.write(proc.stderr.read())
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run in this (empty) directory and keep it")
    parser.add_argument("--sweep", nargs="?", const="bench.logreg.C=7", metavar="KEY=VALUE",
                        help="then time `dvc exp run -S KEY=VALUE` (default: %(const)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="latent-lab-bench-") as tmp:
        project = args.keep or Path(tmp)
        project.mkdir(parents=True, exist_ok=True)
        copy_project(project)
        print(f"{'stage':<10} {'wall s':>8} {'peak MiB':>9}")
        total = 0.0
        for stage in stage_names(project):
            wall, rss, code = timed(["dvc", "repro", "--single-item", stage], project)
            total += wall
            print(f"{stage:<10} {wall:8.1f} {rss:9.0f}", flush=True)
            if code:
                raise SystemExit(f"stage {stage} failed (exit {code})")
        noop, _, _ = timed(["dvc", "repro"], project)
        print(f"{'total':<10} {total:8.1f}\n{'no-op':<10} {noop:8.1f}  (dvc repro with nothing to do)")
        if args.sweep:
            for cmd in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "default run"]):
                subprocess.run(cmd, cwd=project, env=run_env(), check=True)
            wall, _, code = timed(["dvc", "exp", "run", "-S", args.sweep], project)
            if code:
                raise SystemExit(f"sweep {args.sweep} failed (exit {code})")
            print(f"sweep -S {args.sweep}: {wall:.1f} s = {100 * wall / total:.1f} % of the full run")


if __name__ == "__main__":
    main()
