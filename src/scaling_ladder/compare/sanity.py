"""Sanity gates on every prediction at the target, and the ladder's own backtest.

A fitted law extrapolates; the runs are what was measured. A prediction is flagged, and the
decision falls back to the ranking the data show at the largest proxy scale, when

* the recipe (or the baseline) is predicted worse at the target than it measured at a smaller
  model with the same or fewer tokens: more parameters and more data do not raise the loss;
* a parameter of its law sits at a bound in the members that carry most of the mixture's
  weight (E = 0 or A = 0 on proxies too far from the asymptote: the law cannot identify it);
* the fit misses the recipe's largest proxy by more than three standard errors of its mean;
* the ladder cannot check the fit (two model sizes: nothing to hold out), or the target is
  within :data:`MIN_EXTRAPOLATION` x the largest proxy's N, where the ranking there predicts
  the order as well (:func:`fit_basis`; these hold for every recipe);
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

from ..laws.fit import LawFit
from .joint import JointFit
from .scales import better_sign, fmt_count
from .target import Target

SE_LIMIT = 3.0  # a residual beyond this many standard errors of the mean is not noise
# Below this extrapolation in N the ranking at the largest proxies orders the target at least
# as well as the fit on every ladder of bench/backtest_ranking.md; beyond it, recipes can
# cross between the proxies and the target (the 6.9B over-training target, 17x).
MIN_EXTRAPOLATION = 10.0


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
    """Standard error of a cell's mean; NaN where the table carries no noise estimate."""
    sd = row.get("noise_sd", math.nan)
    sd = float(sd) if pd.notna(sd) else math.nan
    return sd / math.sqrt(max(int(row.get("n_runs", 1)), 1))


def _scale(row: pd.Series) -> str:
    return str(row["scale"]) if "scale" in row else \
        f"{fmt_count(float(row['params']))} @ {fmt_count(float(row['tokens']))} tok"


def flags(jf: JointFit, table: pd.DataFrame, predicted: dict[str, float], *, baseline: str,
          target: Target) -> dict[str, list[str]]:
    """Per recipe (the baseline included), why its prediction at the target is not trusted.

    ``table`` is the per-scale table of the decision metric (``recipe``, ``params``,
    ``tokens``, ``value``; with ``noise_sd`` and ``n_runs`` the margins are two standard
    errors and the largest proxy's residual is judged, else the margin is 0), ``predicted``
    each recipe's predicted value at the target.
    """
    out: dict[str, list[str]] = {}
    kind = str(table["kind"].iloc[0]) if len(table) and "kind" in table else "loss"
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
                               f"{best['value']:.4g} it measured at {_scale(best)} "
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
    return (f"the fit misses its largest proxy ({_scale(top)}) by {res:+.3g}, "
            f"{abs(res) / se:.1f}x the standard error of its mean")


def own_backtest(jf: JointFit, table: pd.DataFrame, *, baseline: str) -> OwnBacktest | None:
    """The fit's deltas at the held-out largest size against the deltas one size down.

    ``table`` is a per-scale table (``recipe``, ``params``, ``tokens``, ``value``; seeds
    averaged); the naive delta of a held-out cell is the recipe's ``value`` minus the
    baseline's at the next smaller size, at the scale nearest the cell's tokens per parameter
    that both were trained at.
    """
    pts = jf.held_out_points
    if pts is None or pts.empty:
        return None
    cells = pts.groupby(["recipe", "params", "tokens"], as_index=False)[
        ["value", "predicted"]].mean()
    base = cells[cells["recipe"] == baseline]
    cols = ["params", "tokens"]
    measured = table.groupby(["recipe", *cols], as_index=False)["value"].mean()
    deltas = measured.merge(measured[measured["recipe"] == baseline][[*cols, "value"]],
                            on=cols, suffixes=("", "_base"))
    deltas["delta"] = deltas["value"] - deltas["value_base"]
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
        down = deltas[np.isclose(deltas["params"], smaller[-1], rtol=0.02)
                      & (deltas["recipe"] == c["recipe"])]
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


def fit_basis(own: OwnBacktest | None, *, n_sizes: int, target: Target,
              largest: tuple[float, float]) -> str:
    """Why no recipe's decision rests on the fit ("" when the fit is what it rests on).

    ``largest`` is the (N, FLOPs) of the largest proxy run; for a compute-optimal target
    the extrapolation in N is taken as the square root of the one in compute (C ~ N^2).
    """
    if own is None:
        return (f"the fit cannot be checked on this ladder: with {n_sizes} model size(s) "
                "there is no smaller fit to predict the largest size from (needs 3 or more)")
    if not own.fit_better:
        return (f"on this ladder the fit predicts the deltas at {own.scale} (fitted without "
                f"it) no better than the deltas one size down do (error {own.fit_error:.3g} "
                f"vs {own.naive_error:.3g})")
    reach = (target.params / largest[0] if target.params is not None
             else math.sqrt(target.flops / largest[1]))
    if reach < MIN_EXTRAPOLATION:
        return (f"the target is {reach:.2g}x the largest proxy's N (< {MIN_EXTRAPOLATION:g}x),"
                " where the ranking at the largest proxies orders recipes at least as well as "
                "the fit (bench/backtest_ranking.md)")
    return ""


def observed_p_better(row: pd.Series) -> float:
    """P(the recipe is better) at one scale from its measured delta: a t distribution with the
    delta's standard error (the seed or checkpoint noise of :mod:`.scales`)."""
    from scipy import stats  # imported when used: scipy.stats is a second to import
    se, df = float(row.get("se", math.nan)), float(row.get("se_df", math.nan))
    if not (np.isfinite(se) and se > 0 and np.isfinite(row["delta"])):
        return math.nan
    gain = better_sign(str(row["kind"])) * float(row["delta"])
    return float(stats.t.cdf(gain / se, df if np.isfinite(df) and df > 0 else 1e6))
