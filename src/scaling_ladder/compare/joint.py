"""The joint fit across recipes: each recipe at the target, P(beats baseline), compute multiplier.

One law is fitted to all recipes at once with :func:`scaling_ladder.laws.fit.fit` and
``by="recipe"``; which parameters the recipes share (the exponents; E and the exponents, so
only the coefficients A, B differ; E alone; or none) is chosen by held-out error on the
largest model size (Choshen et al. 2024's protocol).
The run-clustered bootstrap of that fit resamples runs within each recipe, so every bootstrap
draw gives one prediction per recipe; across draws:

* ``P(recipe beats baseline)`` = share of draws where the recipe's predicted value is better;
* the predicted delta ``recipe - baseline`` and its percentile CI;
* the compute multiplier ``k``: the recipe reaches the baseline's target loss with ``k`` times
  the target compute (``k < 1``: the recipe is better; ``1/k`` is its effective-compute gain),
  solved along a fixed tokens-per-parameter path when the target is (N, D), or along each
  recipe's compute-optimal path (Hoffmann et al. 2022, eq. 4) when the target is FLOPs.

Accuracies follow the two-step ladder of Bhagia et al. (2024, arXiv:2412.04403): the predicted
loss, then :class:`~scaling_ladder.laws.downstream.TaskLaw`.
"""


from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ..errors import InputError
from ..laws.compute import optimal_params, tokens_6nd
from ..laws.fit import LawFit, fit, fork_map, jobs, workers
from ..laws.forms import Law
from .scales import fmt_count
from .target import Target

VARIANTS = ("shared-exponents", "shared-E-exponents", "shared-E", "all-free")
SELECTION_RESAMPLES = 25  # bootstrap refits of each variant on the smaller sizes
_K_BOUNDS = (1e-4, 1e4)


# ---------------------------------------------------------------------------- the joint fit


def side_by_side(fn: Callable[[Any], Any], items, *, done=None) -> list[Any]:
    """:func:`~scaling_ladder.laws.fit.fork_map` of independent fits, each fit's bootstrap in
    its own process: a pool inside each pooled fit would run processes x processes on the
    cores (4 on 2, each forked from a large parent) for no more throughput. The results are
    the same whatever the number of processes."""
    items = list(items)
    if min(workers(), len(items)) < 2:
        return fork_map(fn, items, done=done)

    def alone(x):
        with jobs(1):
            return fn(x)

    return fork_map(alone, items, done=done)


def shared_of(law: Law, variant: str) -> tuple[str, ...]:
    """Parameters the recipes share under a variant of the joint fit."""
    if variant == "shared-exponents":
        return tuple(law.exponents)
    if variant == "shared-E-exponents":
        return (("E",) if "E" in law.param_names else ()) + tuple(law.exponents)
    if variant == "shared-E":
        return ("E",) if "E" in law.param_names else ()
    if variant == "all-free":
        return ()
    raise ValueError(f"The 'variants' option takes {', '.join(VARIANTS)}. Got {variant!r}.")


@dataclass(frozen=True)
class Member:
    """One sharing variant of the joint fit, its weight in the mixture and its fit."""

    variant: str
    weight: float
    fit: LawFit


@dataclass(frozen=True)
class JointFit:
    """The joint fit across recipes: a mixture of sharing variants weighted by how often each
    predicts the held-out largest size best.

    ``fit`` and ``variant`` are the member with the most weight (used for the other slices and
    the stage gates); ``members`` carry the bootstrap draws that P(beats) and the intervals
    integrate over, so a reversal that one plausible variant allows keeps its probability.
    """

    fit: LawFit | None
    variant: str
    errors: dict[str, float] = field(default_factory=dict)
    held_out: str = ""
    notes: tuple[str, ...] = ()
    members: tuple[Member, ...] = ()
    held_out_points: pd.DataFrame | None = None  # recipe, params, tokens, value, predicted

    @property
    def weights(self) -> dict[str, float]:
        return {m.variant: m.weight for m in self.members}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant, "held_out_are": self.errors,
                               "held_out": self.held_out, "notes": list(self.notes),
                               "weights": self.weights,
                               "weights_from": f"share of {SELECTION_RESAMPLES} bootstrap "
                                               "refits on the smaller sizes in which each "
                                               "variant predicts the held-out largest size "
                                               "best (equal when it cannot be held out)"}
        if self.fit is not None:
            out.update(law=self.fit.law.name, shared=list(self.fit.shared),
                       params={k: float(v) for k, v in self.fit.params.items()},
                       n_runs=self.fit.n_runs, n_points=self.fit.n_points,
                       bootstrap=sum(0 if m.fit.draws is None else len(m.fit.draws)
                                     for m in self.members),
                       fit_notes=list(self.fit.notes))
        return out


