"""Research question 2: can a generation's artifact score be read from its noisy latent mid-run?

The scorer benchmark (:mod:`.benchmark`) over the torch scorers (:mod:`.nets`), the early-exit rule
(:mod:`.early_exit`) and the reshaping of per-seed rows into tables and metrics (:mod:`.summary`).
"""
