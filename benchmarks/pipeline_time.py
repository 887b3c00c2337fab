"""Time the full default `dvc repro` from a clean state: total wall time, each stage's share, peak memory.

Copies the project into a temporary git repo (nothing cached) and runs one plain `dvc repro`,
exactly what the README's first command runs. Each stage's wall time is read from DVC's own
output as it streams (the time from its "Running stage" line to the next stage's, so it
includes DVC's hashing and lock writing for that stage); the total is the whole command. Peak
memory is the largest resident set of any process the run started (wait4's ru_maxrss). With
``--sweep``, it then commits the run and times one model's sweep (`dvc exp run -S
bench.logreg.C=7` by default) in the same directory, as a share of the full run.
Run: `python benchmarks/pipeline_time.py [--keep DIR] [--sweep [KEY=VALUE]]`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workspace import copy_project, run_env  # noqa: E402

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def timed(args: list[str], cwd: Path) -> tuple[float, float, int, list[tuple[str, float]]]:
    """(wall seconds, peak RSS MiB, exit code, [(stage, seconds)]) of one DVC command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stages: list[list] = []
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        match = STAGE_LINE.match(line)
        if match:
            now = time.perf_counter() - start
            if stages:
                stages[-1][1] = now - stages[-1][1]
            stages.append([match.group(1), now])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stages:
        stages[-1][1] = wall - stages[-1][1]
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.stderr.write("".join(tail))
    return wall, usage.ru_maxrss / 1024, code, [(name, secs) for name, secs in stages]


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
        total, rss, code, stages = timed(["dvc", "repro"], project)
        print(f"{'stage':<22} {'wall s':>8} {'share':>6}")
        for name, secs in stages:
            print(f"{name:<22} {secs:8.1f} {100 * secs / total:5.1f}%")
        if code:
            raise SystemExit(f"dvc repro failed (exit {code})")
        noop, _, _, _ = timed(["dvc", "repro"], project)
        print(f"{'total':<22} {total:8.1f}  ({total / 60:.1f} min; peak RSS of any process {rss:.0f} MiB)")
        print(f"{'no-op':<22} {noop:8.1f}  (dvc repro with nothing to do)")
        if args.sweep:
            for cmd in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "default run"]):
                subprocess.run(cmd, cwd=project, env=run_env(), check=True)
            wall, _, code, swept = timed(["dvc", "exp", "run", "-S", args.sweep], project)
            if code:
                raise SystemExit(f"sweep {args.sweep} failed (exit {code})")
            ran = ", ".join(name for name, _ in swept) or "nothing"
            print(f"sweep -S {args.sweep}: {wall:.1f} s = {100 * wall / total:.1f} % of the full run (ran: {ran})")


if __name__ == "__main__":
    main()
