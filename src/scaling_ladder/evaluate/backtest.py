"""Backtest the recipe ordering: predict larger trained scales from the proxies below them.

The decision-accuracy protocol of DataDecide (Magnusson et al. 2025, arXiv:2504.11393) on data
that has the answer: hide every run above ``proxy_max_params``, predict the recipes' values at
each hidden target scale, and score the predicted ordering against the observed one by
pairwise decision accuracy. Three predictors are scored side by side:

* **tool**: the joint fit of :mod:`scaling_ladder.compare.joint` per loss metric (sharing chosen by
  held-out error among the proxies), and for accuracies the two-step law through the decision
  metric (Bhagia et al. 2024, arXiv:2412.04403);
* **naive**: the ranking at the largest proxy (same tokens per parameter as the target where
  trained, else the proxy's largest-compute run), DataDecide's single-scale baseline;
* **each proxy size alone**, at the target's tokens per parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..compare.joint import fit_task_law, joint_fit, recipe_draws
from ..compare.prepare import AVERAGE, check_inputs, with_average
from ..compare.ranking import rank_agreement
from ..compare.scales import final_values, fmt_count
from ..compare.target import Target
from ..errors import InputError
from ..laws.forms import ChinchillaLaw
from ..observations.table import Observations, checkpoint_mask


@dataclass(frozen=True)
class Backtest:
    """Decision accuracy per (metric, target) of the tool, the naive proxy and each size.

    ``table`` columns: metric, target, n_recipes, tool, naive, naive_scale, then one column
    per proxy size (``proxy <size>``); ``orders`` has the predicted and observed orders.
    """

    table: pd.DataFrame
    orders: pd.DataFrame
    proxy_max_params: float

    def mean(self) -> dict[str, float]:
        """Mean decision accuracy of each predictor over all (metric, target) rows."""
        cols = [c for c in self.table.columns if c == "tool" or c == "naive"
                or c.startswith("proxy ")]
        return {c: float(np.nanmean(self.table[c].to_numpy(float))) for c in cols}

    def to_dict(self) -> dict[str, Any]:
        return {"proxy_max_params": self.proxy_max_params,
                "table": self.table.replace({np.nan: None}).to_dict(orient="records"),
                "mean": self.mean(),
                "orders": self.orders.to_dict(orient="records")}

    def summary(self) -> str:
        t = self.table.copy()
        mean = {"metric": "mean", "target": "", "n_recipes": "", "naive_scale": "",
                **self.mean()}
        t = pd.concat([t, pd.DataFrame([mean])], ignore_index=True)
        return t.drop(columns=["naive_scale"]).to_string(index=False, float_format="%.3f",
                                                         na_rep="-")


def backtest(obs: Observations | pd.DataFrame, *, baseline: str, proxy_max_params: float,
             targets: Sequence[tuple[float, float]] | None = None,
             metrics: Sequence[str] | None = None, decision_metric: str | None = None,
             law=None, tolerance: float = 0.01, seed: int = 0) -> Backtest:
    """Predict the recipe ordering at hidden larger scales from the proxies; score it.

    Parameters
    ----------
    obs : observations with several recipes, some above ``proxy_max_params``.
    baseline : the baseline recipe (it only anchors the joint fit; ordering covers all).
    proxy_max_params : runs with N at most this are the proxies; larger ones are hidden.
    targets : (N, D) scales to predict (default: every hidden scale holding every recipe).
    metrics : metrics to score (default: every loss metric and ``ds/average``).
    decision_metric : the loss the two-step accuracy prediction goes through (default as in
        :func:`~scaling_ladder.compare.compare`).
    """
    frame, where, decision_metric = check_inputs(obs, baseline, decision_metric)
    law = law or ChinchillaLaw()
    frame, _ = with_average(frame)
    fin = final_values(frame, match="params-tokens", tolerance=tolerance)
    recipes = sorted(frame["recipe"].unique())
    hidden = fin[fin["params"] > proxy_max_params]
    proxies = frame[frame["params"] <= proxy_max_params]
    if proxies.empty or hidden.empty:
        raise InputError(where, f"no runs on both sides of N = {proxy_max_params:g}",
                         column="params", fix="choose a proxy cut between the model sizes")
    if targets is None:
        full = hidden.groupby(["scale_params", "scale_tokens"])["recipe"].nunique()
        targets = [k for k, n in full.items() if n == len(recipes)]
    if metrics is None:
        metrics = sorted(m for m in frame.loc[frame["kind"] == "loss", "metric"].unique())
        metrics += [AVERAGE] if AVERAGE in set(frame["metric"]) else []
    predictions = _tool_predictions(proxies, law, metrics, decision_metric, targets, baseline,
                                    seed)
    rows, orders = [], []
    for metric in metrics:
        higher = metric.startswith("ds/")
        mf = fin[fin["metric"] == metric]
        for n, d in targets:
            observed = _values_at(mf, n, d)
            tool = predictions.get((metric, n, d), {})
            naive_vals, naive_scale = _naive(mf[mf["params"] <= proxy_max_params], d / n)
            row = {"metric": metric, "target": f"{fmt_count(n)} @ {fmt_count(d)} tok",
                   "n_recipes": len(observed),
                   "tool": rank_agreement(tool, observed).decision_accuracy,
                   "naive": rank_agreement(naive_vals, observed).decision_accuracy,
                   "naive_scale": naive_scale}
            for size in sorted(mf.loc[mf["params"] <= proxy_max_params, "params"].unique()):
                row[f"proxy {fmt_count(size)}"] = rank_agreement(
                    _values_at(mf, size, size * d / n), observed).decision_accuracy
            rows.append(row)
            orders.append({"metric": metric, "target": row["target"],
                           "observed": _order(observed, higher), "tool": _order(tool, higher),
                           "naive": _order(naive_vals, higher)})
    return Backtest(pd.DataFrame(rows), pd.DataFrame(orders), float(proxy_max_params))


def _tool_predictions(proxies, law, metrics, decision_metric, targets, baseline, seed) -> dict:
    """(metric, N, D) -> {recipe: predicted value} from fits to the proxies only."""
    out: dict = {}
    final = proxies[checkpoint_mask(proxies, "final")]
    loss_fits = {}
    for metric in metrics:
        rows = final[final["metric"] == metric]
        if rows.empty or metric.startswith("ds/"):
            continue
        jf = joint_fit(law, rows, baseline=baseline, bootstrap=0, seed=seed)
        if jf.fit is not None:
            loss_fits[metric] = jf.fit
    for metric in metrics:
        for n, d in targets:
            t = Target(float(n), float(d), 6.0 * n * d, "tokens-per-param")
            if metric in loss_fits:
                f = loss_fits[metric]
                out[(metric, n, d)] = {r: p for r, (p, _) in
                                       recipe_draws(f, t, list(f.groups)).items()}
    accs = [m for m in metrics if m.startswith("ds/")]
    if accs and decision_metric in loss_fits:
        f = loss_fits[decision_metric]
        for metric in accs:
            try:
                task = fit_task_law(proxies, loss_metric=decision_metric, metric=metric,
                                    bootstrap=0, seed=seed)
            except (InputError, ValueError):
                continue
            for n, d in targets:
                t = Target(float(n), float(d), 6.0 * n * d, "tokens-per-param")
                losses = recipe_draws(f, t, list(f.groups))
                out[(metric, n, d)] = {
                    r: float(task.fit.law(task.fit.group_params(r), loss=losses[r][0]))
                    for r in task.fit.groups if r in losses}
    return out


def _values_at(mf: pd.DataFrame, n: float, d: float) -> dict[str, float]:
    """Mean value per recipe at the scale nearest (N, D), within 2% in each."""
    hit = mf[np.isclose(mf["scale_params"], n, rtol=0.02)
             & np.isclose(mf["scale_tokens"], d, rtol=0.02)]
    return hit.groupby("recipe")["value"].mean().to_dict()


def _naive(mf: pd.DataFrame, tpp: float) -> tuple[dict[str, float], str]:
    """Values at the largest proxy size, at the target's tokens per parameter if every
    recipe has it there, else at that size's largest-compute scale every recipe has."""
    if mf.empty:
        return {}, ""
    n_recipes = mf["recipe"].nunique()
    top = mf[mf["params"] == mf["params"].max()]
    same = _values_at(top, top["scale_params"].iloc[0], top["scale_params"].iloc[0] * tpp)
    if len(same) == n_recipes:
        return same, f"{fmt_count(top['scale_params'].iloc[0])} @ {tpp:g} tokens/param"
    full = top.groupby("scale")["recipe"].nunique()
    full = full[full == n_recipes]
    if full.empty:
        return {}, ""
    best = top[top["scale"].isin(full.index)].sort_values("scale_flops")["scale"].iloc[-1]
    return top[top["scale"] == best].groupby("recipe")["value"].mean().to_dict(), best


def _order(values: dict[str, float], higher: bool) -> str:
    if not values:
        return ""
    return " > ".join(sorted(values, key=lambda r: -values[r] if higher else values[r]))
