"""results: write the results blocks of the README (the headline table) and docs/results.md (the table and a
paragraph per study), and their sources in docs/results/, from the run in reports/.

Not a DVC stage: run it after ``dvc repro`` when you commit the run's ``dvc.lock``, so the README
states what that run measured (``tests/test_results.py`` fails until you do). Renders the report's
headline table and per-study sentences (``pipeline.report.results``) between the markers of README.md
(the table) and docs/results.md (both), and copies the quoted files with their folders' manifests to ``docs/results/``.
With ``--study reports/study_all`` (what ``python -m stages.study_all`` wrote) it also copies that
study's ``table.csv`` and ``summary.json`` to ``docs/results/study_all/`` and writes the README's study
block (each source's sentence and its verdict counts) from them. Reads no params.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io import atomic_file
from pipeline.report.results import results_markdown, snapshot, splice
from stages.cli import configure_logging, fail, parse_args, stage_main

log = logging.getLogger("stages.results")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--reports", default="reports"),
        p.add_argument("--readme", default="README.md"),
        p.add_argument("--page", default="docs/results.md"),
        p.add_argument("--snapshot", default="docs/results"),
        p.add_argument("--study", help="the cross-dataset study's output (reports/study_all) to quote in the README"),
    ), params=False)
    configure_logging()
    try:
        snapshot(Path(args.reports), Path(args.snapshot))
    except FileNotFoundError as e:   # no run here yet: one line, nothing touched
        fail(str(e))
    for path, paragraphs in ((args.readme, False), (args.page, True)):
        text = splice(Path(path).read_text(), results_markdown(Path(args.snapshot), paragraphs=paragraphs))
        with atomic_file(path) as fh:
            fh.write(text)
        log.info("wrote the results block of %s from %s (sources in %s)", path, args.reports, args.snapshot)
    if args.study:
        import shutil

        from pipeline.study.aggregate import STUDY_END, STUDY_START, study_block

        out = Path(args.snapshot) / "study_all"
        out.mkdir(parents=True, exist_ok=True)
        for name in ("table.csv", "summary.json"):
            if (Path(args.study) / name).resolve() != (out / name).resolve():   # re-rendering from the copy itself
                shutil.copyfile(Path(args.study) / name, out / name)
        text = splice(Path(args.readme).read_text(), study_block(out), START=STUDY_START, END=STUDY_END)
        with atomic_file(args.readme) as fh:
            fh.write(text)
        log.info("wrote the study block of %s from %s (copied to %s)", args.readme, args.study, out)


if __name__ == "__main__":
    main()
