"""Options of :func:`scaling_ladder.compare.compare` beyond the baseline, metric, target and
rule, checked when they are made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..laws.forms import ChinchillaLaw, KaplanLaw, OvertrainLaw
from ..observations.table import checkpoint_mask
from .joint import VARIANTS

LAW_NAMES = {"chinchilla": ChinchillaLaw, "overtrain": OvertrainLaw, "kaplan": KaplanLaw}


@dataclass(frozen=True)
class CompareOptions:
    """Options of :func:`compare` beyond the baseline, metric, target and rule.

    Parameters
    ----------
    law : ``chinchilla`` (default) or ``overtrain`` (one exponent, Gadre et al. 2024).
    variants : sharing variants of the joint fit to choose from by held-out error.
    bootstrap : run-clustered resamples of the decision metric's joint fit.
    slice_bootstrap : resamples of every other slice's fit and of each task's sigmoid.
    gate_bootstrap : resamples of each stage gate's fit (0: no stage gates).
    match : ``params-tokens``, ``flops`` (IsoFLOP designs) or ``auto``.
    tolerance : scales within this many decades of N, D (or C) are matched.
    fit_checkpoints : checkpoints the laws are fitted to: ``auto`` (the final checkpoint of
        WSD runs, ``drop-first:0.1`` of others; see ``Observations.select``), ``final``, ``all``,
        ``drop-first:F``...
    protocol : the protocol the decision uses when several exist (default: the most runs).
    level : confidence level of every interval.
    near_chance : a task whose best recipe is within this of its random baseline (or within
        2x noise) at the largest scale is flagged as near chance, not ranked.
    n_starts : starts of each fit (see :func:`scaling_ladder.fitting.fit`).
    """

    law: str = "chinchilla"
    variants: tuple[str, ...] = VARIANTS
    bootstrap: int = 100
    slice_bootstrap: int = 30
    gate_bootstrap: int = 50
    match: str = "auto"
    tolerance: float = 0.01
    fit_checkpoints: str = "auto"
    protocol: str | None = None
    level: float = 0.95
    near_chance: float = 0.05
    n_starts: int = 3

    def __post_init__(self) -> None:
        if self.law not in LAW_NAMES:
            raise ValueError(f"The 'law' option of compare must be one of "
                             f"{', '.join(LAW_NAMES)}. Got {self.law!r}.")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"The 'variants' option takes {', '.join(VARIANTS)}. "
                             f"Got {bad[0] if bad else 'none'!r}.")
        for name in ("bootstrap", "slice_bootstrap", "gate_bootstrap"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 0) or isinstance(v, bool):
                raise ValueError(f"The '{name}' option of compare must be an int >= 0. "
                                 f"Got {v!r}.")
        if self.match not in ("auto", "params-tokens", "flops"):
            raise ValueError("The 'match' option of compare must be auto, params-tokens or "
                             f"flops. Got {self.match!r}.")
        if not 0 < self.level < 1:
            raise ValueError(f"The 'level' option must be in (0, 1). Got {self.level!r}.")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"The 'tolerance' option must be in (0, 1) decades. "
                             f"Got {self.tolerance!r}.")
        empty = pd.DataFrame({c: [] for c in ("experiment", "run", "metric", "tokens", "final")})
        checkpoint_mask(empty, self.fit_checkpoints)  # raises the option's ValueError
