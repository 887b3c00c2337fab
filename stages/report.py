"""report: one self-contained HTML page (reports/index.html) with every table and figure.

Reads the metrics and figures the other stages wrote under ``reports/`` and puts baselines
beside every result, with a sentence per section computed from the numbers
(:mod:`pipeline.report.sections`). Figures are embedded as data URIs: no scripts, fonts or CDN
links, so it renders offline. Reads no params.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io import atomic_file
from pipeline.report.html import render_html
from pipeline.report.sections import report_sections
from stages.cli import configure_logging, parse_args

log = logging.getLogger("stages.report")


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--reports", default="reports"),
        p.add_argument("--out", default="reports/index.html"),
    ), params=False)
    configure_logging()
    sections = report_sections(Path(args.reports))
    page = render_html("latent lab report", "Every number on this page has its baseline beside it.", sections)
    with atomic_file(args.out) as fh:
        fh.write(page)
    log.info("wrote %s (%d KiB)", args.out, len(page) // 1024)


if __name__ == "__main__":
    main()
