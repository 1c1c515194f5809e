"""Sections 1 and 6: the decision with its reasons and warnings, and the go / no-go scatter.

Rendered from the comparison (:class:`~scaling_ladder.compare.Comparison`) when there is one:
every number of the decision metric at the target is its :class:`~.model.AtTarget` (the same
digits in the Decision, the Scaling fit and Go / no-go), and the gain at the largest proxy is
its per-scale table's. Without one, Go / no-go shows the single-recipe fits' gains under the
interval rule and the gain measured on the largest proxy runs both recipes share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..format import count
from . import figures
from .cells import interval, num, signed
from .model import Analysis, Section, Table

# ------------------------------------------------------------------------------ 1 decision


def decision(a: Analysis) -> Section:
    key, title = "decision", "Decision"
    warnings = gather_warnings(a)
    cmp = a.compare
    if cmp is None and len(a.recipes) < 2:
        return Section(key, title, omitted="One recipe only: there is nothing to decide between.",
                       warnings=warnings)
    if cmp is None:
        return Section(key, title, warnings=warnings, omitted=(
            "No recipe comparison was given, so this report makes no go/no-go decision. Pass "
            "--decide to compare the recipes here, or the JSON of `ladder compare` with "
            "--compare (library: compare=). The gains the single-recipe fits predict at the "
            "target are in sections 4 and 6."))
    rows, reason_rows, notes = [], [], list(cmp.notes)
    for name in cmp.recipes:
        if name == cmp.baseline:
            continue
        t = a.at_target[name].shown
        rows.append((name, t["decision"], t["basis"], t["p_beats"], t["predicted"],
                     t["predicted_ci"], t["gain"], t["gain_ci"], t["multiplier"]))
        s = cmp.recipe_summary(name)
        reason_rows += [(name, str(w)) for w in s["reasons"]]
        reason_rows += [(name, f"advice: {w}") for w in s["advice"]]
        if s["compute_multiplier_note"]:
            notes.append(f"{name}'s compute multiplier: {s['compute_multiplier_note']}")
    tables = [Table(("recipe", "decision", "decided on", "P(beats baseline)",
                     f"predicted {cmp.metric}", "95% CI", "predicted gain", "95% CI of the gain",
                     "compute multiplier [95% CI]"), tuple(rows),
                    f"At the target {cmp.target.label}, from the comparison's joint fit: the "
                    "same numbers as in the Scaling fit and Go / no-go sections. "
                    + a.gain_caption() + " P(beats baseline) is the decision's: of the "
                    "prediction at the target, or of the ranking at a scale when the prediction "
                    "is set aside (decided on, with the gain measured there); the predicted "
                    "columns of such a recipe are the set-aside fit's, for reference. The compute "
                    "multiplier is how many times the "
                    "target compute a recipe needs to reach the baseline's predicted loss (below "
                    "1: it saves compute).")]
    units = _units_table(cmp)
    if units is not None:
        tables.append(units)
    if reason_rows:
        tables.append(Table(("recipe", "reason"), tuple(reason_rows),
                            "Why: each recipe's reasons under the decision rule, in its words."))
    tables += _evidence_tables(cmp)
    gates = _gates_table(cmp.gates, a)
    if gates:
        tables.append(gates)
    intro = (f"Recipes against {cmp.baseline} on {cmp.metric} ({cmp.units}), matched by "
             f"{cmp.matched}. "
             + "; ".join(cmp.reasons) + ("." if cmp.reasons else ""))
    if cmp.ranking is not None and cmp.ranking.order:
        basis = ("the fit" if cmp.ranking.basis == "fit"
                 else f"the data: {cmp.ranking.basis}")
        intro += (f" Order at the target, best first: {' > '.join(cmp.ranking.order)} "
                  f"(from {basis}).")
    return Section(key, title, intro, tuple(tables), notes=tuple(notes),
                   verdict=cmp.decision, warnings=warnings)


def _units_table(cmp) -> Table | None:
    """Recipes of different tokenizers: the decision metric per byte (what decides) beside its
    per-token reading, each ranked, at the largest scale every recipe was trained at."""
    t = cmp.per_token
    if t is None or not len(t):
        return None
    rows = tuple((str(r.recipe), str(r.tokenizer), num(r.bits_per_byte, 4),
                  num(r.rank_per_byte), num(r.nats_per_token, 4), num(r.rank_per_token))
                 for r in t.itertuples())
    by_token = " > ".join(t.sort_values("rank_per_token")["recipe"])
    by_byte = " > ".join(t["recipe"])
    same = by_token == by_byte
    at = f"N = {count(t['params'].iloc[0])}, D = {count(t['tokens'].iloc[0])} tokens"
    caption = (f"Observed at {at}, the largest scale every recipe was trained at. The recipes "
               "differ in tokenizer, so they are compared in bits/byte (Gao et al. 2020): a "
               "BPE token carries several bytes, and its loss per token is the larger for the "
               f"same text. Best first per byte: {by_byte}; per token "
               + ("the order is the same." if same else
                  f"it would be {by_token}, the wrong winner."))
    return Table(("recipe", "tokenizer", f"{cmp.metric} bits/byte", "rank (decides)",
                  f"{cmp.metric} nats/token", "rank per token"), rows, caption)


def gather_warnings(a: Analysis) -> tuple[str, ...]:
    """The comparison's warnings, then those the report's own sections raised (data checks,
    IsoFLOP stop signals) unless the comparison already says the same of the same recipe."""
    said = list(a.compare.warnings) if a.compare is not None else []
    out = list(dict.fromkeys(said))
    for topic, recipe, text in a.warnings:
        if any(topic in w.lower() and recipe in w for w in said) or text in out:
            continue
        out.append(text)
    return tuple(out)


def _evidence_tables(cmp) -> list[Table]:
    """Rank stability per proxy scale and decision accuracy per metric."""
    out = []
    rank = cmp.rank_stability
    if rank.get("scales"):
        rows = tuple((str(r["scale"]), num(r.get("n_recipes")), num(r.get("decision_accuracy"), 3),
                      num(r.get("kendall_tau"), 3), num(r.get("spearman_rho"), 3),
                      num(r.get("regret"), 3))
                     for r in rank["scales"])
        out.append(Table(("proxy scale", "recipes", "decision accuracy", "Kendall τ",
                          "Spearman ρ", "top-1 regret"), rows,
                         f"Rank stability of {rank.get('metric', cmp.metric)}: each proxy "
                         f"scale's ranking of the recipes against the reference scale "
                         f"{rank.get('reference_scale')} (pairwise decision accuracy, DataDecide; "
                         "regret: what picking the proxy's winner costs at the reference)."))
    acc = cmp.decision_accuracy
    by_metric = acc.get("by_metric") or {}
    if by_metric:
        rows = tuple((m, str(v.get("reference_scale")), num(len(v.get("scales") or {})),
                      num(v.get("mean"), 3)) for m, v in by_metric.items())
        out.append(Table(("metric", "reference scale", "proxy scales", "mean decision accuracy"),
                         rows, f"{acc.get('measure', 'Decision accuracy')}, per metric: how "
                         "often the proxies order a pair of recipes as the reference does."))
    return out


def _gates_table(gates, a: Analysis) -> Table | None:
    rows = []
    for g in gates:
        for name, r in (g.get("recipes") or {}).items():
            rows.append((str(g.get("gate")), str(g.get("evidence")), str(g.get("target")),
                         str(name), num(r.get("decision")), num(r.get("p_beats"), 3),
                         signed(r.get("observed_gain")), num(r.get("agrees"))))
    if not rows:
        return None
    return Table(("stage gate", "evidence", "predicts", "recipe", "decision", "P(beats)",
                  "observed gain", "agrees"), tuple(rows),
                 "The rule replayed on the ladder itself: deciding with the smaller runs only and "
                 "checking against the next size up (the last gate is the decision above). "
                 + a.gain_caption())


# ---------------------------------------------------------------------------- 6 go / no-go


def _matched(a: Analysis, recipe: str) -> tuple[float | None, str]:
    """Without a comparison: the gain of ``recipe`` on the largest proxy runs both it and the
    baseline have (runs below the target's N when there are any)."""
    fin = a.main[a.main["final"].to_numpy(bool)]
    key = fin.assign(_d=fin["tokens"].map(lambda v: float(f"{v:.3g}")))
    means = key.groupby(["recipe", "params", "_d"])["value"].mean()
    if a.baseline not in means.index.get_level_values(0) or recipe not in \
            means.index.get_level_values(0):
        return None, "—"
    b, r = means.loc[a.baseline], means.loc[recipe]
    shared = b.index.intersection(r.index)
    below = [k for k in shared if k[0] < a.target["params"]]
    shared = below or list(shared)  # proxies: runs smaller than the target, when there are any
    if not shared:
        return None, "—"
    top = max(shared)  # largest N, then largest D
    n = top[0]
    at = [k for k in shared if k[0] == n]
    gain = a.better * float(np.mean([b[k] - r[k] for k in at]))
    return gain, f"N = {count(n)}, {len(at)} token budget{'s' if len(at) > 1 else ''}"


def _point_from_comparison(a: Analysis, recipe: str) -> tuple[dict[str, Any], tuple]:
    t = a.at_target[recipe]
    lo, hi = t.gain_ci or (None, None)
    point = {"recipe": recipe, "x": t.proxy_gain, "y": t.gain, "ylo": lo, "yhi": hi,
             "decision": t.decision, "set_aside": t.basis != "fit"}
    c = t.shown
    return point, (recipe, c["proxy_gain"], c["proxy_scale"], c["gain"], c["gain_ci"],
                   c["p_beats"], c["decision"])


def _point_from_fits(a: Analysis, recipe: str) -> tuple[dict[str, Any], tuple]:
    x, where = _matched(a, recipe)
    g = a.gains.get(recipe)
    y = g["gain"] if g else None
    ylo, yhi = g["ci"] if g and g["ci"] else (None, None)
    verdict = None
    if y is not None:
        verdict = ("inconclusive" if ylo is None or (ylo <= 0 <= yhi) else
                   "go" if ylo > 0 else "no-go")
    point = {"recipe": recipe, "x": x, "y": y, "ylo": ylo, "yhi": yhi, "decision": verdict}
    return point, (recipe, signed(x), where, signed(y),
                   interval((ylo, yhi) if ylo is not None else None, sign=True), "—",
                   verdict or "—")


def gonogo(a: Analysis) -> Section:
    key, title = "gonogo", "Go / no-go"
    candidates = a.recipes[1:]
    if not candidates:
        return Section(key, title, omitted="One recipe only: nothing to compare.")
    cmp = a.compare
    points, rows = [], []
    for recipe in candidates:
        from_cmp = cmp is not None and recipe in a.at_target
        point, row = (_point_from_comparison if from_cmp else _point_from_fits)(a, recipe)
        points.append(point)
        rows.append(row)
    widths = [(p["yhi"] - p["ylo"]) / 2 for p in points if p.get("ylo") is not None]
    ys = [abs(p["y"]) for p in points if p.get("y") is not None]
    band = float(np.median(widths)) if widths else (0.1 * max(ys) if ys else 0.0)
    unit = a.loss_units if a.kind == "loss" else "accuracy"
    fig = figures.decision_scatter(points, band=band, unit=unit, baseline=a.baseline,
                                   source="the comparison's joint fit" if cmp is not None
                                   else "the single-recipe fits")
    if cmp is not None:
        how = (f"From the comparison: the gain at the largest proxy scale is its per-scale "
               f"table's (the scale its decision rule reads), the prediction at "
               f"{cmp.target.label} its joint fit's (the numbers of the Decision section).")
    else:
        how = ("No comparison was given: the gain at the proxies is measured on the largest "
               "runs both recipes share, the prediction is the single-recipe fits', and the "
               "decision is the interval rule: go when the 95% interval of the predicted gain "
               "lies above 0, no-go below, else inconclusive.")
    table = Table(("recipe", "gain at the largest proxy", "proxy scale",
                   "predicted gain at target", "95% CI of the gain", "P(beats baseline)",
                   "decision"), tuple(rows),
                  f"{a.gain_caption()} Units: {unit}. {how}")
    return Section(key, title, tables=(table,), figures=(fig,) if fig else ())
