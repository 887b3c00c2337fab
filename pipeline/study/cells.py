"""The study's cells: which real training images a (shots, imbalance, seed) cell keeps, and how many
synthetic ones a method adds.

* **shots**: training images of the largest class (``"all"``: the whole training split). The other
  classes keep the source's own proportions, scaled to it, at least one image each.
* **imbalance**: ``"own"`` keeps those proportions; a ratio ``r`` also cuts the *minority class* (the
  class with the fewest training images, lowest label on a tie) to ``1/r`` of the largest class, at
  least one image.
* **seed**: which images of each class are kept. The draw depends on the cell and the seed only, never
  on the method or the model, so every method of a seed starts from the same images (paired).

Every method then raises each class to ``max(largest class, fill)`` images (:func:`fill_target`):
re-balancing, and growing a small training set to ``fill`` images per class.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

ALL = "all"
OWN = "own"


@dataclass(frozen=True, order=True)
class Cell:
    """One column of the study: ``shots`` images of the largest class (``ALL``: every training image)
    and ``imbalance`` (``OWN`` or the ratio of the largest class to the minority class)."""

    shots: int | str
    imbalance: int | str

    @property
    def key(self) -> str:
        """``<shots>/<imbalance>``, e.g. ``5/own``, ``all/1:100``: how tables and metrics name the cell."""
        imb = self.imbalance if self.imbalance == OWN else f"1:{self.imbalance}"
        return f"{self.shots}/{imb}"

    @property
    def shots_value(self) -> float:
        """Shots as a number for sorting and plotting (``ALL`` = infinity)."""
        return float("inf") if self.shots == ALL else float(self.shots)


def minority_class(y: np.ndarray) -> int:
    """The class with the fewest training images (the lowest label among equals)."""
    labels, counts = np.unique(y, return_counts=True)
    return int(labels[np.argmin(counts)])


def cell_counts(counts: np.ndarray, cell: Cell, minority: int) -> np.ndarray:
    """Images kept per class (``counts``: the training split's, indexed by label) in ``cell``."""
    counts = np.asarray(counts, dtype=np.int64)
    present = counts > 0
    if cell.shots == ALL:
        n = counts.copy()
    else:
        scaled = np.round(int(cell.shots) * counts / counts.max()).astype(np.int64)
        n = np.where(present, np.minimum(counts, np.maximum(1, scaled)), 0)
    if cell.imbalance != OWN:
        n[minority] = min(n[minority], max(1, int(round(n.max() / int(cell.imbalance)))))
    return n


def _cell_seed(cell: Cell, seed: int) -> np.random.Generator:
    """The RNG of a cell's draw: a function of the cell and the seed only (zlib.crc32 is stable across runs)."""
    return np.random.default_rng([int(seed), zlib.crc32(cell.key.encode())])


def subsample(y: np.ndarray, cell: Cell, seed: int, minority: int) -> np.ndarray:
    """Sorted indices of the training images ``cell`` keeps for ``seed``."""
    counts = np.bincount(y)
    n = cell_counts(counts, cell, minority)
    rng = _cell_seed(cell, seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[: n[c]] for c in range(len(counts)) if n[c]]
    return np.sort(np.concatenate(keep))


def fill_target(y: np.ndarray, fill: int) -> dict[int, int]:
    """imbalanced-learn's ``sampling_strategy`` (class → images after over-sampling): every class raised
    to ``max(largest class, fill)``, none lowered."""
    labels, counts = np.unique(y, return_counts=True)
    target = max(int(counts.max()), int(fill))
    return {int(c): max(target, int(n)) for c, n in zip(labels, counts)}


def synthetic_only_target(y: np.ndarray) -> dict[int, int]:
    """The strategy of a synthetic-only training set (the Classification Accuracy Score): as many
    synthetic images per class as the cell has real ones (``2 ×`` real after over-sampling)."""
    labels, counts = np.unique(y, return_counts=True)
    return {int(c): 2 * int(n) for c, n in zip(labels, counts)}


def parse_cells(shots, imbalance) -> list[Cell]:
    """Every (shots, imbalance) of the params, in grid order."""
    return [Cell(s, i) for s in shots for i in imbalance]
