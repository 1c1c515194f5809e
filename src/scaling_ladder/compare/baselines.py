"""Simple predictors of the recipe ordering at a target scale, the bar a scaling-law fit must beat.

DataDecide (Magnusson et al. 2025, arXiv:2504.11393) found that ranking recipes at a single
proxy scale gets about 80% of pairwise decisions at 1B right at about 2% of the compute, and
that eight scaling-law methods did not beat it. A multi-scale fit earns its place only by
predicting the ordering at the target better than these baselines at the same proxy compute.

Every function here takes a *per-scale table*: columns ``recipe``, ``params``, ``tokens``,
``value``, one row per recipe and scale (matched (N, D) cell), seeds averaged;
:func:`scale_table` builds it from :func:`~scaling_ladder.compare.scales.final_values`. The
table holds proxies only (runs smaller than the target). Each function returns
``dict[recipe, float]``: either a predicted value at the target in the metric's units, or a
score whose order is the predicted order, oriented like the metric (a lower score stands for a
lower value), so pairwise decision accuracy against the observed values is meaningful for
both losses and accuracies.

"Tokens per parameter" is D/N. A proxy size has a scale *at the target's ratio* when its D/N
is within ``rtol`` (relative) of the target's; DataDecide and the over-training suite of
Gadre et al. (2024) train every size at one ratio, so that is the natural comparison point,
and the largest-compute scale of the size stands in where no run was trained at that ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..format import count

RATIO_RTOL = 0.1  # D/N within 10% counts as the target's ratio (nominal 20 vs 19.6 measured)


def scale_table(finals: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Per-scale table (recipe, params, tokens, value, n_runs) from ``final_values`` rows.

    ``finals`` is the output of :func:`~scaling_ladder.compare.scales.final_values`
    (``scale_params``/``scale_tokens`` name the matched cell) or any table with ``params``
    and ``tokens`` already matched; ``metric`` selects one metric when the table has several.
    Values are averaged over the runs (seeds) of each recipe and scale.
    """
    f = finals if metric is None else finals[finals["metric"] == metric]
    n = "scale_params" if "scale_params" in f else "params"
    d = "scale_tokens" if "scale_tokens" in f else "tokens"
    g = f.groupby(["recipe", n, d], sort=True)["value"]
    out = g.agg(value="mean", n_runs="size").reset_index()
    return out.rename(columns={n: "params", d: "tokens"})


def _common_scales(table: pd.DataFrame, size: float) -> pd.DataFrame:
    """Scales (params, tokens) at one size that hold every recipe of the table."""
    n_recipes = table["recipe"].nunique()
    at = table[table["params"] == size]
    cover = at.groupby(["params", "tokens"])["recipe"].nunique()
    return cover[cover == n_recipes].reset_index()[["params", "tokens"]]


def _pick(scales: pd.DataFrame, tokens_per_param: float, rtol: float) -> tuple[float, float]:
    """The scale nearest the target's D/N if within ``rtol``, else the largest-compute one."""
    ratio = scales["tokens"].to_numpy(float) / scales["params"].to_numpy(float)
    gap = np.abs(np.log(ratio / tokens_per_param))
    i = int(np.argmin(gap))
    if gap[i] <= np.log1p(rtol):
        return float(scales["params"].iloc[i]), float(scales["tokens"].iloc[i])
    flops = scales["params"].to_numpy(float) * scales["tokens"].to_numpy(float)
    j = int(np.argmax(flops))
    return float(scales["params"].iloc[j]), float(scales["tokens"].iloc[j])


def scale_at(table: pd.DataFrame, size: float, tokens_per_param: float, *,
             rtol: float = RATIO_RTOL) -> tuple[float, float] | None:
    """The scale of ``size`` a single-scale ranking uses: the one holding every recipe at the
    target's tokens per parameter (within ``rtol``), else the largest-compute one holding
    every recipe; None when no scale of that size holds every recipe."""
    scales = _common_scales(table, size)
    return None if scales.empty else _pick(scales, tokens_per_param, rtol)


