"""Sections 2, 7 and 8: the experiment table, downstream and regression tables, and the
stage-0 data checks (rendered from ``data.CheckResult.to_dict()``).

With a comparison, the downstream tables show its per-scale values at its reference scale and
the regression table is its own; every difference is shown as a gain (positive is better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..compare.scales import better_sign, reference_scale
from ..format import count
from .cells import interval, num, pct, signed
from .model import Analysis, Section, Table

MAX_ROWS = 1000  # experiment-table rows
CONTAMINATION_WARNING = 0.01  # share of a slice's documents sharing an n-gram with a recipe
EXTRA_COLUMNS = ("tokenizer", "protocol", "hardware", "optimizer", "schedule", "weight_decay",
                 "warmup", "seq_len")

# --------------------------------------------------------------------------- 2 experiments


def experiments(a: Analysis) -> Section:
    f = a.frame
    g = f.groupby("run_id", sort=False)
    runs = g.agg(experiment=("experiment", "first"), run=("run", "first"),
                 recipe=("recipe", "first"), params=("params", "first"),
                 tokens=("tokens", "max"), flops=("flops", "max"))
    main = a.main.groupby("run_id")["tokens"]
    runs["ckpts"] = main.nunique().reindex(runs.index)
    runs["first"] = main.min().reindex(runs.index)
    cols = ["run", "recipe"]
    head = ["run", "recipe"]
    if f["experiment"].nunique() > 1:
        cols, head = ["experiment"] + cols, ["experiment"] + head
    convention = _convention(f)
    cols.append("params")
    head.append(f"N ({convention})")
    if "params_nonembed" in f and convention != "non-embedding":
        runs["params_nonembed"] = g["params_nonembed"].first()
        if runs["params_nonembed"].notna().any():
            cols.append("params_nonembed")
            head.append("N (non-embedding)")
    cols += ["tokens", "flops"]
    head += ["tokens D", "FLOPs C"]
    runs["tpp"] = runs["tokens"] / runs["params"]
    cols.append("tpp")
    head.append("tokens / param")
    for c, label in (("lr", "lr"), ("batch_tokens", "batch (tokens)"), ("seed", "seed")) + tuple(
            (c, c.replace("_", " ")) for c in EXTRA_COLUMNS):
        if c in f and f[c].notna().any():
            runs[c] = g[c].first()
            cols.append(c)
            head.append(label)
    cols.append("ckpts")
    head.append(f"checkpoints of {a.metric}")
    order = {r: i for i, r in enumerate(a.recipes)}
    runs["_o"] = runs["recipe"].map(order).fillna(len(order))
    runs = runs.sort_values(["_o", "params", "tokens", "run"])
    rows = []
    for _, r in runs.head(MAX_ROWS).iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in ("params", "params_nonembed", "tokens", "batch_tokens"):
                cells.append(count(v))
            elif c == "flops":
                cells.append(num(float(v), 3))
            elif c == "tpp":
                cells.append(num(float(v), 3))
            elif c == "ckpts":
                k = 0 if pd.isna(v) else int(v)
                cells.append("—" if k == 0 else "final only" if k == 1 else
                             f"{k} ({count(r['first'])} → {count(r['tokens'])})")
            elif c == "seed":
                cells.append("—" if pd.isna(v) else str(int(v)))
            else:
                cells.append("—" if pd.isna(v) else num(v) if not isinstance(v, str) else v)
        rows.append(tuple(cells))
    notes = ()
    if len(runs) > MAX_ROWS:
        notes = (f"{len(runs) - MAX_ROWS} more runs are not listed.",)
    counts = {"total": "total parameters", "non-embedding": "non-embedding parameters",
              "as given": "parameters as the data give them"}[convention]
    caption = (f"{len(runs)} runs, {len(a.recipes)} recipes. N counts {counts}; "
               "tokens and FLOPs are each run's last checkpoint; a dash means the data do not "
               "say.")
    return Section("experiments", "Experiments", tables=(Table(tuple(head), tuple(rows), caption),),
                   notes=notes)


def _convention(f: pd.DataFrame) -> str:
    for col, word in (("params_total", "total"), ("params_nonembed", "non-embedding")):
        if col in f and f[col].notna().all() and np.allclose(f[col], f["params"]):
            return word
    return "as given"


# ----------------------------------------------------------------- 7 downstream, regressions


def _reference(a: Analysis) -> tuple[pd.DataFrame, str]:
    """Values of every metric per recipe at one scale (columns metric, kind, recipe, value,
    random_baseline): the comparison's reference scale of the decision metric (the largest
    compute holding the most recipes), else the largest (N, D) the most recipes share."""
    cmp = a.compare
    if cmp is not None:
        t = cmp.per_scale
        prim = t[t["metric"] == cmp.metric]
        if prim.empty:
            return t.iloc[:0], ""
        scale = reference_scale(prim)
        return t[t["scale"] == scale], f"{scale} (the comparison's per-scale table)"
    fin = a.frame[a.frame["final"].to_numpy(bool)]
    fin = fin.assign(_d=fin["tokens"].map(lambda v: float(f"{v:.3g}")))
    configs = fin.groupby(["params", "_d"])["recipe"].nunique()
    if configs.empty:
        return fin.iloc[:0], ""
    most = configs.max()
    n, d = max(configs[configs == most].index)
    rows = fin[(fin["params"] == n) & (fin["_d"] == d)]
    return rows, f"N = {count(n)}, D = {count(d)}, final checkpoints (mean over seeds)"


def downstream(a: Analysis) -> Section:
    key, title = "downstream", "Downstream and regressions"
    rows, where = _reference(a)
    if rows.empty:
        return Section(key, title, omitted="No final checkpoints to compare.")
    vals = rows.groupby(["metric", "kind", "recipe"])["value"].mean().unstack("recipe")
    recipes = [r for r in a.recipes if r in vals.columns]
    chance = {}
    if "random_baseline" in rows:
        chance = rows.groupby("metric")["random_baseline"].first().dropna().to_dict()
    tables = []
    for kind, label in (("loss", f"Loss-based ({a.loss_units}; lower is better)"),
                        ("accuracy", "Accuracy-based (fraction correct; higher is better)")):
        sub = vals.xs(kind, level="kind") if kind in vals.index.get_level_values("kind") else None
        if sub is None or sub.empty:
            continue
        head = ["metric"] + (["random baseline"] if kind == "accuracy" and chance else [])
        head += [f"{recipes[0]} (baseline)"] + [f"{r} (gain)" for r in recipes[1:]]
        body = []
        sign = 1 if kind == "loss" else -1
        for metric, v in sub.iterrows():
            b = v.get(recipes[0])
            cells = [metric] + ([num(chance.get(metric), 3)] if len(head) > len(recipes) + 1
                                else [])
            cells.append(num(b, 4))
            for r in recipes[1:]:
                x = v.get(r)
                cells.append("—" if pd.isna(x) else f"{num(x, 4)} ({signed(sign * (b - x))})")
            body.append(tuple(cells))
        tables.append(Table(tuple(head), tuple(body),
                            f"{label}, at {where}. In brackets: the gain over the baseline "
                            "(positive is better)."))
    tables.append(_regressions(a, vals, recipes, chance, where))
    if a.tasks is not None:
        tables.append(_task_predictions(a.tasks))
    return Section(key, title, tables=tuple(tables))


def _task_predictions(res) -> Table:
    """Every task at the target through its loss (laws.twostep), or why it is not predicted."""
    head = ("recipe", "task", "loss metric", "accuracy at the target", "95% CI",
            "held-out error (points)", "verdict")
    body = []
    for t in res.tasks:
        err = t.holdout.get("error") if t.holdout else None
        body.append((t.recipe, t.task, t.loss_metric, num(t.mean, 3),
                     interval(t.ci, 3),
                     f"{100 * err:.1f}" if err is not None else "—",
                     "predictable" if t.predictable else "; ".join(t.reasons)))
    n, d = res.target
    return Table(head, tuple(body),
                 f"Task accuracy at N = {count(n)}, D = {count(d)}: step 1 {res.loss_law} on "
                 f"each task's loss metric, step 2 {res.options.law} (Bhagia et al. 2024); "
                 f"{len(res.predictable)} of {len(res.tasks)} tasks predictable. Held-out "
                 "error: both steps fitted without the largest size. An unpredictable task "
                 "gets its reason, not a number.")


def _regressions(a: Analysis, vals: pd.DataFrame, recipes: list[str], chance: dict,
                 where: str) -> Table:
    if a.compare is not None:
        return _comparison_regressions(a)
    out = []
    for r in recipes[1:]:
        for (metric, kind), v in vals.iterrows():
            b, x = v.get(recipes[0]), v.get(r)
            if pd.isna(b) or pd.isna(x):
                continue
            worse = (x - b) if kind == "loss" else (b - x)
            if worse <= 0:
                continue
            near = kind == "accuracy" and metric in chance and max(b, x) < chance[metric] + 0.02
            out.append((worse / abs(b) if b else np.inf, (
                r, metric, kind, num(b, 4), num(x, 4), signed(-worse),
                f"{-100 * worse / abs(b):+.2f}%" if b else "—",
                "near chance: uninformative" if near else "")))
        g = a.gains.get(r)
        if g and g["gain"] < 0:
            base = a.predictions[a.baseline]["mean"]
            out.append((-g["gain"] / base, (r, f"{a.metric} predicted at target", a.kind,
                                            num(base, 4), num(a.predictions[r]["mean"], 4),
                                            signed(g["gain"]),
                                            f"{100 * g['gain'] / base:+.2f}%", "extrapolated")))
    out.sort(key=lambda t: -t[0])
    rows = tuple(t[1] for t in out)
    return Table(("recipe", "metric", "kind", "baseline", "recipe value", "gain", "relative",
                  "note"), rows,
                 f"Regression table: every metric where a recipe is worse than {a.baseline} "
                 f"(at {where}, and the single-recipe fits' prediction at the target), worst "
                 "first. " + a.gain_caption(mixed=True)
                 + (" None got worse." if not rows else ""))


def _comparison_regressions(a: Analysis) -> Table:
    """The comparison's regression table, each delta shown as a gain (negative: worse)."""
    regs = a.compare.regressions
    head = ("recipe", "metric", "where", "gain", "95% CI of the gain", "threshold", "blocking")
    if regs.empty:
        return Table(head, (), "Regression table of the comparison: nothing got worse beyond "
                     "noise.")
    body = []
    for r in regs.itertuples(index=False):
        s = better_sign(r.kind)
        ci = (None if pd.isna(r.ci_lo) or pd.isna(r.ci_hi)
              else tuple(sorted((s * r.ci_lo, s * r.ci_hi))))
        body.append((str(r.recipe), str(r.metric), str(r.where), signed(s * r.delta),
                     interval(ci, sign=True), f"{num(r.threshold, 3)} {r.units}",
                     num(bool(r.blocking))))
    return Table(head, tuple(body),
                 "Regression table of the comparison: every slice and task where a recipe is "
                 "worse than the baseline beyond noise (blocking: beyond the rule's threshold). "
                 + a.gain_caption(mixed=True))


