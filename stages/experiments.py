"""experiments: write reports/experiments.html, every DVC experiment of this repository side by side.

Not a DVC stage (it reads the git history of experiments, not a stage's inputs): run it after a
sweep. It asks DVC for every run (``dvc exp show --json``: the workspace, each commit and the
experiments run from it) and writes one offline page (:mod:`pipeline.report.experiments`): the
params that differ, the headline metrics beside their baselines, every metric that differs, and
each changed metric against a swept numeric param. ``--json FILE`` reads a saved ``dvc exp show
--json`` instead; ``--all-commits`` passes DVC's flag on.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from stages.cli import configure_logging, fail, parse_args, stage_main

log = logging.getLogger("stages.experiments")


def exp_show(repo: Path, all_commits: bool) -> list[dict]:
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"`dvc exp show --json` failed in {repo}: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(proc.stdout or "[]")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--repo", default=".", help="the DVC repository (default: %(default)s)"),
        p.add_argument("--out", default="reports/experiments.html"),
        p.add_argument("--json", help="a saved `dvc exp show --json` to read instead of asking DVC"),
        p.add_argument("--all-commits", action="store_true", help="every commit's experiments, not only HEAD's"),
    ), params=False)
    configure_logging()
    from pipeline.io import atomic_file
    from pipeline.report.experiments import experiments_page, parse_exp_show

    if args.json:
        try:
            entries = json.loads(Path(args.json).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"--json {args.json}: not a readable `dvc exp show --json` output ({exc})")
    else:
        entries = exp_show(Path(args.repo), args.all_commits)
    if not isinstance(entries, list):
        fail(f"{args.json or 'dvc exp show --json'}: expected a JSON list of runs, got {type(entries).__name__}")
    experiments = parse_exp_show(entries)
    out = Path(args.out)
    with atomic_file(out) as fh:
        fh.write(experiments_page(experiments))
    log.info("wrote %s: %d runs (%s)", out, len(experiments), ", ".join(e.name for e in experiments))


if __name__ == "__main__":
    main()
