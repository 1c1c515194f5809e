"""Compare recipes across scales and decide: does the gain survive scaling?

``compare`` turns a ladder of runs with several recipes into a decision a team can defend:

1. per scale, every recipe's value per metric, the noise, the delta against the baseline with
   a CI and the effect-to-noise ratio (:mod:`scaling_ladder.scales`);
2. whether each gain survives scaling: sign consistency, trend with log N, rank stability and
   pairwise decision accuracy of every proxy scale against the largest (DataDecide, Magnusson
   et al. 2025, arXiv:2504.11393);
3. each recipe predicted at the target by a joint fit with shared parameters, with
   P(beats baseline) and the compute multiplier (:mod:`scaling_ladder.target`);
4. a regression table of slices and tasks where a recipe is worse beyond noise;
5. whether the loss gain reaches downstream accuracy (two-step law, Bhagia et al. 2024,
   arXiv:2412.04403);
6. rankings under each optimisation protocol and where they flip (fixed-LR proxies can
   disagree with tuned targets, reduced-LR ones much less: arXiv:2512.24503);
7. go / no-go per recipe and per stage gate from a :class:`~scaling_ladder.decide.Rule`.

Conventions (DESIGN.md): a delta is ``recipe - baseline`` in the metric's units (loss: negative
is better; accuracy: positive is better); a *gain* is the improvement (positive is better).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..files import plain as _plain
from ..laws.bootstrap import percentile_interval
from ..laws.forms import ChinchillaLaw, KaplanLaw, OvertrainLaw
from ..observations.table import Observations, _listing, checkpoint_mask
from . import sanity
from .decide import Decision, Rule, decide, overall
from .gates import evidence, stage_gates
from .joint import VARIANTS, JointFit, compute_multiplier, joint_fit, mixture_draws
from .predict import COLUMNS as PRED_COLUMNS
from .predict import downstream_translation, predict_metrics, prediction_rows
from .prepare import AVERAGE, prepare
from .protocols import compare_protocols
from .regressions import near_chance_metrics, regression_table
from .scales import Survival, proxy_accuracy, rank_stability, survival
from .target import Target, resolve_target

HOLDOUT_WARN = 0.05  # a law that misses the held-out largest size by more is warned about
LAW_NAMES = {"chinchilla": ChinchillaLaw, "overtrain": OvertrainLaw, "kaplan": KaplanLaw}


@dataclass(frozen=True)
class CompareOptions:
    """Options of :func:`compare` beyond the baseline, metric, target and rule.

    Parameters
    ----------
    law : ``chinchilla`` (default) or ``overtrain`` (one exponent, Gadre et al. 2024).
    variants : sharing variants of the joint fit to choose from by held-out error.
    bootstrap : run-clustered resamples of the decision metric's joint fit.
    slice_bootstrap : resamples of every other slice's fit and of each task's sigmoid.
    gate_bootstrap : resamples of each stage gate's fit (0: no stage gates).
    match : ``params-tokens``, ``flops`` (IsoFLOP designs) or ``auto``.
    tolerance : scales within this many decades of N, D (or C) are matched.
    fit_checkpoints : checkpoints the laws are fitted to: ``auto`` (the final checkpoint of
        WSD runs, ``drop-first:0.1`` of others; see ``Observations.select``), ``final``, ``all``,
        ``drop-first:F``...
    protocol : the protocol the decision uses when several exist (default: the most runs).
    level : confidence level of every interval.
    near_chance : a task whose best recipe is within this of its random baseline (or within
        2x noise) at the largest scale is flagged as near chance, not ranked.
    n_starts : starts of each fit (see :func:`scaling_ladder.fitting.fit`).
    """

    law: str = "chinchilla"
    variants: tuple[str, ...] = VARIANTS
    bootstrap: int = 100
    slice_bootstrap: int = 30
    gate_bootstrap: int = 50
    match: str = "auto"
    tolerance: float = 0.01
    fit_checkpoints: str = "auto"
    protocol: str | None = None
    level: float = 0.95
    near_chance: float = 0.05
    n_starts: int = 3

    def __post_init__(self) -> None:
        if self.law not in LAW_NAMES:
            raise ValueError(f"The 'law' option of compare must be one of "
                             f"{', '.join(LAW_NAMES)}. Got {self.law!r}.")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"The 'variants' option takes {', '.join(VARIANTS)}. "
                             f"Got {bad[0] if bad else 'none'!r}.")
        for name in ("bootstrap", "slice_bootstrap", "gate_bootstrap"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 0) or isinstance(v, bool):
                raise ValueError(f"The '{name}' option of compare must be an int >= 0. "
                                 f"Got {v!r}.")
        if self.match not in ("auto", "params-tokens", "flops"):
            raise ValueError("The 'match' option of compare must be auto, params-tokens or "
                             f"flops. Got {self.match!r}.")
        if not 0 < self.level < 1:
            raise ValueError(f"The 'level' option must be in (0, 1). Got {self.level!r}.")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"The 'tolerance' option must be in (0, 1) decades. "
                             f"Got {self.tolerance!r}.")
        empty = pd.DataFrame({c: [] for c in ("experiment", "run", "metric", "tokens", "final")})
        checkpoint_mask(empty, self.fit_checkpoints)  # raises the option's ValueError


# ------------------------------------------------------------------------------ the result


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
    backtest: Any = None  # sanity.OwnBacktest: leave-largest-out, fit vs one size down

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
            "match": self.match, "target": self.target.to_dict(),
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
        from dataclasses import fields

        from ..errors import InputError

        fix = "re-run ladder compare ... --json FILE with this version"
        need = {"decision", "reasons", "warnings", "baseline", "metric", "kind", "match",
                "target", "recipes", "joint_fit", "per_scale", "rank_stability",
                "decision_accuracy", "predictions", "regressions", "near_chance", "downstream",
                "protocols", "gates", "rule", "options", "notes", "set_aside"}
        known = need | {"sign_convention", "params_convention", "baseline_predicted"} | {
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
            on_data = {f.name for f in fields(Decision)} >= {"basis", "p_beats"}
            for r, s in d["recipes"].items():
                # a decision on the data's ranking (basis) carries its own P(beats)
                on = ({"basis": s.get("basis", "fit"), "p_beats": real(s["p_beats_baseline"])}
                      if on_data else {})
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
            more = {}
            if "flags" in d and "flags" in {f.name for f in fields(cls)}:
                more["flags"] = {r: tuple(f) for r, f in d["flags"].items()}
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
                 f"{self.metric}, target {self.target.label})"]
        lines += [f"    {r}" for r in self.reasons]
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


# ---------------------------------------------------------------------------- the verb


class _Ticker:
    """Adds up progress over the fits of one comparison for a ``progress(done, total)``."""

    def __init__(self, progress, total: int):
        self.progress, self.total, self.done = progress, max(total, 1), 0

    def tick(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        if self.progress:
            self.progress(self.done, self.total)

    def sub(self):
        start = self.done

        def update(done: int, _total: int) -> None:
            self.done = min(self.total, start + done)
            if self.progress:
                self.progress(self.done, self.total)
        return update if self.progress else None


def compare(
    obs: Observations | pd.DataFrame,
    *,
    baseline: str,
    metric: str | None = None,
    target_params: float | None = None,
    target_tokens: float | None = None,
    target_flops: float | None = None,
    rule: Rule | None = None,
    options: CompareOptions | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Compare every recipe with ``baseline`` across scales and decide go / no-go.

    Parameters
    ----------
    obs : observations with several recipes (all checkpoints; the final one of each run is
        its value at its scale, the last ones estimate noise when there are no seeds).
    baseline : the recipe the others are compared with.
    metric : the loss metric the decision rests on (default: the first ``val/`` loss every
        recipe has, else ``train``).
    target_params, target_tokens : the target (N, D); or ``target_flops`` for a
        compute-optimal target. Default: the largest scale the baseline was trained at.
    rule : go / no-go thresholds (:class:`~scaling_ladder.decide.Rule`).
    options : :class:`CompareOptions` (law, bootstrap counts, matching, protocol, ...).
    seed : seed of every bootstrap.
    progress : called as ``progress(done, total)`` over the bootstrap refits.

    Returns
    -------
    Comparison

    Example
    -------
    >>> import scaling_ladder as sl
    >>> obs = sl.datasets.load("overtrain")
    >>> res = sl.compare(obs, baseline="c4", metric="val/c4",
    ...                  target_params=6.9e9, target_tokens=1.38e11)   # doctest: +SKIP
    >>> res.decision, res.recipe_summary("refinedweb")["p_beats_baseline"]  # doctest: +SKIP
    """
    options = options or CompareOptions()
    rule = rule or Rule()
    prep = prepare(obs, baseline=baseline, metric=metric, options=options, seed=seed)
    metric, table = prep.metric, prep.table
    prim = table[table["metric"] == metric]
    notes = list(prep.notes)
    surv = {r: survival(prim, r, top_sizes=rule.sign_top_sizes, level=options.level)
            for r in prep.recipes if r != baseline}
    largest = prim[prim["recipe"] == baseline].sort_values(["flops", "params"]).iloc[-1]
    target = resolve_target(params=target_params, tokens=target_tokens, flops=target_flops,
                            default=(largest["params"], largest["tokens"]))
    if not target.given:
        notes.append(f"no target given: predictions at the largest scale trained "
                     f"({largest['scale']})")
    n_other = prep.frame["metric"].nunique() - 1
    ticker = _Ticker(progress, options.bootstrap + n_other * options.slice_bootstrap
                     + 2 * options.gate_bootstrap)
    pred = _predict(prep, baseline=baseline, target=target, rule=rule, options=options,
                    seed=seed, ticker=ticker)
    notes += pred["notes"]
    predictions, jf = pred["predictions"], pred["joint"]
    flagged, own = _sanity(jf, prim, predictions, metric=metric, baseline=baseline,
                           target=target)
    n_sizes = int(prim.loc[prim["recipe"] == baseline, "params"].nunique())
    decisions = {}
    for r in prep.recipes:
        if r != baseline:
            ev = evidence(r, baseline=baseline, metric=metric, table=prim, surv=surv[r],
                          predictions=predictions, target=target,
                          regressions=pred["regressions"],
                          no_prediction="; ".join(jf.notes) if jf.fit is None else "",
                          n_sizes=n_sizes, missing=prep.missing.get(r, ""),
                          flags=flagged.get(r, ()))
            decisions[r] = decide(ev, rule)
    p_beats = predictions[predictions["metric"] == metric].set_index("recipe")["p_beats"]
    decision, reasons = overall(decisions, p_beats.to_dict())
    gates = ()
    if jf.fit is not None and options.gate_bootstrap > 0:
        gates = stage_gates(pred["fit_rows"](metric), prim, baseline=baseline, law=pred["law"],
                            variant=jf.variant, target=target, rule=rule, options=options,
                            decisions=decisions, seed=seed, ticker=ticker)
    protocols = None
    if prep.labels is not None:
        protocols = compare_protocols(prep.frame_all, prep.labels, metric=metric,
                                      match=prep.match, tolerance=options.tolerance,
                                      primary=prep.protocol)
        notes += protocols["flips"][:5]
    if progress:
        progress(ticker.total, ticker.total)
    return Comparison(
        baseline=baseline, metric=metric, kind=prep.kind, recipes=prep.recipes, match=prep.match,
        target=target, joint=jf, per_scale=table, survival=surv,
        rank_stability=rank_stability(table, metric), decision_accuracy=_decision_accuracy(table),
        predictions=predictions, multipliers=pred["multipliers"],
        regressions=pred["regressions"], near_chance=tuple(pred["near"]),
        downstream=pred["downstream"], protocols=protocols, decisions=decisions,
        decision=decision, reasons=tuple(reasons), gates=tuple(gates), rule=rule,
        options=options, notes=tuple(notes),
        set_aside=obs.set_aside if isinstance(obs, Observations) else (),
        warnings=tuple(_warnings(jf, prim, predictions, flagged, own, target=target,
                                 metric=metric, largest=largest["scale"])),
        flags=flagged, backtest=own)


