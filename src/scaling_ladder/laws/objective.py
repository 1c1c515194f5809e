"""The fitting objective of one problem and its minimisation from screened starts.

Objective (Hoffmann et al. 2022, appendix D.2; Besiroglu et al. 2024): the Huber loss with
delta = 1e-3 of the residuals ``log L_hat - log L``, *summed* over points, optionally
weighted; least squares and residuals on the linear scale are options. Starts are screened on
a grid over the law's nonlinear parameters (exponents) in one vectorised pass, solving the
positive linear coefficients exactly at each grid point (variable projection, Golub & Pereyra
1973, by non-negative least squares on relative residuals over all active sets), then refined
with L-BFGS-B on all parameters with analytic gradients, in the parametrisation
(log coefficients, exponents). A law whose sum is raised to a fitted power q (Kaplan's) is
screened on ``y**(1/q)`` for each q of the grid. Several groups (e.g. recipes) may share
parameters.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..errors import InputError
from .newton import GroupedNewton

SCREEN_POINTS = 3000  # subsample for screening on very large tables (refinement uses all)
OPTIONS = {"ftol": 1e-15, "gtol": 1e-11, "maxiter": 3000, "maxcor": 20}
# Bootstrap refits start at the optimum; percentiles need no more than ~6 digits.
BOOT_OPTIONS = {"ftol": 1e-12, "gtol": 1e-9, "maxiter": 3000, "maxcor": 20}
# Free parameters up to which L-BFGS-B alone also runs (from every start, or after Gauss-Newton
# stopped short): Gauss-Newton crawls along a curved valley (E against a flat B/D^beta, say)
# that L-BFGS-B follows, and L-BFGS-B stalls on the many parameters of a joint fit, where
# Gauss-Newton does not.
SMALL = 20


def _row_sum(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` of an (n, m) array: below 8 columns numpy adds them left to right,
    as done here (the same values), without its slow reduction over a short axis."""
    if a.shape[1] >= 8:
        return a.sum(axis=1)
    out = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        out += a[:, j]
    return out


class Inputs(dict):
    """A law's input columns (name -> array) with their logs, ``logs``, worked out once: the
    laws' bases read the logs (:func:`~scaling_ladder.laws.forms._log`), which an
    evaluation on a million points would otherwise take again at every step."""

    def __init__(self, x, logs=None):
        super().__init__(x)
        if logs is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = {k: np.log(np.asarray(v, dtype=float)) for k, v in self.items()}
        self.logs = logs


