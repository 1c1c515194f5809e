"""The one estimator for every law: screened starts, Gauss-Newton and L-BFGS-B, bootstrap.

1. **Screen** starting points by variable projection, take each part of the way by damped
   Gauss-Newton (:mod:`.newton`) and **refine** the best with L-BFGS-B and analytic gradients
   (:mod:`.objective`; Huber(1e-3) on log-loss, summed, by default: Hoffmann et al. 2022,
   Besiroglu et al. 2024).
2. **Bootstrap** (``bootstrap=B``): refit on B run-clustered resamples (see
   :mod:`scaling_ladder.bootstrap`), warm-started from the optimum of step 1.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..observations.table import Observations
from ..units import DATA_UNITS, NATS_PER_TOKEN, TOKENS, loss_unit, tokens_to_bytes
from .bootstrap import Interval, cluster_weights, percentile_interval
from .forms import Law, law_from_dict
from .objective import (
    BOOT_OPTIONS,
    OPTIONS,
    SMALL,
    Problem,
    build_problem,
    public_names,
    public_values,
)

# ------------------------------------------------------------------------------ the results

MAX_RESIDUALS = 10_000  # residuals a fit's JSON keeps for prediction intervals
FORMAT, VERSION = "scaling-ladder fit", 1  # what a fit's JSON says it is


@dataclass(frozen=True)
class Prediction:
    """A prediction with its confidence interval (the curve) and prediction interval (a run)."""

    mean: np.ndarray
    ci: tuple[np.ndarray, np.ndarray] | None
    pi: tuple[np.ndarray, np.ndarray] | None
    level: float = 0.95

    def __repr__(self) -> str:
        def num(a) -> str:
            a = np.asarray(a, dtype=float)
            return f"{float(a):.6g}" if a.ndim == 0 else np.array2string(a, precision=6)

        parts = [num(self.mean)]
        for name, iv in (("ci", self.ci), ("pi", self.pi)):
            if iv is not None:
                parts.append(f"{name}=[{num(iv[0])}, {num(iv[1])}]")
        return f"Prediction({', '.join(parts)}, level={self.level:g})"

    def to_dict(self) -> dict[str, Any]:
        def lst(a):
            return np.asarray(a).tolist()

        out = {"mean": lst(self.mean), "level": self.level}
        if self.ci is not None:
            out["ci"] = [lst(self.ci[0]), lst(self.ci[1])]
        if self.pi is not None:
            out["pi"] = [lst(self.pi[0]), lst(self.pi[1])]
        return out


@dataclass(frozen=True)
class LawFit:
    """A fitted law: parameters, bootstrap intervals, and how they were obtained.

    ``params`` and ``ci`` are flat: a parameter fitted per group is named ``name[group]``.
    ``draws`` holds one row of parameters per bootstrap resample (columns: ``param_names``).
    """

    law: Law
    params: dict[str, float]
    ci: dict[str, Interval]
    objective: str
    objective_value: float
    n_points: int
    n_runs: int
    notes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    group_by: str | None = None
    shared: tuple[str, ...] = ()
    draws: np.ndarray | None = None
    residuals: np.ndarray | None = None
    space: str = "log"
    level: float = 0.95
    ranges: Mapping[str, tuple[float, float]] | None = None
    r2: float | None = None
    unit: str = NATS_PER_TOKEN  # of the fitted values: nats/token or bits/byte (or accuracy)
    data: str = TOKENS  # the unit of D (the tokens input): tokens, or bytes of training text

    @property
    def rmse(self) -> float | None:
        """Root mean square residual, in the fit's space (log: about the relative error)."""
        if self.residuals is None or not len(self.residuals):
            return None
        return float(np.sqrt(np.nanmean(np.square(self.residuals))))

    @property
    def param_names(self) -> list[str]:
        return list(self.params)

    def group_params(self, group: str | None = None) -> dict[str, float]:
        """The law's parameters for one group (or the only one)."""
        return self._group_values(np.array(list(self.params.values())), group)

    def draw_params(self, group: str | None = None) -> list[dict[str, float]]:
        """The law's parameters for one group under each bootstrap draw (empty without draws)."""
        rows = self.draws if self.draws is not None else ()
        return [self._group_values(row, group) for row in rows]

    def _group_values(self, row: np.ndarray, group: str | None) -> dict[str, float]:
        flat = dict(zip(self.params, row, strict=True))
        if not self.groups:
            return flat
        if group is None or group not in self.groups:
            raise ValueError(f"This fit has one set of parameters per {self.group_by}: give "
                             f"--group (group= in Python) one of {', '.join(self.groups)}. "
                             f"Got {group!r}.")
        return {k: flat[k] if k in flat else flat[f"{k}[{group}]"] for k in self.law.param_names}

    def predict(self, *, group: str | None = None, **inputs: Any) -> np.ndarray:
        """The law at ``inputs`` (e.g. ``params=7e10, tokens=1.4e12``), like sklearn's predict."""
        return self.law(self.group_params(group), **inputs)

    def draw_matrix(self, group: str | None = None) -> np.ndarray:
        """The law's parameters (columns: ``law.param_names``) for one group under each
        bootstrap draw: array (B, p)."""
        if self.draws is None:
            raise ValueError("This fit has no bootstrap draws: fit with bootstrap=1000.")
        self.group_params(group)  # a wrong group: says which there are
        names = list(self.params)
        return self.draws[:, [names.index(k if k in self.params else f"{k}[{group}]")
                              for k in self.law.param_names]]

    def predict_draws(self, *, group: str | None = None, **inputs: Any) -> np.ndarray:
        """Predictions under every bootstrap draw: array (B, *shape)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self.law.at(self.draw_matrix(group), inputs)

    def predict_interval(
        self, *, group: str | None = None, level: float | None = None, seed: int = 0,
        **inputs: Any,
    ) -> Prediction:
        """Prediction with a percentile CI for the curve and a PI for a new run.

        The PI adds residuals of the fitted points (in the fit's residual space) to each
        bootstrap prediction, so it carries both parameter and run-to-run uncertainty.
        """
        level = self.level if level is None else level
        mean = self.predict(group=group, **inputs)
        if self.draws is None or len(self.draws) == 0:
            return Prediction(mean, None, None, level)
        draws = self.predict_draws(group=group, **inputs)
        ci = percentile_interval(draws, level)
        rng = np.random.default_rng(seed)
        res = self.residuals if self.residuals is not None and len(self.residuals) else [0.0]
        eps = rng.choice(np.asarray(res), size=(len(draws), 20) + (1,) * mean.ndim)
        noisy = draws[:, None] * np.exp(eps) if self.space == "log" else draws[:, None] + eps
        pi = percentile_interval(noisy.reshape((-1,) + mean.shape), level)
        return Prediction(mean, (ci[0], ci[1]), (pi[0], pi[1]), level)

    def summary(self) -> str:
        """A plain-text report, like lmfit's ``fit_report``."""
        lines = [f"[[Law]] {self.law.name}: {self.law.formula}",
                 f"    {self.law.citation}",
                 f"[[Fit]] {self.objective}, values in {self.unit}"
                 + (f"; D in {self.data}" if self.data != TOKENS else ""),
                 f"    points = {self.n_points}, runs = {self.n_runs}, "
                 f"objective = {self.objective_value:.10g}"]
        if self.rmse is not None:
            lines.append(f"    rmse = {self.rmse:.4g}"
                         + (f", R^2 = {self.r2:.4f}" if self.r2 is not None else "")
                         + f" ({self.space} space)")
        if self.groups:
            lines.append(f"    groups ({self.group_by}) = {', '.join(self.groups)}; "
                         f"shared = {', '.join(self.shared) or 'none'}")
        lines.append("[[Parameters]]" + (f" ({self.level:.0%} bootstrap CI, "
                                         f"{len(self.draws)} resamples of runs)"
                                         if self.draws is not None else ""))
        for k, v in self.params.items():
            fixed = " (fixed)" if k in self.law.fixed else ""
            ci = f"  {self.ci[k]}" if k in self.ci else ""
            lines.append(f"    {k:>14} = {v:.6g}{ci}{fixed}")
        if self.notes:
            lines.append("[[Notes]]")
            lines += [f"    {i}. {n}" for i, n in enumerate(self.notes, 1)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        draws = f", {len(self.draws)} draws" if self.draws is not None else ""
        return (f"LawFit({self.law.name}: {values}; {self.n_points} points, {self.n_runs} runs"
                f"{draws})")

    def to_frame(self) -> pd.DataFrame:
        """The parameters as a table: value, the interval's bounds, fixed or fitted."""
        rows = [{"param": k, "value": float(v),
                 "lo": float(self.ci[k].lo) if k in self.ci else np.nan,
                 "hi": float(self.ci[k].hi) if k in self.ci else np.nan,
                 "fixed": k in self.law.fixed} for k, v in self.params.items()]
        return pd.DataFrame(rows).set_index("param")

    def _repr_html_(self) -> str:
        """The parameter table in a notebook, under the law and the fit's size."""
        head = (f"<p><b>{self.law.name}</b>: {self.law.formula}; {self.n_points} points, "
                f"{self.n_runs} runs; {self.objective}</p>")
        return head + self.to_frame().to_html(float_format=lambda v: f"{v:.6g}")

    def to_dict(self, *, draws: bool = True) -> dict[str, Any]:
        """Plain JSON values: exactly what ``ladder fit --json`` writes."""
        out: dict[str, Any] = {
            "format": FORMAT, "version": VERSION,
            "law": self.law.name, "formula": self.law.formula, "citation": self.law.citation,
            "params": {k: float(v) for k, v in self.params.items()},
            "ci95" if abs(self.level - 0.95) < 1e-12 else f"ci{self.level * 100:g}":
                {k: v.to_list() for k, v in self.ci.items()},
            "n_points": self.n_points, "n_runs": self.n_runs,
            "objective": self.objective, "objective_value": self.objective_value,
            "notes": list(self.notes), "level": self.level, "space": self.space,
            "rmse": self.rmse, "r2": self.r2, "unit": self.unit, "data": self.data,
            "law_spec": self.law.to_dict(),
        }
        if self.groups:
            out.update(groups=list(self.groups), group_by=self.group_by, shared=list(self.shared))
        if self.ranges:
            out["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        if draws and self.draws is not None:
            out["draws"] = self.draws.tolist()
        if self.residuals is not None:  # what prediction intervals draw from
            res = self.residuals
            if len(res) > MAX_RESIDUALS:  # an evenly spaced sample of a large fit's
                res = res[np.linspace(0, len(res) - 1, MAX_RESIDUALS).astype(int)]
            out["residuals"] = res.tolist()
        return out

    @classmethod
    def read(cls, path: str | os.PathLike) -> LawFit:
        """A fit from a file ``ladder fit --json`` wrote, checked against its law: every
        parameter present, finite and inside the law's bounds. Anything else is an
        :class:`InputError` naming the file and the parameter."""
        path, fix = str(path), "write it with ladder fit --json FILE"
        what = "is not a fit written by ladder fit --json"
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (FileNotFoundError, IsADirectoryError):
            raise InputError(path, "file not found", fix=fix) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"{what} ({exc})", fix=fix) from None
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
            raise InputError(path, f"{what} (no \"params\" object)", fix=fix)
        if data.get("version", VERSION) != VERSION or data.get("format", FORMAT) != FORMAT:
            raise InputError(path, f"is a {data.get('format', 'fit')} of format version "
                             f"{data.get('version')}; this scaling-ladder reads version "
                             f"{VERSION}", fix="fit again with this version: " + fix)
        try:
            fitted = cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"{what} ({type(exc).__name__}: {exc})", fix=fix) from None
        fitted._check_params(path, fix)
        return fitted

    def _check_params(self, path: str, fix: str) -> None:
        for group in self.groups or (None,):
            for name in self.law.param_names:
                key = name if name in self.params or group is None else f"{name}[{group}]"
                value = self.params.get(key)
                lo, hi = self.law.bounds_of(name)
                if value is None:
                    raise InputError(path, f"the {self.law.name} fit has no parameter {key}",
                                     fix=fix)
                if not np.isfinite(value):
                    raise InputError(path, f"parameter {key} is {value}, not a finite number",
                                     fix=fix)
                if not lo <= value <= hi:
                    raise InputError(path, f"parameter {key} = {value:g} lies outside the "
                                     f"{self.law.name} law's bounds [{lo:g}, {hi:g}]", fix=fix)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LawFit:
        """Rebuild a fit from :meth:`to_dict` output (e.g. a ``--json`` file)."""
        level = float(d.get("level", 0.95))
        ci_key = next((k for k in d if k.startswith("ci") and k[2:].replace(".", "").isdigit()),
                      None)
        return cls(
            law=law_from_dict(d.get("law_spec", {"name": d["law"]})),
            params={k: float(v) for k, v in d["params"].items()},
            ci={k: Interval(v[0], v[1], level) for k, v in (d.get(ci_key) or {}).items()},
            objective=d["objective"], objective_value=float(d.get("objective_value", np.nan)),
            n_points=int(d["n_points"]), n_runs=int(d["n_runs"]),
            notes=tuple(d.get("notes", ())), groups=tuple(d.get("groups", ())),
            group_by=d.get("group_by"), shared=tuple(d.get("shared", ())),
            draws=np.asarray(d["draws"], dtype=float) if d.get("draws") else None,
            residuals=np.asarray(d["residuals"], float) if d.get("residuals") else None,
            space=d.get("space", "log"), level=level,
            ranges={k: tuple(v) for k, v in d.get("ranges", {}).items()} or None,
            r2=float(d["r2"]) if d.get("r2") is not None else None,
            unit=d.get("unit", NATS_PER_TOKEN),  # files before units were recorded: nats
            data=_data_unit(d.get("data", TOKENS)),  # ... and before D's unit was: tokens
        )


# ------------------------------------------------------------------------------ the estimator

ROUGH_POINTS = 20_000  # starts are compared on a subsample of larger tables


def fit(
    law: Law,
    obs: Observations | pd.DataFrame,
    *,
    loss: str = "huber",
    delta: float = 1e-3,
    space: str | None = None,
    weights: str | None = None,
    by: str | None = None,
    shared: Sequence[str] = (),
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int | None = 0,
    n_starts: int = 6,
    progress: Callable[[int, int], None] | None = None,
    data: str = TOKENS,
) -> LawFit:
    """Fit ``law`` to observations with the robust multi-start estimator.

    Parameters
    ----------
    law : the functional form (its ``fixed`` parameters are held constant).
    obs : observations of one metric (``Observations`` or a DataFrame with the law's inputs,
        ``value`` and ``run`` columns).
    loss : ``huber`` (default, delta 1e-3; Hoffmann et al. 2022) or ``mse``.
    space : residuals on ``log`` values (default for losses) or ``linear`` (default for
        accuracies and errors).
    weights : ``None`` (every point 1, as Hoffmann et al.), ``run`` (every run 1 in all) or
        the name of a column of per-point weights.
    by, shared : fit one set of parameters per value of column ``by`` (e.g. ``recipe``),
        sharing the parameters named in ``shared`` (e.g. ``("alpha", "beta")``).
    bootstrap : number of run-clustered resamples for intervals (0: none).
    seed : seed of the resampling.
    progress : called as ``progress(done, total)`` during the bootstrap.
    data : the unit of D: ``tokens`` (default) or ``bytes`` (tokens x the
        ``train_bytes_per_token`` column, :func:`scaling_ladder.units.tokens_to_bytes`, for
        laws compared across tokenizers); the fit says which (``LawFit.data``) and takes D in
        that unit when it predicts.

    Returns
    -------
    LawFit

    Example
    -------
    >>> import scaling_ladder as sl
    >>> obs = sl.datasets.load("chinchilla").select(where="besiroglu_outlier == False")
    >>> fit = sl.ChinchillaLaw().fit(obs)
    >>> round(fit.params["alpha"], 3)
    0.347
    """
    obs = _with_data_unit(law, obs, data)
    frame = obs.frame if isinstance(obs, Observations) else obs
    unit = law.kind
    if law.kind == "loss":  # one unit per law: nats/token, or bits/byte across tokenizers
        try:
            unit = loss_unit(frame) if "kind" in frame else NATS_PER_TOKEN
        except ValueError as exc:
            sources = obs.sources if isinstance(obs, Observations) else ()
            raise InputError(", ".join(sources) or None, str(exc), column="unit",
                             fix="fit one unit: select rows with --where, or convert every "
                             "loss with --units bits/byte") from None
    # Every array here is small: multithreaded BLAS only adds overhead, and under load it is
    # catastrophic (a 10x slowdown measured on 2 busy cores), so run single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        result = _fit(law, obs, loss, delta, space, weights, by, shared, bootstrap, level,
                      seed, n_starts, progress)
    return replace(result, unit=unit, data=data)


