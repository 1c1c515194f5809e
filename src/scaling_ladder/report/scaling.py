"""Sections 3 to 5: loss curves, the scaling fit with its band and prediction at the target,
IsoFLOP valleys and the compute-optimal frontier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.compute import isoflop as isoflop_analysis
from ..laws.compute import optimal
from . import figures
from .build import Analysis, Section, Table
from .cells import count, interval, num, signed
from .fits import law_inputs

MAX_PANELS = 4  # recipes drawn side by side; the others are listed in a note


def shown_recipes(a: Analysis, pool: list[str]) -> tuple[list[str], list[str]]:
    ordered = [r for r in a.recipes if r in pool]
    return ordered[:MAX_PANELS], ordered[MAX_PANELS:]


# --------------------------------------------------------------------------- 3 loss curves


def curves(a: Analysis) -> Section:
    metrics = [a.metric] + (["train"] if "train" in set(a.frame["metric"]) and
                            a.metric != "train" else [])
    rows = a.frame[a.frame["metric"].isin(metrics)]
    shown, rest = shown_recipes(a, list(rows["recipe"].unique()))
    fig = figures.loss_curves(rows[rows["recipe"].isin(shown)], metrics=metrics, recipes=shown)
    notes = (f"Not drawn (only {MAX_PANELS} recipes are): {', '.join(rest)}.",) if rest else ()
    if fig is None:
        return Section("curves", "Loss curves", omitted="no loss rows to draw")
    return Section("curves", "Loss curves", figures=(fig,), notes=notes)


# --------------------------------------------------------------------------- 4 scaling fit


def scaling(a: Analysis) -> Section:
    key, title = "scaling", "Scaling fit"
    if not a.fits:
        why = "; ".join(a.notes) or "no law was fitted"
        return Section(key, title, omitted=f"No scaling fit to show: {why}.")
    finals = a.main[a.main["final"].to_numpy(bool)]
    shown, rest = shown_recipes(a, list(a.fits))
    panels, are_rows, notes = [], [], []
    for recipe in shown:
        rf = a.fits[recipe]
        pts = finals[finals["recipe"] == recipe][["run_id", "params", "tokens", "flops", "value"]]
        x = law_inputs(rf.fit, pts["params"], pts["tokens"])
        if x is None:
            continue
        pts = pts.assign(predicted=rf.fit.predict(group=rf.group, **x),
                         heldout=pts["run_id"].isin(rf.heldout))
        pts = pts.assign(residual=pts["value"] / pts["predicted"] - 1)
        pred = a.predictions.get(recipe)
        target = None
        if pred:
            lo, hi = pred["pi"] or (None, None)
            target = {"flops": a.target["flops"], "mean": pred["mean"], "lo": lo, "hi": hi,
                      "actual": pred["actual"]}
        panels.append({"recipe": recipe, "points": pts, "curves": _curves(rf, pts),
                       "target": target})
        held = pts[pts["heldout"]]
        if len(held):
            are = float(np.mean(np.abs(held["residual"] / (1 + held["residual"]))))
            are_rows.append((recipe, count(float(held["params"].min())), str(len(held)),
                             num(are, 3)))
        notes += [f"{recipe}: {n}" for n in rf.fit.notes]
    if rest:
        notes.append(f"Not drawn (only {MAX_PANELS} recipes are): {', '.join(rest)}.")
    first = next(iter(a.fits.values()))
    fig = figures.scaling_fit(panels, law=first.fit.law.name)
    tables = [_params_table(a), _target_table(a)]
    if are_rows:
        tables.append(Table(("recipe", "held-out N", "runs", "ARE"), tuple(are_rows),
                            "Absolute relative error of the fit on the held-out largest runs "
                            "(Choshen et al. 2024): mean |observed − predicted| / observed."))
    intro = (f"The {first.fit.law.name} law ({first.fit.law.formula}; {first.fit.law.citation}) "
             f"fitted to {first.selection} of {a.metric}, {first.fit.objective}"
             + (f", {len(first.fit.draws)} run-clustered bootstrap resamples"
                if first.fit.draws is not None else ", no bootstrap (no intervals)")
             + (". Fits were given, not made here." if first.source == "given" else ".")
             + " " + _headline(a))
    return Section(key, title, intro, tuple(tables), (fig,) if fig else (), tuple(notes))


def _curves(rf, pts: pd.DataFrame, most: int = 8) -> list[dict[str, Any]]:
    """The law along each model size's token range (at most ``most`` sizes, spread in N)."""
    sizes = np.sort(pts["params"].unique())
    if len(sizes) > most:
        sizes = sizes[np.unique(np.linspace(0, len(sizes) - 1, most).round().astype(int))]
    out = []
    for n, grp in pts[pts["params"].isin(sizes)].groupby("params"):
        grid = np.geomspace(grp["tokens"].min() / 1.3, grp["tokens"].max() * 1.3, 40)
        x = law_inputs(rf.fit, np.full_like(grid, n), grid)
        mean = rf.fit.predict(group=rf.group, **x)
        lo = hi = None
        if rf.fit.draws is not None and len(rf.fit.draws):
            d = rf.fit.predict_draws(group=rf.group, **x)
            lo, hi = np.nanquantile(d, [0.025, 0.975], axis=0)
        out.append({"params": float(n), "flops": 6.0 * n * grid, "mean": mean, "lo": lo,
                    "hi": hi})
    return out


