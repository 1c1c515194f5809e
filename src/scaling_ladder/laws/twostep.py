"""Task accuracy at a target scale for every task of a ladder: (N, D) -> loss -> accuracy.

Step 1 fits a loss law (Chinchilla by default) to the ladder's runs; step 2 a loss-to-accuracy
law (a sigmoid, Bhagia et al. 2024, arXiv:2412.04403; or Gadre et al.'s exponential error,
arXiv:2403.08540) to each task's accuracies paired with that loss at the same checkpoints; the
chain predicts the task at the target with intervals from both fits' bootstrap draws. Each
task is also scored on the ladder's own largest size held out, and judged **predictable** or
not with the reason: only a minority of tasks scale predictably (Lourie et al. 2025), and an
unpredictable task gets no extrapolated number.

Step-2 options the literature uses (:class:`TaskOptions`): the anchor point (L = 0, Acc = 1)
of Bhagia et al., the floor held at (or above) the task's ``random_baseline``, a moving
average over k consecutive checkpoints, and which checkpoints feed step 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..observations.table import Observations, checkpoint_mask
from .downstream import chain, pair_metrics, paired_loss
from .fit import LawFit, fit
from .forms import ExponentialErrorLaw, Law, SigmoidLaw, make_law

FLOORS = ("free", "baseline", "above-baseline")
NEAR_CHANCE = 0.03  # points above the random baseline at the largest proxy that count as chance
MONOTONE = 0.5      # Spearman rank correlation of accuracy with compute that counts as rising
PAST_KNEE = 3       # paired points past the sigmoid's knee a fit needs


@dataclass(frozen=True)
class TaskOptions:
    """How step 2 is fitted. The defaults won ``bench/backtest_downstream.py``: a sigmoid
    without the anchor, its floor at the random baseline (free where the table gives none), on
    every checkpoint unsmoothed (overtrain at 1.4B and 6.9B held out, OLMo-1B to the 7Bs).

    law : ``sigmoid`` or ``exp-error``.
    anchor : add the point (L = 0, Acc = 1) (Bhagia et al. 2024).
    floor : ``free``, ``baseline`` (the floor fixed at the task's ``random_baseline``) or
        ``above-baseline`` (bounded below by it).
    smooth : moving average over this many consecutive checkpoints of each run (1: none).
    checkpoints : the checkpoints step 2 is fitted to (``last:0.5``, ``all``, ``final``...).
    """

    law: str = "sigmoid"
    anchor: bool = False
    floor: str = "baseline"
    smooth: int = 1
    checkpoints: str = "all"

    def __post_init__(self) -> None:
        if self.law not in ("sigmoid", "exp-error"):
            raise ValueError(f"The 'law' of TaskOptions must be sigmoid or exp-error. "
                             f"Got {self.law!r}.")
        if self.floor not in FLOORS:
            raise ValueError(f"The 'floor' of TaskOptions must be one of {', '.join(FLOORS)}. "
                             f"Got {self.floor!r}.")
        if not (isinstance(self.smooth, (int, np.integer)) and self.smooth >= 1):
            raise ValueError(f"The 'smooth' of TaskOptions must be an int >= 1. "
                             f"Got {self.smooth!r}.")


def task_law(options: TaskOptions, random_baseline: float | None) -> Law:
    """The step-2 law with the floor the options ask for (error floor 1 - baseline for the
    exponential error law, which predicts errors)."""
    if options.floor == "free" or random_baseline is None or not np.isfinite(random_baseline):
        return make_law(options.law)
    rb = float(np.clip(random_baseline, 0.0, 0.999))
    if options.law == "sigmoid":
        return (SigmoidLaw(fixed={"b": rb}) if options.floor == "baseline"
                else SigmoidLaw(bounds={"b": (rb, 1.0)}))
    return (ExponentialErrorLaw(fixed={"eps": 1 - rb}) if options.floor == "baseline"
            else ExponentialErrorLaw(bounds={"eps": (0.0, max(1 - rb, 1e-3))}))


def step_two_rows(frame: pd.DataFrame, *, loss_metric: str, metric: str,
                  options: TaskOptions) -> pd.DataFrame:
    """The task's rows paired with the loss of the same checkpoint, smoothed over
    ``options.smooth`` checkpoints, the chosen checkpoints kept, the anchor added."""
    rows = frame[frame["metric"].isin([loss_metric, metric])]
    paired = pair_metrics(rows, loss_metric=loss_metric, metric=metric)
    paired = paired.sort_values(["experiment", "run", "tokens"], kind="stable")
    if options.smooth > 1:
        runs = paired.groupby(["experiment", "run"], sort=False)
        for col in ("loss", "value"):
            paired[col] = runs[col].transform(
                lambda s: s.rolling(options.smooth, min_periods=1).mean())
    paired = paired[checkpoint_mask(paired, options.checkpoints)].reset_index(drop=True)
    if options.anchor and len(paired):
        anchor = paired.iloc[[0]].copy()
        anchor[["run", "loss", "value"]] = ["(L=0, Acc=1)", 0.0, 1.0]
        paired = pd.concat([paired, anchor], ignore_index=True)
    return paired


def fit_step_two(frame: pd.DataFrame, *, loss_metric: str, metric: str,
                 options: TaskOptions = TaskOptions(), bootstrap: int = 100,
                 seed: int = 0) -> LawFit:
    """Step 2 for one task (Bhagia et al. 2024, section 3): its law fitted to accuracy vs
    loss at the options' checkpoints."""
    rows = step_two_rows(frame, loss_metric=loss_metric, metric=metric, options=options)
    real = rows[rows["run"] != "(L=0, Acc=1)"]
    if len(real) < 4:
        raise InputError(None, f"too few checkpoints pair {metric} with {loss_metric} "
                         f"({len(real)} of {real['run'].nunique()} runs)", column="metric",
                         fix="log the task and the loss at the same checkpoints")
    return fit(task_law(options, step_two_baseline(real)), rows, bootstrap=bootstrap,
               seed=seed, n_starts=3)


# ------------------------------------------------------------------------------- per task


@dataclass(frozen=True)
class TaskPrediction:
    """One task of one recipe: the chained prediction at the target (None when the task is
    not predictable), the held-out errors of each step, the verdict and its reasons (each
    ``"label: detail"``: near chance, not rising with compute, noisy, before the knee)."""

    task: str
    recipe: str
    loss_metric: str
    loss_metric_reason: str
    predictable: bool
    reasons: tuple[str, ...]
    loss: float | None = None
    mean: float | None = None
    ci: tuple[float, float] | None = None
    pi: tuple[float, float] | None = None
    holdout: dict[str, Any] = field(default_factory=dict)
    step1: LawFit | None = None
    step2: LawFit | None = None
    step2_rmse: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"task": self.task, "recipe": self.recipe, "loss_metric": self.loss_metric,
               "loss_metric_reason": self.loss_metric_reason, "predictable": self.predictable,
               "reasons": list(self.reasons), "prediction": None, "holdout": self.holdout,
               "step2_rmse": self.step2_rmse}
        if self.mean is not None:
            out["prediction"] = {"loss": self.loss, "mean": self.mean,
                                 "ci": list(self.ci) if self.ci else None,
                                 "pi": list(self.pi) if self.pi else None}
        for name, f in (("step1", self.step1), ("step2", self.step2)):
            out[name] = ({"law": f.law.name, "params": f.params, "n_points": f.n_points}
                         if f is not None else None)
        return out


