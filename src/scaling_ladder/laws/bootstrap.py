"""Run-clustered bootstrap: resample runs, not rows, and percentile intervals.

Checkpoints of one run share its seed, data order and learning-rate schedule, so they are not
independent observations: resampling rows would make intervals far too narrow. Each bootstrap
replicate draws runs with replacement (within each group, so every recipe keeps its number of
runs) and gives every row of a run the run's draw count as a weight (Efron & Tibshirani 1993,
ch. 8, resampling of clusters; as in ``scipy.stats.bootstrap``'s percentile method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A two-sided interval at a confidence ``level`` (0.95 by default)."""

    lo: float
    hi: float
    level: float = 0.95

    def to_list(self) -> list[float]:
        return [float(self.lo), float(self.hi)]

    def __contains__(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def __str__(self) -> str:
        return f"[{self.lo:.6g}, {self.hi:.6g}]"

    def __repr__(self) -> str:
        level = "" if abs(self.level - 0.95) < 1e-12 else f", level={self.level:g}"
        return f"Interval({float(self.lo):.6g}, {float(self.hi):.6g}{level})"


def cluster_weights(
    run: np.ndarray, group: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Row weights (B, n) of ``n_resamples`` run-clustered, group-stratified resamples.

    ``run`` holds an integer run id per row (ids unique across groups), ``group`` a group id.
    """
    n_runs = int(run.max()) + 1
    run_group = np.zeros(n_runs, dtype=int)
    run_group[run] = group
    counts = np.zeros((n_resamples, n_runs))
    for g in np.unique(group):
        members = np.unique(run[group == g])
        draws = rng.integers(0, len(members), size=(n_resamples, len(members)))
        np.add.at(counts, (np.arange(n_resamples)[:, None], members[draws]), 1.0)
    return counts[:, run]


def percentile_interval(draws: np.ndarray, level: float = 0.95, axis: int = 0) -> np.ndarray:
    """Percentile interval of bootstrap draws: array (2, ...) of lower and upper bounds.

    NaN draws are ignored; infinite ones (a gain that is never reached) are order statistics
    like any other, so a bound that falls among them is infinite (no interpolation then).
    """
    alpha = (1.0 - level) / 2.0
    draws = np.asarray(draws, dtype=float)
    method = "inverted_cdf" if np.isinf(draws).any() else "linear"
    return np.nanquantile(draws, [alpha, 1.0 - alpha], axis=axis, method=method)