class Problem:
    """Arrays of one fit: inputs, targets, weights, groups, and the parameter layout."""

    def __init__(self, law, x, y, w, group, run, groups, shared, space, loss, delta):
        self.law, self.x, self.y, self.w = law, Inputs(x), y, w
        self.group, self.run, self.groups = group, run, groups
        self.space, self.loss, self.delta = space, loss, delta
        self.shared = set(shared)
        names = law.param_names
        self.z_fixed = law.to_internal(np.array([law.fixed.get(k, np.nan) for k in names]))
        self.index = np.full((len(groups), len(names)), -1)
        k = 0
        for j, name in enumerate(names):
            if name in law.fixed:
                continue
            if name in shared or len(groups) == 1:
                self.index[:, j] = k
                k += 1
            else:
                self.index[:, j] = np.arange(k, k + len(groups))
                k += len(groups)
        self.n_free = k
        lb = law.internal_bounds()
        self.bounds = [None] * k
        for g, j in zip(*np.nonzero(self.index >= 0), strict=True):
            self.bounds[self.index[g, j]] = lb[j]
        self.t_y = self._transform(y)
        self.point_index = self.index[group]  # (n, p)
        self._free = self.index >= 0  # what z_of and value_and_grad would work out every call
        self._free_index = self.index[self._free]
        self._point_free = self.point_index >= 0
        self._point_free_index = self.point_index[self._point_free]
        # every parameter free: the gradient's weights are the derivatives in their own order
        self._all_free = bool(self._point_free.all())
        # one group: every point has the same parameters, taken per vector rather than per point
        self._one = len(groups) == 1
        self._signs = np.asarray(law.signs, dtype=float)
        self._negative = bool(np.any(self._signs < 0))  # else a product by 1.0 is skipped
        self._newton: GroupedNewton | None = None
        self._tiled: dict = {}

    def subset(self, rows: np.ndarray) -> Problem:
        """The same problem on the points ``rows`` only."""
        return Problem(self.law, {k: v[rows] for k, v in self.x.items()}, self.y[rows],
                       self.w[rows], self.group[rows], self.run[rows], self.groups,
                       tuple(self.shared), self.space, self.loss, self.delta)

    def _transform(self, v):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(v) if self.space == "log" else v

    def rho(self, r):
        with np.errstate(over="ignore"):  # a start far off: an infinite cost, said by L-BFGS-B
            if self.loss == "mse":
                return r * r
            a = np.abs(r)
            return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))

    def rho_prime(self, r):
        return 2.0 * r if self.loss == "mse" else np.clip(r, -self.delta, self.delta)

    def z_of(self, xv: np.ndarray) -> np.ndarray:
        """Internal parameters per group (G, p) from the free vector, or (B, G, p) from B
        free vectors (B, P)."""
        xv = np.asarray(xv, dtype=float)
        z = np.broadcast_to(self.z_fixed, xv.shape[:-1] + self.index.shape).copy()
        free = self.index >= 0
        z[..., free] = xv[..., self.index[free]]
        return z

    def residuals(self, xv: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Residuals (n,) in the fit's space and their derivatives (n, p) with respect to each
        point's internal parameters; ``None`` where the prediction leaves the law's domain.

        :meth:`residuals_many` for one vector, by the same operations on the same values
        without its batch bookkeeping: L-BFGS-B calls this thousands of times per fit on a
        hundred points, where that bookkeeping was half the time."""
        law, m = self.law, len(self.law.coefficients)
        z = self.z_fixed[None].repeat(len(self.groups), axis=0)
        z[self._free] = np.asarray(xv, dtype=float)[self._free_index]
        zp = z if self._one else z[self.group]  # (1 or n, p): the same values on every point
        logb = law.log_basis(zp[:, m:], self.x)
        terms = np.exp(np.minimum(zp[:, :m] + logb, 700.0)) * self._signs
        total = _row_sum(terms)
        jac_theta = law.terms_grad(terms, zp[:, m:], self.x)
        if self._one:
            zp = np.broadcast_to(zp, (len(total), zp.shape[1]))
        dy = np.concatenate([terms, jac_theta], axis=1)
        yhat, bad = total, False
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if law.outer is not None:
                bad = bool(np.any(total <= 0))
                iq = m + law.exponents.index(law.outer)
                q, log_total = zp[:, iq], np.log(total)
                yhat = np.exp(np.minimum(q * log_total, 700.0))
                dy = (yhat * q / total)[:, None] * dy
                dy[:, iq] += yhat * log_total
            if self.space == "log":
                bad = bad or bool(np.any(yhat <= 0))
                r, dy = np.log(yhat) - self.t_y, dy / yhat[:, None]
            else:
                r = yhat - self.t_y
        return None if bad else (r, dy)

    def residuals_many(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`residuals` for B free vectors (B, P) at once: residuals (B, n), derivatives
        (B, n, p), and whether each vector keeps every prediction in the law's domain (B,)."""
        law, m, n = self.law, len(self.law.coefficients), len(self.y)
        b = len(xs)
        if self._one:  # the same values as below, without a row of parameters per point
            z = self.z_of(xs)[:, 0]  # (B, p)
            # in place, without a temporary per operation (on contiguous arrays: numpy's
            # vectorised loops skip strided ones)
            terms = np.add(z[:, None, :m], law.log_basis(z[:, None, m:], self.x))
            np.minimum(terms, 700.0, out=terms)
            np.exp(terms, out=terms)
            if self._negative:
                terms *= self._signs
            terms = terms.reshape(b * n, m)
            # all B vectors in one call on the inputs repeated B times (not one call each)
            theta = z[:, m:] if b == 1 else np.repeat(z[:, m:], n, axis=0)
            dy = np.empty((b * n, z.shape[1]))  # (B n, p)
            dy[:, :m], dy[:, m:] = terms, law.terms_grad(terms, theta, self._inputs(b))
            zp = None
        else:
            zp = self.z_of(xs)[:, self.group].reshape(b * n, -1)  # (B n, p)
            x = self._inputs(b)
            logb = law.log_basis(zp[:, m:], x)  # (B n, m)
            terms = np.exp(np.minimum(zp[:, :m] + logb, 700.0)) * self._signs
            jac_theta = law.terms_grad(terms, zp[:, m:], x)
            dy = np.concatenate([terms, jac_theta], axis=1)  # d yhat / d z, (B n, p)
        total = _row_sum(terms)
        bad = np.zeros(b * n, bool)
        yhat = total
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if law.outer is not None:  # yhat = total**q: dyhat = yhat (q dtotal/total + dq ln)
                bad |= total <= 0
                iq = m + law.exponents.index(law.outer)
                q = np.repeat(z[:, iq], n) if zp is None else zp[:, iq]
                log_total = np.log(total)
                yhat = np.exp(np.minimum(q * log_total, 700.0))
                dy = (yhat * q / total)[:, None] * dy
                dy[:, iq] += yhat * log_total
            t_y = self.t_y if b == 1 else self._inputs(b).t_y
            if self.space == "log":
                bad |= yhat <= 0
                r = np.log(yhat)
                r -= t_y
                np.divide(dy, yhat[:, None], out=dy)  # dy is this call's own array
            else:
                r = yhat - t_y
        ok = ~bad.reshape(b, n).any(axis=1)
        return r.reshape(b, n), dy.reshape(b, n, -1), ok

    def _inputs(self, b: int) -> Inputs:
        """The law's inputs repeated for ``b`` parameter vectors (and the targets, ``t_y``):
        views of the first ``b`` repeats of the largest number asked for so far, so that a
        solve whose problems finish one by one does not repeat them again at every step."""
        if b == 1:
            return self.x
        if self._tiled.get("b", 0) < b:
            self._tiled = {"b": b, "x": {k: np.tile(v, b) for k, v in self.x.items()},
                           "logs": {k: np.tile(v, b) for k, v in self.x.logs.items()},
                           "t_y": np.tile(self.t_y, b)}
        k = b * len(self.y)
        out = Inputs({name: v[:k] for name, v in self._tiled["x"].items()},
                     {name: v[:k] for name, v in self._tiled["logs"].items()})
        out.t_y = self._tiled["t_y"][:k]
        return out

    def value(self, r: np.ndarray, w: np.ndarray) -> float:
        f = float(np.dot(w, self.rho(r)))
        return f if np.isfinite(f) else np.inf

    def value_and_grad(self, xv: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        out = self.residuals(xv)
        if out is None:
            return np.inf, np.zeros_like(xv)
        r, dr = out
        f = self.value(r, w)
        if not np.isfinite(f):
            return np.inf, np.zeros_like(xv)
        gp = (w * self.rho_prime(r))[:, None] * dr  # (n, p)
        grad = np.bincount(self._point_free_index,
                           weights=gp.ravel() if self._all_free else gp[self._point_free],
                           minlength=self.n_free)
        return f, grad

    def approach(self, x0: np.ndarray, w: np.ndarray, ftol: float = 1e-6,
                 max_iter: int = 300, **how):
        """Damped Gauss-Newton over the groups' block structure (:mod:`.newton`) from ``x0``
        until the objective falls by less than ``ftol`` relatively, under each row of weights
        ``w`` (B, n) at once: :class:`~.newton.Solutions`. ``how``: ``near``, ``damping``,
        ``settle`` of :meth:`.newton.GroupedNewton.solve`."""
        self._box()
        return self._newton.solve(x0, w, ftol=ftol, max_iter=max_iter, **how)

    def minimize(self, x0: np.ndarray, w: np.ndarray, options: dict = OPTIONS, *,
                 newton: bool = True):
        """:meth:`approach` to near the optimum (unless ``newton`` is false), then L-BFGS-B
        with analytic gradients to its tolerances."""
        x0 = np.clip(x0, *self._box())
        if newton:
            near = self.approach(x0, w, ftol=options["ftol"])
            x0 = near.x[0] if np.isfinite(near.fun[0]) else x0
        return minimize(self.value_and_grad, x0, args=(w,), jac=True, method="L-BFGS-B",
                        bounds=self.bounds, options=options)

    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        if self._newton is None:
            self._newton = GroupedNewton(self)
        return self._newton.lo, self._newton.hi

    def refit(self, x0: np.ndarray, weights: np.ndarray, options: dict = BOOT_OPTIONS):
        """Optima (B, P) under each row of ``weights`` (B, n) from ``x0``: side by side by
        Gauss-Newton (at most 100 steps), then L-BFGS-B for any that did not meet the
        tolerance that way: alone on a small problem (a curved valley that Gauss-Newton crawls
        along), after more Gauss-Newton steps on a large one (where L-BFGS-B stalls)."""
        sols = self.approach(x0, weights, ftol=options["ftol"], max_iter=100)
        out = sols.x.copy()
        for b in np.flatnonzero(~sols.converged):
            start = out[b] if np.isfinite(sols.fun[b]) else x0
            out[b] = self.minimize(start, weights[b], options, newton=self.n_free > SMALL).x
        return out

    # ---- screening by variable projection
    def screen(self, rows: np.ndarray, top: int) -> np.ndarray:
        """Best ``top`` internal parameter rows (top, p) for the points ``rows`` of one group."""
        law = self.law
        if len(rows) > SCREEN_POINTS:
            rows = rows[np.linspace(0, len(rows) - 1, SCREEN_POINTS).astype(int)]
        x = {k: v[rows] for k, v in self.x.items()}
        y, w = self.y[rows], self.w[rows]
        grids = law.grid(x)
        axes = []
        for name in law.exponents:
            if name in law.fixed:
                axes.append(np.array([law.fixed[name]]))
                continue
            lo, hi = law.bounds_of(name)
            vals = np.asarray(grids[name], dtype=float)
            vals = vals[(vals >= lo) & (vals <= hi)]
            axes.append(vals if len(vals) else np.array([np.clip(0.5, lo, hi)]))
        theta = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(axes))
        best_f, best_z = [], []
        for chunk in np.array_split(theta, max(1, len(theta) * len(rows) // 200_000)):
            f, z = self._project(chunk, x, y, w)
            best_f.append(f)
            best_z.append(z)
        f, z = np.concatenate(best_f), np.concatenate(best_z)
        order = np.argsort(f, kind="stable")
        return z[order[:top]]

    def _project(self, theta, x, y, w):
        """Solve positive coefficients for each theta row; return objective and params."""
        law, m = self.law, len(self.law.coefficients)
        signs = np.asarray(law.signs, dtype=float)
        phi = np.exp(np.clip(law.log_basis(theta[:, None, :], x), -700, 700)) * signs  # K,n,m
        fixed_c = [j for j, k in enumerate(law.coefficients) if k in law.fixed]
        free_c = [j for j, k in enumerate(law.coefficients) if k not in law.fixed]
        q = None
        if law.outer is not None:  # solve the sum for y**(1/q), q from the grid row
            q = theta[:, law.exponents.index(law.outer)][:, None]  # K, 1
            target = y[None, :] ** (1.0 / q)
        else:
            target = np.broadcast_to(y, phi.shape[:2]).copy()
        # relative residuals approximate logs
        v = w / (target * target) if self.space == "log" else np.broadcast_to(w, target.shape)
        for j in fixed_c:
            target = target - law.fixed[law.coefficients[j]] * phi[:, :, j]
        sv = np.sqrt(v)  # K, n
        best_f = np.full(len(theta), np.inf)
        best_c = np.zeros((len(theta), m))
        for j in fixed_c:
            best_c[:, j] = law.fixed[law.coefficients[j]]
        for size in range(1, len(free_c) + 1):
            for subset in itertools.combinations(free_c, size):
                a = phi[:, :, list(subset)] * sv[:, :, None]
                scale = np.maximum(np.abs(a).max(axis=1), 1e-300)  # K, s
                a = a / scale[:, None, :]
                gram = np.einsum("kni,knj->kij", a, a) + 1e-12 * np.eye(size)
                rhs = np.einsum("kni,kn->ki", a, target * sv)
                try:
                    c = np.linalg.solve(gram, rhs[..., None])[..., 0] / scale
                except np.linalg.LinAlgError:
                    continue
                ok = np.all(c > 0, axis=1) & np.all(np.isfinite(c), axis=1)
                cc = best_c.copy()
                cc[:, list(subset)] = c
                for j in free_c:
                    if j not in subset:
                        cc[:, j] = 0.0
                yhat = np.einsum("knm,km->kn", phi, cc)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    if q is not None:
                        yhat = np.where(yhat > 0, yhat, np.nan) ** q
                    r = self._transform(yhat) - self._transform(y)
                    f = np.sum(w * self.rho(r), axis=1)
                f = np.where(ok & np.isfinite(f), f, np.inf)
                better = f < best_f
                best_f[better], best_c[better] = f[better], cc[better]
        tiny = 1e-9 * np.max(np.abs(y))
        c = np.maximum(best_c, tiny)
        for j, k in enumerate(law.coefficients):
            lo, hi = law.bounds_of(k)
            c[:, j] = np.clip(c[:, j], max(lo, tiny), hi)
        z = np.concatenate([np.log(c), theta], axis=1)
        return best_f, z


def build_problem(law, frame, loss, delta, space, weights, by, shared):
    """The problem of fitting ``law`` to a table, and the number of its runs."""
    x = {k: frame[k].to_numpy(dtype=float) for k in law.inputs}
    for k, v in x.items():
        if not np.all(np.isfinite(v)) or (k != "loss" and np.any(v <= 0)):
            raise InputError(None, f'column "{k}" has missing or non-positive values',
                             column=k, fix="give every selected row a positive value")
    y = frame["value"].to_numpy(dtype=float)
    if law.kind == "error":
        y = 1.0 - y
    if space == "log" and np.any(y <= 0):
        raise InputError(None, "log residuals need positive values", column="value",
                         fix="use space='linear' or select positive rows")
    if weights is None:
        w = np.ones(len(frame))
    elif weights == "run":
        w = 1.0 / frame.groupby(["experiment", "run"] if "experiment" in frame else ["run"],
                                sort=False)["value"].transform("size").to_numpy(dtype=float)
    else:
        w = frame[weights].to_numpy(dtype=float)
        if not np.all(np.isfinite(w) & (w >= 0)):
            raise InputError(None, f'weights column "{weights}" has negative or missing values',
                             column=weights, fix="give every row a weight >= 0")
    if by is None:
        groups, group = ("all",), np.zeros(len(frame), dtype=int)
    else:
        labels = frame[by].astype(str).to_numpy()
        groups_arr, group = np.unique(labels, return_inverse=True)
        groups = tuple(groups_arr)
    # runs numbered in the order of their (group, experiment, run) names, as strings
    keys = ["experiment", "run"] if "experiment" in frame else ["run"]
    run = _string_order([group] + [frame[k] for k in keys])
    prob = Problem(law, x, y, w, group, run, groups, tuple(shared), space, loss, delta)
    return prob, int(run.max()) + 1 if len(run) else 0


def _string_order(columns) -> np.ndarray:
    """The number of each row's combination of ``columns`` in the sorted order of their
    values as strings (what ``groupby(sort=True).ngroup()`` of the columns ``astype(str)``
    gives), from each column's distinct values: a million rows are not turned into strings."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        codes, uniques = pd.factorize(col, use_na_sentinel=False)
        names = pd.Index(uniques).astype(str).to_numpy(dtype=object).astype(str)
        sorted_names, rank = np.unique(names, return_inverse=True)
        key = key * len(sorted_names) + rank.reshape(-1)[codes]
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def public_values(prob: Problem, xv: np.ndarray) -> np.ndarray:
    """Flat public parameter vector (shared/fixed once, per-group ones per group).

    A free coefficient whose term stays below 1e-9 of the largest sum of terms on every point of
    its group(s) is reported as 0: the optimiser only approaches a lower bound of 0 (it works on
    log coefficients), and 3e-11 would read as an estimate where "its bound" is meant.
    """
    law, m = prob.law, len(prob.law.coefficients)
    z = prob.z_of(xv)
    pub = law.to_public(z)
    zp = z[prob.group]
    terms = np.exp(np.minimum(zp[:, :m] + law.log_basis(zp[:, m:], prob.x), 700.0))
    tiny = 1e-9 * np.max(np.abs(terms @ np.asarray(law.signs, dtype=float)))
    largest = np.zeros((len(prob.groups), m))
    np.maximum.at(largest, prob.group, terms)
    for j, name in enumerate(law.coefficients):
        if name in law.fixed or law.bounds_of(name)[0] != 0:
            continue
        big = largest[:, j].max() if name in prob.shared else largest[:, j]
        pub[:, j] = np.where(big < tiny, 0.0, pub[:, j])
    out = []
    for j, name in enumerate(law.param_names):
        if len(prob.groups) == 1 or name in law.fixed or name in prob.shared:
            out.append(pub[0, j])
        else:
            out.extend(pub[:, j])
    return np.array(out)


def public_names(prob: Problem) -> list[str]:
    """Names of :func:`public_values`: ``name``, or ``name[group]`` when fitted per group."""
    names = []
    for name in prob.law.param_names:
        if len(prob.groups) == 1 or name in prob.law.fixed or name in prob.shared:
            names.append(name)
        else:
            names.extend(f"{name}[{g}]" for g in prob.groups)
    return names
