"""The cross-dataset study: does generated data make better training data than re-balancing?

One source's grid (:mod:`pipeline.study.cells`: training images per class × imbalance; the fits of
:mod:`pipeline.study.fits`: methods × models × seeds on those cells), its per-source table of gains,
intervals and verdicts (:mod:`pipeline.study.table`) and the table across sources, read from every
source's experiment (:mod:`pipeline.study.aggregate`). docs/study.md says how it runs.
"""
