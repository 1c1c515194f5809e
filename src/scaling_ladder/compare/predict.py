"""Every validation slice and downstream task at the target: regressions and loss -> downstream.

A recipe that wins on the decision metric can still lose elsewhere. For each other loss slice
the joint fit is repeated with the same sharing; each downstream task is predicted by the
two-step ladder (Bhagia et al. 2024, arXiv:2412.04403): the recipe's predicted loss, then the
task's loss-to-accuracy sigmoid with a per-recipe midpoint ``L0``. Tasks whose best recipe is
still near its random baseline at the largest scale are flagged and not ranked: accuracy near
chance has no signal (Signal and Noise, Heineman et al. 2025, arXiv:2508.13144).

The midpoint shift ``L0[recipe] - L0[baseline]`` (nats of the decision metric) says whether a
recipe buys more accuracy per nat than the baseline (positive) or less (negative: downstream
lags the loss); Gadre et al. (2024) found one loss-to-error relation across their recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.downstream import TaskLaw, fit_task_law
from ..laws.forms import Law
from .joint import JointFit, recipe_draws, shared_of, side_by_side, summarize_draws
from .target import Target

COLUMNS = ["metric", "kind", "recipe", "predicted", "predicted_lo", "predicted_hi", "delta",
           "delta_lo", "delta_hi", "p_beats", "method"]


def prediction_rows(metric: str, kind: str, draws: dict[str, tuple], baseline: str, *,
                    level: float, min_gain: float, method: str) -> list[dict[str, Any]]:
    """Rows of the predictions table for one metric from per-recipe (point, draws)."""
    if baseline not in draws:
        return []
    pb, db = draws[baseline]
    rows = []
    for r, (pr, dr) in draws.items():
        s = summarize_draws(pr, dr, pb, db, higher_is_better=kind == "accuracy", level=level,
                            min_gain=min_gain if r != baseline else 0.0)
        rows.append({"metric": metric, "kind": kind, "recipe": r, "predicted": pr,
                     "predicted_lo": s["predicted_ci"][0], "predicted_hi": s["predicted_ci"][1],
                     "delta": np.nan if r == baseline else s["predicted_delta"],
                     "delta_lo": np.nan if r == baseline else s["ci"][0],
                     "delta_hi": np.nan if r == baseline else s["ci"][1],
                     "p_beats": np.nan if r == baseline else s["p_beats"], "method": method})
    return rows


def predict_metrics(frame: pd.DataFrame, *, law: Law, joint: JointFit, primary: str,
                    primary_draws: dict[str, tuple], baseline: str, target: Target,
                    fit_rows: Callable[[str], pd.DataFrame], skip: set[str], bootstrap: int,
                    seed: int, level: float, min_gain: float,
                    tick: Callable[[int], None]) -> tuple[list[dict], dict[str, TaskLaw], list]:
    """Predictions at the target for every metric but the primary one (rows, task laws, notes).

    The loss slices' fits and the tasks' sigmoids are independent and run side by side
    (:func:`~scaling_ladder.laws.fit.fork_map`): on a ladder with tens of tasks the sigmoids,
    each a multi-start fit with its bootstrap, are most of the work.
    """
    from ..laws.fit import LawFit, fit

    rows: list[dict] = []
    tasks: dict[str, TaskLaw] = {}
    notes: list[str] = []
    kinds = frame.groupby("metric")["kind"].first()
    todo = [m for m in sorted(kinds.index) if m != primary and m not in skip]

    def fit_slice(metric: str) -> LawFit | Exception | None:
        data = fit_rows(metric)
        if baseline not in set(data["recipe"]) or data["recipe"].nunique() < 2:
            return None
        try:
            return fit(law, data, by="recipe", shared=shared_of(law, joint.variant),
                       bootstrap=bootstrap, seed=seed, n_starts=2)
        except (InputError, ValueError) as exc:
            return exc

    def fit_task(metric: str) -> TaskLaw | Exception:
        try:
            return fit_task_law(frame, loss_metric=primary, metric=metric, bootstrap=bootstrap,
                                seed=seed)
        except (InputError, ValueError) as exc:
            return exc

    def fit_one(metric: str):
        return fit_slice(metric) if kinds[metric] == "loss" else fit_task(metric)

    fitted = dict(zip(todo, side_by_side(fit_one, todo, done=lambda _: tick(bootstrap)),
                      strict=True))
    for metric in todo:
        try:
            f = fitted[metric]
            if f is None:
                continue
            if isinstance(f, Exception):
                raise f
            if kinds[metric] == "loss":
                draws = recipe_draws(f, target, list(f.groups))
                method = f"joint {law.name} fit ({joint.variant}), {bootstrap} resamples"
            else:
                task = tasks[metric] = f
                draws = {}
                for r in task.fit.groups:
                    if r in primary_draws:
                        p_loss, d_loss = primary_draws[r]
                        point = float(task.fit.law(task.fit.group_params(r), loss=p_loss))
                        draws[r] = (point, task.accuracy_draws(r, d_loss))
                method = (f"two-step: {primary} -> sigmoid (L0 per recipe), "
                          f"{bootstrap} sigmoid resamples")
        except (InputError, ValueError) as exc:
            notes.append(f"{metric}: not predicted at the target ({exc})")
            continue
        rows += prediction_rows(metric, kinds[metric], draws, baseline, level=level,
                                min_gain=0.0, method=method)
    return rows, tasks, notes


def downstream_translation(tasks: dict[str, TaskLaw], predictions: pd.DataFrame,
                           table: pd.DataFrame, *, baseline: str, primary: str,
                           average: str) -> dict[str, Any]:
    """Does the loss gain reach downstream accuracy? Per recipe, on the downstream average.

    ``l0_shift`` = L0[recipe] - L0[baseline] of the average's sigmoid (nats of the decision
    metric); ``accuracy_gain_from_loss`` = what the loss gain alone would buy on the baseline's
    curve; ``accuracy_gain`` = the recipe's own two-step prediction. translates: at least half
    of the loss-implied accuracy; lags: less than half; does not translate: the opposite sign.
    """
    task = tasks.get(average)
    if task is None:
        return {"metric": average, "available": False, "recipes": {},
                "note": "no downstream average could be fitted (needs >= 2 accuracy tasks on "
                        "every run, paired with the decision metric)"}
    pred = predictions.set_index(["metric", "recipe"])
    law, pb_params = task.fit.law, task.fit.group_params(baseline)
    out: dict[str, Any] = {}
    if (primary, baseline) not in pred.index:
        return {"metric": average, "available": False, "recipes": {}, "note": "no prediction"}
    lb = pred.loc[(primary, baseline), "predicted"]
    for r in task.fit.groups:
        if r == baseline or (primary, r) not in pred.index or (average, r) not in pred.index:
            continue
        lr = pred.loc[(primary, r), "predicted"]
        implied = float(law(pb_params, loss=lr) - law(pb_params, loss=lb))
        own = float(pred.loc[(average, r), "delta"])
        ratio = own / implied if abs(implied) > 1e-9 else np.nan
        if not np.isfinite(ratio):
            verdict = "no loss gain to translate"
        elif ratio >= 0.5:
            verdict = "translates"
        elif ratio > 0:
            verdict = "lags"
        else:
            verdict = "does not translate"
        obs = _observed_pair(table, r, primary, average)
        out[r] = {"loss_gain": float(lb - lr), "l0_shift": task.l0(r) - task.l0(baseline),
                  "accuracy_gain_from_loss": implied, "accuracy_gain": own,
                  "ratio": ratio, "verdict": verdict, **obs}
    return {"metric": average, "available": True, "recipes": out,
            "law": f"{law.formula} on {primary}, L0 per recipe ({task.fit.n_runs} runs)"}


def _observed_pair(table, recipe, primary, average) -> dict[str, Any]:
    """Observed loss gain and downstream-average gain at the largest scale holding both."""
    a = table[(table["recipe"] == recipe) & (table["metric"] == primary)].set_index("scale")
    b = table[(table["recipe"] == recipe) & (table["metric"] == average)].set_index("scale")
    common = a.index.intersection(b.index)
    common = [s for s in common if np.isfinite(a.loc[s, "delta"]) and np.isfinite(b.loc[s,
                                                                                      "delta"])]
    if not common:
        return {"observed_scale": None}
    top = max(common, key=lambda s: a.loc[s, "flops"])
    return {"observed_scale": top, "observed_loss_gain": float(-a.loc[top, "delta"]),
            "observed_accuracy_gain": float(b.loc[top, "delta"])}
