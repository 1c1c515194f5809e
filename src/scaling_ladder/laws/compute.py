"""Compute accounting and compute-optimal allocation: FLOPs, N*(C), D*(C), IsoFLOP profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import InputError
from ..observations.table import Observations
from ..units import TOKENS
from .bootstrap import Interval, percentile_interval


def flops_6nd(params, tokens) -> np.ndarray:
    """Training compute ``C = 6 N D``: the one FLOPs formula of the analysis.

    Kaplan et al. (2020), section 2.1 (arXiv:2001.08361), and Hoffmann et al. (2022)
    (arXiv:2203.15556): a forward and backward pass cost about 6 FLOPs per parameter per
    token. Vectorised over ``params`` and ``tokens`` (numbers, arrays or columns).

    The observation table's ``flops`` column, when a row gives it, is the truth (the trainer
    writes :func:`training_flops`, with the attention term); this formula fills it only where
    it is missing, and places compute budgets where only N and D are known.
    """
    return 6.0 * np.asarray(params, dtype=float) * np.asarray(tokens, dtype=float)


def tokens_6nd(flops, params) -> np.ndarray:
    """The tokens ``D = C / 6N`` that a budget ``C`` buys a model of ``N`` parameters: the
    inverse of :func:`flops_6nd` (Hoffmann et al. 2022, the IsoFLOP and compute-optimal
    paths)."""
    return np.asarray(flops, dtype=float) / (6.0 * np.asarray(params, dtype=float))


def training_flops(params, tokens, *, n_layers=None, d_model=None, seq_len=None) -> np.ndarray:
    """Training FLOPs: ``6 N D`` (:func:`flops_6nd`), plus the attention term when the shape
    is known.

    Kaplan et al. (2020), Table 1 (arXiv:2001.08361): a forward pass costs
    ``2 N + 2 n_layer n_ctx d_model`` FLOPs per token and training three times that, so
    ``C = 6 (N + n_layer n_ctx d_model) D``. The attention term dominates small models with
    long contexts, where 6ND understates compute several-fold.
    """
    shape = (n_layers, d_model, seq_len)
    if all(v is None for v in shape):
        return flops_6nd(params, tokens)
    if any(v is None for v in shape):
        raise ValueError("The attention term needs all of n_layers, d_model and seq_len.")
    # the attention term costs what n_layer n_ctx d_model more parameters would
    return flops_6nd(np.asarray(params, dtype=float) + n_layers * seq_len * d_model, tokens)


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal model size and tokens for a budget, with bootstrap intervals."""

    flops: float
    params: float
    tokens: float
    loss: float
    tokens_per_param: float
    ci: dict[str, Interval] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        key = "ci95"
        level = next(iter(self.ci.values())).level if self.ci else 0.95
        if abs(level - 0.95) > 1e-12:
            key = f"ci{level * 100:g}"
        return {"flops": self.flops, "params": self.params, "tokens": self.tokens,
                "loss": self.loss, "tokens_per_param": self.tokens_per_param,
                key: {k: v.to_list() for k, v in self.ci.items()}, "notes": list(self.notes)}


def optimal_params(law, p: dict[str, float], flops: float) -> float:
    """N minimising L(N, C / 6N) for one parameter set."""
    names = set(law.param_names)
    if names >= {"E", "A", "B", "alpha"} and law.inputs == ("params", "tokens"):
        a, b = p["alpha"], p.get("beta", p["alpha"])
        if a > 0 and b > 0 and p["A"] > 0 and p["B"] > 0:
            # Hoffmann et al. (2022), eq. 4: N* = G (C/6)^(b/(a+b)), G = (aA / bB)^(1/(a+b))
            g = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
            return float(g * (flops / 6.0) ** (b / (a + b)))

    def f(log_n):
        n = np.exp(log_n)
        return float(law(p, params=n, tokens=tokens_6nd(flops, n)))

    hi = np.log(flops / 6.0)
    res = minimize_scalar(f, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(res.x))


