"""Downstream prediction: (N, D) -> loss -> accuracy, the two-step ladder.

Step 1 is a loss law fitted by :func:`scaling_ladder.laws.fit.fit`; step 2 a loss-to-accuracy
law (``SigmoidLaw`` or ``ExponentialErrorLaw`` of :mod:`.forms`) fitted to task rows paired
with the loss of the same checkpoint (:func:`pair_metrics`); :func:`chain` evaluates them in
sequence with uncertainty from both (Bhagia et al. 2024, arXiv:2412.04403; Gadre et al. 2024,
arXiv:2403.08540).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..observations.table import Observations
from .bootstrap import percentile_interval
from .fit import LawFit, Prediction


def pair_metrics(obs: Observations | pd.DataFrame, *, loss_metric: str, metric: str):
    """Rows of ``metric`` with the ``loss_metric`` value of the same run and checkpoint as a
    ``loss`` column: the input of a loss-to-accuracy law (step 2 of the two-step ladder)."""
    frame = obs.frame if isinstance(obs, Observations) else obs
    keys = [k for k in ("experiment", "run", "tokens") if k in frame]
    loss = frame[frame["metric"] == loss_metric][keys + ["value"]]
    if loss.empty:
        raise InputError(None, f'no rows with metric "{loss_metric}"', column="metric",
                         fix="choose the loss metric that predicts the task")
    target = frame[frame["metric"] == metric]
    paired = target.merge(loss.rename(columns={"value": "loss"}), on=keys, how="inner")
    aside = (("rows without a matching " + loss_metric, len(target) - len(paired)),)
    if isinstance(obs, Observations):
        return Observations(paired, obs.set_aside + aside, obs.sources)
    return paired


@dataclass(frozen=True)
class ChainFit:
    """(N, D) -> loss -> accuracy: two fitted laws evaluated in sequence.

    Uncertainty is carried through by pairing bootstrap draws of both fits (draw i of the
    loss law feeds draw i of the accuracy law), as in the two-step prediction of Bhagia et al.
    (2024) and Gadre et al. (2024).
    """

    loss_fit: LawFit
    task_fit: LawFit

    def predict(self, **inputs: Any) -> np.ndarray:
        return self.task_fit.predict(loss=self.loss_fit.predict(**inputs))

    def predict_interval(self, *, level: float = 0.95, **inputs: Any) -> Prediction:
        mean = self.predict(**inputs)
        if self.loss_fit.draws is None or self.task_fit.draws is None:
            return Prediction(mean, None, None, level)
        losses = self.loss_fit.predict_draws(**inputs)
        tasks = self.task_fit.draw_params()
        out = np.stack([self.task_fit.law(tasks[i % len(tasks)], loss=loss)
                        for i, loss in enumerate(losses)])
        ci = percentile_interval(out, level)
        return Prediction(mean, (ci[0], ci[1]), None, level)


def chain(loss_fit: LawFit, task_fit: LawFit) -> ChainFit:
    """Chain a loss law and a loss-to-accuracy law: see :class:`ChainFit`."""
    if task_fit.law.inputs != ("loss",):
        raise ValueError("The second fit of chain must map loss to accuracy (sigmoid or "
                         f"exp-error). Got {task_fit.law.name!r}.")
    return ChainFit(loss_fit, task_fit)
