"""Sections 1 and 6: the decision with its reasons, and the go / no-go scatter.

Rendered from the comparison's result (``compare.Comparison.to_dict()``: ``decision``,
``reasons``, ``recipes`` with ``p_beats_baseline``, ``predicted_delta``, ``ci95``,
``compute_multiplier``; ``rank_stability``, ``decision_accuracy``, ``gates``) when given; the
scatter falls back to the gains the report's own fits predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import figures
from .build import Analysis, Section, Table
from .cells import count, interval, num, signed, value_text

# ------------------------------------------------------------------------------ 1 decision


def decision(a: Analysis) -> Section:
    key, title = "decision", "Decision"
    cmp = a.compare
    if cmp is None and len(a.recipes) < 2:
        return Section(key, title, omitted="One recipe only: there is nothing to decide between.")
    if cmp is None:
        return Section(key, title, omitted=(
            "No recipe comparison was given, so this report makes no go/no-go decision. Pass "
            "--decide to compare the recipes here, or the JSON of `ladder compare` with "
            "--compare (library: compare=). The gains the fitted laws predict at the target "
            "are in sections 4 and 6."))
    recipes = cmp.get("recipes") or {}
    top = cmp.get("decision")
    per_recipe = top if isinstance(top, dict) else {}
    top_reasons = cmp.get("reasons")
    rows, notes, reason_rows = [], [], []
    for name, r in recipes.items():
        r = r if isinstance(r, dict) else {}
        verdict = r.get("decision", per_recipe.get(name, top if isinstance(top, str) else None))
        reasons = r.get("reasons")
        if reasons is None and isinstance(top_reasons, dict):
            reasons = top_reasons.get(name)
        rows.append((str(name), num(verdict), num(r.get("p_beats_baseline"), 3),
                     signed(r.get("predicted_delta")), interval(r.get("ci95"), sign=True),
                     num(r.get("compute_multiplier"), 3)))
        why = [str(x) for x in (reasons if isinstance(reasons, list) else [reasons] if reasons
                                else [])]
        why += [f"advice: {x}" for x in r.get("advice") or []]
        reason_rows += [(str(name), w) for w in why]
    target = cmp.get("target") or {}
    where = f" at {target['label']}" if isinstance(target, dict) and target.get("label") else ""
    tables = [Table(("recipe", "decision", "P(beats baseline)", f"predicted Δ {a.metric}",
                     "95% CI", "compute multiplier"), tuple(rows),
                    f"Against baseline {cmp.get('baseline', a.baseline)}{where}. Δ = recipe − "
                    "baseline in the metric's units (negative is better for a loss); the compute "
                    "multiplier is how many times the target compute the recipe needs to reach "
                    "the baseline's loss (below 1: it saves compute).")]
    if reason_rows:
        tables.append(Table(("recipe", "reason"), tuple(reason_rows),
                            "Why: each recipe's reasons under the decision rule, in its words."))
    tables += _evidence_tables(cmp, a.metric)
    gates = _gates_table(cmp.get("gates"))
    if gates:
        tables.append(gates)
    verdict = top if isinstance(top, str) else None
    intro = ("; ".join(map(str, top_reasons)) + "." if isinstance(top_reasons, (list, tuple))
             and top_reasons else "" if verdict else "Per recipe, below.")
    notes += [str(n) for n in cmp.get("notes") or []]
    return Section(key, title, intro, tuple(tables), notes=tuple(notes), verdict=verdict)


def _evidence_tables(cmp: dict, metric: str) -> list[Table]:
    """Rank stability and decision accuracy: structured when they have the comparison's
    shape (per-scale rows), else as key-value text."""
    out, kv = [], []
    rank = cmp.get("rank_stability")
    if isinstance(rank, dict) and isinstance(rank.get("scales"), list) and rank["scales"]:
        rows = tuple((str(r.get("scale")), num(r.get("n_recipes")),
                      num(r.get("decision_accuracy"), 3), num(r.get("kendall_tau"), 3),
                      num(r.get("spearman_rho"), 3), num(r.get("regret"), 3))
                     for r in rank["scales"])
        out.append(Table(("proxy scale", "recipes", "decision accuracy", "Kendall τ",
                          "Spearman ρ", "top-1 regret"), rows,
                         f"Rank stability of {rank.get('metric', metric)}: each proxy scale's "
                         f"ranking of the recipes against the reference scale "
                         f"{rank.get('reference_scale')} (pairwise decision accuracy, DataDecide; "
                         "regret: what picking the proxy's winner costs at the reference)."))
    elif rank is not None:
        kv.append(("rank_stability", value_text(rank)))
    acc = cmp.get("decision_accuracy")
    if isinstance(acc, dict) and isinstance(acc.get("by_metric"), dict):
        rows = tuple((m, str(v.get("reference_scale")), num(len(v.get("scales") or {})),
                      num(v.get("mean"), 3))
                     for m, v in acc["by_metric"].items() if isinstance(v, dict))
        out.append(Table(("metric", "reference scale", "proxy scales", "mean decision accuracy"),
                         rows, f"{acc.get('measure', 'Decision accuracy')}, per metric: how "
                         "often the proxies order a pair of recipes as the reference does."))
    elif acc is not None:
        kv.append(("decision_accuracy", value_text(acc)))
    kv += [(k, value_text(v)) for k, v in cmp.items() if k in ("metric", "match") and v is not None]
    if kv:
        out.insert(0, Table(("evidence", "value"), tuple(kv),
                            "How far the small-scale ranking can be trusted."))
    return out


def _gates_table(gates: Any) -> Table | None:
    if not isinstance(gates, list) or not gates:
        return None
    rows = []
    for g in gates:
        if not isinstance(g, dict):
            continue
        for name, r in (g.get("recipes") or {}).items():
            r = r if isinstance(r, dict) else {}
            rows.append((str(g.get("gate")), str(g.get("evidence")), str(g.get("target")),
                         str(name), num(r.get("decision")), num(r.get("p_beats"), 3),
                         signed(r.get("observed_gain")), num(r.get("agrees"))))
    if not rows:
        return None
    return Table(("stage gate", "evidence", "predicts", "recipe", "decision", "P(beats)",
                  "observed gain", "agrees"), tuple(rows),
                 "The rule replayed on the ladder itself: deciding with the smaller runs only and "
                 "checking against the next size up (gain = improvement, positive is better).")


# ---------------------------------------------------------------------------- 6 go / no-go


def _matched(a: Analysis, recipe: str) -> tuple[float | None, str]:
    """Observed gain of ``recipe`` over the baseline on the largest proxy runs both have."""
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


def gonogo(a: Analysis) -> Section:
    key, title = "gonogo", "Go / no-go"
    candidates = a.recipes[1:]
    if not candidates:
        return Section(key, title, omitted="One recipe only: nothing to compare.")
    cmp_recipes = (a.compare or {}).get("recipes") or {}
    points, rows = [], []
    for recipe in candidates:
        x, where = _matched(a, recipe)
        y = ylo = yhi = None
        source = "fitted laws"
        c = cmp_recipes.get(recipe) if isinstance(cmp_recipes, dict) else None
        if isinstance(c, dict) and c.get("predicted_delta") is not None:
            y = -a.better * float(c["predicted_delta"])
            ci = c.get("ci95")
            if ci is not None:
                ylo, yhi = sorted((-a.better * float(ci[0]), -a.better * float(ci[1])))
            source = "comparison"
        elif recipe in a.gains:
            g = a.gains[recipe]
            y = g["gain"]
            ylo, yhi = g["ci"] if g["ci"] else (None, None)
        verdict = c.get("decision") if isinstance(c, dict) else None
        if verdict is None and isinstance((a.compare or {}).get("decision"), dict):
            verdict = a.compare["decision"].get(recipe)
        rule = "comparison"
        if verdict is None and y is not None:
            rule = "interval"
            verdict = ("inconclusive" if ylo is None or (ylo <= 0 <= yhi) else
                       "go" if ylo > 0 else "no-go")
        points.append({"recipe": recipe, "x": x, "y": y, "ylo": ylo, "yhi": yhi,
                       "decision": verdict})
        p = c.get("p_beats_baseline") if isinstance(c, dict) else None
        rows.append((recipe, signed(x), where, signed(y), interval(
            (ylo, yhi) if ylo is not None else None, sign=True), num(p, 3), source,
            verdict or "—", "the comparison" if rule == "comparison" else "the interval rule"))
    widths = [(p["yhi"] - p["ylo"]) / 2 for p in points if p.get("ylo") is not None]
    ys = [abs(p["y"]) for p in points if p.get("y") is not None]
    band = float(np.median(widths)) if widths else (0.1 * max(ys) if ys else 0.0)
    unit = "nats/token" if a.kind == "loss" else "accuracy"
    fig = figures.decision_scatter(points, band=band, unit=unit, baseline=a.baseline)
    table = Table(("recipe", "gain at the proxies", "proxy runs", "gain predicted at target",
                   "95% interval", "P(beats baseline)", "prediction from", "decision",
                   "decided by"),
                  tuple(rows),
                  f"Gain = improvement over {a.baseline} in {unit} (positive is better). "
                  "Without a comparison the decision shown is the interval rule: go when the "
                  "95% interval of the predicted gain lies above 0, no-go below, else "
                  "inconclusive.")
    rank = (a.compare or {}).get("rank_stability")
    notes = ((f"Rank stability across proxy scales: {value_text(rank)}.",)
             if isinstance(rank, (int, float)) else ())  # a per-scale table is in section 1
    return Section(key, title, tables=(table,), figures=(fig,) if fig else (), notes=notes)
