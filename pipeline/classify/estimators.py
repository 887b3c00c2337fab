"""scikit-learn classifiers on flattened latents, each standardised inside its pipeline.

Options per model come from its own params section (``bench.<model>``); unscaled latents make
the solvers crawl, so every model sits behind a ``StandardScaler`` fitted on its training set.
"""

from __future__ import annotations

from collections.abc import Mapping

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

CLASSIFIERS = ("logreg", "linear_svm", "rbf_svm", "rf", "knn", "hgb")


def make_classifier(name: str, options: Mapping | None = None, *, random_state: int) -> Pipeline:
    """``StandardScaler`` → the classifier ``name`` configured by ``options``.

    logreg: ``C``, ``max_iter`` (lbfgs iterations; a fit that stops there warns, as scikit-learn does); linear_svm: ``C``; rbf_svm: ``C``, ``gamma`` ("scale" or a number); rf:
    ``trees``, ``max_features``; knn: ``neighbors``; hgb: ``max_iter``, ``learning_rate``,
    ``max_leaf_nodes``. Missing options take scikit-learn's defaults. ``class_weight`` (``"balanced"``:
    weights inverse to the class frequencies; every model but the k-NN) is how the study re-balances
    without new samples (:mod:`pipeline.study.fits`)."""
    o = dict(options or {})
    cw = {"class_weight": o["class_weight"]} if o.get("class_weight") else {}
    if cw and name == "knn":
        raise ValueError("knn has no class weights")
    if name == "logreg":
        model = LogisticRegression(C=o.get("C", 1.0), max_iter=o.get("max_iter", 2000), random_state=random_state, **cw)
    elif name == "linear_svm":
        model = LinearSVC(C=o.get("C", 1.0), dual=True, max_iter=5000, random_state=random_state, **cw)  # dual: measured 2.5× faster here
    elif name == "rbf_svm":
        model = SVC(C=o.get("C", 1.0), gamma=o.get("gamma", "scale"), kernel="rbf", random_state=random_state, **cw)
    elif name == "rf":
        model = RandomForestClassifier(n_estimators=o.get("trees", 100), max_features=o.get("max_features", "sqrt"),
                                       random_state=random_state, n_jobs=-1, **cw)
    elif name == "knn":
        model = KNeighborsClassifier(n_neighbors=o.get("neighbors", 5))
    elif name == "hgb":
        model = HistGradientBoostingClassifier(max_iter=o.get("max_iter", 100), learning_rate=o.get("learning_rate", 0.1),
                                               max_leaf_nodes=o.get("max_leaf_nodes", 31), early_stopping=False,
                                               random_state=random_state, **cw)
    else:
        raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), model)
