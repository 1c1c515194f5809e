"""Sections 3 to 5: loss curves, the scaling fit with its band and prediction at the target,
IsoFLOP valleys and the compute-optimal frontier.

The curves and bands are each recipe's own law (:mod:`.fits`). When a comparison predicts the
reported metric at the target, the target table, the headline and the star at the target are
the comparison's numbers (:class:`~.model.AtTarget`), not a second prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..format import count
from ..laws.compute import flops_6nd, optimal, tokens_6nd
from ..laws.compute import isoflop as isoflop_analysis
from . import figures
from .cells import interval, num, signed
from .fits import law_inputs, observed_at_target
from .model import Analysis, Section, Table

MAX_PANELS = 4  # recipes drawn side by side; the others are listed in a note


def shown_recipes(a: Analysis, pool: list[str]) -> tuple[list[str], list[str]]:
    ordered = [r for r in a.recipes if r in pool]
    return ordered[:MAX_PANELS], ordered[MAX_PANELS:]


# --------------------------------------------------------------------------- 3 loss curves


def curves(a: Analysis) -> Section:
    metrics = [a.metric]
    rows = a.main
    shown, rest = shown_recipes(a, list(rows["recipe"].unique()))
    fig = figures.loss_curves(rows[rows["recipe"].isin(shown)], metrics=metrics, recipes=shown,
                              unit=a.loss_units)
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
        target = _star(a, recipe)
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
    star = ("the comparison's prediction at the target (its joint fit) with its 95% CI"
            if a.compared_here else "")
    fig = figures.scaling_fit(panels, law=first.fit.law.name, star=star, unit=a.loss_units)
    tables = [_params_table(a), _target_table(a)]
    if are_rows:
        tables.append(Table(("recipe", "held-out N", "runs", "ARE (diagnostic)"),
                            tuple(are_rows),
                            "Hold-out check, a diagnostic: absolute relative error of each "
                            "single-recipe fit on the largest runs it did not see (Choshen et al. "
                            "2024): mean |observed − predicted| / observed."))
    if a.compare is not None:
        tables.append(_joint_table(a))
    intro = (f"Single-recipe fits, for the curves: the {first.fit.law.name} law "
             f"({first.fit.law.formula}; {first.fit.law.citation}) fitted to each recipe's "
             f"{first.selection} of {a.metric}, {first.fit.objective}"
             + (f", {len(first.fit.draws)} run-clustered bootstrap resamples"
                if first.fit.draws is not None else ", no bootstrap (no intervals)")
             + (". Fits were given, not made here." if first.source == "given" else ".")
             + " " + _headline(a))
    return Section(key, title, intro.strip(), tuple(tables), (fig,) if fig else (),
                   tuple(notes))


def _star(a: Analysis, recipe: str) -> dict[str, Any] | None:
    """The prediction drawn at the target: the comparison's (CI) or the recipe's own (PI)."""
    if a.compared_here:
        t = a.at_target.get(recipe)
        if t is None or t.predicted is None:
            return None
        lo, hi = t.predicted_ci or (None, None)
        return {"flops": a.target["flops"], "mean": t.predicted, "lo": lo, "hi": hi,
                "actual": observed_at_target(a, recipe)}
    pred = a.predictions.get(recipe)
    if not pred:
        return None
    lo, hi = pred["pi"] or (None, None)
    return {"flops": a.target["flops"], "mean": pred["mean"], "lo": lo, "hi": hi,
            "actual": pred["actual"]}


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
        out.append({"params": float(n), "flops": flops_6nd(n, grid), "mean": mean, "lo": lo,
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
        cells += [str(rf.fit.n_runs) + (f" (+{len(rf.heldout)} held out, diagnostic)"
                                        if rf.heldout else ""), num(rf.fit.n_points)]
        rows.append(tuple(cells))
    return Table(("recipe", *names, "runs fitted", "points"), tuple(rows),
                 "Single-recipe fits, for the curves: fitted parameters with their 95% bootstrap "
                 "intervals (runs resampled, not points).")


def _target_table(a: Analysis) -> Table:
    t = a.target
    where = (f"At the target N = {count(t['params'])}, D = {count(t['tokens'])} "
             f"(C = {num(t['flops'], 3)} FLOPs; {t['how']}).")
    if a.compared_here:
        rows = []
        for recipe in a.recipes:
            at = a.at_target.get(recipe)
            if at is None:
                continue
            c = at.shown
            base = recipe == a.baseline
            rows.append((recipe, c["predicted"], c["predicted_ci"],
                         num(observed_at_target(a, recipe)), "baseline" if base else c["gain"],
                         "—" if base else c["gain_ci"], "—" if base else c["p_beats_at_target"]))
        return Table(("recipe", f"predicted {a.metric}", "95% CI", "observed",
                      "expected gain vs baseline", "95% CI of the gain", "P(beats baseline)"),
                     tuple(rows),
                     f"{where} The comparison's joint fit ({_method(a)}): the numbers of the "
                     f"Decision section; the single-recipe fits above only draw the curves. "
                     + a.gain_caption())
    rows = []
    for recipe in a.recipes:
        p = a.predictions.get(recipe)
        if p is None:
            continue
        g = a.gains.get(recipe)
        base = recipe == a.baseline
        gain = "baseline" if base else signed(g["gain"]) if g else "—"
        rows.append((recipe, num(p["mean"]), interval(p["ci"]), interval(p["pi"]),
                     num(p["actual"]), gain,
                     "—" if base or not g else interval(g["ci"], sign=True)))
    other = ("" if a.compare is None else " The comparison predicts at another target (see "
             "the Decision section).")
    return Table(("recipe", f"predicted {a.metric}", "95% CI (curve)", "95% PI (a new run)",
                  "observed", "expected gain vs baseline", "95% CI of the gain"), tuple(rows),
                 f"{where} Single-recipe fits, each recipe's law on its own.{other} "
                 + a.gain_caption())


def _method(a: Analysis) -> str:
    """How the comparison predicted the decision metric (its predictions table says)."""
    p = a.compare.predictions
    m = p.loc[p["metric"] == a.compare.metric, "method"]
    return str(m.iloc[0]) if len(m) else f"variant {a.compare.joint.variant}"


def _joint_table(a: Analysis) -> Table:
    j = a.compare.joint
    rows = tuple((v, num(e, 3), "chosen" if v == j.variant else "")
                 for v, e in j.errors.items())
    held = j.held_out or "the largest size"
    return Table(("sharing variant", "held-out ARE (diagnostic)", ""), rows,
                 f"The comparison's joint fit: {_method(a)}. Hold-out check, a diagnostic: each "
                 f"way of sharing parameters across recipes fitted without {held} and scored on "
                 "them (absolute relative error)."
                 + ("" if rows else " No variant could be held out."))


def _headline(a: Analysis) -> str:
    if a.compared_here:
        base = a.at_target.get(a.baseline)
        if base is None:
            return ""
        parts = [f"At the target the comparison's joint fit predicts {a.metric} "
                 f"{base.shown['predicted']} for baseline {a.baseline}."]
        for recipe in a.recipes[1:]:
            at = a.at_target.get(recipe)
            if at is None:
                continue
            c = at.shown
            parts.append(f"Candidate {recipe}: {c['predicted']}, expected gain {c['gain']} "
                         f"{c['gain_ci']} (95% CI), P(beats baseline) {c['p_beats_at_target']}.")
        return " ".join(parts)
    base = a.predictions.get(a.baseline)
    if base is None:
        return ""
    parts = []
    for recipe, g in a.gains.items():
        cand = a.predictions[recipe]
        parts.append(f"Baseline {a.baseline} predicted {num(base['mean'])}, candidate {recipe} "
                     f"{num(cand['mean'])}: expected gain {signed(g['gain'])}"
                     + (f" {interval(g['ci'], sign=True)} (95% CI)" if g["ci"] else "")
                     + " at the target (single-recipe fits).")
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
                a.warnings.append(("isoflop", recipe, (
                    f"IsoFLOP stop signal ({recipe}): the compute-optimal model size shrinks as "
                    "compute grows, so the valleys are erratic; compute-optimal sizes read off "
                    "this ladder are unreliable (IsoFLOP valleys section).")))
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
    fig = figures.isoflop(profiles, frontier, recipe=a.baseline, unit=a.loss_units)
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
        x = law_inputs(rf.fit, ns, tokens_6nd(c, ns))
        best = optimal(rf.fit, flops=c, group=rf.group)
        out.append({"flops": c, "params": g["params"].to_numpy(float),
                    "value": g["value"].to_numpy(float),
                    "curve": (ns, rf.fit.predict(group=rf.group, **x)), "kind": "law",
                    "minimum": (best.params, best.loss)})
    return out