# ---------------------------------------------------------------------------- 8 data checks


def data_checks(a: Analysis) -> Section:
    key, title = "data", "Data smoke checks and contamination"
    chk = a.checks
    if chk is None:
        return Section(key, title, omitted=(
            "No stage-0 data checks were given: run `ladder data check DIR --json checks.json` "
            "and pass it with --checks (library: checks=)."))
    tables = []
    src = chk.get("sources") or []
    if src:
        rows = []
        for s in src:
            rt = f"{s.get('roundtrip_failures', 0)} / {s.get('roundtrip_checked', 0)}"
            rows.append((str(s.get("source")), num(s.get("documents")), count(s.get("tokens", 0)),
                         num(s.get("bytes_per_token"), 3), pct(s.get("exact_dup_rate")),
                         pct(s.get("near_dup_rate")), num(s.get("distinct_4"), 3),
                         num(s.get("gzip_ratio"), 3), pct(s.get("replacement_rate"), 4),
                         pct(s.get("unknown_rate"), 4), rt,
                         num(sum((s.get("set_aside") or {}).values()))))
        tables.append(Table(("source", "documents", "tokens", "bytes/token", "exact dup",
                             "near dup", "distinct 4-grams", "gzip ratio", "U+FFFD rate",
                             "unknown tokens", "round-trip failures", "set aside"), tuple(rows),
                            "Per source: duplicate rates, diversity (distinct word 4-grams), "
                            "compressibility, decoding damage, and documents set aside at "
                            f"build time (tokenizer: {_tokenizer(chk.get('tokenizer'))})."))
    cont = chk.get("contamination") or []
    if cont:
        rows = []
        for c in sorted(cont, key=lambda c: -float(c.get("rate", 0) or 0)):
            _warn_contamination(a, c, chk.get("ngram", 13))
            ex = c.get("examples") or []
            rows.append((str(c.get("recipe")), str(c.get("slice")), pct(c.get("rate")),
                         pct(c.get("document_rate")), num(c.get("matched")),
                         num(c.get("ngrams")), " | ".join(map(str, ex[:2]))))
        tables.append(Table(("recipe", "slice", "n-gram overlap", "documents touched",
                             "matched", "n-grams", "examples"), tuple(rows),
                            f"Share of each evaluation slice's word {chk.get('ngram', 13)}-grams "
                            "found in each recipe's training stream (Brown et al. 2020, "
                            "appendix C), highest first."))
    notes = tuple(map(str, chk.get("notes") or ()))
    if not tables and not notes:
        return Section(key, title, omitted="The data checks hold no sources.")
    return Section(key, title, intro=f"Checks of {chk.get('directory', 'the data')}.",
                   tables=tuple(tables), notes=notes)


def _warn_contamination(a: Analysis, c: dict[str, Any], ngram: int) -> None:
    """A warning when at least CONTAMINATION_WARNING of a slice's documents share a word
    n-gram with a recipe's training stream: that recipe's loss on the slice is optimistic."""
    share = float(c.get("document_rate") or 0.0)
    if share < CONTAMINATION_WARNING:
        return
    recipe, name = str(c.get("recipe")), str(c.get("slice"))
    which = " (the decision metric)" if name == a.metric else ""
    a.warnings.append(("contamination", recipe, (
        f"Contamination: {pct(share)} of the documents of {name}{which} share a {ngram}-gram "
        f"with {recipe}'s training stream ({pct(c.get('rate'))} of the slice's n-grams): "
        f"{recipe}'s loss there is optimistic (Data smoke checks section).")))


def _tokenizer(tok: Any) -> str:
    if isinstance(tok, dict):
        return ", ".join(f"{k} {v}" for k, v in tok.items() if k in ("kind", "vocab_size"))
    return "—" if tok is None else str(tok)
