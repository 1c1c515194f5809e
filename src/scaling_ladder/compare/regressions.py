"""Where a recipe is worse than the baseline beyond noise: the regression table, and tasks
too near chance to rank (Signal and Noise, Heineman et al. 2025, arXiv:2508.13144).

A regression *blocks* a recipe only when the data show it is worse by more than the rule's
threshold, with the number of slices and tasks in mind: with 22 slices and a 0.01-nat threshold,
a few slices of an equal recipe land past the threshold by noise alone, so a per-slice rule
would stop every recipe. Each slice or task of a recipe gets a one-sided p-value for "worse than
the baseline by more than the threshold", and the p-values of one recipe (its slices and tasks
at the largest shared scale and, where the recipe's decision rests on the fit, at the target: a
prediction the sanity gates set aside blocks nothing) are put under false-discovery control
(Benjamini & Hochberg 1995, q = 0.05). An aggregate (``val/average``, the mean loss over the
other slices weighted equally, and ``ds/average`` over the tasks; both measured per run, so
their noise comes from the runs) is one test of its own and blocks when its p-value is at most
q; at the target, where only each slice's prediction is known, the mean predicted delta over the
loss slices stands for it.

The p-value: with ``w = -sign * delta`` the worsening (sign +1 when higher is better), its
standard error ``se`` and degrees of freedom ``df``, ``p = P(T_df > (w - threshold) / se)``.
``se`` and ``df`` are the per-scale table's (the t interval's, or the t counterpart of a seed
bootstrap); where a table lacks them they come from the CI's half width over the t (or normal)
quantile at the comparison's level, and so do those of predictions at the target (percentile CIs
of the bootstrap draws, normal quantile; of a lopsided one, the wider of the half width and the
distance from the delta to the bound on the not-worse side, so the p-value agrees with the
interval printed beside it). The mean of predicted slice deltas takes the mean of their standard
errors: an upper bound on the standard error of the mean whatever the correlation between
slices, so its test errs on the side of not blocking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .prepare import AVERAGE, SLICE_AVERAGE
from .scales import better_sign, reference_scale

FDR = 0.05  # Benjamini-Hochberg level over one recipe's slices and tasks
AGGREGATES = (AVERAGE, SLICE_AVERAGE)  # each one test of its own, outside the FDR family
COLUMNS = ["recipe", "metric", "kind", "where", "scale", "delta", "ci_lo", "ci_hi",
           "threshold", "units", "p_value", "q_value", "blocking"]


def near_chance_metrics(table: pd.DataFrame, margin: float) -> tuple[list[str], list[str]]:
    """Accuracy metrics near chance at their reference scale (the largest holding the most
    recipes), and those with no random baseline."""
    near, unknown = [], []
    acc = table[table["kind"] == "accuracy"]
    for metric, t in acc.groupby("metric", sort=False):
        top = t[t["scale"] == reference_scale(t)]
        rb = top["random_baseline"].mean()
        if not np.isfinite(rb):
            unknown.append(metric)
            continue
        noise = top["noise_sd"].iloc[0]
        cut = max(margin, 2 * noise) if np.isfinite(noise) else margin
        if top["value"].max() - rb < cut:
            near.append(metric)
    return near, unknown


def regression_table(table: pd.DataFrame, predictions: pd.DataFrame, *, baseline: str,
                     primary: str, near: set[str], max_loss: float, max_accuracy: float,
                     fdr: float = FDR, level: float = 0.95,
                     loss_units: str = "nats") -> pd.DataFrame:
    """Slices and tasks where a recipe is worse than the baseline beyond noise.

    Each metric but ``primary`` (and the near-chance tasks in ``near``) is tested at the
    largest scale each recipe shares with the baseline and, from ``predictions``, at the
    target (with the mean over the predicted loss slices as the aggregate there). A row is
    listed when its CI lies wholly on the worse side of zero or when it blocks.

    Columns: recipe, metric, kind, where, scale, delta (``recipe - baseline``), ci_lo, ci_hi,
    threshold, units (of a loss: ``loss_units``, bits/byte across tokenizers), p_value
    (one-sided, "worse by more than threshold"), q_value (Benjamini-Hochberg over the recipe's
    slices and tasks; an aggregate's own p-value) and blocking (``q_value <= fdr``).
    """
    from scipy import stats  # imported when used: scipy.stats is a second to import
    thresholds = {"loss": max_loss, "accuracy": max_accuracy}
    t = table[(table["metric"] != primary) & ~table["metric"].isin(near)
              & table["delta"].notna()]
    tests = []
    # each (recipe, metric)'s largest scale, the groups in their order: one stable sort, not
    # a sort per group (a second of 256 recipes' comparison)
    group = t.groupby(["recipe", "metric"], sort=False).ngroup().to_numpy()
    tops = t.assign(_g=group).sort_values(["_g", "flops", "params"], kind="stable")
    for _, top in tops.groupby("_g", sort=True).tail(1).iterrows():
        se, df = _standard_error(top, level)
        tests.append(_test(top["recipe"], top["metric"], top["kind"], f"at {top['scale']}",
                           top["scale"], top["delta"], top["ci_lo"], top["ci_hi"], se, df,
                           thresholds))
    p = predictions[(predictions["metric"] != primary) & ~predictions["metric"].isin(near)
                    & (predictions["recipe"] != baseline) & predictions["delta"].notna()]
    z = stats.norm.ppf(0.5 + level / 2)
    for r in p.itertuples():
        se = _target_se(r.delta, r.delta_lo, r.delta_hi, r.kind, z)
        tests.append(_test(r.recipe, r.metric, r.kind, "at the target", "target", r.delta,
                           r.delta_lo, r.delta_hi, se, np.inf, thresholds))
    for recipe, g in p[(p["kind"] == "loss") & ~p["metric"].isin(AGGREGATES)].groupby(
            "recipe", sort=False):
        tests += _target_slice_mean(recipe, g, thresholds, z)
    if not tests:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.DataFrame(tests)
    out.loc[out["kind"] == "loss", "units"] = loss_units
    out["q_value"] = out["p_value"]
    for _, g in out[~out["aggregate"]].groupby("recipe", sort=False):
        ok = g.index[g["p_value"].notna()]
        if len(ok):
            out.loc[ok, "q_value"] = stats.false_discovery_control(
                out.loc[ok, "p_value"].to_numpy(float), method="bh")
    out["blocking"] = (out["q_value"] <= fdr).to_numpy(bool)
    out = out[out["beyond_noise"] | out["blocking"]]
    return out[COLUMNS].sort_values(["blocking", "recipe", "metric"],
                                    ascending=[False, True, True], ignore_index=True)


def worse_p_value(delta: float, se: float, df: float, *, kind: str, threshold: float) -> float:
    """One-sided p-value of "worse than the baseline by more than ``threshold``".

    ``w = -sign * delta`` is the worsening (``sign`` +1 when higher is better); the p-value is
    ``P(T_df > (w - threshold) / se)`` (normal when ``df`` is infinite); NaN without a finite
    standard error. A delta with no noise (``se`` = 0) gives 0 past the threshold, else 1.
    """
    from scipy import stats  # imported when used: scipy.stats is a second to import
    w = -better_sign(kind) * float(delta)
    if not (np.isfinite(w) and np.isfinite(se) and se >= 0 and df > 0):
        return float("nan")
    if se == 0:
        return 0.0 if w > threshold else 1.0
    stat = (w - threshold) / se
    return float(stats.norm.sf(stat) if np.isinf(df) else stats.t.sf(stat, df))


def _standard_error(row: pd.Series, level: float) -> tuple[float, float]:
    """The delta's standard error and df: the table's, else from the CI's half width."""
    from scipy import stats  # imported when used: scipy.stats is a second to import
    se, df = row.get("se", np.nan), row.get("se_df", np.nan)
    if pd.notna(se) and pd.notna(df):
        return float(se), float(df)
    lo, hi = row["ci_lo"], row["ci_hi"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return float("nan"), float("nan")
    df = float(row.get("noise_df", 0) or 0)
    q = stats.t.ppf(0.5 + level / 2, df) if df > 0 else stats.norm.ppf(0.5 + level / 2)
    return float((hi - lo) / (2 * q)), (df if df > 0 else np.inf)


def _target_se(delta: float, lo: float, hi: float, kind: str, z: float) -> float:
    """A predicted delta's standard error from its percentile CI: the half width, or, where
    the CI is lopsided, the distance from the delta to its bound on the not-worse side."""
    toward = delta - lo if better_sign(kind) < 0 else hi - delta
    return max(hi - lo, 2 * toward) / (2 * z)


def _test(recipe, metric, kind, where, scale, delta, lo, hi, se, df, thresholds,
          aggregate=False) -> dict:
    """One tested delta: its p-value and whether its CI lies wholly on the worse side."""
    threshold = thresholds["loss" if kind == "loss" else "accuracy"]
    beyond = bool(np.isfinite(lo) and np.isfinite(hi)
                  and (lo > 0 if better_sign(kind) < 0 else hi < 0))
    return {"recipe": recipe, "metric": metric, "kind": kind, "where": where, "scale": scale,
            "delta": float(delta), "ci_lo": float(lo), "ci_hi": float(hi),
            "threshold": threshold, "units": "nats" if kind == "loss" else "accuracy",
            "p_value": worse_p_value(delta, se, df, kind=kind, threshold=threshold),
            "beyond_noise": beyond, "aggregate": aggregate or metric in AGGREGATES}


def _target_slice_mean(recipe: str, g: pd.DataFrame, thresholds, z: float) -> list[dict]:
    """The mean predicted delta over a recipe's loss slices at the target (named like the
    observed aggregate, ``val/average``, which it stands for there)."""
    if len(g) < 2:
        return []
    se = float(np.mean([_target_se(*r, "loss", z)
                        for r in g[["delta", "delta_lo", "delta_hi"]].to_numpy(float)]))
    if not np.isfinite(se):
        return []
    delta = float(g["delta"].mean())
    return [_test(recipe, SLICE_AVERAGE, "loss", "at the target", "target", delta,
                  delta - z * se, delta + z * se, se, np.inf, thresholds, aggregate=True)]