def _params_table(a: Analysis) -> Table:
    names = list(next(iter(a.fits.values())).fit.law.param_names)
    rows = []
    for recipe, rf in a.fits.items():
        p = rf.fit.group_params(rf.group)
        cells = [recipe]
        for k in names:
            flat = k if rf.group is None or k in rf.fit.params else f"{k}[{rf.group}]"
            ci = rf.fit.ci.get(flat)
            cells.append(num(p[k]) + (f" {interval((ci.lo, ci.hi), 3)}" if ci else ""))
        cells += [str(rf.fit.n_runs) + (f" (+{len(rf.heldout)} held out)" if rf.heldout else ""),
                  num(rf.fit.n_points)]
        rows.append(tuple(cells))
    return Table(("recipe", *names, "runs fitted", "points"), tuple(rows),
                 "Fitted parameters with their 95% bootstrap intervals (runs resampled, not "
                 "points).")


def _target_table(a: Analysis) -> Table:
    t = a.target
    rows = []
    for recipe in a.recipes:
        p = a.predictions.get(recipe)
        if p is None:
            continue
        g = a.gains.get(recipe)
        gain = "baseline" if recipe == a.baseline else "—"
        if g:
            half = (g["ci"][1] - g["ci"][0]) / 2 if g["ci"] else None
            gain = signed(g["gain"]) + (f" ± {num(half, 3)}" if half is not None else "")
        rows.append((recipe, num(p["mean"], 5), interval(p["ci"]), interval(p["pi"]),
                     num(p["actual"], 5), gain))
    return Table(("recipe", "predicted loss", "95% CI (curve)", "95% PI (a new run)",
                  "observed", "expected gain vs baseline"), tuple(rows),
                 f"At the target N = {count(t['params'])}, D = {count(t['tokens'])} "
                 f"(C = {num(t['flops'], 3)} FLOPs; {t['how']}). Gain = baseline − recipe "
                 "(positive is better), ± half the width of its 95% interval.")


def _headline(a: Analysis) -> str:
    base = a.predictions.get(a.baseline)
    if base is None:
        return ""
    parts = []
    for recipe, g in a.gains.items():
        cand = a.predictions[recipe]
        half = f" ± {num((g['ci'][1] - g['ci'][0]) / 2, 2)}" if g["ci"] else ""
        parts.append(f"Baseline {a.baseline} predicted final loss {num(base['mean'], 4)}, "
                     f"candidate {recipe} {num(cand['mean'], 4)}, expected gain "
                     f"{signed(g['gain'], 3)}{half} nats/token at the target.")
    return " ".join(parts)


# ------------------------------------------------------------------------------ 5 IsoFLOP


def _clusters(frame: pd.DataFrame, tolerance: float) -> list[pd.DataFrame]:
    """Final runs grouped into compute budgets, as :func:`compute.isoflop` groups them."""
    logc = np.log10(frame["flops"].to_numpy(float))
    order = np.argsort(logc)
    cut = np.concatenate([[0], np.cumsum(np.diff(logc[order]) > tolerance)])
    sub = frame.iloc[order]
    return [sub[cut == k] for k in np.unique(cut)]


