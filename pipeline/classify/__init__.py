"""Research question 1, second half: does synthetic data make better classifiers?

The classifier benchmark: the training regimes (:mod:`.regimes`), the scikit-learn estimators
(:mod:`.estimators`) and torch nets (:mod:`.nets`) it trains, one fit per typed task
(:mod:`.tasks`), the latent benchmark's plan and run (:mod:`.latent_bench`) and the summary table
with its bootstrap intervals (:mod:`.results`).
"""