def _optimal_draws(law, rows: np.ndarray, flops: float) -> np.ndarray:
    """N*, D*, L(N*, D*) and D*/N* (columns) under each row of parameters (K, p): Hoffmann et
    al.'s closed form for every row at once where it applies (the report asks this of every
    draw at dozens of budgets), :func:`optimal_params` row by row elsewhere."""
    names = list(law.param_names)
    col = {k: rows[:, names.index(k)] if k in names else None for k in ("A", "B", "alpha",
                                                                       "beta")}
    n = np.full(len(rows), np.nan)
    closed = np.zeros(len(rows), bool)
    if {"E", "A", "B", "alpha"} <= set(names) and law.inputs == ("params", "tokens"):
        a = col["alpha"]
        b = col["beta"] if col["beta"] is not None else a
        closed = (a > 0) & (b > 0) & (col["A"] > 0) & (col["B"] > 0)
        with np.errstate(all="ignore"):
            g = (a * col["A"] / (b * col["B"])) ** (1.0 / (a + b))
            n = np.where(closed, g * (flops / 6.0) ** (b / (a + b)), np.nan)
    for i in np.flatnonzero(~closed):
        n[i] = optimal_params(law, dict(zip(names, rows[i], strict=True)), flops)
    d = np.asarray(tokens_6nd(flops, n), dtype=float)
    with np.errstate(all="ignore"):  # row i at its own (N*, D*)
        loss = law.evaluate(law.to_internal(rows)[None], {"params": n, "tokens": d})[0]
    return np.stack([n, d, loss, d / n], axis=1)


def optimal(fit, *, flops: float, group: str | None = None) -> Allocation:
    """Compute-optimal allocation N*(C), D*(C) = C / (6 N*) of a fitted L(N, D) law.

    Closed form for Chinchilla-type laws (Hoffmann et al. 2022, eq. 4), a bounded 1-D search
    otherwise; intervals are percentiles over the fit's bootstrap draws. A fit with D in bytes
    is refused: C = 6ND counts tokens, and its tokenizers' bytes per token differ, so a budget
    in FLOPs fixes no D in bytes.

    Example
    -------
    >>> sl.optimal(fit, flops=1e23)     # doctest: +SKIP
    Allocation(params=..., tokens=..., ci={...})
    """
    if not (np.isfinite(flops) and flops > 0):
        raise ValueError(f"The 'flops' argument of optimal must be > 0. Got {flops!r}.")
    if group is not None and not fit.groups:
        raise ValueError(f"The 'group' argument of optimal is for a fit made per group (--by); "
                         f"this fit has one set of parameters. Got {group!r}.")
    law = fit.law
    if law.inputs != ("params", "tokens"):
        raise InputError(None, f"the {law.name} law is not a law of (N, D): no compute-optimal "
                         "allocation", fix="fit chinchilla or overtrain")
    if getattr(fit, "data", TOKENS) != TOKENS:
        raise InputError(None, f"the fit takes D in {fit.data}, but C = 6ND counts tokens: no "
                         "compute-optimal allocation in FLOPs", fix="fit with D in tokens "
                         "(ladder fit --data tokens) for a FLOPs budget, or predict at N and D "
                         "in bytes (ladder predict)")
    p = fit.group_params(group)
    n = optimal_params(law, p, flops)
    d = float(tokens_6nd(flops, n))
    loss = float(law(p, params=n, tokens=d))
    ci, notes = {}, []
    if fit.draws is not None and len(fit.draws):
        lohi = percentile_interval(_optimal_draws(law, fit.draw_matrix(group), flops),
                                   fit.level)
        ci = {k: Interval(float(lohi[0, i]), float(lohi[1, i]), fit.level)
              for i, k in enumerate(("params", "tokens", "loss", "tokens_per_param"))}
    if fit.ranges and "params" in fit.ranges:
        top = fit.ranges["params"][1]
        if n > 10 * top:
            notes.append(f"N* is {n / top:.0f}x the largest fitted model: an extrapolation")
    return Allocation(float(flops), n, d, loss, d / n, ci, tuple(notes))