@dataclass(frozen=True)
class Downstream:
    """Every task's two-step prediction at ``target`` = (N, D)."""

    target: tuple[float, float]
    options: TaskOptions
    loss_law: str
    tasks: tuple[TaskPrediction, ...]
    notes: tuple[str, ...] = ()

    @property
    def predictable(self) -> list[TaskPrediction]:
        return [t for t in self.tasks if t.predictable]

    def to_dict(self) -> dict[str, Any]:
        return {"target": {"params": self.target[0], "tokens": self.target[1]},
                "loss_law": self.loss_law, "options": self.options.__dict__,
                "tasks": [t.to_dict() for t in self.tasks], "notes": list(self.notes),
                "predictable": len(self.predictable), "of": len(self.tasks)}


def downstream(
    obs: Observations | pd.DataFrame,
    *,
    target: tuple[float, float],
    tasks: Sequence[str] | None = None,
    loss_metric: str | None = None,
    law: str = "chinchilla",
    options: TaskOptions = TaskOptions(),
    checkpoints: str = "auto",
    bootstrap: int = 100,
    seed: int = 0,
    holdout: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Downstream:
    """Two-step predictions of every ``ds/`` task (or ``tasks``) at ``target`` = (N, D), per
    recipe.

    ``loss_metric`` names the loss that predicts each task: a metric, a template such as
    ``task_loss/{task}`` (``{task}``: the task's name without ``ds/``), or None for the loss
    metric most correlated with the task across the ladder. Step 1 fits ``law`` to that
    metric's ``checkpoints``; step 2 follows ``options``. With ``holdout`` each step is also
    fitted without the largest model size and scored on its runs.
    """
    frame = obs.frame if isinstance(obs, Observations) else obs
    n, d = (float(v) for v in target)
    if not (np.isfinite(n) and n > 0 and np.isfinite(d) and d > 0):
        raise ValueError(f"The 'target' of downstream must be two numbers > 0. Got {target!r}.")
    names = sorted(m for m in frame["metric"].unique() if m.startswith("ds/"))
    if tasks is not None:
        missing = [t for t in tasks if t not in names]
        if missing:
            raise InputError(None, f'no rows with metric "{missing[0]}"', column="metric",
                             fix="choose among the ds/ metrics: " + ", ".join(names[:8]))
        names = list(tasks)
    if not names:
        raise InputError(None, "no downstream metric (ds/<task>) in the table",
                         column="metric", fix="add task accuracies as ds/<task> rows")
    recipes = list(dict.fromkeys(frame["recipe"]))
    jobs = [(r, t) for r in recipes for t in names]
    out, step1_cache = [], {}
    for i, (recipe, task) in enumerate(jobs):
        rows = frame[frame["recipe"] == recipe]
        out.append(_one_task(rows, recipe, task, loss_metric, law, options, checkpoints,
                             (n, d), bootstrap, seed, holdout, step1_cache))
        if progress:
            progress(i + 1, len(jobs))
    return Downstream((n, d), options, law, tuple(out))


def _one_task(rows, recipe, task, loss_metric, law, options, checkpoints, target, bootstrap,
              seed, holdout, cache) -> TaskPrediction:
    if loss_metric is None:
        chosen, why = paired_loss(rows, task, (recipe,), points="all")
        if chosen is None:  # no loss falls as the task rises: nothing to predict it through
            return TaskPrediction(task, recipe, "", why, False, (f"no loss: {why}",
                                                                 *_verdict(rows, task)))
        why = why.split(", ", 1)[-1]  # "the val/ loss most correlated with it ... (rho ...)"
    else:
        chosen = loss_metric.format(task=task.removeprefix("ds/"))
        why = "given" if chosen == loss_metric else f"from the template {loss_metric}"
        if chosen not in set(rows["metric"]):
            raise InputError(None, f'no rows with metric "{chosen}" ({why}) for {task}',
                             column="metric", fix="give --loss-metric a logged loss metric")
    base = TaskPrediction(task, recipe, chosen, why, False, ())
    verdict = _verdict(rows, task)
    key = (recipe, chosen)
    if key not in cache:
        cache[key] = _step_one(rows, chosen, law, checkpoints, bootstrap, seed)
    step1 = cache[key]
    step2 = fit_step_two(rows, loss_metric=chosen, metric=task, options=options,
                         bootstrap=bootstrap, seed=seed)
    rmse, reasons = _step_two_checks(step2, rows, chosen, task, options)
    reasons = verdict + reasons
    held = {}
    if holdout:
        below = rows[rows["params"] < rows["params"].max()]
        if ("below",) + key not in cache:
            try:
                cache[("below",) + key] = _step_one(below, chosen, law, checkpoints, 0, seed)
            except (InputError, ValueError) as exc:
                cache[("below",) + key] = str(exc)
        held = _holdout(rows, task, chosen, cache[("below",) + key], options, seed)
    base = replace(base, step1=step1, step2=step2, step2_rmse=rmse, holdout=held,
                   reasons=tuple(reasons), predictable=not reasons)
    if reasons:
        return base
    pred = chain(step1, step2).predict_interval(params=target[0], tokens=target[1],
                                                level=step1.level, seed=seed)
    loss = float(step1.predict(params=target[0], tokens=target[1]))

    def acc(lo_hi):  # the exponential law predicts errors: accuracy is 1 - error
        if lo_hi is None:
            return None
        lo, hi = float(lo_hi[0]), float(lo_hi[1])
        return (1 - hi, 1 - lo) if step2.law.kind == "error" else (lo, hi)

    mean = float(pred.mean)
    return replace(base, loss=loss, mean=1 - mean if step2.law.kind == "error" else mean,
                   ci=acc(pred.ci), pi=acc(pred.pi))


def _step_one(rows: pd.DataFrame, loss_metric: str, law: str, checkpoints: str,
              bootstrap: int, seed: int) -> LawFit:
    """Step 1: the loss law fitted to the loss metric's chosen checkpoints."""
    loss_rows = rows[rows["metric"] == loss_metric]
    loss_rows = loss_rows[checkpoint_mask(loss_rows, checkpoints)]
    return make_law(law).fit(loss_rows, bootstrap=bootstrap, seed=seed)


def _final_task_rows(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    t = rows[rows["metric"] == task]
    return t[t["final"].to_numpy(dtype=bool)]


def step_two_baseline(rows: pd.DataFrame) -> float | None:
    """The task's ``random_baseline`` (None when the table does not say)."""
    if "random_baseline" not in rows:
        return None
    rb = pd.to_numeric(rows["random_baseline"], errors="coerce").dropna()
    return float(rb.iloc[0]) if len(rb) else None


def _verdict(rows: pd.DataFrame, task: str) -> list[str]:
    """What the ladder's final accuracies say before any fit: near chance, not rising."""
    from scipy.stats import spearmanr  # imported when used: scipy.stats is a second to import
    final = _final_task_rows(rows, task)
    reasons = []
    rb = step_two_baseline(final)
    largest = final[final["params"] == final["params"].max()]
    if rb is not None and largest["value"].mean() - rb < NEAR_CHANCE:
        reasons.append(f"near chance: {largest['value'].mean():.3f} at the largest proxy vs "
                       f"random {rb:.3f}")
    if final["flops"].nunique() >= 3:
        rho = spearmanr(final["flops"], final["value"]).statistic
        if not rho >= MONOTONE:
            reasons.append(f"not rising with compute: Spearman {rho:.2f} of accuracy with "
                           "FLOPs")
    return reasons


def _step_two_checks(step2: LawFit, rows, loss_metric: str, task: str,
                     options: TaskOptions) -> tuple[float, list[str]]:
    """Step 2's residual against the spread of accuracies, and its points past the knee."""
    data = step_two_rows(rows, loss_metric=loss_metric, metric=task,
                         options=replace(options, anchor=False))
    fitted = step2.predict(loss=data["loss"].to_numpy())
    if step2.law.kind == "error":
        fitted = 1 - fitted
    resid = data["value"].to_numpy() - fitted
    rmse = float(np.sqrt(np.mean(resid ** 2)))
    spread = float(data["value"].std())
    reasons = []
    if not rmse < spread:
        reasons.append(f"noisy: step-2 residual {rmse:.3f} as large as the spread of "
                       f"accuracies {spread:.3f}")
    if step2.law.name == "sigmoid":
        p = step2.params
        rise = (fitted - p["b"]) / max(p["a"], 1e-12)
        past = int((rise > 0.1).sum())
        if past < PAST_KNEE:
            reasons.append(f"before the knee: {past} points past the sigmoid's knee, needs "
                           f"{PAST_KNEE}")
    return rmse, reasons


def _holdout(rows, task, loss_metric, step1: LawFit | str, options, seed) -> dict[str, Any]:
    """Both steps fitted below the largest model size (step 1 given: ``step1``, or why it
    failed), scored on its runs' final checkpoints (Choshen et al. 2024's hold-out of the
    largest size): errors in nats and in accuracy."""
    largest = rows["params"].max()
    below, held = rows[rows["params"] < largest], rows[rows["params"] == largest]
    out: dict[str, Any] = {"params": float(largest)}
    if isinstance(step1, str):
        return {**out, "error": None, "why": step1}
    try:
        step2 = fit_step_two(below, loss_metric=loss_metric, metric=task, options=options,
                             bootstrap=0, seed=seed)
    except (InputError, ValueError) as exc:
        return {**out, "error": None, "why": str(exc)}
    final = _final_task_rows(held, task)
    losses = held[(held["metric"] == loss_metric)][["run", "tokens", "value"]]
    pts = final.merge(losses.rename(columns={"value": "loss"}), on=["run", "tokens"])
    if pts.empty:
        return {**out, "error": None, "why": "no held-out run logs both metrics"}
    pred_loss = step1.predict(params=pts["params"].to_numpy(), tokens=pts["tokens"].to_numpy())
    acc = chain(step1, step2).predict(params=pts["params"].to_numpy(),
                                      tokens=pts["tokens"].to_numpy())
    at_loss = step2.predict(loss=pts["loss"].to_numpy())
    if step2.law.kind == "error":
        acc, at_loss = 1 - acc, 1 - at_loss
    return {**out, "runs": len(pts),
            "step1_error": float(np.mean(np.abs(pred_loss - pts["loss"]))),
            "step2_error": float(np.mean(np.abs(at_loss - pts["value"]))),
            "error": float(np.mean(np.abs(acc - pts["value"])))}
