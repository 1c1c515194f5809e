"""Sanity gates on every prediction at the target, and the ladder's own backtest.

A fitted law extrapolates; the runs are what was measured. A prediction is flagged, and the
decision falls back to the ranking the data show at the largest proxy scale, when

* the recipe (or the baseline) is predicted worse at the target than it measured at a smaller
  model with the same or fewer tokens: more parameters and more data do not raise the loss;
* a parameter of its law sits at a bound in the members that carry most of the mixture's
  weight (E = 0 or A = 0 on proxies too far from the asymptote: the law cannot identify it);
* the fit misses the recipe's largest proxy by more than three standard errors of its mean;
* on this ladder, the fit predicts the largest size's deltas (fitted without it) no better
  than the deltas measured one size down do: the multi-scale fit is worth nothing over
  ranking at one scale there (DataDecide, Magnusson et al. 2025, arXiv:2504.11393, found the
  same of eight scaling-law methods on its ladder).

DESIGN.md: "a prediction never silently contradicts the data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..laws.fit import LawFit
from .joint import JointFit
from .scales import better_sign, fmt_count
from .target import Target

SE_LIMIT = 3.0  # a residual beyond this many standard errors of the mean is not noise


@dataclass(frozen=True)
class OwnBacktest:
    """Leave-largest-out on the user's ladder: error of the predicted deltas at the largest
    size (fitted without it) against the deltas measured one size down (naive)."""

    scale: str
    fit_error: float
    naive_error: float
    n_deltas: int

    @property
    def fit_better(self) -> bool:
        return bool(self.fit_error < self.naive_error)

    def to_dict(self) -> dict[str, Any]:
        return {"held_out": self.scale, "fit_error": self.fit_error,
                "naive_error": self.naive_error, "n_deltas": self.n_deltas,
                "fit_better": self.fit_better,
                "measure": "mean |predicted - observed| of recipe - baseline at the held-out "
                           "size; naive: the delta measured one size down (diagnostic)"}


def at_bounds(fit: LawFit, group: str) -> list[str]:
    """Free parameters of ``group`` at (or numerically on) a bound of the law."""
    law, out = fit.law, []
    for k, v in fit.group_params(group).items():
        if k in law.fixed:
            continue
        lo, hi = law.bounds_of(k)
        if (np.isfinite(lo) and abs(v - lo) <= 1e-6 * (1 + abs(lo))) or (
                np.isfinite(hi) and abs(v - hi) <= 1e-6 * (1 + abs(hi))):
            out.append(f"{k} = {v:.3g}")
    return out


def _se_of_mean(row: pd.Series) -> float:
    sd = float(row["noise_sd"]) if pd.notna(row["noise_sd"]) else math.nan
    return sd / math.sqrt(max(int(row["n_runs"]), 1))


def flags(jf: JointFit, table: pd.DataFrame, predicted: dict[str, float], *, baseline: str,
          target: Target) -> dict[str, list[str]]:
    """Per recipe (the baseline included), why its prediction at the target is not trusted.

    ``table`` is the per-scale table of the decision metric, ``predicted`` each recipe's
    predicted value at the target.
    """
    out: dict[str, list[str]] = {}
    kind = str(table["kind"].iloc[0]) if len(table) else "loss"
    s = better_sign(kind)
    for r, value in predicted.items():
        why: list[str] = []
        rows = table[table["recipe"] == r]
        if target.params is not None:
            below = rows[(rows["params"] <= target.params * 1.001)
                         & (rows["tokens"] <= target.tokens * 1.001)]
            if len(below):
                best = below.loc[(s * below["value"]).idxmax()]
                se = _se_of_mean(best)
                margin = 2 * se if np.isfinite(se) else 0.0
                if s * (best["value"] - value) > margin:
                    why.append(f"predicted {value:.4g} at the target, worse than the "
                               f"{best['value']:.4g} it measured at {best['scale']} "
                               "(fewer parameters and tokens)")
        share = sum(m.weight for m in jf.members if at_bounds(m.fit, r))
        if share >= 0.5:
            names = at_bounds(jf.fit, r) or next(at_bounds(m.fit, r) for m in jf.members
                                                 if at_bounds(m.fit, r))
            why.append(f"{', '.join(names)} at a bound of the law (members holding "
                       f"{share:.0%} of the weight): the ladder does not identify it")
        miss = _misses_largest(jf, rows, r)
        if miss:
            why.append(miss)
        out[r] = why
    return out


def _misses_largest(jf: JointFit, rows: pd.DataFrame, recipe: str) -> str:
    if rows.empty or jf.fit is None:
        return ""
    top = rows.sort_values(["params", "tokens"]).iloc[-1]
    se = _se_of_mean(top)
    with np.errstate(all="ignore"):
        fitted = sum(m.weight * float(m.fit.predict(group=recipe, params=top["params"],
                                                    tokens=top["tokens"]))
                     for m in jf.members)
    res = float(top["value"] - fitted)
    if not (np.isfinite(se) and se > 0 and np.isfinite(res)) or abs(res) <= SE_LIMIT * se:
        return ""
    return (f"the fit misses its largest proxy ({top['scale']}) by {res:+.3g}, "
            f"{abs(res) / se:.1f}x the standard error of its mean")


def own_backtest(jf: JointFit, table: pd.DataFrame, *, baseline: str) -> OwnBacktest | None:
    """The fit's deltas at the held-out largest size against the deltas one size down."""
    pts = jf.held_out_points
    if pts is None or pts.empty:
        return None
    cells = pts.groupby(["recipe", "params", "tokens"], as_index=False)[
        ["value", "predicted"]].mean()
    base = cells[cells["recipe"] == baseline]
    fit_err, naive_err = [], []
    sizes = np.sort(table["params"].unique())
    for _, c in cells[cells["recipe"] != baseline].iterrows():
        b = base[np.isclose(base["tokens"], c["tokens"], rtol=0.02)
                 & np.isclose(base["params"], c["params"], rtol=0.02)]
        smaller = sizes[sizes < c["params"] * 0.98]
        if b.empty or not len(smaller):
            continue
        observed = float(c["value"] - b["value"].iloc[0])
        predicted = float(c["predicted"] - b["predicted"].iloc[0])
        down = table[np.isclose(table["params"], smaller[-1], rtol=0.02)
                     & (table["recipe"] == c["recipe"]) & table["delta"].notna()]
        if down.empty:
            continue
        tpp = c["tokens"] / c["params"]
        near = down.iloc[int(np.argmin(np.abs(np.log(down["tokens"] / down["params"] / tpp))))]
        fit_err.append(abs(predicted - observed))
        naive_err.append(abs(float(near["delta"]) - observed))
    if not fit_err:
        return None
    return OwnBacktest(f"N = {fmt_count(float(pts['params'].max()))}",
                       float(np.mean(fit_err)), float(np.mean(naive_err)), len(fit_err))


def observed_p_better(row: pd.Series) -> float:
    """P(the recipe is better) at one scale from its measured delta: a t distribution with the
    delta's standard error (the seed or checkpoint noise of :mod:`.scales`)."""
    se, df = float(row.get("se", math.nan)), float(row.get("se_df", math.nan))
    if not (np.isfinite(se) and se > 0 and np.isfinite(row["delta"])):
        return math.nan
    gain = better_sign(str(row["kind"])) * float(row["delta"])
    return float(stats.t.cdf(gain / se, df if np.isfinite(df) and df > 0 else 1e6))