def ranking_scales(table: pd.DataFrame, target_params: float, target_tokens: float, *,
                   k: int = 1, rtol: float = RATIO_RTOL) -> list[tuple[float, float]]:
    """The ``k`` largest proxy sizes holding every recipe, each at its :func:`scale_at` scale
    (largest first; fewer when fewer sizes hold every recipe)."""
    tpp = target_tokens / target_params
    out = []
    for size in sorted(table["params"].unique(), reverse=True):
        s = scale_at(table, float(size), tpp, rtol=rtol)
        if s is not None:
            out.append(s)
        if len(out) == k:
            break
    return out


def _values(table: pd.DataFrame, scale: tuple[float, float]) -> dict[str, float]:
    at = table[(table["params"] == scale[0]) & (table["tokens"] == scale[1])]
    return {str(r): float(v) for r, v in zip(at["recipe"], at["value"], strict=True)}


def naive(table: pd.DataFrame, target_params: float, target_tokens: float, *,
          rtol: float = RATIO_RTOL) -> dict[str, float]:
    """Observed values at the largest proxy scale that holds every recipe (a score).

    DataDecide's single-scale baseline (Magnusson et al. 2025): the ranking at the largest
    proxy size, at the target's tokens per parameter where every recipe was trained there,
    else at that size's largest-compute scale holding every recipe. The values are the
    proxy's, not predictions at the target: only their order is the prediction. Empty when
    no proxy scale holds every recipe.
    """
    scales = ranking_scales(table, target_params, target_tokens, k=1, rtol=rtol)
    return _values(table, scales[0]) if scales else {}


def mean_rank(table: pd.DataFrame, target_params: float, target_tokens: float, *,
              k: int = 2, rtol: float = RATIO_RTOL) -> dict[str, float]:
    """Mean rank over the ``k`` largest proxy scales holding every recipe (a score).

    Ranks ascend with the value (rank 1 = lowest value; ties share the mean rank), so the
    score is oriented like the metric. Averaging two sizes damps seed noise at the largest
    one, the reason DataDecide looks at several checkpoints and sizes. With one such scale it
    is the ranking at that scale.
    """
    from scipy import stats  # imported when used: scipy.stats is a second to import
    scales = ranking_scales(table, target_params, target_tokens, k=k, rtol=rtol)
    if not scales:
        return {}
    ranks = []
    for s in scales:
        v = _values(table, s)
        r = stats.rankdata(list(v.values()))
        ranks.append(dict(zip(v, r, strict=True)))
    return {rec: float(np.mean([rk[rec] for rk in ranks])) for rec in ranks[0]}


def trend_points(table: pd.DataFrame, tokens_per_param: float, *,
                 rtol: float = RATIO_RTOL) -> pd.DataFrame:
    """Per recipe and proxy size, the row :func:`log_n_trend` fits: the one at the target's
    tokens per parameter (within ``rtol``), else that recipe's largest-compute row there."""
    n = table["params"].to_numpy(float)
    d = table["tokens"].to_numpy(float)
    gap = np.abs(np.log(d / n / tokens_per_param))
    miss = gap > np.log1p(rtol)
    # rows at the ratio first, nearest first; else the largest compute first
    order = table.assign(_miss=miss, _key=np.where(miss, -n * d, gap))
    order = order.sort_values(["recipe", "params", "_miss", "_key"], kind="stable")
    pick = order.drop_duplicates(["recipe", "params"], keep="first")
    return pick.drop(columns=["_miss", "_key"]).reset_index(drop=True)


def log_n_trend(table: pd.DataFrame, target_params: float, target_tokens: float, *,
                rtol: float = RATIO_RTOL) -> dict[str, float]:
    """Per recipe, a least-squares line of value against log N, evaluated at the target N.

    The points are the recipe's proxies at the target's tokens per parameter (else each
    size's final, largest-compute point; see :func:`trend_points`); with two sizes it is the
    line through both. A predicted value at the target (crude in level, but it carries a
    recipe's trend across the target when the recipes cross between the proxies). A recipe
    with fewer than two sizes gets NaN.
    """
    pts = trend_points(table, target_tokens / target_params, rtol=rtol)
    x_all = np.log(pts["params"].to_numpy(float))
    y_all = pts["value"].to_numpy(float)
    x0 = np.log(target_params)
    out = {}
    for recipe, idx in sorted(pts.groupby("recipe").indices.items()):
        x, y = x_all[idx], y_all[idx]
        if len(np.unique(x)) < 2:
            out[str(recipe)] = float("nan")
            continue
        slope, icept = np.polyfit(x, y, 1)
        out[str(recipe)] = float(icept + slope * x0)
    return out


