"""The scaling report: observations, fits and decisions assembled into sections, in order.

The order is that of a good scaling report: the decision first, then the evidence it rests on
(experiment table, loss curves, the scaling fit and its prediction at the target, IsoFLOP
valleys, the go/no-go scatter, downstream and regression tables), then the data's smoke checks.
This module holds the result types and the order of work: the laws come from :mod:`.fits`, the
sections from :mod:`.sections`, the figures from :mod:`.figures` (static SVG), and
:mod:`.render` writes HTML and Markdown. A section with nothing to show is kept, empty, with
the reason it is empty.

Signs follow DESIGN.md: a delta is ``recipe - baseline`` in the metric's units; a *gain* is the
improvement (positive is better): ``baseline - recipe`` for a loss.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.fit import LawFit
from ..laws.forms import make_law
from ..observations.table import Observations
from .figures import Figure
from .fits import RecipeFit, fit_recipes, predict_target

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Table:
    """A table of pre-formatted cells (strings), with a caption saying what it shows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows],
                "caption": self.caption}


@dataclass(frozen=True)
class Section:
    """One numbered section of the report; ``omitted`` says why it is empty, when it is."""

    key: str
    title: str
    intro: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    omitted: str | None = None
    verdict: str | None = None  # a headline word: go, no-go, inconclusive

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "intro": self.intro,
                "verdict": self.verdict, "omitted": self.omitted,
                "tables": [t.to_dict() for t in self.tables],
                "figures": [f.to_dict() for f in self.figures], "notes": list(self.notes)}


