"""study: the cross-dataset study's fits of one method on this source (``--method``).

DVC runs it once per method of ``study.methods`` (a ``matrix:`` stage, ``study@<method>``: a change of
``augment.<method>`` re-runs that method's fits alone; the baselines are ``study_baselines``). For
every cell of ``study.shots`` × ``study.imbalance`` and every seed (``base.seed`` … ``+ study.seeds −
1``) it keeps the cell's real training images (the same for every method), adds the method's samples
fitted on them alone until each class holds ``max(largest class, study.fill)`` images, trains every
model of ``study.models`` (its recipe: ``study.recipes.<model>``) and tests it on the real
test latents; then the Classification Accuracy Score (``study.cas_model`` on the method's samples
only) and the Fréchet distance of its samples at equal n beside the real-vs-real floor
(``pipeline.study.fits``). The generated methods use the U-Net of ``models/unet`` and the guide
stage's classifier, fitted on the whole train split. Writes ``reports/study_fits/<method>/``:
``fits.csv``, ``predictions.parquet``, ``fidelity.csv``. Reads ``base``, ``study``, ``augment.<method>``.
"""

from __future__ import annotations

from stages.cli import fail, parse_args, stage_main
from stages.common import start
from stages.config import GENERATED, METHODS
from stages.study_common import run_methods


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--method", required=True, choices=METHODS + GENERATED, help="one method of study.methods"),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--unet", default="models/unet", help="the diffusion model of the generated methods"),
        p.add_argument("--guide", default="models/guide", help="the guiding models (class_guided: its classifier)"),
        p.add_argument("--reports", default=None, help="default: reports/study_fits/<method>"),
    ))
    params = start(args)
    if args.method not in params.study.methods:
        fail(f"--method {args.method} is not in study.methods {params.study.methods}")
    augment = params.augment.options(args.method)
    if args.method == "class_guided":
        augment = {**augment, "unet": args.unet, "classifier": f"{args.guide}/classifier"}
    elif args.method == "guided_interpolation":
        augment = {**augment, "unet": args.unet}
    run_methods(params, args.latents, [args.method], augment, cas=True,
                out=args.reports or f"reports/study_fits/{args.method}")


if __name__ == "__main__":
    main()