def _data_unit(data: object) -> str:
    if data not in DATA_UNITS:
        raise ValueError(f"The 'data' argument of fit must be 'tokens' or 'bytes'. Got {data!r}.")
    return str(data)


def _with_data_unit(law: Law, obs, data: str):
    """The observations with D in ``data``'s unit: as given for tokens, converted for bytes
    (an :class:`InputError` naming the file and the runs without ``train_bytes_per_token``)."""
    if _data_unit(data) == TOKENS:
        return obs
    if "tokens" not in law.inputs:
        raise ValueError(f"D in bytes is for a law that reads tokens; the {law.name} law reads "
                         f"{', '.join(law.inputs)}. Fit it with data='tokens' (--data tokens).")
    sources = obs.sources if isinstance(obs, Observations) else ()
    try:
        frame = tokens_to_bytes(obs.frame if isinstance(obs, Observations) else obs)
    except ValueError as exc:
        raise InputError(", ".join(sources) or None, str(exc),
                         column="train_bytes_per_token") from None
    return Observations(frame, obs.set_aside, obs.sources) if isinstance(obs, Observations) \
        else frame


def _fit(law, obs, loss, delta, space, weights, by, shared, bootstrap, level, seed, n_starts,
         progress) -> LawFit:
    frame = obs.frame if isinstance(obs, Observations) else obs
    try:
        space = _check_fit_args(law, frame, loss, delta, space, weights, by, shared, bootstrap,
                                level, n_starts)
        prob, n_runs = build_problem(law, frame, loss, delta, space, weights, by, shared)
    except InputError as exc:
        sources = obs.sources if isinstance(obs, Observations) else ()
        raise exc.in_file(", ".join(sources) or None) from None
    group_rows = [np.flatnonzero(prob.group == g) for g in range(len(prob.groups))]
    cands = [prob.screen(rows, n_starts) for rows in group_rows]
    starts, sizes = [], np.array([len(r) for r in group_rows], dtype=float)
    for i in range(n_starts):  # start i: each group's i-th screened candidate
        z = np.stack([c[min(i, len(c) - 1)] for c in cands])  # (G, p)
        xv = np.zeros(prob.n_free)
        for j in range(len(law.param_names)):
            idx = prob.index[:, j]
            if (idx >= 0).any():
                xv[idx] = z[:, j] if len(set(idx)) > 1 else np.average(z[:, j], weights=sizes)
        starts.append(xv)
    # every start part of the way (on a subsample of a large table), then the most
    # promising to the optimiser's tolerances on every point
    cap = max(100, ROUGH_POINTS // len(group_rows))
    few = prob.subset(np.concatenate([r[np.linspace(0, len(r) - 1, min(len(r), cap)).astype(int)]
                                      for r in group_rows])) if len(prob.y) > ROUGH_POINTS else prob
    rough = few.approach(np.stack(starts), np.tile(few.w, (len(starts), 1)))
    found = list(zip(rough.fun, rough.x))
    # on a subsample the starts are only ranked: tolerances of a bootstrap refit do for that
    screen = OPTIONS if few is prob else BOOT_OPTIONS
    if prob.n_free <= SMALL:  # L-BFGS-B alone too, from every start (objective.SMALL)
        found += [(r.fun, r.x) for r in (few.minimize(s, few.w, screen, newton=False)
                                         for s in starts)]
    promising = min(found, key=lambda c: c[0])[1]
    if few is prob:
        best = prob.minimize(promising, prob.w)
    else:
        best = _large(prob, few, promising)
    if prob.n_free <= SMALL and few is prob:
        other = prob.minimize(promising, prob.w, newton=False)
        best = other if other.fun < best.fun else best
    if not np.isfinite(best.fun):
        raise InputError(None, f"the {law.name} law cannot be fitted to these points (every "
                         "start gave a non-finite objective)", fix="check the selected rows")
    draws = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        wb = cluster_weights(prob.run, prob.group, bootstrap, rng) * prob.w
        draws = _bootstrap(prob, best.x, wb, progress)
    return _result(prob, best, draws, frame, n_runs, level, by, shared, weights)


def _large(prob: Problem, few: Problem, promising: np.ndarray) -> OptimizeResult:
    """The optimum of a large table from a promising start: to the optimum of the subsample
    first, where a step is cheap, so that only the last few Gauss-Newton steps are taken on
    every point; L-BFGS-B follows only when those did not meet the tolerance (on a million
    points, a step cost a second and L-BFGS-B from the optimum 15 evaluations to say so)."""
    promising = few.minimize(promising, few.w).x
    # the subsample's optimum is near the table's: the loss's own curvature and little
    # damping from the first step, and done once a step no longer changes the sum (4 passes
    # over a million points where IRLS from the default damping took 12)
    near = prob.approach(promising, prob.w, ftol=OPTIONS["ftol"], near=True, damping=1e-9,
                         settle=True)
    if near.converged[0] and np.isfinite(near.fun[0]):
        return OptimizeResult(x=near.x[0], fun=float(near.fun[0]), status=0, nit=near.nit,
                              success=True)
    start = near.x[0] if np.isfinite(near.fun[0]) else promising
    # the sum over many points is not known to 1e-11: the gradient tolerance grows with them
    return prob.minimize(start, prob.w, {**OPTIONS, "gtol": OPTIONS["gtol"] * len(prob.y)
                                         / len(few.y)}, newton=False)


_JOBS: list[tuple[Callable[[Any], Any], Any]] = []
_WORKERS: list[int | None] = [None]  # processes for independent fits (None: every core)
BOOT_CHUNKS = 8  # a bootstrap's resamples go in this many chunks (25 to 250 resamples each)


def workers() -> int:
    """Processes the independent fits and bootstrap chunks run in: :func:`jobs`' number, or
    one per core."""
    return _WORKERS[0] or os.cpu_count() or 1


@contextmanager
def jobs(n: int | None) -> Iterator[None]:
    """Run the fits inside on at most ``n`` processes (``None``: one per core; ``1``: in this
    process). The results are the same whatever ``n``: the work is cut the same way and
    every piece is computed the same way, only where it runs changes (``ladder ... --jobs``).
    """
    if n is not None and not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"--jobs (jobs=) must be an integer >= 1. Got {n!r}.")
    before = _WORKERS[0]
    _WORKERS[0] = None if n is None else int(n)
    try:
        yield
    finally:
        _WORKERS[0] = before


