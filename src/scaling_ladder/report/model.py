"""What a report is made of (tables, sections, the report) and what its sections are built from.

Every section module imports this module and never :mod:`.build`: build orchestrates, the
sections render, and no import in ``report/`` goes back up the chain
``build -> sections -> model -> render``.

One number per quantity: when a comparison predicts the decision metric at the report's
target, :class:`AtTarget` holds its numbers for one recipe (from ``Comparison.recipe_summary``
and the comparison's per-scale table), and every section prints them from there with the same
format. Gains are improvements (positive is better); a delta (``recipe - baseline``) appears
only in JSON keys named ``delta``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..compare import Comparison
from ..compare.scales import better_sign
from ..laws.fit import LawFit
from .cells import interval, num, signed
from .figures import Figure
from .render import to_html, to_markdown, write


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
    """One numbered section of the report; ``omitted`` says why it is empty, when it is.

    ``warnings`` are shown in a box at the top of the section, before its verdict (the
    Decision section gathers every warning of the report).
    """

    key: str
    title: str
    intro: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    omitted: str | None = None
    verdict: str | None = None  # a headline word: go, no-go, inconclusive
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "intro": self.intro,
                "verdict": self.verdict, "omitted": self.omitted,
                "warnings": list(self.warnings),
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

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a reader must see before the decision (shown at the top of the Decision)."""
        return tuple(w for s in self.sections for w in s.warnings)

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections: {', '.join(s.key for s in self.sections)}")

    @property
    def html(self) -> str:
        """One self-contained HTML page: inline CSS, SVG figures and a few lines of script."""
        return to_html(self)

    @property
    def markdown(self) -> str:
        """The report as Markdown; figures are referred to, not embedded (see :meth:`write`)."""
        return to_markdown(self)

    def write(self, path: str | Path, *, format: str | None = None) -> Path:
        """Write ``html`` or ``md`` (from the suffix unless given); Markdown figures are written
        as SVG files in ``<name>_figures/`` beside it. The file is replaced atomically."""
        return write(self, Path(path), format)

    def to_dict(self) -> dict[str, Any]:
        """The report's numbers without the figures' markup: what ``--json`` writes."""
        return {"title": self.title, "meta": self.meta, "warnings": list(self.warnings),
                "sections": [s.to_dict() for s in self.sections]}


# ---------------------------------------------------------------- what sections are built from


@dataclass(frozen=True)
class RecipeFit:
    """The single-recipe law fitted for one recipe (for the curves), and which runs it saw."""

    fit: LawFit
    group: str | None = None
    heldout: frozenset[str] = frozenset()
    selection: str = "final"
    source: str = "fitted here"


