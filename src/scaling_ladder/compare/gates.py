"""Evidence for the go / no-go rule, and the rule at each stage gate of a ladder.

A ladder is promoted in stages: small proxies decide what is trained at medium scale, medium
what is trained large, large what goes to the final run. Each gate here re-runs the decision
with only the runs available at that stage and a target one stage up, and, when that stage
was trained, says what was then observed; the last gate (large -> final) is the comparison's
own decision. Sizes are split into three stages of consecutive model sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..laws.compute import flops_6nd
from ..laws.forms import Law
from .decide import Decision, Evidence, Rule, decide
from .joint import JointFit, joint_fit, recipe_draws, side_by_side
from .predict import prediction_rows
from .sanity import observed_p_better
from .scales import better_sign, fmt_count, recipe_rows, survival
from .target import Target


def evidence(recipe: str, *, baseline: str, metric: str, table: pd.DataFrame, surv,
             predictions: pd.DataFrame, target: Target, regressions: pd.DataFrame | None,
             no_prediction: str = "", n_sizes: int = 0, missing: str = "",
             flags: tuple[str, ...] = (), scale: tuple[float, float] | None = None,
             loss_units: str = "nats") -> Evidence:
    """Gather one recipe's evidence for :func:`~scaling_ladder.compare.decide.decide`.

    ``table`` is the per-scale table of the decision metric, ``surv`` the recipe's
    :class:`~scaling_ladder.compare.scales.Survival`. With ``flags`` (why the prediction at
    the target is not trusted, :mod:`.sanity`) the evidence is the ranking at the largest
    scale instead (``scale``, the (N, D) the observed ranking uses, else the largest-compute
    one): P(better there) and the gain measured there; so is it when there is no prediction
    (``no_prediction`` says why: an accuracy metric, too few sizes).
    """
    kind = table["kind"].iloc[0] if len(table) else "loss"
    s = better_sign(kind)
    units = loss_units if kind == "loss" else "accuracy"  # bits/byte across tokenizers
    rows = table[(table["recipe"] == recipe) & table["delta"].notna()]
    kw: dict[str, Any] = {}
    if len(rows):
        top = rows.sort_values(["flops", "params"]).iloc[-1]
        base_n = table[(table["scale"] == top["scale"]) & (table["recipe"] == baseline)]
        lo, hi = top["ci_lo"], top["ci_hi"]
        kw.update(largest_scale=top["scale"], largest_params=float(top["params"]),
                  largest_gain=float(s * top["delta"]), noise_sd=float(top["noise_sd"]),
                  noise_source=str(top["noise_source"]),
                  n_seeds=int(min(top["n_runs"], base_n["n_runs"].min() if len(base_n) else 1)),
                  largest_worse_beyond_noise=bool(np.isfinite(lo) and (
                      lo > 0 if s < 0 else hi < 0)),
                  n_top_scales=int(rows["params"].isin(surv.top_sizes).sum()))
    pred = predictions[(predictions["metric"] == metric) & (predictions["recipe"] == recipe)]
    usable = bool(len(pred)) and bool(np.isfinite(pred["p_beats"].iloc[0]))
    if not usable and not no_prediction:
        no_prediction = f"{recipe} is not in the joint fit" if not len(pred) else \
            "the bootstrap gave no usable draws (fit with bootstrap > 1)"
    if (flags or not usable) and len(rows):  # no trusted prediction: what the data show
        at = rows[np.isclose(rows["params"], scale[0]) & np.isclose(rows["tokens"], scale[1])] \
            if scale is not None else rows.iloc[:0]
        at = at.iloc[0] if len(at) else top
        kw.update(basis=f"ranking at {at['scale']}", flags=tuple(flags),
                  p_beats=observed_p_better(at), gain=float(s * at["delta"]),
                  gain_ci=tuple(sorted((float(s * at["ci_lo"]), float(s * at["ci_hi"])))))
    elif usable:
        p = pred.iloc[0]
        kw.update(p_beats=float(p["p_beats"]), gain=float(s * p["delta"]),
                  gain_ci=tuple(sorted((float(s * p["delta_lo"]), float(s * p["delta_hi"])))))
    regs = ()
    if regressions is not None and len(regressions):
        regs = tuple(regressions[regressions["recipe"] == recipe].to_dict(orient="records"))
    return Evidence(recipe=recipe, baseline=baseline, metric=metric, units=units,
                    target=target.label, no_prediction=no_prediction,
                    top_sizes=surv.top_sizes, top_share_better=surv.top_share_better,
                    n_sizes=n_sizes, regressions=regs, missing=missing, **kw)


def stage_gates(fit_frame: pd.DataFrame, table: pd.DataFrame, *, baseline: str, law: Law,
                variant: str, target: Target, rule: Rule, options, decisions: dict[str,
                                                                                    Decision],
                seed: int, ticker, loss_units: str = "nats") -> list[dict[str, Any]]:
    """The rule at each gate: small -> medium, medium -> large, large -> final.

    Needs at least three model sizes; each early gate fits the runs up to its stage (the
    sharing variant of the full fit, ``options.gate_bootstrap`` resamples) and predicts the
    largest size of the next stage at the target's tokens per parameter.
    """
    sizes = np.sort(table.loc[table["recipe"] == baseline, "params"].unique())
    final_gate = {"gate": "large -> final", "evidence": "all runs", "target": target.label,
                  "recipes": {r: {"decision": d.decision, "reasons": list(d.reasons)}
                              for r, d in decisions.items()}}
    if len(sizes) < 3:
        return [final_gate]
    stages = np.array_split(sizes, 3)
    if target.path == "tokens-per-param":
        tpp = target.tokens / target.params
    else:
        base = table[table["recipe"] == baseline]
        tpp = float(np.median(base["tokens"] / base["params"]))
    gates = []
    for i, name in ((0, "small -> medium"), (1, "medium -> large")):
        cut, nxt = float(stages[i][-1]), float(stages[i + 1][-1])
        gates.append((name, cut, Target(nxt, nxt * tpp, float(flops_6nd(nxt, nxt * tpp)),
                                        "tokens-per-param")))

    def gate_fit(cut: float) -> JointFit:
        return joint_fit(law, fit_frame[fit_frame["params"] <= cut * (1 + 1e-9)],
                         baseline=baseline, variants=(variant,),
                         bootstrap=options.gate_bootstrap, seed=seed, n_starts=2)

    # the gates' fits are independent: side by side
    fits = side_by_side(gate_fit, [cut for _, cut, _ in gates],
                    done=lambda _: ticker.tick(options.gate_bootstrap))
    out = [_gate(name, jf, table, cut, gate_target, baseline=baseline, rule=rule,
                 options=options, loss_units=loss_units)
           for (name, cut, gate_target), jf in zip(gates, fits, strict=True)]
    return out + [final_gate]


def _gate(name, jf, table, cut, gate_target, *, baseline, rule, options,
          loss_units) -> dict[str, Any]:
    sub_table = table[table["params"] <= cut * (1 + 1e-9)]
    rows = []
    if jf.fit is not None:
        draws = recipe_draws(jf.fit, gate_target, list(jf.fit.groups))
        rows = prediction_rows(table["metric"].iloc[0], "loss", draws, baseline,
                               level=options.level, min_gain=rule.min_gain, method="gate")
    preds = pd.DataFrame(rows, columns=["metric", "kind", "recipe", "predicted", "predicted_lo",
                                        "predicted_hi", "delta", "delta_lo", "delta_hi",
                                        "p_beats", "method"])
    n_sizes = int(sub_table.loc[sub_table["recipe"] == baseline, "params"].nunique())
    recipes = {}
    rows_of = recipe_rows(sub_table, baseline)  # each recipe's rows, split once
    at = preds.groupby("recipe", sort=False).indices
    mine = table.groupby("recipe", sort=False).indices
    for r in sorted(set(sub_table["recipe"]) - {baseline}):
        surv = survival(rows_of[r], r, top_sizes=rule.sign_top_sizes, level=options.level)
        ev = evidence(r, baseline=baseline, metric=table["metric"].iloc[0], table=rows_of[r],
                      surv=surv, predictions=preds.iloc[at.get(r, [])], target=gate_target,
                      regressions=None,
                      no_prediction="; ".join(jf.notes) if jf.fit is None else "",
                      n_sizes=n_sizes, loss_units=loss_units)
        d = decide(ev, rule)
        recipes[r] = {"decision": d.decision, "p_beats": ev.p_beats, "reasons": list(d.reasons),
                      **_observed(table.iloc[mine.get(r, [])], r, gate_target, d)}
    return {"gate": name, "evidence": f"runs up to N = {fmt_count(cut)}",
            "target": gate_target.label, "recipes": recipes}


def _observed(table: pd.DataFrame, recipe: str, target: Target, d: Decision) -> dict[str, Any]:
    """The gain observed at the gate's target scale, when it was trained, and whether the
    gate's decision agreed with it (inconclusive decisions are neither right nor wrong)."""
    rows = table[(table["recipe"] == recipe) & table["delta"].notna()
                 & np.isclose(table["params"], target.params, rtol=0.05)]
    if rows.empty:
        return {"observed_gain": None, "observed_at": None, "agrees": None}
    tpp = rows["tokens"] / rows["params"]
    top = rows.iloc[int(np.argmin(np.abs(np.log(tpp / (target.tokens / target.params)))))]
    gain = float(better_sign(top["kind"]) * top["delta"])
    agrees = None
    if d.decision in ("go", "no-go") and math.isfinite(gain) and gain != 0:
        agrees = (gain > 0) == (d.decision == "go")
    return {"observed_gain": gain, "observed_at": top["scale"], "agrees": agrees}