@dataclass(frozen=True)
class Report:
    """A built report: its sections in order, with HTML and Markdown renderings.

    ``meta`` holds what the report was built from (sources, metric, law, target, baseline).
    """

    title: str
    sections: tuple[Section, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections: {', '.join(s.key for s in self.sections)}")

    @property
    def html(self) -> str:
        """One self-contained HTML page: inline CSS, SVG figures and a few lines of script."""
        from .render import to_html

        return to_html(self)

    @property
    def markdown(self) -> str:
        """The report as Markdown; figures are referred to, not embedded (see :meth:`write`)."""
        from .render import to_markdown

        return to_markdown(self)

    def write(self, path: str | Path, *, format: str | None = None) -> Path:
        """Write ``html`` or ``md`` (from the suffix unless given); Markdown figures are written
        as SVG files in ``<name>_figures/`` beside it. The file is replaced atomically."""
        from .render import write

        return write(self, Path(path), format)

    def to_dict(self) -> dict[str, Any]:
        """The report's numbers without the figures' markup: what ``--json`` writes."""
        return {"title": self.title, "meta": self.meta,
                "sections": [s.to_dict() for s in self.sections]}


@dataclass
class Analysis:
    """What the sections are built from (internal, shared by :mod:`.sections`)."""

    frame: pd.DataFrame  # every row, with run_id
    main: pd.DataFrame  # rows of the reported metric
    metric: str
    kind: str
    recipes: list[str]  # baseline first
    baseline: str
    target: dict[str, Any]
    law_name: str
    fits: dict[str, RecipeFit] = field(default_factory=dict)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: dict[str, Any] | None = None
    checks: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    tick: Callable[[int], None] = lambda n=1: None

    @property
    def better(self) -> int:
        """+1 when lower is better (loss), -1 when higher is (accuracy): gain = better*(b - r)."""
        return 1 if self.kind == "loss" else -1


def build_report(
    obs: Observations | pd.DataFrame,
    *,
    metric: str | None = None,
    fit: LawFit | Mapping[str, LawFit] | None = None,
    compare: Any = None,
    checks: Any = None,
    target: tuple[float, float] | Mapping[str, float] | None = None,
    baseline: str | None = None,
    law: str = "chinchilla",
    bootstrap: int = 100,
    holdout: bool = True,
    seed: int = 0,
    title: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Build the scaling report of a ladder.

    Parameters
    ----------
    obs : the observations (every metric: the reported one, downstream tasks, ``train``).
    metric : the loss metric the scaling fit and decision use (default: the loss metric logged
        by the most runs, ``val/*`` preferred).
    fit : a fitted law: one per recipe (mapping), one fitted with ``by="recipe"``, or one law
        when the data hold one recipe. Default: fit ``law`` per recipe here.
    compare, checks : the result of the recipe comparison and of the stage-0 data checks (an
        object with ``to_dict()`` or that dict); their sections say so when absent.
        ``compare=True`` runs :func:`scaling_ladder.compare.compare` here with its defaults
        (baseline, metric, target and seed as given here).
    target : ``(params, tokens)`` to predict at (default: the largest run of the data).
    baseline : the recipe others are compared with (default: the comparison's, else
        ``default``, else the first by name).
    law, bootstrap, holdout, seed : for the fits made here: the law's name, run-clustered
        bootstrap resamples, whether to hold out the largest model size (when at least four
        sizes), and the resampling seed.
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
    _check_args(frame, bootstrap, law)
    chk = _as_dict(checks, "checks")
    frame = frame.copy()
    multi = frame["experiment"].nunique() > 1
    frame["run_id"] = (frame["experiment"].astype(str) + "/" + frame["run"].astype(str)
                       if multi else frame["run"].astype(str))
    metric = choose_metric(frame, metric)
    main = frame[frame["metric"] == metric]
    kind = str(main["kind"].iloc[0])
    recipes = sorted(main["recipe"].unique(), key=natural)
    cmp = None if compare is True else _as_dict(compare, "compare")
    base = _baseline(recipes, baseline, cmp)
    recipes = [base] + [r for r in recipes if r != base]
    reserved = 1000 if compare is True else 0  # progress units of a comparison run here
    total = reserved + len(recipes) * max(bootstrap, 1) + 8
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(min(done, total), total)

    if compare is True:
        cmp = _run_compare(obs, base, metric, target, seed, progress, reserved, total)
        tick(reserved)
    a = Analysis(frame=frame, main=main, metric=metric, kind=kind, recipes=recipes,
                 baseline=base, target=_target(main, target, cmp), law_name=law, compare=cmp,
                 checks=chk, tick=tick)
    from .sections import ORDER  # imported here: the sections import this module's classes

    fit_recipes(a, fit, law=law, bootstrap=bootstrap, holdout=holdout, seed=seed)
    predict_target(a)
    built = []
    for make in ORDER:
        built.append(make(a))
        tick()
    meta = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sources": sources, "rows": int(len(frame)),
        "runs": int(frame["run_id"].nunique()), "metric": metric, "kind": kind,
        "recipes": recipes, "baseline": base, "target": a.target, "law": law,
        "bootstrap": bootstrap, "seed": seed, "notes": a.notes,
        "set_aside": dict(obs.set_aside) if isinstance(obs, Observations) else {},
    }
    names = ", ".join(Path(p).name for p in sources)
    name = title or f"Scaling report: {metric}" + (f" ({names})" if names else "")
    return Report(name, tuple(built), meta)


# ----------------------------------------------------------------------------- arguments


def _check_args(frame: pd.DataFrame, bootstrap: int, law: str) -> None:
    if not (isinstance(bootstrap, (int, np.integer)) and bootstrap >= 0):
        raise ValueError("The 'bootstrap' argument of build_report must be an int >= 0. "
                         f"Got {bootstrap!r}.")
    make_law(law)  # raises the ValueError naming the laws
    if len(frame) == 0:
        raise InputError(None, "no rows to report", fix="loosen the selection")


def _as_dict(x: Any, name: str) -> dict[str, Any] | None:
    if x is None:
        return None
    if hasattr(x, "to_dict"):
        x = x.to_dict()
    if not isinstance(x, Mapping):
        raise ValueError(f"The '{name}' argument of build_report must be a result with "
                         f"to_dict() or a dict. Got {type(x).__name__}.")
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


def _baseline(recipes: list[str], baseline: str | None, cmp: dict | None) -> str:
    if baseline is None and cmp and isinstance(cmp.get("baseline"), str):
        baseline = cmp["baseline"]
    if baseline is None:
        return "default" if "default" in recipes else recipes[0]
    if baseline not in recipes:
        raise InputError(None, f'no recipe "{baseline}" in the reported rows', column="recipe",
                         fix=f"choose the baseline among {', '.join(recipes)}")
    return baseline


def _run_compare(obs, baseline: str, metric: str, target, seed: int,
                 progress: Progress | None, share: int, total: int) -> dict[str, Any]:
    """The recipe comparison with its defaults, its progress mapped onto ``share`` units."""
    from ..compare import compare

    if len(obs.frame["recipe"].unique() if isinstance(obs, Observations)
           else obs["recipe"].unique()) < 2:
        return None
    n, d = (None, None) if target is None else (
        (target["params"], target["tokens"]) if isinstance(target, Mapping) else target)

    def sub(done: int, of: int) -> None:
        if progress:
            progress(int(share * done / max(of, 1)), total)

    return compare(obs, baseline=baseline, metric=metric, target_params=n, target_tokens=d,
                   seed=seed, progress=sub).to_dict()


def _target(main: pd.DataFrame, target, cmp: dict | None = None) -> dict[str, Any]:
    given = (cmp or {}).get("target")
    if target is None and isinstance(given, dict) and given.get("params") and given.get("tokens"):
        target = (given["params"], given["tokens"])
        how = "the comparison's target"
    else:
        how = "given"
    if target is None:
        n = float(main["params"].max())
        d = float(main.loc[main["params"] == main["params"].max(), "tokens"].max())
        how = "the largest run of the data (pass --target-params/--target-tokens to choose)"
    else:
        if isinstance(target, Mapping):
            n, d = float(target["params"]), float(target["tokens"])
        else:
            n, d = (float(v) for v in target)
        if not (np.isfinite(n) and np.isfinite(d) and n > 0 and d > 0):
            raise ValueError(f"The 'target' of build_report must be positive (params, tokens). "
                             f"Got {target!r}.")
    return {"params": n, "tokens": d, "flops": 6.0 * n * d, "how": how}