def isoflop(a: Analysis, tolerance: float = 0.05) -> Section:
    key, title = "isoflop", "IsoFLOP valleys"
    if a.kind != "loss":
        return Section(key, title, omitted=f"{a.metric} is not a loss: no IsoFLOP analysis.")
    finals = a.main[a.main["final"].to_numpy(bool)]
    frontier, rows, notes, profiles = {}, [], [], []
    for recipe in a.recipes:
        fin = finals[finals["recipe"] == recipe]
        rf = a.fits.get(recipe)
        entry: dict[str, Any] = {}
        try:
            iso = isoflop_analysis(fin, tolerance=tolerance)
        except InputError:
            iso = None
        if iso is not None:
            entry["minima"] = [(b["flops"], b["params"]) for b in iso.budgets]
            notes += [f"{recipe}: {n}" for n in iso.notes]
            ns = [b["params"] for b in iso.budgets]
            if any(n2 < n1 for n1, n2 in zip(ns, ns[1:])):
                notes.append(f"{recipe}: the IsoFLOP minimum moves to smaller models at larger "
                             "compute: the valleys are erratic (a stop signal).")
            spread = {round(float(np.log10(10 ** np.mean(np.log10(g["flops"])))), 6):
                      float(np.ptp(np.log10(g["flops"]))) for g in _clusters(fin, tolerance)}
            for b in iso.budgets:
                law_n = None
                if _identifies_n(rf):
                    law_n = optimal(rf.fit, flops=b["flops"], group=rf.group).params
                width = spread.get(round(float(np.log10(b["flops"])), 6))
                rows.append((recipe, num(b["flops"], 3), num(width, 2), str(b["n_runs"]),
                             count(b["params"]), count(b["tokens"]), num(b["loss"], 4),
                             count(law_n) if law_n else "—"))
        if _identifies_n(rf):
            lo_c = float(fin["flops"].min()) / 2
            hi_c = max(float(fin["flops"].max()), a.target["flops"]) * 2
            cs = np.geomspace(lo_c, hi_c, 24)
            allocs = [optimal(rf.fit, flops=c, group=rf.group) for c in cs]
            n = np.array([al.params for al in allocs])
            lo = hi = None
            if all("params" in al.ci for al in allocs):
                lo = np.array([al.ci["params"].lo for al in allocs])
                hi = np.array([al.ci["params"].hi for al in allocs])
            entry["law"] = (cs, n, lo, hi)
        if entry:
            frontier[recipe] = entry
        if recipe == a.baseline:
            profiles = _profiles(fin, rf, iso, tolerance)
    if not frontier and not profiles:
        return Section(key, title, omitted=(
            "No compute budget holds three or more model sizes, and no law of (N, D) was "
            "fitted across a factor of 3 or more in N: nothing to draw."))
    fig = figures.isoflop(profiles, frontier, recipe=a.baseline)
    tables = ()
    if rows:
        tables = (Table(("recipe", "budget (FLOPs)", "spread (dex)", "runs", "N*", "D*",
                         "loss at N*", "N* of the fitted law"), tuple(rows),
                        f"Minimum of the parabola in log N per compute budget (runs chained "
                        f"within {tolerance} dex of each other; spread: the budget's width in "
                        "log10 FLOPs), beside the fitted law's optimum. Budgets wider than "
                        f"{4 * tolerance:g} dex are not drawn: they are not IsoFLOP sets."),)
    else:
        notes.append("No compute budget holds three or more model sizes: the valleys drawn are "
                     "the fitted law's, with the runs nearest each budget.")
    return Section(key, title, tables=tables, figures=(fig,) if fig else (), notes=tuple(notes))


def _identifies_n(rf) -> bool:
    """A law of (N, D) fitted over at least a factor 3 in N: its optimum N*(C) means something."""
    if rf is None or rf.fit.law.inputs != ("params", "tokens"):
        return False
    lo, hi = (rf.fit.ranges or {}).get("params", (1.0, np.inf))
    return hi / lo >= 3


def _profiles(fin: pd.DataFrame, rf, iso, tolerance: float) -> list[dict[str, Any]]:
    has_law = _identifies_n(rf)
    out = []
    if iso is not None:
        groups = {round(float(np.log10(10 ** np.mean(np.log10(g["flops"])))), 6): g
                  for g in _clusters(fin, tolerance)}
        for b in iso.budgets:
            g = groups.get(round(float(np.log10(b["flops"])), 6))
            if g is None or np.ptp(np.log10(g["flops"])) > 4 * tolerance:
                continue
            x = np.log10(g["params"].to_numpy(float))
            cx = np.linspace(x.min() - 0.15, x.max() + 0.15, 60)
            c0, c1, c2 = b["parabola"]
            out.append({"flops": b["flops"], "params": g["params"].to_numpy(float),
                        "value": g["value"].to_numpy(float),
                        "curve": (10 ** cx, c0 + c1 * cx + c2 * cx * cx), "kind": "parabola",
                        "minimum": (b["params"], b["loss"])})
        return out[-6:]
    if not has_law or fin.empty:
        return out
    groups = [g for g in _clusters(fin, 0.15) if g["params"].nunique() >= 2]
    for g in groups[-4:]:
        c = float(10 ** np.mean(np.log10(g["flops"])))
        ns = np.geomspace(g["params"].min() / 3, g["params"].max() * 3, 60)
        x = law_inputs(rf.fit, ns, c / (6 * ns))
        best = optimal(rf.fit, flops=c, group=rf.group)
        out.append({"flops": c, "params": g["params"].to_numpy(float),
                    "value": g["value"].to_numpy(float),
                    "curve": (ns, rf.fit.predict(group=rf.group, **x)), "kind": "law",
                    "minimum": (best.params, best.loss)})
    return out