def unfittable(frame: pd.DataFrame, law: Law) -> dict[str, str]:
    """Recipes a per-recipe law cannot be fitted to, each with the reason."""
    out = {}
    for recipe, g in frame.groupby("recipe"):
        sizes = g["params"].nunique()
        points = len(g[[k for k in law.inputs if k in g]].drop_duplicates())
        if sizes < 2:
            out[recipe] = f"{recipe} has {sizes} model size(s); a law in N needs at least 2"
        elif points < len(law.param_names):
            out[recipe] = (f"{recipe} has {points} distinct points for a "
                           f"{len(law.param_names)}-parameter law")
    return out


def selection_weights(errors: dict[str, np.ndarray], recipes: np.ndarray, *,
                      seed: int = 0) -> dict[str, float]:
    """Weight of each variant: the share of bootstrap resamples on which it predicts best.

    ``errors[variant]`` is an array (S, R): the absolute relative error on each of R held-out
    runs of the variant fitted to resample s of the smaller sizes (the same resamples for
    every variant). Resample s also redraws the held-out runs within each recipe
    (``recipes``, one label per run), and the variant with the lowest mean error wins it (ties
    share). Selection frequencies under the bootstrap as model weights: Buckland, Burnham &
    Augustin (1997, Biometrics 53:603); Efron (2014, JASA 109:991) bootstraps the whole
    selection, fit included, as here. Variants the ladder cannot tell apart share the weight.
    """
    variants = list(errors)
    e = np.stack([np.where(np.isfinite(errors[v]), errors[v], 1e300) for v in variants])
    n_draws, n_runs = e.shape[1], e.shape[2]
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_draws, n_runs))
    for idx in pd.Series(recipes).groupby(recipes).indices.values():
        draws = rng.integers(0, len(idx), size=(n_draws, len(idx)))
        np.add.at(counts, (np.arange(n_draws)[:, None], idx[draws]), 1.0)
    mean = np.einsum("vsr,sr->vs", e, counts) / counts.sum(axis=1)  # (V, S)
    best = np.isclose(mean, mean.min(axis=0, keepdims=True), rtol=1e-12, atol=0.0)
    share = (best / best.sum(axis=0, keepdims=True)).mean(axis=1)
    return {v: float(w) for v, w in zip(variants, share)}


def _held_out_errors(f: LawFit, test: pd.DataFrame, runs: dict) -> np.ndarray:
    """Absolute relative error on each held-out run (columns) of the point fit (row 0) and of
    every bootstrap draw (rows 1...)."""
    out = np.empty((1 + len(f.draws), len(runs)))
    for j, ((recipe, _), idx) in enumerate(runs.items()):
        g = test.iloc[idx]
        x = {"params": g["params"].to_numpy(float), "tokens": g["tokens"].to_numpy(float)}
        obs = g["value"].to_numpy(float)
        with np.errstate(all="ignore"):
            pred = np.vstack([f.predict(group=recipe, **x)[None],
                              f.predict_draws(group=recipe, **x)])
        out[:, j] = np.mean(np.abs(pred - obs) / obs, axis=1)
    return out


def _allocate(weights: dict[str, float], total: int) -> dict[str, int]:
    """Bootstrap draws per variant in proportion to its weight (largest remainders)."""
    raw = {v: w * total for v, w in weights.items()}
    out = {v: int(np.floor(x)) for v, x in raw.items()}
    for v in sorted(raw, key=lambda v: raw[v] - out[v], reverse=True)[:total - sum(out.values())]:
        out[v] += 1
    return out


