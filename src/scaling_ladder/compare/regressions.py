"""Where a recipe is worse than the baseline beyond noise: the regression table, and tasks
too near chance to rank (Signal and Noise, Heineman et al. 2025, arXiv:2508.13144)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .scales import better_sign, reference_scale


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
                     primary: str, near: set[str], max_loss: float,
                     max_accuracy: float) -> pd.DataFrame:
    """Slices and tasks where a recipe is worse than the baseline beyond noise.

    At the largest scale each recipe shares with the baseline (per metric) and predicted at
    the target; ``blocking`` when the delta also exceeds the rule's threshold.
    """
    rows = []
    cols = ["recipe", "metric", "kind", "where", "scale", "delta", "ci_lo", "ci_hi",
            "threshold", "units", "blocking"]
    t = table[(table["metric"] != primary) & ~table["metric"].isin(near)
              & table["delta"].notna()]
    for (recipe, metric), g in t.groupby(["recipe", "metric"], sort=False):
        top = g.sort_values(["flops", "params"]).iloc[-1]
        rows += _worse(recipe, metric, top["kind"], f"at {top['scale']}", top["scale"],
                       top["delta"], top["ci_lo"], top["ci_hi"], max_loss, max_accuracy)
    p = predictions[(predictions["metric"] != primary) & ~predictions["metric"].isin(near)
                    & (predictions["recipe"] != baseline)]
    for r in p.itertuples():
        rows += _worse(r.recipe, r.metric, r.kind, "at the target", "target", r.delta,
                       r.delta_lo, r.delta_hi, max_loss, max_accuracy)
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["blocking", "recipe", "metric"], ascending=[False, True, True],
                           ignore_index=True)


def _worse(recipe, metric, kind, where, scale, delta, lo, hi, max_loss, max_accuracy):
    """A regression row when the whole CI lies on the worse side of zero, else nothing."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return []
    if not (lo > 0 if better_sign(kind) < 0 else hi < 0):
        return []
    threshold = max_loss if kind == "loss" else max_accuracy
    return [{"recipe": recipe, "metric": metric, "kind": kind, "where": where, "scale": scale,
             "delta": float(delta), "ci_lo": float(lo), "ci_hi": float(hi),
             "threshold": threshold, "units": "nats" if kind == "loss" else "accuracy",
             "blocking": bool(abs(delta) > threshold)}]