def blend(fit_pred: Mapping[str, float], observed: Mapping[str, float], w: float, *,
          baseline: str | None = None) -> dict[str, float]:
    """The fitted delta against the baseline shrunk toward the observed one (a value).

    ``delta = w * fitted + (1 - w) * observed``, both ``recipe - baseline``; the result is
    the baseline's fitted value plus that delta. ``fit_pred`` holds predictions at the target,
    ``observed`` the values at the largest proxy (:func:`naive`). ``w = 1`` is the fit, ``w = 0``
    the naive ranking. The order does not depend on which recipe is the baseline (the
    difference of two blended deltas is the same blend of their differences); ``baseline``
    defaults to the first recipe in both. Recipes missing or NaN on either side are left out.
    """
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"The blend weight w must be in [0, 1]. Got {w!r}.")
    keys = [r for r in fit_pred if r in observed
            and np.isfinite(fit_pred[r]) and np.isfinite(observed[r])]
    if not keys:
        return {}
    base = baseline if baseline in keys else keys[0]
    fb, ob = float(fit_pred[base]), float(observed[base])
    return {r: fb + w * (float(fit_pred[r]) - fb) + (1.0 - w) * (float(observed[r]) - ob)
            for r in keys}


def observed_order(table: pd.DataFrame, target_params: float, target_tokens: float, *,
                   rtol: float = RATIO_RTOL) -> tuple[dict[str, float], str]:
    """The ranking the data show: the values at the largest proxy scale holding every recipe
    (:func:`naive`), and that scale.

    The ranking at the largest proxy, not the mean rank of the two largest: once its ties are
    broken, the mean rank orders the demo ladder worse than the largest proxy alone
    (bench/backtest_ranking.md), and elsewhere it is at most one pair ahead.
    """
    scales = ranking_scales(table, target_params, target_tokens, k=1, rtol=rtol)
    if not scales:
        return {}, ""
    n, d = scales[0]
    return _values(table, scales[0]), f"ranking at {count(n)} @ {count(d)} tok"


@dataclass(frozen=True)
class TargetOrder:
    """The recipes' predicted order at the target, best first, and what it rests on."""

    order: tuple[str, ...]
    basis: str  # "fit", or the observed ranking ("ranking at <scale>")
    scores: dict[str, float]  # the fit's predicted values, or the values measured there

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "basis": self.basis, "scores": self.scores}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetOrder:
        return cls(tuple(d["order"]), d["basis"], {k: float(v) for k, v in d["scores"].items()})


def default_order(table: pd.DataFrame, target_params: float, target_tokens: float,
                  fit_pred: Mapping[str, float], *, fit_trusted: bool,
                  higher_is_better: bool = False, rtol: float = RATIO_RTOL) -> TargetOrder:
    """The order ``compare`` reports at the target, and what it rests on.

    The fit's predicted values when ``fit_trusted`` (its leave-largest-out backtest on the
    ladder beats the deltas one size down and no prediction is flagged,
    :mod:`scaling_ladder.compare.sanity`), else :func:`observed_order`. Chosen by
    ``bench/backtest_ranking.md``: on the real multi-recipe ladders the ranking at the largest
    proxy predicts the target's order about as well as the fit or better, at a fraction of its
    compute, except far beyond the proxies.
    """
    usable = {r: float(v) for r, v in fit_pred.items() if np.isfinite(v)}
    if fit_trusted and len(usable) >= 2:
        scores, basis = usable, "fit"
    else:
        scores, basis = observed_order(table, target_params, target_tokens, rtol=rtol)
    order = sorted(scores, key=lambda r: -scores[r] if higher_is_better else scores[r])
    return TargetOrder(tuple(order), basis, scores)
