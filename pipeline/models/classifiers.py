"""scikit-learn classifiers on flattened latents, each standardised inside its pipeline."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

CLASSIFIERS = ("logreg", "rf", "knn")


def make_classifier(name: str, *, random_state: int, logreg_C: float = 1.0, rf_trees: int = 200, knn_neighbors: int = 5) -> Pipeline:
    """``StandardScaler`` → the classifier ``name`` (unscaled latents make solvers crawl)."""
    if name == "logreg":
        model = LogisticRegression(C=logreg_C, max_iter=2000, random_state=random_state)
    elif name == "rf":
        model = RandomForestClassifier(n_estimators=rf_trees, random_state=random_state, n_jobs=-1)
    elif name == "knn":
        model = KNeighborsClassifier(n_neighbors=knn_neighbors)
    else:
        raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), model)