def joint_fit(law: Law, frame: pd.DataFrame, *, baseline: str | None = None,
              variants=VARIANTS, bootstrap: int = 100, seed: int = 0, n_starts: int = 3,
              min_weight: float = 0.02,
              progress: Callable[[int, int], None] | None = None) -> JointFit:
    """Weigh the sharing variants by held-out error, then fit each with its share of draws.

    Held out: every run at the largest model size (fits on the smaller sizes); error: absolute
    relative error of its final points (Choshen et al. 2024, arXiv:2410.11840), turned into
    weights by :func:`selection_weights`. Variants below ``min_weight`` are dropped and the
    rest renormalised; each is fitted with the bootstrap and gets ``weight x bootstrap``
    resamples, so the pooled draws are a sample of the mixture. Recipes a law cannot be fitted
    to are left out (said in the notes); no fit at all when that includes ``baseline``.
    """
    notes: list[str] = []
    skip = unfittable(frame, law)
    if len(skip) == frame["recipe"].nunique() or baseline in skip:
        why = skip.get(baseline) or next(iter(skip.values()), "no rows")
        more = f" (and {len(skip) - 1} more recipes like it)" if len(skip) > 1 else ""
        return JointFit(None, "", {}, "", (f"no joint fit: {why}{more}",))
    if skip:
        notes += [f"left out of the joint fit: {why}" for why in skip.values()]
        frame = frame[~frame["recipe"].isin(list(skip))]
    variants = [v for v in variants if v in VARIANTS  # a law without E: no E-sharing variants
                and ("E" in law.param_names or "E" not in v.split("-"))] or ["shared-exponents"]
    errors: dict[str, float] = {}
    weights = {v: 1.0 / len(variants) for v in variants}
    held_points = None
    largest = frame["params"].max()
    train, test = frame[frame["params"] < largest], frame[frame["params"] >= largest]
    test = test[test["final"].to_numpy(bool) & test["recipe"].isin(train["recipe"].unique())]
    held = f"runs at N = {fmt_count(largest)} (fitted on smaller sizes)"
    if len(variants) > 1 and not unfittable(train, law) and not test.empty:
        runs = test.groupby(["recipe", "run"], sort=True).indices
        by_draw: dict[str, np.ndarray] = {}
        held_fits: dict[str, LawFit] = {}

        def select(v: str) -> LawFit | None:
            try:
                return fit(law, train, by="recipe", shared=shared_of(law, v),
                           n_starts=n_starts, bootstrap=SELECTION_RESAMPLES, seed=seed)
            except (InputError, ValueError):
                return None

        for v, f in zip(variants, side_by_side(select, variants), strict=True):
            if f is None:
                by_draw[v] = np.full((SELECTION_RESAMPLES + 1, len(runs)), np.inf)
                errors[v] = float("inf")
                continue
            by_draw[v] = _held_out_errors(f, test, runs)
            errors[v] = float(np.mean(by_draw[v][0]))
            held_fits[v] = f
        weights = selection_weights({v: e[1:] for v, e in by_draw.items()},
                                    np.array([r for r, _ in runs]), seed=seed)
        held_points = _held_out_points(held_fits, weights, test)
    elif len(variants) > 1:
        notes.append(f"sharing not chosen by held-out error (too few sizes below "
                     f"{fmt_count(largest)}): the variants are weighted equally")
        held = ""
    kept = {v: w for v, w in weights.items() if w >= min_weight} or \
        {min(variants, key=lambda v: (errors.get(v, 0.0), VARIANTS.index(v))): 1.0}
    kept = {v: w / sum(kept.values()) for v, w in kept.items()}
    draws = _allocate(kept, bootstrap) if bootstrap else {v: 0 for v in kept}
    order = sorted(kept, key=lambda v: (-kept[v], VARIANTS.index(v)))
    finished = [0]

    def member(v: str) -> LawFit:
        return fit(law, frame, by="recipe", shared=shared_of(law, v), bootstrap=draws[v],
                   seed=seed, n_starts=n_starts)

    def tick(i: int) -> None:  # progress by member: the fits run side by side
        finished[0] += draws[order[i]]
        if progress:
            progress(finished[0], bootstrap)

    members = [Member(v, kept[v], f)
               for v, f in zip(order, side_by_side(member, order, done=tick), strict=True)]
    top = members[0]
    return JointFit(top.fit, top.variant, errors, held if errors else "", tuple(notes),
                    tuple(members), held_points)


