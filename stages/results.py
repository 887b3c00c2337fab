"""results: write the README's results block (and its sources in docs/results/) from the run in reports/.

Not a DVC stage: run it after ``dvc repro`` when you commit the run's ``dvc.lock``, so the README
states what that run measured (``tests/test_results.py`` fails until you do). Renders the report's
headline table and per-study sentences (``pipeline.report.results``) between the README's markers,
and copies the quoted files with their folders' manifests to ``docs/results/``. Reads no params.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io import atomic_file
from pipeline.report.results import results_markdown, snapshot, splice
from stages.cli import configure_logging, parse_args, stage_main

log = logging.getLogger("stages.results")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--reports", default="reports"),
        p.add_argument("--readme", default="README.md"),
        p.add_argument("--snapshot", default="docs/results"),
    ), params=False)
    configure_logging()
    snapshot(Path(args.reports), Path(args.snapshot))
    text = splice(Path(args.readme).read_text(), results_markdown(Path(args.snapshot)))
    with atomic_file(args.readme) as fh:
        fh.write(text)
    log.info("wrote the results block of %s from %s (sources in %s)", args.readme, args.reports, args.snapshot)


if __name__ == "__main__":
    main()
