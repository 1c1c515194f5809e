"""The scaling report: observations, fits and decisions assembled into sections, in order.

The order is that of a good scaling report: the decision first, then the evidence it rests on
(experiment table, loss curves, the scaling fit and its prediction at the target, IsoFLOP
valleys, the go/no-go scatter, downstream and regression tables), then the data's smoke checks.
This module only orchestrates: what a report is made of is in :mod:`.model`, the single-recipe
laws in :mod:`.fits`, the sections in :mod:`.sections`, the figures in :mod:`.figures`, and
:mod:`.render` writes HTML and Markdown. A section with nothing to show is kept, empty, with
the reason it is empty.

One number per quantity: the report renders the comparison (a
:class:`~scaling_ladder.compare.Comparison`, run here or rebuilt from its JSON with
``Comparison.from_dict``) and takes its metric, baseline and target; its numbers are the
report's numbers for the decision metric at the target. Signs follow DESIGN.md: what a person
reads is a *gain*, the improvement (positive is better).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..compare import CompareOptions, Comparison
from ..compare import compare as run_compare
from ..compare.decide import Rule
from ..compare.tokenizers import common_units
from ..errors import InputError
from ..laws.compute import flops_6nd
from ..laws.fit import LawFit
from ..laws.forms import make_law
from ..observations.table import Observations
from .fits import fit_recipes, predict_target
from .model import Analysis, AtTarget, Report
from .sections import BUILD_ORDER, ORDER

Progress = Callable[[int, int], None]
TRAIN_SET_ASIDE = ("training loss set aside: each recipe trains on its own data, so it is not "
                   "comparable across recipes (held-out slices are)")


def build_report(
    obs: Observations | pd.DataFrame,
    *,
    metric: str | None = None,
    fit: LawFit | Mapping[str, LawFit] | None = None,
    compare: Comparison | bool | None = None,
    checks: Any = None,
    target: tuple[float, float] | Mapping[str, float] | None = None,
    baseline: str | None = None,
    law: str = "chinchilla",
    bootstrap: int = 100,
    holdout: bool = True,
    seed: int = 0,
    title: str | None = None,
    compare_options: CompareOptions | None = None,
    rule: Rule | None = None,
    downstream: Any = None,
    progress: Progress | None = None,
) -> Report:
    """Build the scaling report of a ladder.

    Parameters
    ----------
    obs : the observations (every metric: the reported one, downstream tasks; training loss is
        set aside, as in the comparison, unless it is the metric).
    metric : the loss metric the scaling fit and decision use (default: the comparison's, else
        the loss metric logged by the most runs, ``val/*`` preferred).
    fit : a fitted law: one per recipe (mapping), one fitted with ``by="recipe"``, or one law
        when the data hold one recipe. Default: fit ``law`` per recipe here. These single-recipe
        fits draw the curves and bands; with a comparison they predict nothing at the target.
    compare : the recipe comparison (:func:`scaling_ladder.compare.compare`, or
        ``Comparison.from_dict`` of ``ladder compare --json``); ``True`` runs it here with
        ``compare_options`` (default: this ``law`` and ``bootstrap``), ``rule``, and the
        baseline, metric, target and seed given here. Its metric, baseline and target are the
        report's: giving others is a ValueError.
    checks : the stage-0 data checks (``data.CheckResult`` or its ``to_dict()``).
    downstream : task predictions at the target (:func:`scaling_ladder.laws.twostep.
        downstream`), or ``True`` to make them here with its defaults (slower: two fits per
        task), shown in the Downstream section.
    target : ``(params, tokens)`` to predict at (default: the comparison's, else the largest
        run of the data).
    baseline : the recipe others are compared with (default: the comparison's, else
        ``default``, else the first by name).
    law, bootstrap, holdout, seed : for the fits made here: the law's name, run-clustered
        bootstrap resamples, whether to hold out the largest model size (when at least four
        sizes; a diagnostic), and the resampling seed.
    progress : called as ``progress(done, total)``.

    Returns
    -------
    Report

    Example
    -------
    >>> import scaling_ladder as sl
    >>> obs = sl.datasets.load("overtrain")
    >>> report = sl.build_report(obs, metric="val/c4", baseline="c4")  # doctest: +SKIP
    >>> report.write("report.html")                                    # doctest: +SKIP
    """
    frame = obs.frame if isinstance(obs, Observations) else obs
    sources = list(obs.sources) if isinstance(obs, Observations) else []
    _check_args(frame, bootstrap, law, compare)
    cmp = compare if isinstance(compare, Comparison) else None
    if cmp is not None:
        _check_agrees(cmp, metric, baseline, target)
        metric, baseline = cmp.metric, cmp.baseline
    chk = _checks_dict(checks)
    frame = frame.copy()
    multi = frame["experiment"].nunique() > 1
    frame["run_id"] = (frame["experiment"].astype(str) + "/" + frame["run"].astype(str)
                       if multi else frame["run"].astype(str))
    metric = choose_metric(frame, metric)
    notes = []
    if metric != "train" and (frame["metric"] == "train").any():
        frame = frame[frame["metric"] != "train"]
        notes.append(TRAIN_SET_ASIDE)
    # recipes that differ in tokenizer: every loss in bits/byte, as compare decides
    frame, _, unit_notes = common_units(frame, metric, where=", ".join(sources) or None)
    notes += unit_notes
    loss_units = "bits/byte" if unit_notes else "nats/token"
    main = frame[frame["metric"] == metric]
    kind = str(main["kind"].iloc[0])
    recipes = sorted(main["recipe"].unique(), key=natural)
    base = _baseline(recipes, baseline)
    recipes = [base] + [r for r in recipes if r != base]
    reserved = 1000 if compare is True else 0  # progress units of a comparison run here
    total = reserved + len(recipes) * max(bootstrap, 1) + 8
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(min(done, total), total)

    if compare is True and len(recipes) > 1:
        options = compare_options or CompareOptions(law=law, bootstrap=bootstrap)
        cmp = _run_compare(obs, base, metric, target, seed, options, rule, progress,
                           reserved, total)
    tick(reserved)
    a = Analysis(frame=frame, main=main, metric=metric, kind=kind, recipes=recipes,
                 baseline=base, target=_target(main, target, cmp), law_name=law, compare=cmp,
                 checks=chk, tick=tick, loss_units=loss_units)
    if cmp is not None:
        a.at_target = {r: AtTarget.of(cmp, r) for r in cmp.recipes}
        a.compared_here = cmp.target.path == "tokens-per-param"
    if downstream is True:
        from ..laws.twostep import downstream as predict_tasks

        tg = a.target
        a.tasks = predict_tasks(frame.drop(columns="run_id"),
                                target=(tg["params"], tg["tokens"]), law=law,
                                bootstrap=bootstrap, seed=seed)
    elif downstream is not None:
        a.tasks = downstream
    fit_recipes(a, fit, law=law, bootstrap=bootstrap, holdout=holdout, seed=seed)
    predict_target(a)
    built = {}
    for make in BUILD_ORDER:
        built[make] = make(a)
        tick()
    meta = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sources": sources, "rows": int(len(frame)),
        "runs": int(frame["run_id"].nunique()), "metric": metric, "kind": kind,
        "recipes": recipes, "baseline": base, "target": a.target, "law": law,
        "bootstrap": bootstrap, "seed": seed, "notes": notes + a.notes,
        "set_aside": dict(obs.set_aside) if isinstance(obs, Observations) else {},
    }
    names = ", ".join(Path(p).name for p in sources)
    name = title or f"Scaling report: {metric}" + (f" ({names})" if names else "")
    return Report(name, tuple(built[make] for make in ORDER), meta)


# ----------------------------------------------------------------------------- arguments


def _check_args(frame: pd.DataFrame, bootstrap: int, law: str, compare: Any) -> None:
    if not (isinstance(bootstrap, (int, np.integer)) and bootstrap >= 0):
        raise ValueError("The 'bootstrap' argument of build_report must be an int >= 0. "
                         f"Got {bootstrap!r}.")
    if not (compare is None or isinstance(compare, (bool, Comparison))):
        raise ValueError("The 'compare' argument of build_report must be a Comparison (from "
                         "compare(), or Comparison.from_dict() of `ladder compare --json`) or "
                         f"True. Got {type(compare).__name__}.")
    make_law(law)  # raises the ValueError naming the laws
    if len(frame) == 0:
        raise InputError(None, "no rows to report", fix="loosen the selection")


def _check_agrees(cmp: Comparison, metric: str | None, baseline: str | None, target) -> None:
    """The report is about the comparison's metric, baseline and target, or one name would
    carry two different numbers."""
    fix = "leave it out (the comparison's is used) or re-run ladder compare with it"
    if metric is not None and metric != cmp.metric:
        raise ValueError(f"The comparison decides on metric {cmp.metric}, not {metric}: {fix}.")
    if baseline is not None and baseline != cmp.baseline:
        raise ValueError(f"The comparison's baseline is {cmp.baseline}, not {baseline}: {fix}.")
    if target is not None and cmp.target.path == "tokens-per-param":
        n, d = _pair(target)
        if not (np.isclose(n, cmp.target.params) and np.isclose(d, cmp.target.tokens)):
            raise ValueError(f"The comparison's target is {cmp.target.label}, not N = {n:.3g}, "
                             f"D = {d:.3g}: {fix}.")


def _checks_dict(x: Any) -> dict[str, Any] | None:
    """The data checks as their JSON: a ``CheckResult`` or what its ``to_dict()`` wrote."""
    if x is None:
        return None
    if hasattr(x, "to_dict"):
        x = x.to_dict()
    if not isinstance(x, Mapping):
        raise ValueError("The 'checks' argument of build_report must be a CheckResult or its "
                         f"to_dict(). Got {type(x).__name__}.")
    return dict(x)


def natural(name: str) -> list:
    """Sort key that orders c4_2ep before c4_14ep (digits compared as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def choose_metric(frame: pd.DataFrame, metric: str | None) -> str:
    """The metric to report: the one asked for, else the loss logged by the most runs."""
    present = sorted(frame["metric"].unique())
    if metric is not None:
        if metric not in present:
            shown = ", ".join(present[:8]) + (", …" if len(present) > 8 else "")
            raise InputError(None, f'no rows with metric "{metric}"', column="metric",
                             fix=f"choose one of {shown}")
        return metric
    losses = frame[frame["kind"] == "loss"]
    if losses.empty:
        raise InputError(None, "no loss metric to report (every metric is an accuracy)",
                         column="kind", fix="add a loss metric or pass --metric")
    counts = losses.groupby("metric")["run_id"].nunique()
    return max(sorted(counts.index), key=lambda m: (counts[m], m.startswith("val/")))


def _baseline(recipes: list[str], baseline: str | None) -> str:
    if baseline is None:
        return "default" if "default" in recipes else recipes[0]
    if baseline not in recipes:
        raise InputError(None, f'no recipe "{baseline}" in the reported rows', column="recipe",
                         fix=f"choose the baseline among {', '.join(recipes)}")
    return baseline


def _pair(target) -> tuple[float, float]:
    if isinstance(target, Mapping):
        return float(target["params"]), float(target["tokens"])
    n, d = target
    return float(n), float(d)


def _run_compare(obs, baseline: str, metric: str, target, seed: int, options: CompareOptions,
                 rule: Rule | None, progress: Progress | None, share: int,
                 total: int) -> Comparison:
    """The recipe comparison, its progress mapped onto ``share`` units of the report's."""
    n, d = (None, None) if target is None else _pair(target)

    def sub(done: int, of: int) -> None:
        if progress:
            progress(int(share * done / max(of, 1)), total)

    return run_compare(obs, baseline=baseline, metric=metric, target_params=n,
                       target_tokens=d, rule=rule, options=options, seed=seed, progress=sub)


def _target(main: pd.DataFrame, target, cmp: Comparison | None) -> dict[str, Any]:
    how = "given"
    if target is None and cmp is not None and cmp.target.path == "tokens-per-param":
        target = (cmp.target.params, cmp.target.tokens)
        how = "the comparison's target" + ("" if cmp.target.given else
                                           ": its largest scale trained, as none was given")
    if target is None:
        n = float(main["params"].max())
        d = float(main.loc[main["params"] == main["params"].max(), "tokens"].max())
        how = "the largest run of the data (pass --target-params/--target-tokens to choose)"
    else:
        n, d = _pair(target)
        if not (np.isfinite(n) and np.isfinite(d) and n > 0 and d > 0):
            raise ValueError(f"The 'target' of build_report must be positive (params, tokens). "
                             f"Got {target!r}.")
    return {"params": n, "tokens": d, "flops": float(flops_6nd(n, d)), "how": how}
