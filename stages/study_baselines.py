"""study_baselines: the cross-dataset study's references on this source: no augmentation and class weights.

For every cell of ``study.shots`` × ``study.imbalance`` and every seed, the same kept real images as
every method's (``pipeline.study.cells``), every model of ``study.models`` trained on them as they are
(``none``) and with its loss or splits weighted inversely to the class frequencies (``class_weights``;
a k-NN has none: "n/a"), tested on the real test latents. Writes ``reports/study_fits/baselines/``
(``fits.csv``, ``predictions.parquet``). Reads ``base``, ``study``.
"""

from __future__ import annotations

from pipeline.study.fits import BASELINES
from stages.cli import parse_args, stage_main
from stages.common import start
from stages.study_common import run_methods


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--reports", default="reports/study_fits/baselines"),
    ))
    params = start(args)
    run_methods(params, args.latents, list(BASELINES), {}, cas=False, out=args.reports)


if __name__ == "__main__":
    main()