@dataclass(frozen=True)
class AtTarget:
    """One recipe's numbers from the comparison: the decision metric at the target and the gain
    observed at the largest proxy scale it shares with the baseline.

    Gains are improvements over the baseline (positive is better). ``proxy_gain`` is the
    per-scale table's delta at the largest-compute scale where the recipe has one (the scale
    the decision rule reads), turned into a gain. ``basis`` is what the decision's P(beats)
    rests on: ``fit`` (the prediction at the target) or the ranking at a scale, when the
    prediction is set aside.
    """

    recipe: str
    decision: str | None
    predicted: float | None
    predicted_ci: tuple[float | None, float | None] | None
    gain: float | None
    gain_ci: tuple[float, float] | None
    p_beats: float | None
    multiplier: float | None
    multiplier_ci: tuple[float, float] | None
    proxy_gain: float | None
    proxy_scale: str
    basis: str = "fit"

    @classmethod
    def of(cls, cmp: Comparison, recipe: str) -> AtTarget:
        s = cmp.recipe_summary(recipe)
        sign = better_sign(cmp.kind)
        gain = None if s["predicted_delta"] is None else sign * s["predicted_delta"]
        lo, hi = s["ci95"]
        gain_ci = (None if lo is None or hi is None
                   else tuple(sorted((sign * lo, sign * hi))))
        rows = cmp.per_scale[(cmp.per_scale["metric"] == cmp.metric)
                             & (cmp.per_scale["recipe"] == recipe)]
        rows = rows[pd.notna(rows["delta"])]
        proxy_gain, proxy_scale = None, ""
        if len(rows):
            top = rows.sort_values(["flops", "params"]).iloc[-1]
            proxy_gain, proxy_scale = sign * float(top["delta"]), str(top["scale"])
        mci = s["compute_multiplier_ci95"]
        return cls(recipe, None if recipe == cmp.baseline else s["decision"], s["predicted"],
                   tuple(s["predicted_ci95"]) if s["predicted"] is not None else None, gain,
                   gain_ci, s["p_beats_baseline"], s["compute_multiplier"],
                   tuple(mci) if mci else None, proxy_gain, proxy_scale,
                   s.get("basis", "fit"))

    @property
    def shown(self) -> dict[str, str]:
        """The cells every section prints: the same digits wherever a quantity appears."""
        mult = num(self.multiplier, 3)
        if self.multiplier_ci:
            mult += " " + interval(self.multiplier_ci, 3)
        on_fit = self.basis == "fit"
        basis = "the prediction at the target" if on_fit else f"the {self.basis}"
        if not on_fit and self.proxy_gain is not None and \
                self.basis == f"ranking at {self.proxy_scale}":
            basis += f" (gain {signed(self.proxy_gain)})"  # the gain it is decided on
        return {"predicted": num(self.predicted), "predicted_ci": interval(self.predicted_ci),
                "gain": signed(self.gain), "gain_ci": interval(self.gain_ci, sign=True),
                "p_beats": num(self.p_beats, 3), "multiplier": mult,
                # P(beats) of the prediction at the target: none when it is set aside
                "p_beats_at_target": num(self.p_beats, 3) if on_fit else "—",
                "proxy_gain": signed(self.proxy_gain), "proxy_scale": self.proxy_scale or "—",
                "decision": self.decision or "—", "basis": basis}


@dataclass
class Analysis:
    """What the sections are built from (internal to the report)."""

    frame: pd.DataFrame  # every row used (training loss set aside), with run_id
    main: pd.DataFrame  # rows of the reported metric
    metric: str
    kind: str
    recipes: list[str]  # baseline first
    baseline: str
    target: dict[str, Any]
    law_name: str
    fits: dict[str, RecipeFit] = field(default_factory=dict)
    # single-recipe predictions at the target; made only when no comparison predicts there
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: Comparison | None = None
    at_target: dict[str, AtTarget] = field(default_factory=dict)  # the comparison's numbers
    # the comparison predicts the report's metric at the report's (N, D): the scaling section
    # shows its numbers, not the single-recipe fits'
    compared_here: bool = False
    checks: dict[str, Any] | None = None
    tasks: Any = None  # the two-step task predictions (laws.twostep.Downstream), when asked
    notes: list[str] = field(default_factory=list)
    # raised by the sections built here, as (topic, recipe, text): a topic the comparison's
    # warnings already name for that recipe is not said twice
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    tick: Callable[[int], None] = lambda n=1: None
    loss_units: str = "nats/token"  # bits/byte when the recipes differ in tokenizer

    @property
    def better(self) -> int:
        """+1 when lower is better (loss), -1 when higher is (accuracy): gain = better*(b - r)."""
        return 1 if self.kind == "loss" else -1

    def gain_caption(self, *, mixed: bool = False) -> str:
        """The one sign convention, said wherever a gain is shown (``mixed``: a table of losses
        and accuracies)."""
        how = ("baseline − recipe for a loss, recipe − baseline for an accuracy" if mixed else
               "baseline − recipe" if self.kind == "loss" else "recipe − baseline")
        return f"Gain = improvement over {self.baseline} ({how}; positive is better)."