def _sanity(jf: JointFit, table: pd.DataFrame, predictions: pd.DataFrame, *, metric: str,
            baseline: str, target: Target) -> tuple[dict[str, tuple[str, ...]], Any]:
    """Why each recipe's prediction is set aside (:mod:`.sanity`), and the ladder's own
    leave-largest-out backtest. A flag on the baseline's prediction flags every delta."""
    if jf.fit is None:
        return {}, None
    rows = predictions[predictions["metric"] == metric]
    predicted = dict(zip(rows["recipe"], rows["predicted"].astype(float)))
    why = sanity.flags(jf, table, predicted, baseline=baseline, target=target)
    own = sanity.own_backtest(jf, table, baseline=baseline)
    common = [f"the baseline's: {w}" for w in why.get(baseline, [])]
    if own is not None and not own.fit_better:
        common.append(f"on this ladder the fit predicts the deltas at {own.scale} (fitted "
                      f"without it) no better than the deltas one size down do (error "
                      f"{own.fit_error:.3g} vs {own.naive_error:.3g})")
    out = {r: tuple(w + common) for r, w in why.items() if r != baseline}
    return {r: w for r, w in out.items() if w}, own


def _warnings(jf: JointFit, table: pd.DataFrame, predictions: pd.DataFrame,
              flagged: dict[str, tuple[str, ...]], own, *, target: Target, metric: str,
              largest: str) -> list[str]:
    """What a reader must see above the decision, most severe first."""
    out = []
    rows = predictions[predictions["metric"] == metric].set_index("recipe")
    for r in rows.index:  # a trained run at the target outside its predicted interval
        at = table[(table["recipe"] == r) & (target.params is not None)
                   & np.isclose(table["params"], target.params or 0, rtol=0.05)
                   & np.isclose(table["tokens"], target.tokens or 0, rtol=0.05)]
        lo, hi = rows.loc[r, "predicted_lo"], rows.loc[r, "predicted_hi"]
        if len(at) and np.isfinite(lo) and np.isfinite(hi):
            v = float(at["value"].iloc[0])
            if not lo <= v <= hi:
                out.append(f"{r}: the run trained at the target measured {v:.4g}, outside its "
                           f"predicted 95% interval [{lo:.4g}, {hi:.4g}]")
    if flagged:
        out.append(f"prediction at the target set aside for {', '.join(flagged)}: decided on "
                   f"the ranking at the largest scale instead (see each recipe's reasons)")
    if jf.errors and np.isfinite(min(jf.errors.values())) \
            and min(jf.errors.values()) > HOLDOUT_WARN:
        out.append(f"the law misses the largest size by {min(jf.errors.values()):.1%} when "
                   f"fitted without it (diagnostic; above {HOLDOUT_WARN:.0%})")
    if own is not None and not own.fit_better:
        out.append(f"on this ladder the fit is no better than ranking one size down "
                   f"(leave-largest-out error {own.fit_error:.3g} vs {own.naive_error:.3g})")
    if jf.fit is not None:
        bound = sorted({n for n in jf.fit.notes if "at its lower bound" in n
                        or "at its upper bound" in n})
        out += [f"joint fit: {n.split(':')[0]}" for n in bound[:3]]
    if not target.given:
        out.append(f"no target given: the prediction is at the largest scale trained "
                   f"({largest}), not beyond it")
    return out


