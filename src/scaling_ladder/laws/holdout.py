"""Hold-out evaluation: fit below the largest model, predict the largest one.

Protocol of Choshen, Zhang & Andreas (2024), "A Hitchhiker's Guide to Scaling Law Estimation"
(arXiv:2410.11840): fit on every run whose N is below the family's largest; the targets are the
largest model's checkpoints in the last 30% of its tokens (its final point when that is all it
has); the score is the absolute relative error ARE = mean |L - L_hat| / L. The baseline
predicts the lowest loss observed among the fitted points for every target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..observations.table import Observations, checkpoint_mask
from .fit import LawFit
from .forms import Law


@dataclass(frozen=True)
class HoldoutResult:
    """ARE of a law's prediction of the held-out largest model, and of the baseline."""

    are: float
    baseline_are: float
    n_fit_points: int
    n_target_points: int
    target_params: float
    fit: LawFit
    targets: dict[str, list[float]]  # tokens, value, predicted

    def to_dict(self) -> dict[str, Any]:
        return {"are": self.are, "baseline_are": self.baseline_are,
                "n_fit_points": self.n_fit_points, "n_target_points": self.n_target_points,
                "target_params": self.target_params, "law": self.fit.law.name,
                "objective": self.fit.objective, "params": self.fit.params,
                "notes": list(self.fit.notes), "targets": self.targets}


def holdout(
    law: Law,
    obs: Observations,
    *,
    checkpoints: str = "all",
    min_params: float | None = None,
    last_fraction: float = 0.3,
    **fit_options: Any,
) -> HoldoutResult:
    """Fit ``law`` on runs below the largest N and score its prediction of the largest.

    Parameters
    ----------
    obs : observations of one metric (before checkpoint selection: targets use all rows).
    checkpoints : selection applied to the *fitted* runs (``final``, ``all``, ``drop-first:F``).
    min_params : hold out every run with N >= this (default: only the largest N).
    last_fraction : targets are checkpoints in this last fraction of each held-out run's tokens.
    fit_options : passed to :func:`scaling_ladder.fitting.fit`.
    """
    if not 0 < last_fraction <= 1:
        raise ValueError(f"The 'last_fraction' argument must be in (0, 1]. Got {last_fraction}.")
    frame = obs.frame
    if frame.empty:
        raise InputError(None, "no rows to evaluate", fix="loosen the selection")
    largest = float(frame["params"].max())
    cut = largest if min_params is None else float(min_params)
    held = frame["params"].to_numpy() >= cut
    if held.all():
        raise InputError(None, f"every run has N >= {cut:g}: nothing is left to fit",
                         column="params", fix="lower --min-params or add smaller runs")
    if not held.any():
        raise InputError(None, f"no run has N >= {cut:g}", column="params",
                         fix="lower --min-params")
    fit_rows = frame[~held]
    fit_rows = fit_rows[checkpoint_mask(fit_rows, checkpoints)]
    targets = frame[held]
    targets = targets[checkpoint_mask(targets, f"last:{last_fraction}")]
    fitted = law.fit(fit_rows, **fit_options)
    inputs = {k: targets[k].to_numpy(dtype=float) for k in law.inputs}
    predicted = fitted.predict(**inputs)
    value = targets["value"].to_numpy(dtype=float)
    are = float(np.mean(np.abs(value - predicted) / value))
    base = float(fit_rows["value"].min())
    baseline = float(np.mean(np.abs(value - base) / value))
    return HoldoutResult(
        are=are, baseline_are=baseline, n_fit_points=len(fit_rows),
        n_target_points=len(targets), target_params=cut, fit=fitted,
        targets={"params": targets["params"].astype(float).tolist(),
                 "tokens": targets["tokens"].tolist(), "value": value.tolist(),
                 "predicted": predicted.tolist()})
