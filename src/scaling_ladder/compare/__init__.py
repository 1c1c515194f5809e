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
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..laws.bootstrap import percentile_interval
from ..observations.table import Observations, _listing, checkpoint_mask
from . import sanity
from .baselines import default_order, ranking_scales
from .decide import Rule, decide, overall
from .gates import evidence, stage_gates
from .joint import JointFit, compute_multiplier, joint_fit, mixture_draws
from .options import LAW_NAMES, CompareOptions
from .predict import COLUMNS as PRED_COLUMNS
from .predict import downstream_translation, predict_metrics, prediction_rows
from .prepare import AVERAGE, prepare
from .protocols import compare_protocols
from .regressions import near_chance_metrics, regression_table
from .result import Comparison
from .scales import better_sign, proxy_accuracy, rank_stability, recipe_rows, survival
from .target import Target, resolve_target

HOLDOUT_WARN = 0.05  # a law that misses the held-out largest size by more is warned about

__all__ = ["CompareOptions", "Comparison", "compare"]


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
    metric : the metric the decision rests on (default: the first ``val/`` loss every
        recipe has, else ``train``): a loss, or an accuracy (``ds/<task>``, higher is better)
        predicted in two steps through the loss most correlated with it (Bhagia et al. 2024).
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
    # Every array here is small (a few thousand rows at most): multithreaded BLAS only adds
    # overhead, and on busy cores a lot of it (the per-scale table's least squares on 256
    # recipes: 3-4 s with every thread, 1 s with one), as in laws.fit.
    with threadpool_limits(limits=1, user_api="blas"):
        return _compare(obs, baseline=baseline, metric=metric, target_params=target_params,
                        target_tokens=target_tokens, target_flops=target_flops, rule=rule,
                        options=options, seed=seed, progress=progress)


def _compare(obs, *, baseline, metric, target_params, target_tokens, target_flops, rule,
             options, seed, progress) -> Comparison:
    options = options or CompareOptions()
    rule = rule or Rule()
    prep = prepare(obs, baseline=baseline, metric=metric, options=options, seed=seed)
    metric, table = prep.metric, prep.table
    prim = table[table["metric"] == metric]
    notes = list(prep.notes)
    rows_of = recipe_rows(prim, baseline)
    surv = {r: survival(rows_of.get(r, rows_of[baseline]), r, top_sizes=rule.sign_top_sizes,
                        level=options.level) for r in prep.recipes if r != baseline}
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
    fitted = pred["loss"] or metric  # the loss the joint fit is of (an accuracy's pair)
    flagged, own, not_fit = _sanity(jf, table[table["metric"] == fitted], predictions,
                                    metric=fitted, baseline=baseline, target=target)
    # at the target only where the decision rests on the fit: a prediction the sanity gates
    # set aside blocks nothing (its recipe is decided on the data's ranking, and so are its
    # regressions, at the largest scale measured)
    untrusted = list(prep.recipes) if not_fit else list(flagged)
    trusted = predictions[~predictions["recipe"].isin(untrusted)]
    regressions = regression_table(
        table, trusted, baseline=baseline, primary=metric, near=set(pred["near"]),
        max_loss=rule.max_regression_loss, max_accuracy=rule.max_regression_accuracy,
        level=options.level, loss_units=prep.loss_units)
    n_sizes = int(prim.loc[prim["recipe"] == baseline, "params"].nunique())
    proxies, (n, d) = _proxies(prim, target)
    scale = next(iter(ranking_scales(proxies, n, d, k=1)), None)
    decisions = {}
    pred_of = _split(predictions[predictions["metric"] == metric])
    regs_of = _split(regressions)
    for r in prep.recipes:
        if r != baseline:
            ev = evidence(r, baseline=baseline, metric=metric,
                          table=rows_of.get(r, rows_of[baseline]), surv=surv[r],
                          predictions=pred_of(r), target=target,
                          regressions=regs_of(r),
                          no_prediction="; ".join(jf.notes) if jf.fit is None else "",
                          n_sizes=n_sizes, missing=prep.missing.get(r, ""),
                          flags=flagged.get(r, ()) + ((not_fit,) if not_fit else ()),
                          scale=scale, loss_units=prep.loss_units)
            decisions[r] = decide(ev, rule)
    rows = predictions[predictions["metric"] == metric]
    order = default_order(proxies, n, d, dict(zip(rows["recipe"], rows["predicted"])),
                          fit_trusted=jf.fit is not None and not not_fit and not flagged,
                          higher_is_better=better_sign(prep.kind) > 0)
    p_beats = predictions[predictions["metric"] == metric].set_index("recipe")["p_beats"]
    decision, reasons = overall(decisions, p_beats.to_dict())
    gates = ()
    if jf.fit is not None and options.gate_bootstrap > 0 and fitted == metric:
        gates = stage_gates(pred["fit_rows"](metric), prim, baseline=baseline, law=pred["law"],
                            variant=jf.variant, target=target, rule=rule, options=options,
                            decisions=decisions, seed=seed, ticker=ticker,
                            loss_units=prep.loss_units)
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
        regressions=regressions, near_chance=tuple(pred["near"]),
        downstream=pred["downstream"], protocols=protocols, decisions=decisions,
        decision=decision, reasons=tuple(reasons), gates=tuple(gates), rule=rule,
        options=options, notes=tuple(notes),
        set_aside=obs.set_aside if isinstance(obs, Observations) else (),
        warnings=tuple(_warnings(jf, prim, predictions, flagged, own, target=target,
                                 metric=metric, largest=largest["scale"],
                                 level=options.level)),
        flags=flagged, backtest=own, ranking=order, units=prep.units, per_token=prep.per_token)


