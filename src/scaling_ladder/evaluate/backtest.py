"""Backtest the recipe ordering: predict larger trained scales from the proxies below them.

The decision-accuracy protocol of DataDecide (Magnusson et al. 2025, arXiv:2504.11393) on data
that has the answer: hide every run above ``proxy_max_params``, predict the recipes' values at
each hidden target scale from the proxies, and score the predicted ordering against the
observed one by pairwise decision accuracy. Predictors scored side by side (the simple ones are
in :mod:`scaling_ladder.compare.baselines`):

* **default**: the order ``compare`` reports (:func:`~scaling_ladder.compare.baselines.
  default_order`): the fit where compare's decision would rest on it (its own
  leave-largest-out backtest passes, no prediction is flagged, the target is far enough
  beyond the proxies), else the ranking at the largest proxy;
* **tool**: the joint fit of :mod:`scaling_ladder.compare.joint` per loss metric (sharing chosen
  by held-out error among the proxies), and for accuracies the two-step law through the
  decision metric (Bhagia et al. 2024, arXiv:2412.04403); point predictions, no bootstrap;
* **naive**: the ranking at the largest proxy (same tokens per parameter as the target where
  trained, else the proxy's largest-compute scale), DataDecide's single-scale baseline;
* **mean_rank**: the mean rank over the two largest proxy scales;
* **log_n_trend**: per recipe, a line in log N through its proxies, read at the target N;
* **blend w**: the fitted delta shrunk toward the observed one at the largest proxy,
  ``w * fitted + (1 - w) * observed``, for each w of ``blend_weights``;
* **single@tool compute**: the ranking at the one proxy scale with the most compute that does
  not exceed the tool's (what the tool's runs would have bought as a single-scale ranking);
* **each proxy size alone** (``proxy <size>``), at the target's tokens per parameter.

``proxy_sizes`` chooses which proxy sizes every predictor may use (e.g. the two largest). Each
predictor is charged the compute of the runs it uses: the sum of 6ND over those runs (every
seed) divided by the target's 6ND times the number of recipes, i.e. proxy compute per recipe
as a fraction of one target run (the ``compute`` table). The fit is charged for every proxy run
it sees; a blend for the fit's and the naive scale's runs. A WSD cooldown branch is charged
its full 6ND although its stable phase is shared with its parent run (an upper bound).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..compare import sanity
from ..compare.baselines import (
    RATIO_RTOL,
    blend,
    default_order,
    log_n_trend,
    mean_rank,
    ranking_scales,
    scale_at,
    scale_table,
    trend_points,
)
from ..compare.joint import JointFit, joint_fit, mixture_draws
from ..compare.prepare import AVERAGE, check_inputs, with_average
from ..compare.ranking import rank_agreement
from ..compare.scales import final_values, fmt_count
from ..compare.target import Target
from ..errors import InputError
from ..laws.compute import flops_6nd
from ..laws.downstream import fit_task_law
from ..laws.forms import ChinchillaLaw
from ..observations.table import Observations, checkpoint_mask

BLEND_WEIGHTS = (0.25, 0.5, 0.75)
SINGLE = "single@tool compute"
DEFAULT = "default"
_LABELS = ("metric", "target", "n_recipes", "naive_scale", "single_scale")


def _blend_name(w: float) -> str:
    return f"blend {w:g}"


@dataclass(frozen=True)
class Backtest:
    """Decision accuracy per (metric, target) of the tool, the baselines and each size.

    ``table`` columns: metric, target, n_recipes, then one decision-accuracy column per
    predictor (tool, naive, mean_rank, log_n_trend, ``blend <w>``, ``single@tool compute``,
    ``proxy <size>``), and naive_scale, single_scale (the scales those two rank at).
    ``orders`` has the observed and predicted orders; ``compute`` one row per (metric, target,
    method) with ``compute_fraction`` (proxy compute per recipe over the target's 6ND) and
    the number of runs charged. ``proxy_sizes``: the proxy sizes (N) the predictors used.
    """

    table: pd.DataFrame
    orders: pd.DataFrame
    proxy_max_params: float
    compute: pd.DataFrame = field(default_factory=pd.DataFrame)
    proxy_sizes: tuple[float, ...] = ()

    @property
    def methods(self) -> list[str]:
        """Decision-accuracy columns of ``table``, in order."""
        return [c for c in self.table.columns if c not in _LABELS]

    def mean(self) -> dict[str, float]:
        """Mean decision accuracy of each predictor over all (metric, target) rows (NaN rows,
        where a predictor had no prediction, left out)."""
        return {c: _nanmean(self.table[c]) for c in self.methods}

    def mean_compute(self) -> dict[str, float]:
        """Mean compute fraction of each predictor over all (metric, target) rows."""
        if self.compute.empty:
            return {}
        g = self.compute.groupby("method", sort=False)["compute_fraction"]
        return {str(m): _nanmean(s) for m, s in g}

    def to_dict(self) -> dict[str, Any]:
        def plain(d):
            return {k: (v if np.isfinite(v) else None) for k, v in d.items()}

        return {"proxy_max_params": self.proxy_max_params,
                "proxy_sizes": list(self.proxy_sizes),
                "table": self.table.replace({np.nan: None}).to_dict(orient="records"),
                "mean": plain(self.mean()), "mean_compute": plain(self.mean_compute()),
                "compute": self.compute.replace({np.nan: None}).to_dict(orient="records"),
                "orders": self.orders.to_dict(orient="records")}

    def summary(self) -> str:
        t = self.table.copy()
        mean = {"metric": "mean", "target": "", "n_recipes": "", **self.mean()}
        t = pd.concat([t, pd.DataFrame([mean])], ignore_index=True)
        if self.mean_compute():
            comp = {"metric": "compute", "target": "", "n_recipes": "", **self.mean_compute()}
            t = pd.concat([t, pd.DataFrame([comp])], ignore_index=True)
        t = t.drop(columns=[c for c in ("naive_scale", "single_scale") if c in t])
        return t.to_string(index=False, float_format="%.3f", na_rep="-")


def _nanmean(s) -> float:
    x = np.asarray(s, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def backtest(obs: Observations | pd.DataFrame, *, baseline: str, proxy_max_params: float,
             targets: Sequence[tuple[float, float]] | None = None,
             metrics: Sequence[str] | None = None, decision_metric: str | None = None,
             law=None, tolerance: float = 0.01, seed: int = 0,
             proxy_sizes: int | Sequence[float] | None = None, fit_checkpoints: str = "auto",
             n_starts: int = 3, blend_weights: Sequence[float] = BLEND_WEIGHTS,
             fit_max_ratio: float | None = None, rtol: float = RATIO_RTOL) -> Backtest:
    """Predict the recipe ordering at hidden larger scales from the proxies; score it.

    Parameters
    ----------
    obs : observations with several recipes, some above ``proxy_max_params``.
    baseline : the baseline recipe (it anchors the joint fit and the blends; ordering covers
        all recipes).
    proxy_max_params : runs with N at most this are the proxies; larger ones are hidden.
    targets : (N, D) scales to predict (default: every hidden scale holding every recipe).
    metrics : metrics to score (default: every loss metric and ``ds/average``).
    decision_metric : the loss the two-step accuracy prediction goes through (default as in
        :func:`~scaling_ladder.compare.compare`).
    proxy_sizes : the proxy sizes every predictor may use: None (all up to
        ``proxy_max_params``), an int k (the k largest), or model sizes N (matched within 2%).
    fit_checkpoints : checkpoints the joint fit sees (``auto`` as compare, ``final``, ...).
    n_starts : starts of each joint fit (compare's default).
    blend_weights : the weights w of the blends of fitted and observed deltas.
    fit_max_ratio : fit only the proxy runs with at most this many tokens per parameter
        (within ``rtol``): the joint fit at a proxy compute near the single-scale rankings'
        (None: every proxy run, as compare does).
    rtol : relative tolerance on tokens per parameter for "the target's ratio".
    """
    frame, where, decision_metric = check_inputs(obs, baseline, decision_metric)
    law = law or ChinchillaLaw()
    frame, _ = with_average(frame)
    fin = final_values(frame, match="params-tokens", tolerance=tolerance)
    recipes = sorted(frame["recipe"].unique())
    hidden = fin[fin["params"] > proxy_max_params]
    below = fin[fin["params"] <= proxy_max_params]
    if below.empty or hidden.empty:
        raise InputError(where, f"no runs on both sides of N = {proxy_max_params:g}",
                         column="params", fix="choose a proxy cut between the model sizes")
    sizes = _select_sizes(sorted(below["scale_params"].unique()), proxy_sizes, where)
    below = below[below["scale_params"].isin(sizes)]
    keys = pd.MultiIndex.from_frame(frame[["experiment", "run"]])
    proxies = frame[keys.isin(pd.MultiIndex.from_frame(below[["experiment", "run"]]))]
    if targets is None:
        full = hidden.groupby(["scale_params", "scale_tokens"])["recipe"].nunique()
        targets = [k for k, n in full.items() if n == len(recipes)]
    if metrics is None:
        metrics = sorted(m for m in frame.loc[frame["kind"] == "loss", "metric"].unique())
        metrics += [AVERAGE] if AVERAGE in set(frame["metric"]) else []
    runs = _run_compute(below)
    fitted = proxies
    if fit_max_ratio is not None:
        short = runs.index[runs["tokens"] / runs["params"] <= fit_max_ratio * (1 + rtol)]
        fitted = proxies[pd.MultiIndex.from_frame(proxies[["experiment", "run"]]).isin(short)]
    predictions, trusted = _tool_predictions(fitted, law, metrics, decision_metric, targets,
                                             baseline, seed, fit_checkpoints, n_starts)
    fit_runs = _fit_runs(fitted, fit_checkpoints)
    rows, orders, compute = [], [], []
    for metric in metrics:
        higher = metric.startswith("ds/")
        mf = fin[fin["metric"] == metric]
        tab = scale_table(below[below["metric"] == metric])
        for n, d in targets:
            observed = _values_at(mf, n, d)
            label = f"{fmt_count(n)} @ {fmt_count(d)} tok"
            preds, used, scale_labels = _predictors(
                tab, n, d, predictions.get((metric, n, d), {}), runs, fit_runs,
                metric if not higher else decision_metric, metric, baseline, sizes,
                blend_weights, rtol, trusted.get((metric, n, d), False))
            row = {"metric": metric, "target": label, "n_recipes": len(observed)}
            row.update({m: rank_agreement(p, observed).decision_accuracy
                        for m, p in preds.items()})
            row.update(scale_labels)
            rows.append(row)
            orders.append({"metric": metric, "target": label,
                           "observed": _order(observed, higher),
                           **{m: _order(p, higher) for m, p in preds.items()
                              if not m.startswith("proxy ")}})
            per_recipe = flops_6nd(n, d) * max(tab["recipe"].nunique(), 1)
            for m, ids in used.items():
                flops = float(runs.loc[list(ids), "flops"].sum()) if ids else float("nan")
                compute.append({"metric": metric, "target": label, "method": m,
                                "compute_fraction": flops / per_recipe, "n_runs": len(ids)})
    return Backtest(pd.DataFrame(rows), pd.DataFrame(orders), float(proxy_max_params),
                    pd.DataFrame(compute, columns=["metric", "target", "method",
                                                   "compute_fraction", "n_runs"]),
                    tuple(float(s) for s in sizes))


def _select_sizes(available: list[float], proxy_sizes, where) -> list[float]:
    """The proxy sizes chosen by ``proxy_sizes`` (see :func:`backtest`), ascending."""
    if proxy_sizes is None:
        return list(available)
    if isinstance(proxy_sizes, (int, np.integer)) and not isinstance(proxy_sizes, bool):
        if not 1 <= proxy_sizes <= len(available):
            raise ValueError(f"The 'proxy_sizes' option asks for the {proxy_sizes} largest "
                             f"proxy sizes; there are {len(available)}.")
        return list(available[-int(proxy_sizes):])
    chosen = []
    for s in proxy_sizes:
        hit = [a for a in available if np.isclose(a, float(s), rtol=0.02)]
        if not hit:
            raise InputError(where, f"no proxy size N = {fmt_count(s)} (there are "
                             f"{', '.join(fmt_count(a) for a in available)})", column="params",
                             fix="choose proxy sizes among the trained ones")
        chosen.append(hit[0])
    return sorted(set(chosen))


def _run_compute(below: pd.DataFrame) -> pd.DataFrame:
    """One row per proxy run: recipe, its scale, and its compute 6ND (final tokens)."""
    g = below.groupby(["experiment", "run"], sort=False)
    runs = g.agg(recipe=("recipe", "first"), params=("params", "first"),
                 tokens=("tokens", "max"), scale_params=("scale_params", "first"),
                 scale_tokens=("scale_tokens", "first"))
    runs["flops"] = flops_6nd(runs["params"].to_numpy(float), runs["tokens"].to_numpy(float))
    return runs


def _fit_runs(proxies: pd.DataFrame, fit_checkpoints: str) -> dict[str, set]:
    """Per metric, the (experiment, run) keys whose rows the joint fit sees."""
    rows = proxies[checkpoint_mask(proxies, fit_checkpoints)]
    return {str(m): set(zip(g["experiment"], g["run"], strict=True))
            for m, g in rows.groupby("metric", sort=False)}


def _runs_of(runs: pd.DataFrame, points: pd.DataFrame) -> set:
    """Keys of the runs at the (recipe, params, tokens) cells of ``points``."""
    if runs.empty or points.empty:
        return set()
    cells = points[["recipe", "params", "tokens"]].rename(
        columns={"params": "scale_params", "tokens": "scale_tokens"}).drop_duplicates()
    hit = runs.reset_index().merge(cells, on=["recipe", "scale_params", "scale_tokens"])
    return set(zip(hit["experiment"], hit["run"], strict=True))


def _runs_at(runs: pd.DataFrame, scales, recipes) -> set:
    """Keys of the runs of ``recipes`` at the given (params, tokens) scales."""
    cells = pd.DataFrame([(r, n, d) for n, d in scales for r in recipes],
                         columns=["recipe", "params", "tokens"])
    return _runs_of(runs, cells)


def _at_ratio(scale: tuple[float, float], tpp: float, rtol: float) -> bool:
    return abs(np.log(scale[1] / scale[0] / tpp)) <= np.log1p(rtol)


def _scale_label(scale: tuple[float, float], tpp: float, rtol: float) -> str:
    if _at_ratio(scale, tpp, rtol):
        return f"{fmt_count(scale[0])} @ {tpp:.3g} tokens/param"
    return f"{fmt_count(scale[0])} @ {fmt_count(scale[1])} tok"


def _predictors(tab, n, d, tool, runs, fit_runs, fit_metric, metric, baseline, sizes,
                blend_weights, rtol, trusted):
    """Every predictor's values for one (metric, target), the runs each is charged for, and
    the labels of the scales the naive and equal-compute rankings use."""
    tpp = d / n
    recipes = set(tab["recipe"])
    preds: dict[str, dict] = {"tool": tool}
    used: dict[str, set] = {}
    fit_keys = (fit_runs.get(fit_metric, set()) | fit_runs.get(metric, set())) & set(runs.index)
    used["tool"] = {k for k in fit_keys if runs.at[k, "recipe"] in recipes} if tool else set()
    top = ranking_scales(tab, n, d, k=2, rtol=rtol)
    order = default_order(tab, n, d, tool, fit_trusted=trusted, rtol=rtol)
    preds[DEFAULT] = order.scores
    used[DEFAULT] = used["tool"] if order.basis == "fit" else _runs_at(runs, top[:1], recipes)
    naive_vals = _values(tab, top[0]) if top else {}
    preds["naive"] = naive_vals
    used["naive"] = _runs_at(runs, top[:1], recipes)
    preds["mean_rank"] = mean_rank(tab, n, d, k=2, rtol=rtol)
    used["mean_rank"] = _runs_at(runs, top, recipes)
    preds["log_n_trend"] = log_n_trend(tab, n, d, rtol=rtol)
    pts = trend_points(tab, tpp, rtol=rtol)
    used["log_n_trend"] = _runs_of(runs, pts)
    for w in blend_weights:
        name = _blend_name(w)
        preds[name] = blend(tool, naive_vals, w, baseline=baseline) if tool else {}
        used[name] = (used["tool"] | used["naive"]) if tool else set()
    # the single proxy scale that the tool's compute would have bought
    labels = {"naive_scale": _scale_label(top[0], tpp, rtol) if top else "", "single_scale": ""}
    preds[SINGLE], used[SINGLE] = {}, set()
    if used["tool"]:
        budget = float(runs.loc[list(used["tool"]), "flops"].sum())
        cover = tab.groupby(["params", "tokens"])["recipe"].nunique()
        best, best_flops = None, -1.0
        for scale in cover[cover == len(recipes)].index:
            f = float(runs.loc[list(_runs_at(runs, [scale], recipes)), "flops"].sum())
            if best_flops < f <= budget * (1 + 1e-9):
                best, best_flops = scale, f
        if best is not None:
            preds[SINGLE] = _values(tab, best)
            used[SINGLE] = _runs_at(runs, [best], recipes)
            labels["single_scale"] = _scale_label(best, tpp, rtol)
    for size in sizes:
        name = f"proxy {fmt_count(size)}"
        s = scale_at(tab, float(size), tpp, rtol=rtol)
        preds[name] = _values(tab, s) if s else {}
        used[name] = _runs_at(runs, [s], recipes) if s else set()
    return preds, used, labels


def _values(tab: pd.DataFrame, scale: tuple[float, float]) -> dict[str, float]:
    at = tab[(tab["params"] == scale[0]) & (tab["tokens"] == scale[1])]
    return {str(r): float(v) for r, v in zip(at["recipe"], at["value"], strict=True)}


def _tool_predictions(proxies, law, metrics, decision_metric, targets, baseline, seed,
                      fit_checkpoints, n_starts) -> tuple[dict, dict]:
    """(metric, N, D) -> {recipe: predicted value} from fits to the proxies only, and
    (metric, N, D) -> whether compare would order by the fit there (``default``)."""
    out: dict = {}
    trusted: dict = {}
    chosen = proxies[checkpoint_mask(proxies, fit_checkpoints)]
    fits: dict[str, JointFit] = {}
    needed = [m for m in metrics if not m.startswith("ds/")]
    if any(m.startswith("ds/") for m in metrics) and decision_metric not in needed:
        needed.append(decision_metric)
    for metric in needed:
        rows = chosen[chosen["metric"] == metric]
        if rows.empty or rows["params"].nunique() < 2:  # a law in N needs two sizes
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                jf = joint_fit(law, rows, baseline=baseline, bootstrap=0, seed=seed,
                               n_starts=n_starts)
        except (InputError, ValueError):
            continue
        if jf.fit is not None:
            fits[metric] = jf
    finals = final_values(proxies, match="params-tokens", tolerance=0.01)
    for metric in metrics:
        for n, d in targets:
            t = Target(float(n), float(d), float(flops_6nd(n, d)), "tokens-per-param")
            if metric in fits:
                jf = fits[metric]
                pred = {r: p for r, (p, _) in mixture_draws(jf, t, list(jf.fit.groups)).items()}
                out[(metric, n, d)] = pred
                trusted[(metric, n, d)] = _trusted(jf, scale_table(finals, metric), pred,
                                                   baseline, t)
    accs = [m for m in metrics if m.startswith("ds/")]
    if accs and decision_metric in fits:
        jf = fits[decision_metric]
        for metric in accs:
            try:
                task = fit_task_law(proxies, loss_metric=decision_metric, metric=metric,
                                    bootstrap=0, seed=seed)
            except (InputError, ValueError):
                continue
            for n, d in targets:
                t = Target(float(n), float(d), float(flops_6nd(n, d)), "tokens-per-param")
                losses = mixture_draws(jf, t, list(jf.fit.groups))
                # compare trusts a two-step prediction as far as it trusts its loss's fit
                trusted[(metric, n, d)] = trusted.get((decision_metric, n, d), False)
                out[(metric, n, d)] = {
                    r: float(task.fit.law(task.fit.group_params(r), loss=losses[r][0]))
                    for r in task.fit.groups if r in losses}
    return out, trusted


def _trusted(jf: JointFit, tab: pd.DataFrame, predicted: dict[str, float], baseline: str,
             target: Target) -> bool:
    """Whether compare's decision would rest on this fit (:mod:`..compare.sanity`); without
    noise estimates here, the "worse than measured" margin is 0."""
    own = sanity.own_backtest(jf, tab, baseline=baseline)
    top = tab.loc[(tab["params"] * tab["tokens"]).idxmax()]
    if sanity.fit_basis(own, n_sizes=int(tab["params"].nunique()), target=target,
                        largest=(float(top["params"]),
                                 float(flops_6nd(top["params"], top["tokens"])))):
        return False
    flags = sanity.flags(jf, tab, predicted, baseline=baseline, target=target)
    return not any(flags.values())


def _values_at(mf: pd.DataFrame, n: float, d: float) -> dict[str, float]:
    """Mean value per recipe at the scale nearest (N, D), within 2% in each."""
    hit = mf[np.isclose(mf["scale_params"], n, rtol=0.02)
             & np.isclose(mf["scale_tokens"], d, rtol=0.02)]
    return hit.groupby("recipe")["value"].mean().to_dict()


def _order(values: dict[str, float], higher: bool) -> str:
    vals = {r: v for r, v in values.items() if np.isfinite(v)}
    if not vals:
        return ""
    return " > ".join(sorted(vals, key=lambda r: -vals[r] if higher else vals[r]))