def _held_out_points(fits: dict[str, LawFit], weights: dict[str, float],
                     test: pd.DataFrame) -> pd.DataFrame | None:
    """The held-out runs with the mixture's prediction of each (weighted by ``weights``)."""
    w = {v: weights[v] for v in fits if weights.get(v, 0.0) > 0}
    if not w:
        return None
    out = test[["recipe", "run", "params", "tokens", "value"]].copy()
    pred = np.zeros(len(out))
    for r, idx in out.groupby("recipe").indices.items():
        x = {"params": out["params"].to_numpy(float)[idx],
             "tokens": out["tokens"].to_numpy(float)[idx]}
        with np.errstate(all="ignore"):
            pred[idx] = sum(wv * fits[v].predict(group=r, **x) for v, wv in w.items())
    out["predicted"] = pred / sum(w.values())
    return out.reset_index(drop=True)


# --------------------------------------------------------------------- predictions per draw


def _optimal_value(law: Law, p: dict[str, float], flops: float) -> float:
    n = optimal_params(law, p, flops)
    return float(law(p, params=n, tokens=float(tokens_6nd(flops, n))))


def _value(law: Law, p: dict[str, float], target: Target) -> float:
    if target.path == "compute-optimal":
        return _optimal_value(law, p, target.flops)
    return float(law(p, params=target.params, tokens=target.tokens))


def recipe_draws(jf: LawFit, target: Target, recipes: list[str]) -> dict[str, tuple]:
    """Per recipe: (point prediction, draws (B,)) at the target; draws are NaN where failed."""
    out = {}
    for r in recipes:
        point = _value(jf.law, jf.group_params(r), target)
        if jf.draws is None:
            out[r] = (point, np.empty(0))
            continue
        if target.path == "tokens-per-param":
            with np.errstate(all="ignore"):
                out[r] = (point, jf.predict_draws(group=r, params=target.params,
                                                  tokens=target.tokens).astype(float))
            continue
        vals = []
        for p in jf.draw_params(r):
            try:
                vals.append(_value(jf.law, p, target))
            except (ValueError, FloatingPointError):
                vals.append(np.nan)
        out[r] = (point, np.asarray(vals, dtype=float))
    return out


def mixture_draws(jf: JointFit, target: Target, recipes: list[str]) -> dict[str, tuple]:
    """Per recipe: (point, draws) of the variant mixture at the target.

    The point is the weighted mean of the members' point predictions; the draws are the
    members' draws one after the other (draw i of every recipe comes from the same member and
    resample, so deltas pair).
    """
    parts = [(m.weight, recipe_draws(m.fit, target, recipes)) for m in jf.members]
    out = {}
    for r in recipes:
        point = sum(w * d[r][0] for w, d in parts)
        out[r] = (float(point), np.concatenate([d[r][1] for _, d in parts]))
    return out


def _multiplier(law: Law, pr: dict, pb: dict, target: Target) -> float:
    """k with L_recipe(k C) = L_baseline(C) along the target's path (inf if never reached)."""
    goal = _value(law, pb, target)

    def gap(log_k: float) -> float:
        k = math.exp(log_k)
        if target.path == "compute-optimal":
            return _optimal_value(law, pr, k * target.flops) - goal
        s = math.sqrt(k)  # C = 6 r N^2 at fixed r = D/N: N and D both scale with sqrt(k)
        return float(law(pr, params=target.params * s, tokens=target.tokens * s)) - goal

    lo, hi = math.log(_K_BOUNDS[0]), math.log(_K_BOUNDS[1])
    g_lo, g_hi = gap(lo), gap(hi)
    if not (math.isfinite(g_lo) and math.isfinite(g_hi)):
        return float("nan")
    if g_lo <= 0:
        return _K_BOUNDS[0]
    if g_hi > 0:
        return float("inf")
    return math.exp(brentq(gap, lo, hi, xtol=1e-6))