@dataclass(frozen=True)
class IsoFlopResult:
    """IsoFLOP analysis (Hoffmann et al. 2022, approach 2).

    ``budgets`` has one entry per compute budget: its FLOPs, the runs in it, the parabola
    ``L = c0 + c1 x + c2 x^2`` in ``x = log10 N`` and its minimum ``params``, ``tokens``,
    ``loss``. ``a`` and ``b`` are the exponents of ``N* ~ C^a`` and ``D* ~ C^b``.
    """

    budgets: list[dict[str, Any]]
    a: float
    b: float
    params_coef: float
    tokens_coef: float
    notes: tuple[str, ...] = ()

    def predict(self, flops) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(flops, dtype=float)
        return self.params_coef * c ** self.a, self.tokens_coef * c ** self.b

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "params_coef": self.params_coef,
                "tokens_coef": self.tokens_coef, "budgets": self.budgets,
                "notes": list(self.notes)}


def isoflop(obs: Observations, *, tolerance: float = 0.05, min_sizes: int = 3) -> IsoFlopResult:
    """IsoFLOP profiles: a parabola in log N per compute budget, minima fitted as power laws.

    Hoffmann et al. (2022), section 3.2 (approach 2): final losses of runs grouped by training
    FLOPs (budgets are clusters of log10 C no wider than ``tolerance`` dex between neighbours);
    for each budget with at least ``min_sizes`` model sizes, fit ``L = c0 + c1 x + c2 x^2`` with
    ``x = log10 N``; its minimum gives N*(C), and ``D* = C / 6N*``; then
    ``log N* = log k + a log C`` by least squares (their published a = 0.49, b = 0.51).
    """
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"The 'tolerance' argument of isoflop must be > 0 (dex). "
                         f"Got {tolerance!r}.")
    frame = obs.frame if isinstance(obs, Observations) else obs
    frame = frame[frame["final"].to_numpy(dtype=bool)]
    if frame.empty:
        raise InputError(None, "no final checkpoints to analyse", fix="select final rows")
    order = np.argsort(np.log10(frame["flops"].to_numpy(dtype=float)))
    logc = np.log10(frame["flops"].to_numpy(dtype=float))[order]
    cluster = np.concatenate([[0], np.cumsum(np.diff(logc) > tolerance)])
    sub = frame.iloc[order]
    budgets, notes = [], []
    for k in np.unique(cluster):
        rows = sub[cluster == k]
        x = np.log10(rows["params"].to_numpy(dtype=float))
        y = rows["value"].to_numpy(dtype=float)
        c = float(10 ** np.mean(logc[cluster == k]))
        if len(np.unique(x)) < min_sizes:
            continue
        c2, c1, c0 = np.polyfit(x, y, 2)
        if c2 <= 0:
            notes.append(f"budget {c:.3g} FLOPs: the profile has no minimum (not a valley)")
            continue
        xm = -c1 / (2 * c2)
        if not (x.min() <= xm <= x.max()):
            notes.append(f"budget {c:.3g} FLOPs: the minimum lies outside the sizes trained")
        n_opt = float(10 ** xm)
        budgets.append({"flops": c, "n_runs": int(len(rows)), "params": n_opt,
                        "tokens": float(tokens_6nd(c, n_opt)),
                        "loss": float(c0 + c1 * xm + c2 * xm * xm),
                        "parabola": [float(c0), float(c1), float(c2)]})
    if len(budgets) < 2:
        raise InputError(None, f"{len(budgets)} compute budget(s) with >= {min_sizes} model "
                         "sizes: need at least 2", column="flops",
                         fix="train several sizes at each of several budgets")
    lc = np.log10([b["flops"] for b in budgets])
    a, ka = np.polyfit(lc, np.log10([b["params"] for b in budgets]), 1)
    b, kb = np.polyfit(lc, np.log10([b["tokens"] for b in budgets]), 1)
    return IsoFlopResult(budgets, float(a), float(b), float(10 ** ka), float(10 ** kb),
                         tuple(notes))