def _split(table: pd.DataFrame | None) -> Callable[[str], pd.DataFrame | None]:
    """``recipe -> table[table["recipe"] == recipe]``, split once (see scales.recipe_rows)."""
    if table is None or not len(table):
        return lambda _r: table
    at = table.groupby("recipe", sort=False, observed=True).indices
    return lambda r: table.iloc[at.get(r, np.empty(0, dtype=int))]


def _proxies(table: pd.DataFrame, target: Target) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The per-scale rows up to the target's N (a run trained at the target is the best
    ranking there is) and the (N, D) whose tokens per parameter the observed ranking matches
    (D/N = 20 for a compute-optimal target, Hoffmann et al. 2022)."""
    if target.params is None:
        return table, (1.0, 20.0)
    upto = table[table["params"] <= target.params * 1.02]
    return (upto if len(upto) else table), (target.params, target.tokens)


def _sanity(jf: JointFit, table: pd.DataFrame, predictions: pd.DataFrame, *, metric: str,
            baseline: str, target: Target) -> tuple[dict[str, tuple[str, ...]], Any, str]:
    """Why each recipe's prediction is flagged (:mod:`.sanity`; a flag on the baseline's
    flags every delta), the ladder's own leave-largest-out backtest, and why the decision
    does not rest on the fit at all ("" when it does: :func:`.sanity.fit_basis`)."""
    if jf.fit is None:
        return {}, None, ""
    rows = predictions[predictions["metric"] == metric]
    predicted = dict(zip(rows["recipe"], rows["predicted"].astype(float)))
    why = sanity.flags(jf, table, predicted, baseline=baseline, target=target)
    own = sanity.own_backtest(jf, table, baseline=baseline)
    common = [f"the baseline's: {w}" for w in why.get(baseline, [])]
    out = {r: tuple(w + common) for r, w in why.items() if r != baseline}
    largest = table.sort_values(["flops", "params"]).iloc[-1]
    basis = sanity.fit_basis(own, n_sizes=int(table["params"].nunique()), target=target,
                             largest=(float(largest["params"]), float(largest["flops"])))
    return {r: w for r, w in out.items() if w}, own, basis


def _warnings(jf: JointFit, table: pd.DataFrame, predictions: pd.DataFrame,
              flagged: dict[str, tuple[str, ...]], own, *, target: Target, metric: str,
              largest: str, level: float) -> list[str]:
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
                           f"predicted {level:.0%} interval [{lo:.4g}, {hi:.4g}]")
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
    """The joint fit, every metric at the target and loss -> downstream."""
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
    # an accuracy is predicted in two steps through its paired loss (Bhagia et al. 2024)
    loss = metric if prep.kind == "loss" else prep.paired_loss
    if loss is not None:
        jf = joint_fit(law, fit_rows(loss), baseline=baseline, variants=options.variants,
                       bootstrap=options.bootstrap, seed=seed, n_starts=options.n_starts,
                       progress=ticker.sub())
    else:  # a loss law does not fit an accuracy: the recipes are ranked at each scale
        jf = JointFit(None, "", notes=(f"no joint fit: {metric} is an accuracy, which a loss "
                                       "law does not fit, and no loss is paired with it; "
                                       "ranked at each scale",))
    notes += list(jf.notes)
    rows, multipliers, draws, more, task_laws = [], {}, {}, [], {}
    if jf.fit is not None:
        draws = mixture_draws(jf, target, list(jf.fit.groups))
        mix = ", ".join(f"{m.variant} {m.weight:.2f}" for m in jf.members)
        rows = prediction_rows(
            loss, "loss", draws, baseline, level=options.level,
            min_gain=rule.min_gain if loss == metric else 0.0,
            method=f"joint {law.name} fit over sharing variants ({mix}), "
                   f"{options.bootstrap} resamples")
        multipliers = _multipliers(jf, target, baseline, options.level)
        notes += [f"joint fit: {n}" for n in jf.fit.notes]
        ticker.done = options.bootstrap
        more, task_laws, more_notes = predict_metrics(
            frame, law=law, joint=jf, primary=loss, primary_draws=draws, baseline=baseline,
            target=target, fit_rows=fit_rows, skip=set(near) - {metric},
            bootstrap=max(options.slice_bootstrap, 10 if loss != metric else 0), seed=seed,
            level=options.level, min_gain=0.0, tick=ticker.tick)
        notes += more_notes
    predictions = pd.DataFrame(rows + more, columns=PRED_COLUMNS)
    downstream = downstream_translation(task_laws, predictions, table, baseline=baseline,
                                        primary=loss or metric, average=AVERAGE)
    return {"joint": jf, "law": law, "fit_rows": fit_rows, "predictions": predictions,
            "loss": loss,
            "multipliers": multipliers, "near": near,
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