def _multipliers_at_ratio(law: Law, recipe: np.ndarray, baseline: np.ndarray,
                          target: Target) -> np.ndarray:
    """:func:`_multiplier` along a fixed tokens-per-parameter path for K parameter rows of
    each (K, p) at once, by bisection on log k (to 1e-9; N and D both scale with sqrt(k))."""
    def at(rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        s = np.sqrt(k)
        x = {"params": target.params * s, "tokens": target.tokens * s}
        with np.errstate(all="ignore"):
            return law.evaluate(law.to_internal(rows)[None], x)[0]

    goal = at(baseline, np.ones(len(baseline)))
    lo = np.full(len(recipe), math.log(_K_BOUNDS[0]))
    hi = np.full(len(recipe), math.log(_K_BOUNDS[1]))
    g_lo, g_hi = at(recipe, np.exp(lo)) - goal, at(recipe, np.exp(hi)) - goal
    while np.max(hi - lo) > 1e-9:
        mid = 0.5 * (lo + hi)
        above = at(recipe, np.exp(mid)) - goal > 0
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    k = np.exp(0.5 * (lo + hi))
    k = np.where(g_lo <= 0, _K_BOUNDS[0], np.where(g_hi > 0, np.inf, k))
    return np.where(np.isfinite(g_lo) & np.isfinite(g_hi), k, np.nan)


def compute_multiplier(jf: JointFit, target: Target, recipe: str, baseline: str):
    """Point and bootstrap draws of the compute multiplier of ``recipe`` (see module doc).

    Over the variant mixture: draws pooled as in :func:`mixture_draws`, the point is the
    weighted geometric mean of the members' points (a multiplier is a ratio).
    """
    points, weights, draws = [], [], []
    for m in jf.members:
        f, law = m.fit, m.fit.law
        weights.append(m.weight)
        if target.path != "compute-optimal":
            rows = [[f.group_params(g)[k] for k in law.param_names] for g in (recipe, baseline)]
            points.append(float(_multipliers_at_ratio(law, *np.array(rows)[:, None], target)[0]))
            if f.draws is not None:
                draws += list(_multipliers_at_ratio(law, f.draw_matrix(recipe),
                                                    f.draw_matrix(baseline), target))
            continue
        points.append(_multiplier(law, f.group_params(recipe), f.group_params(baseline), target))
        if f.draws is None:
            continue
        for p, q in zip(f.draw_params(recipe), f.draw_params(baseline), strict=True):
            try:
                draws.append(_multiplier(law, p, q, target))
            except (ValueError, FloatingPointError):
                draws.append(np.nan)
    pts = np.asarray(points, dtype=float)
    if np.all(np.isfinite(pts)):
        point = float(np.exp(np.average(np.log(pts), weights=weights)))
    else:
        point = float(pts[int(np.argmax(weights))])
    return point, np.asarray(draws, dtype=float)


def summarize_draws(point_r, draws_r, point_b, draws_b, *, higher_is_better: bool,
                    level: float, min_gain: float = 0.0) -> dict[str, Any]:
    """Predicted value, delta (recipe - baseline), CIs and P(gain > min_gain) from draws."""
    alpha = (1 - level) / 2
    out: dict[str, Any] = {"predicted": point_r, "predicted_delta": point_r - point_b}
    ok = np.isfinite(draws_r) & np.isfinite(draws_b) if len(draws_r) else np.zeros(0, bool)
    if ok.sum() < 2:
        nan = float("nan")
        out.update(predicted_ci=(nan, nan), ci=(nan, nan), p_beats=nan, n_draws=int(ok.sum()))
        return out
    d = draws_r[ok] - draws_b[ok]
    gain = d if higher_is_better else -d
    out["predicted_ci"] = tuple(float(v) for v in np.quantile(draws_r[ok], [alpha, 1 - alpha]))
    out["ci"] = tuple(float(v) for v in np.quantile(d, [alpha, 1 - alpha]))
    out["p_beats"] = float(np.mean(gain > min_gain) + 0.5 * np.mean(gain == min_gain))
    out["n_draws"] = int(ok.sum())
    return out