def _predict(prep, *, baseline: str, target: Target, rule: Rule, options: CompareOptions,
             seed: int, ticker: _Ticker) -> dict[str, Any]:
    """The joint fit, every metric at the target, regressions and loss -> downstream."""
    metric, frame, table = prep.metric, prep.frame, prep.table
    law = LAW_NAMES[options.law]()
    notes: list[str] = []

    def fit_rows(m: str) -> pd.DataFrame:
        rows = frame[frame["metric"] == m]
        return rows[checkpoint_mask(rows, options.fit_checkpoints)]

    near, no_rb = near_chance_metrics(table, options.near_chance)
    if no_rb:
        notes.append(f"{len(no_rb)} accuracy metric(s) have no random_baseline column: "
                     f"near-chance not judged ({_listing(no_rb, 3)})")
    if prep.kind == "loss":
        jf = joint_fit(law, fit_rows(metric), baseline=baseline, variants=options.variants,
                       bootstrap=options.bootstrap, seed=seed, n_starts=options.n_starts,
                       progress=ticker.sub())
    else:  # a loss law does not fit an accuracy: the recipes are ranked at each scale
        jf = JointFit(None, "", notes=(f"no joint fit: {metric} is an accuracy, which a loss "
                                       "law does not fit; ranked at each scale",))
    notes += list(jf.notes)
    rows, multipliers, draws, more, task_laws = [], {}, {}, [], {}
    if jf.fit is not None:
        draws = mixture_draws(jf, target, list(jf.fit.groups))
        mix = ", ".join(f"{m.variant} {m.weight:.2f}" for m in jf.members)
        rows = prediction_rows(
            metric, "loss", draws, baseline, level=options.level, min_gain=rule.min_gain,
            method=f"joint {law.name} fit over sharing variants ({mix}), "
                   f"{options.bootstrap} resamples")
        multipliers = _multipliers(jf, target, baseline, options.level)
        notes += [f"joint fit: {n}" for n in jf.fit.notes]
        ticker.done = options.bootstrap
        more, task_laws, more_notes = predict_metrics(
            frame, law=law, joint=jf, primary=metric, primary_draws=draws, baseline=baseline,
            target=target, fit_rows=fit_rows, skip=set(near),
            bootstrap=options.slice_bootstrap, seed=seed, level=options.level, min_gain=0.0,
            tick=ticker.tick)
        notes += more_notes
    predictions = pd.DataFrame(rows + more, columns=PRED_COLUMNS)
    regressions = regression_table(
        table, predictions, baseline=baseline, primary=metric, near=set(near),
        max_loss=rule.max_regression_loss, max_accuracy=rule.max_regression_accuracy)
    downstream = downstream_translation(task_laws, predictions, table, baseline=baseline,
                                        primary=metric, average=AVERAGE)
    return {"joint": jf, "law": law, "fit_rows": fit_rows, "predictions": predictions,
            "multipliers": multipliers, "regressions": regressions, "near": near,
            "downstream": downstream, "notes": notes}


