"""plots_template: write the HTML template that makes `dvc plots show / diff` render offline.

DVC's default plots page loads Vega, Vega-Lite and Vega-Embed from a CDN, so it is blank without
network. This writes ``.dvc/plots_template.html`` with the bundle from vl-convert-python inlined
(:func:`pipeline.report.vega.dvc_plots_template`; Vega-Lite 5, the schema of DVC's plot specs);
the repository's ``.dvc/config`` names it (``[plots] html_template = plots_template.html``), so
every clone renders plots offline. The file is committed; run this again after changing the
vl-convert-python pin (a test checks the committed file matches).
"""

from __future__ import annotations

from stages.cli import parse_args, stage_main


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--out", default=".dvc/plots_template.html"),
    ), params=False)
    from pipeline.io import atomic_file
    from pipeline.report.vega import dvc_plots_template

    with atomic_file(args.out) as fh:
        fh.write(dvc_plots_template())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