def _run_job(i: int) -> Any:
    fn, x = _JOBS[i]
    return fn(x)


def fork_map(fn: Callable[[Any], Any], items: Sequence[Any], *,
             done: Callable[[int], None] | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` in forked processes, one per core, when there are several
    items and cores (independent fits: the results are the same, in order, either way).

    The items stay in the parent's memory (the fork copies them); only the results are
    pickled back. ``done(i)`` is called as item i finishes.
    """
    global _JOBS
    items = list(items)
    n_workers = min(workers(), len(items))
    if n_workers < 2 or "fork" not in mp.get_all_start_methods():
        out = []
        for i, x in enumerate(items):
            out.append(fn(x))
            if done:
                done(i)
        return out
    _JOBS = [(fn, x) for x in items]
    try:
        out = [None] * len(items)
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_run_job, i): i for i in range(len(items))}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                if done:
                    done(futures[fut])
        return out
    finally:
        _JOBS = []


def _refit(prob: Problem, start: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Public parameters refitted under each row of ``weights``, from the optimum."""
    with threadpool_limits(limits=1, user_api="blas"):
        return np.array([public_values(prob, x) for x in prob.refit(start, weights)])


def _bootstrap(prob, start, wb, progress) -> np.ndarray:
    """Refit every resample, side by side in chunks (:meth:`Problem.refit`), the chunks on
    :func:`workers` processes when there is enough work. The chunks do not depend on the
    number of processes, so neither do the draws."""
    size = int(np.clip(len(wb) / BOOT_CHUNKS, 25, 250))
    chunks = np.array_split(np.arange(len(wb)), max(1, round(len(wb) / size)))
    n_workers = min(workers(), len(chunks))
    done, rows = 0, [None] * len(chunks)
    if n_workers > 1 and len(wb) * len(prob.y) >= 20_000 \
            and "fork" in mp.get_all_start_methods():
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_refit, prob, start, wb[c]): i for i, c in enumerate(chunks)}
            for fut in as_completed(futures):
                rows[futures[fut]] = fut.result()
                done += len(chunks[futures[fut]])
                if progress:
                    progress(done, len(wb))
    else:
        for i, c in enumerate(chunks):
            rows[i] = _refit(prob, start, wb[c])
            done += len(c)
            if progress:
                progress(done, len(wb))
    return np.concatenate(rows)


def _check_fit_args(law, frame, loss, delta, space, weights, by, shared, bootstrap, level,
                    n_starts) -> str:
    if not isinstance(law, Law):
        raise TypeError(f"The 'law' argument of fit must be a Law. Got {type(law).__name__}.")
    if loss not in ("huber", "mse"):
        raise ValueError(f"The 'loss' argument of fit must be 'huber' or 'mse'. Got {loss!r}.")
    if not (isinstance(delta, (int, float)) and delta > 0):
        raise ValueError(f"The 'delta' argument of fit must be a float > 0. Got {delta!r}.")
    space = space or ("log" if law.kind == "loss" else "linear")
    if space not in ("log", "linear"):
        raise ValueError(f"The 'space' argument of fit must be 'log' or 'linear'. Got {space!r}.")
    if not (isinstance(bootstrap, (int, np.integer)) and bootstrap >= 0):
        raise ValueError(f"The 'bootstrap' argument of fit must be an int >= 0. Got {bootstrap!r}.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' argument of fit must be in (0, 1). Got {level!r}.")
    if not (isinstance(n_starts, int) and n_starts >= 1):
        raise ValueError(f"The 'n_starts' argument of fit must be an int >= 1. Got {n_starts!r}.")
    bad = [k for k in shared if k not in law.param_names]
    if bad:
        raise ValueError(f"The 'shared' argument must name parameters of {law.name} "
                         f"({', '.join(law.param_names)}). Got {bad[0]!r}.")
    if shared and by is None:
        raise ValueError("The 'shared' argument needs 'by' (the column that defines groups).")
    needed = list(law.inputs) + ["value", "run"] + ([by] if by else [])
    if weights not in (None, "run"):
        needed.append(weights)
    for col in needed:
        if col not in frame:
            hint = (" (pair a loss metric with the accuracy first: pair_metrics)"
                    if col == "loss" else "")
            raise InputError(None, f'the {law.name} law needs column "{col}"{hint}',
                             column=col, fix="add it to the observations")
    if len(frame) == 0:
        raise InputError(None, "no rows left to fit", fix="loosen the selection")
    if "metric" in frame and frame["metric"].nunique() > 1:
        metrics = sorted(frame["metric"].unique())
        raise InputError(None, f"the rows hold {len(metrics)} metrics ({', '.join(metrics[:5])}"
                         f"{', …' if len(metrics) > 5 else ''}); a law fits one",
                         column="metric", fix="choose one with --metric")
    if "kind" in frame:
        want = "loss" if law.kind == "loss" else "accuracy"
        kinds = set(frame["kind"].unique())
        if kinds != {want}:
            raise InputError(None, f"the {law.name} law fits {want} values but the rows are "
                             f"{', '.join(sorted(kinds))}", column="kind",
                             fix=f"select {want} rows with --metric")
    return space


def _result(prob, best, draws, frame, n_runs, level, by, shared, weights) -> LawFit:
    law = prob.law
    names = public_names(prob)
    values = public_values(prob, best.x)
    ci = {}
    if draws is not None:
        lohi = percentile_interval(draws, level)
        ci = {k: Interval(float(lohi[0, i]), float(lohi[1, i]), level)
              for i, k in enumerate(names) if k.split("[")[0] not in law.fixed}
    zp = prob.z_of(best.x)[prob.group]
    yhat = law.evaluate(zp[None], prob.x)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        residuals = prob._transform(yhat) - prob.t_y
        spread = float(np.nansum(np.square(prob.t_y - np.nanmean(prob.t_y))))
    r2 = 1 - float(np.nansum(np.square(residuals))) / spread if spread > 0 else None
    space_word = {"loss": "log-loss", "accuracy": "accuracy", "error": "error"}[law.kind]
    if prob.space == "linear" and law.kind == "loss":
        space_word = "loss"
    if prob.space == "log" and law.kind != "loss":
        space_word = f"log {space_word}"
    obj = (f"huber(delta={prob.delta:g}, sum) on {space_word}" if prob.loss == "huber"
           else f"least squares (sum) on {space_word}")
    if weights:
        obj += f", weights={weights}"
    ranges = {k: (float(v.min()), float(v.max())) for k, v in prob.x.items()}
    notes = _notes(prob, best, names, values, ranges, draws)
    return LawFit(
        law=law, params=dict(zip(names, map(float, values), strict=True)), ci=ci, objective=obj,
        objective_value=float(best.fun), n_points=len(frame), n_runs=n_runs,
        notes=tuple(notes), groups=prob.groups if by else (), group_by=by,
        shared=tuple(shared), draws=draws, residuals=residuals, space=prob.space, level=level,
        ranges=ranges, r2=r2)


def _notes(prob, best, names, values, ranges, draws) -> list[str]:
    law, notes = prob.law, []
    if best.status == 1:  # iteration limit; status 2 (line search) is machine precision
        notes.append(f"the optimiser stopped at its iteration limit ({best.nit} iterations)")
    for i, name in enumerate(names):
        base = name.split("[")[0]
        if base in law.fixed:
            continue
        lo, hi = law.bounds_of(base)
        v = values[i]
        if np.isfinite(lo) and abs(v - lo) <= 1e-6 * (1 + abs(lo)):
            notes.append(f"{name} at its lower bound ({lo:g})" + (
                ": the runs are too far from the irreducible loss to identify it, so "
                "predictions beyond them follow a pure power law; fix it if it is known "
                f"(--fix {base}=...)" + (", or fit a law without it (--law kaplan)"
                                          if law.inputs == ("params", "tokens") else "")
                if base == "E" and lo == 0 else ""))
        elif np.isfinite(hi) and abs(v - hi) <= 1e-6 * (1 + abs(hi)):
            notes.append(f"{name} at its upper bound ({hi:g})")
        elif base in law.coefficients and lo == 0 and v < 1e-6 * max(np.abs(prob.y)):
            notes.append(f"{name} is ~0: its term does not contribute")
    if len(prob.y) <= prob.n_free:
        notes.append(f"{len(prob.y)} points for {prob.n_free} free parameters: not identified")
    for k, (lo, hi) in ranges.items():
        if lo == hi:
            notes.append(f"every point has the same {k} ({lo:g}): its exponent is not identified")
        elif k != "loss" and hi / lo < 1.5:
            notes.append(f"{k} spans only a factor {hi / lo:.2f}: its exponent is poorly "
                         "identified")
    if "params" in prob.x and len(np.unique(prob.x["params"])) < 3 and law.name != "power-D":
        notes.append(f"only {len(np.unique(prob.x['params']))} model sizes")
    if draws is not None:
        bad = int(np.sum(~np.all(np.isfinite(draws), axis=1)))
        if bad:
            notes.append(f"{bad} bootstrap resamples failed and were left out of the intervals")
    return notes