def _decision_accuracy(table: pd.DataFrame) -> dict[str, Any]:
    """Decision accuracy of every proxy scale against the largest, for every metric."""
    return {"measure": "pairwise decision accuracy against the largest scale holding the most "
                       "recipes (DataDecide, Magnusson et al. 2025)",
            "by_metric": proxy_accuracy(table)}


def _multipliers(jf: JointFit, target: Target, baseline: str, level: float) -> dict:
    out = {}
    for r in jf.fit.groups:
        if r == baseline:
            continue
        point, draws = compute_multiplier(jf, target, r, baseline)
        ok = draws[~np.isnan(draws)]
        ci = [float(v) for v in percentile_interval(ok, level)] if len(ok) > 1 else None
        note = ("never reaches the baseline's target loss on this path (its floor is higher)"
                if point == np.inf else "below the search bound 1e-4"
                if point <= 1e-4 else "")
        out[r] = {"point": point, "ci": ci, "note": note,
                  "path": ("compute-optimal" if target.path == "compute-optimal" else
                           f"fixed tokens-per-parameter ({target.tokens / target.params:.3g})"),
                  "meaning": f"{r} reaches the baseline's target loss with this many times the "
                             "target compute (< 1: needs less compute, 1/k is its effective "
                             "compute gain)"}
    return out
