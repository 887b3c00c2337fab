"""results: write the results blocks of the README (the headline table) and docs/results.md (the table and a
paragraph per study), and their sources in docs/results/, from the run in reports/.

Not a DVC stage: run it after ``dvc repro`` when you commit the run's ``dvc.lock``, so the README
states what that run measured (``tests/test_results.py`` fails until you do). Renders the report's
headline table and per-study sentences (``pipeline.report.results``) between the markers of README.md
(the table) and docs/results.md (both), and copies the quoted files with their folders' manifests to ``docs/results/``.
Reads no params.
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
        p.add_argument("--page", default="docs/results.md"),
        p.add_argument("--snapshot", default="docs/results"),
    ), params=False)
    configure_logging()
    snapshot(Path(args.reports), Path(args.snapshot))
    for path, paragraphs in ((args.readme, False), (args.page, True)):
        text = splice(Path(path).read_text(), results_markdown(Path(args.snapshot), paragraphs=paragraphs))
        with atomic_file(path) as fh:
            fh.write(text)
        log.info("wrote the results block of %s from %s (sources in %s)", path, args.reports, args.snapshot)


if __name__ == "__main__":
    main()
