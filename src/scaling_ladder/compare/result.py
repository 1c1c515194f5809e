"""What :func:`scaling_ladder.compare.compare` found: the :class:`Comparison`, its JSON (what
``ladder compare --json`` writes) and back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from ..files import plain as _plain
from .baselines import TargetOrder
from .decide import Decision, Rule
from .joint import JointFit
from .options import CompareOptions
from .predict import COLUMNS as PRED_COLUMNS
from .sanity import OwnBacktest
from .scales import Survival
from .target import Target


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` found; ``to_dict()`` is what ``ladder compare --json`` writes."""

    baseline: str
    metric: str
    kind: str
    recipes: tuple[str, ...]
    match: str
    target: Target
    joint: JointFit
    per_scale: pd.DataFrame
    survival: dict[str, Survival]
    rank_stability: dict[str, Any]
    decision_accuracy: dict[str, Any]
    predictions: pd.DataFrame
    multipliers: dict[str, dict[str, Any]]
    regressions: pd.DataFrame
    near_chance: tuple[str, ...]
    downstream: dict[str, Any]
    protocols: dict[str, Any] | None
    decisions: dict[str, Decision]
    decision: str
    reasons: tuple[str, ...]
    gates: tuple[dict[str, Any], ...]
    rule: Rule
    options: CompareOptions
    notes: tuple[str, ...] = ()
    set_aside: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # what a reader must see before the decision, most severe first
    flags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # why a prediction is set aside
    backtest: OwnBacktest | None = None  # leave-largest-out: the fit vs one size down
    ranking: TargetOrder | None = None  # the recipes' order at the target, best first
    units: str = "nats/token"  # of the decision metric: nats/token, bits/byte or accuracy
    # recipes of different tokenizers: the metric per token and per byte, ranked both ways at
    # the largest shared scale (compare.tokenizers.unit_ranking); None otherwise
    per_token: pd.DataFrame | None = None

    @property
    def matched(self) -> str:
        """The budget scales were matched on: ``tokens`` (N, D) or ``flops`` (never bytes)."""
        return "flops" if self.match == "flops" else "tokens"

    def recipe_summary(self, recipe: str) -> dict[str, Any]:
        """The per-recipe block of the JSON: decision, P(beats), delta, CI, multiplier."""
        pred = self.predictions
        row = pred[(pred["metric"] == self.metric) & (pred["recipe"] == recipe)]
        r = row.iloc[0] if len(row) else None

        def get(col):
            return float(r[col]) if r is not None and pd.notna(r[col]) else None

        mult = self.multipliers.get(recipe, {})
        d = self.decisions.get(recipe)
        basis = d.basis if d else "fit"
        p = get("p_beats") if basis == "fit" or d is None else d.p_beats
        return {
            "decision": d.decision if d else "inconclusive",
            "headline": d.headline if d else "", "reasons": list(d.reasons) if d else [],
            "advice": list(d.advice) if d else [],
            "basis": basis, "flags": list(self.flags.get(recipe, ())),
            "p_beats_baseline": p, "predicted": get("predicted"),
            "predicted_ci95": [get("predicted_lo"), get("predicted_hi")],
            "predicted_delta": get("delta"), "ci95": [get("delta_lo"), get("delta_hi")],
            "compute_multiplier": mult.get("point"),
            "compute_multiplier_ci95": mult.get("ci"),
            "compute_multiplier_path": mult.get("path"),
            "compute_multiplier_note": mult.get("note") or None,
            "survival": self.survival[recipe].to_dict() if recipe in self.survival else None,
            "downstream": self.downstream.get("recipes", {}).get(recipe),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN and inf become null)."""
        base = self.predictions[(self.predictions["metric"] == self.metric)
                                & (self.predictions["recipe"] == self.baseline)]
        return _plain({
            "decision": self.decision, "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "baseline": self.baseline, "metric": self.metric, "kind": self.kind,
            "sign_convention": "delta = recipe - baseline in the metric's units (loss: negative "
                               "is better; accuracy: positive is better); gain = improvement",
            "params_convention": "as given in the params column",
            "units": self.units, "match": self.match, "matched": self.matched,
            "per_token": self.per_token,
            "target": self.target.to_dict(),
            "baseline_predicted": None if base.empty else base["predicted"].iloc[0],
            "recipes": {r: self.recipe_summary(r) for r in self.recipes if r != self.baseline},
            "joint_fit": self.joint.to_dict(),
            "per_scale": self.per_scale,
            "rank_stability": self.rank_stability,
            "decision_accuracy": self.decision_accuracy,
            "predictions": self.predictions,
            "regressions": self.regressions,
            "near_chance": list(self.near_chance),
            "downstream": self.downstream, "protocols": self.protocols,
            "gates": list(self.gates), "rule": self.rule.to_dict(),
            "options": {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in self.options.__dict__.items()},
            "notes": list(self.notes), "set_aside": dict(self.set_aside),
            "flags": {r: list(f) for r, f in self.flags.items()},
            "backtest": self.backtest.to_dict() if self.backtest is not None else None,
            "ranking_at_target": self.ranking.to_dict() if self.ranking is not None else None,
        })

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str | None = None) -> Comparison:
        """Rebuild a comparison from :meth:`to_dict` (a ``ladder compare --json`` file).

        Rebuilt: the decision, reasons, warnings, each recipe's summary (decision, reasons,
        advice, the basis of its P(beats), survival, compute multiplier), the predictions,
        per-scale and regression tables, gates, target, rule, options, notes, flags and the
        joint fit's summary (variant, held-out errors, notes; ``joint.fit`` is None: its
        parameters and draws are not in the JSON), so that ``recipe_summary`` gives what the
        file holds. A file of another version (a key
        missing or unknown) is an :class:`~scaling_ladder.errors.InputError` naming ``source``.
        """
        from ..errors import InputError

        fix = "re-run ladder compare ... --json FILE with this version"
        need = {"decision", "reasons", "warnings", "baseline", "metric", "kind", "match",
                "target", "recipes", "joint_fit", "per_scale", "rank_stability",
                "decision_accuracy", "predictions", "regressions", "near_chance", "downstream",
                "protocols", "gates", "rule", "options", "notes", "set_aside"}
        known = need | {"sign_convention", "params_convention", "baseline_predicted",
                        "ranking_at_target", "units", "matched", "per_token"} | {
            f.name for f in fields(cls)}
        if not isinstance(d, dict):
            raise InputError(source, "is not a comparison (not a JSON object)", fix=fix)
        missing, unknown = sorted(need - set(d)), sorted(set(d) - known)
        if missing or unknown:
            what = (f"no key {', '.join(map(repr, missing))}" if missing
                    else f"unknown key {', '.join(map(repr, unknown))}")
            raise InputError(source, "is not a comparison written by this version of ladder "
                             f"compare --json ({what})", fix=fix)

        def real(x) -> float:
            return np.nan if x is None else float(x)

        def table(rows, columns=None) -> pd.DataFrame:
            frame = pd.DataFrame.from_records(rows, columns=columns)
            for c in frame.columns:  # JSON null back to NaN in numeric columns
                vals = frame[c].dropna()
                if frame[c].dtype == object and len(vals) and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                    frame[c] = frame[c].astype(float)
            return frame

        try:
            decisions, multipliers, surv = {}, {}, {}
            for r, s in d["recipes"].items():
                # a decision on the data's ranking (basis) carries its own P(beats)
                on = {"basis": s["basis"], "p_beats": real(s["p_beats_baseline"])}
                decisions[r] = Decision(s["decision"], tuple(s["reasons"]), tuple(s["advice"]),
                                        (), s["headline"], **on)
                multipliers[r] = {"point": s["compute_multiplier"],
                                  "ci": s["compute_multiplier_ci95"],
                                  "path": s["compute_multiplier_path"],
                                  "note": s["compute_multiplier_note"] or ""}
                v = s["survival"]
                if v is not None:
                    surv[r] = Survival(
                        int(v["n_scales"]), real(v["share_better"]), real(v["sign_consistency"]),
                        tuple(map(real, v["top_sizes"])), real(v["top_share_better"]),
                        real(v["trend_per_decade"]), tuple(map(real, v["trend_ci95"])),
                        v["trend"])
            j, t = d["joint_fit"], d["target"]
            joint = JointFit(None, j["variant"],
                             {k: np.inf if e is None else float(e)
                              for k, e in j["held_out_are"].items()},
                             j["held_out"], tuple(j["notes"]))
            options = CompareOptions(**{k: tuple(v) if k == "variants" else v
                                        for k, v in d["options"].items()})
            more: dict[str, Any] = {}
            if "flags" in d:
                more["flags"] = {r: tuple(f) for r, f in d["flags"].items()}
            if d.get("backtest"):
                b = d["backtest"]
                more["backtest"] = OwnBacktest(b["held_out"], real(b["fit_error"]),
                                               real(b["naive_error"]), int(b["n_deltas"]))
            if "units" in d:  # files written before tokenizers were compared have none
                more["units"] = d["units"]
            if d.get("per_token"):
                more["per_token"] = table(d["per_token"])
            if d.get("ranking_at_target"):
                more["ranking"] = TargetOrder.from_dict(d["ranking_at_target"])
            return cls(
                baseline=d["baseline"], metric=d["metric"], kind=d["kind"],
                recipes=tuple(sorted({d["baseline"], *d["recipes"]})), match=d["match"],
                target=Target(t["params"], t["tokens"], float(t["flops"]), t["path"],
                              bool(t["given"])),
                joint=joint, per_scale=table(d["per_scale"]), survival=surv,
                rank_stability=d["rank_stability"], decision_accuracy=d["decision_accuracy"],
                predictions=table(d["predictions"], None if d["predictions"] else PRED_COLUMNS),
                multipliers=multipliers, regressions=table(d["regressions"]),
                near_chance=tuple(d["near_chance"]), downstream=d["downstream"],
                protocols=d["protocols"], decisions=decisions, decision=d["decision"],
                reasons=tuple(d["reasons"]), gates=tuple(d["gates"]),
                rule=Rule.from_dict(d["rule"]), options=options, notes=tuple(d["notes"]),
                set_aside=tuple(d["set_aside"].items()), warnings=tuple(d["warnings"]), **more)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"no key {exc}" if isinstance(exc, KeyError) else str(exc).rstrip(".")
            raise InputError(source, "is not a comparison written by this version of ladder "
                             f"compare --json ({what})", fix=fix) from None

    def summary(self) -> str:
        """Plain text: the decision, each recipe's reasons, and the notes."""
        lines = [f"[[Decision]] {self.decision} (baseline {self.baseline}, metric "
                 f"{self.metric} in {self.units}, matched by {self.matched}, target "
                 f"{self.target.label})"]
        lines += [f"    {r}" for r in self.reasons]
        if self.ranking is not None and self.ranking.order:
            basis = ("the fit" if self.ranking.basis == "fit"
                     else f"the data ({self.ranking.basis})")
            lines.append(f"[[Order at the target]] {' > '.join(self.ranking.order)} "
                         f"(best first, from {basis})")
        for r in self.recipes:
            if r == self.baseline:
                continue
            s = self.recipe_summary(r)
            lines.append(f"[[{r}]] {s['decision']}")
            lines += [f"    - {x}" for x in s["reasons"]]
            lines += [f"    > {x}" for x in s["advice"]]
        if len(self.regressions):
            lines.append(f"[[Regressions]] {len(self.regressions)} "
                         f"({int(self.regressions['blocking'].sum())} blocking)")
        if self.notes:
            lines.append("[[Notes]]")
            lines += [f"    {i}. {n}" for i, n in enumerate(self.notes, 1)]
        return "\n".join(lines)
