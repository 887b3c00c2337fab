"""report: one self-contained, interactive HTML page (reports/index.html) that works offline.

Reads the metrics, data and figures the other stages wrote under ``reports/``: a card per research
question first (:mod:`pipeline.report.cards`), then a section per pipeline part with its figure,
its sentence computed from the numbers and its tables folded below (:mod:`pipeline.report.sections`).
Interactive charts are Vega-Lite specs drawn by the Vega bundle inlined into the page; figures are
data URIs; nothing is loaded from the network. Reads no params.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io import atomic_file
from pipeline.report.cards import headline_cards
from pipeline.report.html import render_html
from pipeline.report.sections import report_sections
from stages.cli import configure_logging, parse_args, stage_main

log = logging.getLogger("stages.report")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--reports", default="reports"),
        p.add_argument("--out", default="reports/index.html"),
        p.add_argument("--figures", choices=("palette", "png"), default="palette",
                       help="static figures in a 256-colour palette (default) or as drawn (png: about 2.7 MB more "
                            "on the default run)"),
    ), params=False)
    configure_logging()
    sections = report_sections(Path(args.reports))
    cards = headline_cards(Path(args.reports))
    page = render_html("latent lab report", "Every number on this page has its baseline beside it.", sections, cards,
                       palette=args.figures == "palette")
    with atomic_file(args.out) as fh:
        fh.write(page)
    log.info("wrote %s (%d KiB)", args.out, len(page) // 1024)


if __name__ == "__main__":
    main()
