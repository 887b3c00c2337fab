"""compare: every augmentation method's fidelity side by side (the ``fidelity`` stage's outputs).

Reads ``reports/fidelity/<method>/metrics.json`` for each method in ``compare.methods`` and
writes ``reports/compare/``: ``metrics.json`` (one entry per method), ``table.csv`` (one row
per method, real baselines in their own columns) and ``fidelity.png`` (one panel per metric,
each bar beside its real baseline), via :func:`pipeline.fidelity.compare.comparison`. Reads ``compare``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.fidelity.compare import PANELS, comparison
from pipeline.io import atomic_dir, read_json, write_json
from pipeline.report.figures import grouped_bars
from stages.cli import fail, parse_args, stage_main
from stages.common import start

log = logging.getLogger("stages.compare")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--fidelity", default="reports/fidelity"),
        p.add_argument("--reports", default="reports/compare"),
    ))
    params = start(args, torch=False)
    methods = params.compare.methods
    paths = {m: Path(args.fidelity) / m / "metrics.json" for m in methods}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        fail(f"no fidelity metrics for {missing}: run `dvc repro fidelity` (compare.methods lists them)")
    table, metrics, idle = comparison({m: read_json(p) for m, p in paths.items()})
    if idle:
        log.info("no samples needed (skipped in the table): %s", ", ".join(idle))
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        if len(table):
            grouped_bars(table, panels=PANELS, x="method", path=tmp / "fidelity.png",
                         title="Synthetic latents by method (bars, ± std over replicates) vs class-matched real data (ticks)")
    if table.empty:
        log.info("no method made samples (balanced classes under augment.sampling_strategy): nothing to compare")
        return
    best = table.loc[table["frechet"].idxmin()]
    log.info("%d methods compared; closest to real test: %s (Fréchet %.2f vs real %.2f)", len(table), best["method"],
             best["frechet"], best["frechet_real"])


if __name__ == "__main__":
    main()
