"""Agreement between two rankings of recipes: pairwise decision accuracy, Kendall, Spearman.

Pairwise decision accuracy is the measure of DataDecide (Magnusson et al. 2025,
arXiv:2504.11393): over all pairs of recipes, the share that a proxy orders the same way as the
target (1 for the same order, 0 for the opposite, 0.5 when either side ties). Without ties it
equals ``(1 + tau) / 2`` with Kendall's tau. Kendall tau-b and Spearman rho (scipy) sit beside
it, and top-1 regret says what picking the proxy's winner costs at the target.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _aligned(a, b) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two value vectors over the same recipes (mappings are matched by key, NaNs dropped)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = [k for k in a if k in b]
        x = np.array([a[k] for k in keys], dtype=float)
        y = np.array([b[k] for k in keys], dtype=float)
    else:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError("The two rankings must be 1-D arrays of the same length or "
                             f"mappings of recipe to value. Got shapes {x.shape} and {y.shape}.")
        keys = [str(i) for i in range(len(x))]
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok], [k for k, good in zip(keys, ok, strict=True) if good]


def decision_accuracy(predicted: Mapping[str, float] | Sequence[float],
                      observed: Mapping[str, float] | Sequence[float]) -> float:
    """Share of recipe pairs that ``predicted`` orders as ``observed`` does (DataDecide).

    Over all pairs ``i < j`` of recipes present in both: 1 when ``sign(p_i - p_j)`` equals
    ``sign(o_i - o_j)``, 0 when it is opposite, 0.5 when either difference is zero
    (Magnusson et al. 2025, arXiv:2504.11393, section 3). The direction of "better" does not
    matter as long as both sides use the same metric. NaN with fewer than two recipes.

    Example
    -------
    >>> decision_accuracy({"a": 3.1, "b": 3.0, "c": 2.9}, {"a": 2.5, "b": 2.45, "c": 2.46})
    0.6666666666666666
    """
    x, y, _ = _aligned(predicted, observed)
    if len(x) < 2:
        return float("nan")
    i, j = np.triu_indices(len(x), k=1)
    sp, so = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    score = np.where((sp == 0) | (so == 0), 0.5, (sp == so).astype(float))
    return float(score.mean())


@dataclass(frozen=True)
class RankAgreement:
    """How well one ranking of recipes predicts another.

    ``regret``: observed value of the recipe ``predicted`` ranks best, minus the best observed
    value, signed so that 0 is best and positive is worse (metric units).
    """

    n: int
    decision_accuracy: float
    kendall_tau: float
    spearman_rho: float
    regret: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "decision_accuracy": self.decision_accuracy,
                "kendall_tau": self.kendall_tau, "spearman_rho": self.spearman_rho,
                "regret": self.regret}


def rank_agreement(predicted, observed, *, higher_is_better: bool = False) -> RankAgreement:
    """Decision accuracy, Kendall tau-b, Spearman rho and top-1 regret of two rankings.

    ``higher_is_better`` only matters for the regret (False for losses, True for accuracies).
    """
    from scipy import stats  # imported when used: scipy.stats is a second to import
    x, y, _ = _aligned(predicted, observed)
    n = len(x)
    if n < 2:
        return RankAgreement(n, float("nan"), float("nan"), float("nan"), float("nan"))
    with warnings.catch_warnings():  # constant input: scipy warns and returns NaN
        warnings.simplefilter("ignore")
        tau = float(stats.kendalltau(x, y, variant="b").statistic)
        rho = float(stats.spearmanr(x, y).statistic)
    if higher_is_better:
        regret = float(np.max(y) - y[np.argmax(x)])
    else:
        regret = float(y[np.argmin(x)] - np.min(y))
    return RankAgreement(n, decision_accuracy(x, y), tau, rho, regret)


@dataclass(frozen=True)
class RankAtScale:
    """The ranking the data show at one matched scale, with no law in between.

    What a comparison falls back to when a prediction cannot be trusted (or a metric cannot be
    fitted by a loss law): the recipes in observed order, best first, at the largest scale that
    holds them. ``deltas`` are ``recipe - baseline`` in the metric's units (loss: negative is
    better; accuracy: positive is better), ``ci`` their intervals, ``noise`` the run-to-run sd
    of one run at that scale (``noise_source``: seeds, checkpoints, residual or none).
    ``missing`` lists recipes the scale does not hold.
    """

    metric: str
    kind: str
    baseline: str
    scale: str
    params: float
    tokens: float
    flops: float
    order: tuple[str, ...]
    values: dict[str, float]
    deltas: dict[str, float]
    ci: dict[str, tuple[float, float]]
    noise: float
    noise_source: str
    missing: tuple[str, ...] = ()
    loss_units: str = "nats"  # of a loss delta: bits/byte across tokenizers

    def gain(self, recipe: str) -> float:
        """The recipe's observed improvement on the baseline (positive is better)."""
        return (1.0 if self.kind == "accuracy" else -1.0) * self.deltas.get(recipe, np.nan)

    def summary(self) -> str:
        """One sentence: the order and the deltas at the scale, against the noise."""
        units = f" {self.loss_units}" if self.kind == "loss" else ""
        deltas = ", ".join(f"{r} {self.deltas[r]:+.3g}" for r in self.order
                           if r != self.baseline and np.isfinite(self.deltas.get(r, np.nan)))
        noise = (f"noise sd {self.noise:.2g} from {self.noise_source}"
                 if np.isfinite(self.noise) else "no noise estimate")
        text = (f"at {self.scale} the data rank {' > '.join(self.order)} on {self.metric} "
                f"(delta vs {self.baseline}: {deltas or 'none'}{units}; {noise})")
        if self.missing:
            text += f"; not trained there: {', '.join(self.missing)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {"metric": self.metric, "kind": self.kind, "baseline": self.baseline,
                "scale": self.scale, "params": self.params, "tokens": self.tokens,
                "flops": self.flops, "order": list(self.order),
                "values": {r: num(v) for r, v in self.values.items()},
                "deltas": {r: num(v) for r, v in self.deltas.items()},
                "ci": {r: [num(lo), num(hi)] for r, (lo, hi) in self.ci.items()},
                "noise_sd": num(self.noise), "noise_source": self.noise_source,
                "missing": list(self.missing), "summary": self.summary()}
