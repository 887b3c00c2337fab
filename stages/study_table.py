"""study_table: this source's study table, from every method's fits and the baselines'.

Per cell (``study.shots`` × ``study.imbalance``), model and method: balanced accuracy and the minority
class's recall (mean ± std over seeds); the gain over no augmentation and over random over-sampling
(the re-balancing reference), each paired by seed with an interval that carries the seed and test-set
variance and a verdict, Holm over each reference's comparisons (``pipeline.study.table``); the
Classification Accuracy Score as a fraction of the real-data score; the Fréchet distance of the
method's samples at equal n beside the real-vs-real floor. Reads ``reports/study_fits/<method>/``
(every method of ``study.methods``) and ``reports/study_fits/baselines/``; writes ``reports/study/``:
``metrics.json`` (DVC metrics: per method, its comparisons clearly better or worse than random
over-sampling and than none), ``table.json`` (the whole table: what ``python -m stages.study_all``
gathers across sources), ``table.csv``, ``summary.json`` (the sentence) and ``index.html`` (this
source's study page). Reads
``data.source``, ``study``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.study.cells import minority_class
from pipeline.study.table import headline_metrics, source_sentence, source_table, table_metrics
from stages.cli import fail, parse_args, stage_main
from stages.common import start

log = logging.getLogger("stages.study_table")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--fits", default="reports/study_fits", help="one sub-directory per method, and baselines/"),
        p.add_argument("--reports", default="reports/study"),
    ))
    params = start(args, torch=False)
    cfg = params.study
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    y, y_test, names = train.meta["label"].to_numpy(), test.meta["label"].to_numpy(), train.class_names
    wanted = ["baselines", *cfg.methods]
    missing = [m for m in wanted if not (Path(args.fits) / m / "fits.csv").is_file()]
    if missing:
        fail(f"{args.fits}: no fits.csv for {', '.join(missing)}: run the study stages (dvc repro study_table)")
    rows = pd.concat([pd.read_csv(Path(args.fits) / m / "fits.csv", keep_default_na=False, na_values=[""])
                      for m in wanted], ignore_index=True)
    rows["shots"], rows["imbalance"] = rows["shots"].astype(str), rows["imbalance"].astype(str)
    preds = {}
    for m in wanted:
        for r in pd.read_parquet(Path(args.fits) / m / "predictions.parquet").itertuples():
            preds[(r.kind, r.cell, r.model, r.method, int(r.seed))] = np.asarray(r.pred)
    fid = [pd.read_csv(Path(args.fits) / m / "fidelity.csv") for m in cfg.methods
           if (Path(args.fits) / m / "fidelity.csv").stat().st_size > 1]
    fidelity = pd.concat(fid, ignore_index=True) if fid else pd.DataFrame()
    table = source_table(rows, preds, fidelity, y_test, draws=cfg.draws)
    source = params.data.source
    sentence = source_sentence(source, table)
    document = table_metrics(table, source=source, minority=names[minority_class(y)], n_classes=len(names))
    log.info("%s", sentence)
    from pipeline.study.aggregate import study_page

    page = study_page(table.assign(source=source, experiment="workspace"), {source: sentence},
                      title=f"latent lab study: {source}")
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", headline_metrics(table))   # DVC metrics: a few numbers per method
        write_json(tmp / "table.json", document)                    # the whole table (python -m stages.study_all)
        write_json(tmp / "summary.json", {"source": source, "summary": sentence})
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        (tmp / "index.html").write_text(page)


if __name__ == "__main__":
    main()
