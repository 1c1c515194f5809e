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
from ..observations.table import Observations, checkpoint_mask
from .bootstrap import percentile_interval
from .fit import LawFit, Prediction, fit
from .forms import SigmoidLaw


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


def paired_loss(frame: pd.DataFrame, metric: str, recipes: tuple[str, ...], *,
                points: str = "final") -> tuple[str | None, str]:
    """The loss a two-step prediction of accuracy ``metric`` goes through, and why that one.

    Step 1 of the two-step ladder predicts a loss from (N, D), step 2 maps it to accuracy
    (Bhagia et al. 2024, arXiv:2412.04403). The loss is the task's own when one is given
    (a loss metric of the same task name, e.g. ``ds_loss/hellaswag`` or ``ds/hellaswag_loss``),
    else the ``val/`` loss most correlated with the metric across the ladder (most negative
    Spearman rho, at least 4 points: over the runs' final values with ``points="final"``, over
    every checkpoint both metrics log with ``points="all"``, which a ladder of one run per size
    needs). Only losses every recipe has count. ``(None, why)`` when there is none.
    """
    from scipy.stats import spearmanr  # imported when used: scipy.stats is a second to import
    losses = frame[frame["kind"] == "loss"]
    cover = losses.groupby("metric")["recipe"].nunique()
    full = sorted(str(m) for m, n in cover.items() if n == len(recipes))
    task = metric.split("/", 1)[-1]
    same = [m for m in full if m.split("/", 1)[-1] in (task, f"{task}_loss", f"{task}/loss")]
    if same:
        return same[0], f"{same[0]}, the loss of the same task"
    val = [m for m in full if m.startswith("val/")]
    if not val:
        return None, "no val/ loss every recipe has"
    rows = frame[frame["final"].to_numpy(dtype=bool)] if points == "final" else frame
    keys = ["metric", "experiment", "run"] + (["tokens"] if points == "all" else [])
    by_run = rows.groupby(keys)["value"].mean()
    acc = by_run.loc[metric]
    best, best_rho, n = None, 0.0, 0
    for m in val:
        both = pd.concat([acc, by_run.loc[m]], axis=1, join="inner").dropna()
        if len(both) < 4:
            continue
        rho = float(spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic)
        if np.isfinite(rho) and rho < best_rho:
            best, best_rho, n = m, rho, len(both)
    if best is None:
        return None, f"no val/ loss falls as {metric} rises across the ladder"
    return best, (f"{best}, the val/ loss most correlated with it across the ladder "
                  f"(Spearman rho {best_rho:.2f} over {n} "
                  f"{'runs' if points == 'final' else 'checkpoints'})")


@dataclass(frozen=True)
class ChainFit:
    """(N, D) -> loss -> accuracy: two fitted laws evaluated in sequence.

    Uncertainty is carried through by pairing bootstrap draws of both fits (draw i of the
    loss law feeds draw i of the accuracy law), as in the two-step prediction of Bhagia et al.
    (2024) and Gadre et al. (2024).
    """

    loss_fit: LawFit
    task_fit: LawFit

    def predict(self, *, group: str | None = None, **inputs: Any) -> np.ndarray:
        return self.task_fit.predict(loss=self.loss_fit.predict(group=group, **inputs))

    def predict_interval(self, *, group: str | None = None, level: float = 0.95,
                         seed: int = 0, **inputs: Any) -> Prediction:
        """The accuracy with a CI (draw i of the loss law feeds draw i mod B of the accuracy
        law) and a PI (each step's residuals added in its own space, so a new run's noise in
        loss and in accuracy both count)."""
        mean = self.predict(group=group, **inputs)
        if self.loss_fit.draws is None or self.task_fit.draws is None:
            return Prediction(mean, None, None, level)
        losses = self.loss_fit.predict_draws(group=group, **inputs)
        thetas = self.task_fit.draw_matrix()[np.arange(len(losses)) % len(self.task_fit.draws)]
        law = self.task_fit.law

        def paired(loss: np.ndarray) -> np.ndarray:  # accuracy draw i at loss draw i
            return np.stack([law.at(t[None], {"loss": v})[0] for t, v in zip(thetas, loss)])

        ci = percentile_interval(paired(losses), level)
        rng = np.random.default_rng(seed)
        noisy = _noisy(self.task_fit, paired(_noisy(self.loss_fit, losses, rng)), rng)
        pi = percentile_interval(noisy, level)
        return Prediction(mean, (ci[0], ci[1]), (pi[0], pi[1]), level)


def _noisy(fitted: LawFit, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` (B, ...) with a residual of ``fitted`` drawn for each, in its space."""
    res = fitted.residuals if fitted.residuals is not None and len(fitted.residuals) else [0.]
    eps = rng.choice(np.asarray(res, dtype=float), size=values.shape)
    return values * np.exp(eps) if fitted.space == "log" else values + eps


def chain(loss_fit: LawFit, task_fit: LawFit) -> ChainFit:
    """Chain a loss law and a loss-to-accuracy law: see :class:`ChainFit`."""
    if task_fit.law.inputs != ("loss",):
        raise ValueError("The second fit of chain must map loss to accuracy (sigmoid or "
                         f"exp-error). Got {task_fit.law.name!r}.")
    return ChainFit(loss_fit, task_fit)


# ------------------------------------------------- per recipe: one shape, its own midpoint


@dataclass(frozen=True)
class TaskLaw:
    """Loss-to-accuracy sigmoid of one task across recipes: the shape (a, b, k) shared, the
    midpoint L0 per recipe, so a recipe may buy more or less accuracy per nat (Bhagia et al.
    2024)."""

    metric: str
    fit: LawFit

    def l0(self, recipe: str) -> float:
        return float(self.fit.group_params(recipe)["L0"])

    def accuracy_draws(self, recipe: str, losses: np.ndarray) -> np.ndarray:
        """Accuracy for each loss draw, pairing draw i with sigmoid draw i mod B."""
        law = self.fit.law
        if self.fit.draws is None or not len(self.fit.draws):
            return law(self.fit.group_params(recipe), loss=losses)
        ps = self.fit.draw_params(recipe)
        rows = np.array([[{**law.fixed, **q}[k] for k in law.param_names] for q in ps])
        # each draw's own parameters at its own loss: the law per point, in one call
        z = law.to_internal(rows[np.arange(len(losses)) % len(rows)])[None]
        return law.evaluate(z, {"loss": np.asarray(losses, dtype=float)})[0]


def fit_task_law(frame: pd.DataFrame, *, loss_metric: str, metric: str, bootstrap: int,
                 seed: int) -> TaskLaw:
    """Step 2 of Bhagia et al. (2024): accuracy vs the primary loss, later checkpoints only."""
    rows = frame[frame["metric"].isin([loss_metric, metric])]
    rows = rows[checkpoint_mask(rows, "drop-first:0.1")]
    paired = pair_metrics(rows, loss_metric=loss_metric, metric=metric)
    if paired["recipe"].nunique() < 2 or len(paired) < 6:
        raise InputError(None, f"too few runs pair {metric} with {loss_metric}",
                         column="metric", fix="log both metrics at the same checkpoints")
    f = fit(SigmoidLaw(), paired, by="recipe", shared=("a", "b", "k"), bootstrap=bootstrap,
            seed=seed, n_starts=2)
    return TaskLaw(metric, f)
