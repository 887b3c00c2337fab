"""The cross-dataset study's cost: `python -m stages.study_all` on a fresh copy of the project, per source.

Copies the project into a fresh temporary git + DVC repo (nothing cached), then runs the study's one
command once per source (``--sources <source>``: that source's upstream stages and every study fit,
through DVC's queue), printing each source's wall time, and once more with ``--aggregate-only`` to
gather the table across sources. ``--quick`` runs the small grid instead of ``grid=full``.
Prints ``python ../shared/tools/calib.py``'s figure beside the times (machines differ up to 2×).

Run: ``python benchmarks/study_cost.py [--quick] [--sources shapes emoji digits] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sd_rehearsal import calibration  # noqa: E402
from benchmarks.workspace import copy_project, sh  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", nargs="+", default=["shapes", "emoji", "digits"])
    ap.add_argument("--quick", action="store_true", help="the small grid (params.yaml) instead of grid=full")
    ap.add_argument("--keep", type=Path, help="run in this (empty) directory and keep it")
    args = ap.parse_args(argv)
    print(f"calibration: {calibration()}")
    with tempfile.TemporaryDirectory(prefix="study-cost-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        copy_project(root)
        quick = ["--quick"] if args.quick else []
        times = {}
        for source in args.sources:
            t = time.perf_counter()
            run = sh(["python", "-m", "stages.study_all", *quick, "--sources", source], root, check=False, timeout=6 * 3600)
            times[source] = time.perf_counter() - t
            if run.returncode:
                raise SystemExit(f"{source}: study_all failed:\n{run.stderr[-3000:]}")
            print(f"{source}: {times[source]:.0f} s ({times[source] / 60:.1f} min)\n  " + run.stdout.strip().splitlines()[0],
                  flush=True)
        t = time.perf_counter()
        run = sh(["python", "-m", "stages.study_all", *quick, "--aggregate-only", "--sources", *args.sources], root,
                 check=False)
        if run.returncode:
            raise SystemExit(f"aggregate failed:\n{run.stderr[-3000:]}")
        agg = time.perf_counter() - t
        total = sum(times.values()) + agg
        print(f"aggregate: {agg:.0f} s\ntotal: {total:.0f} s ({total / 60:.1f} min) for {len(args.sources)} sources "
              f"({'small grid' if args.quick else 'grid=full'})")
        print(run.stdout)


if __name__ == "__main__":
    main()
