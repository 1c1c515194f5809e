"""Damped Gauss-Newton for a fit of many groups that share a few parameters, many fits at once.

A joint fit of R recipes has R blocks of per-recipe parameters tied by a few shared ones (the
exponents, say), so its Gauss-Newton matrix is block-arrow shaped. Each step eliminates the
per-group blocks (one small solve per group, batched) and solves the Schur complement for the
shared parameters, so one iteration costs O(points + groups) and the number of iterations does
not grow with R, where a quasi-Newton method over all 5R parameters slows with R and stalls.
The B refits of a bootstrap are independent problems on the same points: they are solved side
by side, one array operation for all of them per iteration.

* Robust loss by iteratively reweighted least squares: curvature weights ``psi(r)/r`` (the
  Huber loss's majoriser; Holland & Welsch 1977), gradient of the true objective; near the
  optimum, the loss's own curvature, which needs far fewer steps once the inliers settle.
* Levenberg-Marquardt damping with Marquardt's diagonal scaling (Marquardt 1963), one damping
  per problem; a step is kept only when the true objective falls.
* Bounds by projection, with variables at a bound whose gradient points outward held fixed
  for the step (projected Newton, Bertsekas 1982).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR = 1e-6  # relative decrease below which a problem counts as near its optimum
VANISHED = 1e-9  # a term below this share of the prediction on every point has vanished


@dataclass(frozen=True)
class Solutions:
    """B solutions: parameters (B, P), objective values (B,), iterations, and whether each
    met its tolerance (rather than its iteration limit or a damping that stalled)."""

    x: np.ndarray
    fun: np.ndarray
    nit: int
    converged: np.ndarray


class GroupedNewton:
    """The block layout of one :class:`~scaling_ladder.laws.objective.Problem`."""

    def __init__(self, prob) -> None:
        idx = prob.index  # (G, p): free index of each group's parameters, -1 when fixed
        cols = [j for j in range(idx.shape[1]) if (idx[:, j] >= 0).all()]
        self.shared = [j for j in cols if len(set(idx[:, j])) == 1]
        self.local = [j for j in cols if j not in self.shared]
        self.s_index = idx[0, self.shared]  # (S,)
        self.l_index = idx[:, self.local]  # (G, L)
        self.order = np.argsort(prob.group, kind="stable")
        # points already in group order (one group, say): no copy of every array in that order
        self.in_order = bool(np.all(self.order[1:] > self.order[:-1]))
        g = prob.group[self.order]
        self.starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        self.groups = g[self.starts]
        self.lo = np.array([b[0] if b[0] is not None else -np.inf for b in prob.bounds])
        self.hi = np.array([b[1] if b[1] is not None else np.inf for b in prob.bounds])
        self.prob, self.m = prob, len(prob.law.coefficients)
        self.coef = [j for j in cols if j < self.m and not np.isfinite(self.lo[idx[0, j]])]

    def _per_group(self, a: np.ndarray) -> np.ndarray:
        """Sum ``a`` (B, n, ...) over the points of each group: (B, G, ...)."""
        out = np.zeros(a.shape[:1] + (len(self.prob.groups),) + a.shape[2:])
        a = a if self.in_order else a[:, self.order]
        out[:, self.groups] = np.add.reduceat(a, self.starts, axis=1)
        return out

    def _values(self, r: np.ndarray, w: np.ndarray, ok: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            f = np.einsum("bn,bn->b", w, self.prob.rho(r))
        return np.where(ok & np.isfinite(f), f, np.inf)

    def solve(self, x0: np.ndarray, w: np.ndarray, *, max_iter: int = 300,
              ftol: float = 1e-15, near: bool = False, damping: float = 1e-3,
              settle: bool = False) -> Solutions:
        """Minimise the objective under each row of weights ``w`` (B, n) from ``x0`` (P,) or
        (B, P); a start outside the law's domain comes back as it went in, with fun = inf.
        ``near``: the starts are near the optima (a subsample's optimum, for a large table),
        so the loss's own curvature is used from the first step rather than after IRLS has
        settled; ``damping``: the initial Levenberg-Marquardt damping (small from a
        start near the optimum, where 1e-3 holds the steps back along a curved valley);
        ``settle``: a step that neither lowers nor raises the objective by more than ``ftol``
        relatively also ends a problem (as converged), rather than more damped retries: on a
        million points the sum's rounding alone makes a step at the optimum look worse, and
        each retry costs a pass over every point."""
        prob, w = self.prob, np.atleast_2d(np.asarray(w, dtype=float))
        x = np.clip(np.broadcast_to(x0, (len(w), prob.n_free)), self.lo, self.hi)
        r, jac, ok = prob.residuals_many(x)
        f = self._values(r, w, ok)
        converged = np.zeros(len(w), bool)
        # the problems at work, their rows of every array taken out once and taken in again
        # as they finish: a copy of the Jacobians per finish rather than per iteration
        a = np.flatnonzero(np.isfinite(f))
        xa, ra, ja, wa, fa = x[a], r[a], jac[a], w[a], f[a]
        lam, near = np.full(len(a), damping), np.full(len(a), near)
        it = 0
        while len(a) and it < max_iter:
            it += 1
            step = self._step(xa, ra, ja, wa, lam, near)
            x_new = np.clip(xa - step, self.lo, self.hi)
            finite = np.all(np.isfinite(x_new), axis=1)
            x_new[~finite] = xa[~finite]
            r_new, jac_new, ok_new = prob.residuals_many(x_new)
            f_new = np.where(finite, self._values(r_new, wa, ok_new), np.inf)
            better = f_new < fa
            gain = np.where(better, fa - f_new, 0.0)
            moved = np.max(np.abs(x_new - xa), axis=1)
            if better.all():
                xa, ra, ja = x_new, r_new, jac_new
            else:
                xa[better], ra[better], ja[better] = x_new[better], r_new[better], \
                    jac_new[better]
            done = better & ((gain <= ftol * f_new) | (moved < 1e-13))
            if settle:  # a step that leaves the objective as it was, to ``ftol``, ends it too
                done |= ~better & (f_new - fa <= ftol * fa)
            near |= better & (gain <= NEAR * f_new)
            fa = np.where(better, f_new, fa)
            lam = np.where(better, np.maximum(lam / 3.0, 1e-12), lam * 4.0)
            stop = done | (lam > 1e12)
            if stop.any():
                x[a[stop]], f[a[stop]], converged[a[done]] = xa[stop], fa[stop], True
                go = ~stop
                a, xa, ra, ja, wa, fa = a[go], xa[go], ra[go], ja[go], wa[go], fa[go]
                lam, near = lam[go], near[go]
        x[a], f[a] = xa, fa
        return Solutions(x, f, it, converged)

    def _step(self, x, r, jac, w, lam, near) -> np.ndarray:
        """The damped Newton step of each problem from the block-arrow system (Schur
        complement on the shared parameters)."""
        prob, S, L = self.prob, len(self.shared), len(self.local)
        psi = w * prob.rho_prime(r)
        om = self._curvature(r, w, psi, near)
        if not L and self.shared == list(range(jac.shape[2])):
            return self._step_shared(x, r, jac, psi, om, lam)
        js = jac if self.shared == list(range(jac.shape[2])) else jac[:, :, self.shared]
        jl = jac[:, :, self.local]
        jso = js * om[:, :, None]
        gs, gl = np.einsum("bns,bn->bs", js, psi), self._per_group(jl * psi[:, :, None])
        hss = np.einsum("bns,bnt->bst", jso, js)
        hsl = self._per_group(np.einsum("bns,bnl->bnsl", jso, jl))
        hll = self._per_group(np.einsum("bnk,bnl->bnkl", jl * om[:, :, None], jl))
        grad = np.zeros_like(x)
        grad[:, self.s_index], grad[:, self.l_index] = gs, gl
        held = ((x <= self.lo) & (grad > 0)) | ((x >= self.hi) & (grad < 0)) \
            | (self._vanished(r, jac) & (grad > 0))
        ms, ml = ~held[:, self.s_index], ~held[:, self.l_index]  # (B, S), (B, G, L)
        gs, gl = gs * ms, gl * ml
        hss = hss * (ms[:, :, None] & ms[:, None, :]) + ~ms[:, :, None] * np.eye(S)
        hsl = hsl * ms[:, None, :, None] * ml[:, :, None, :]
        hll = hll * (ml[:, :, :, None] & ml[:, :, None, :]) + ~ml[:, :, :, None] * np.eye(L)

        def damp(h, lam):
            d = np.diagonal(h, axis1=-2, axis2=-1)
            eps = 1e-12 * (1.0 + np.max(d, axis=-1, keepdims=True))
            return h + (lam[..., None] * d + eps)[..., None] * np.eye(h.shape[-1])

        step = np.zeros_like(x)
        if L:
            rhs = np.concatenate([np.swapaxes(hsl, 2, 3), gl[..., None]], axis=3)
            sol = np.linalg.solve(damp(hll, lam[:, None]), rhs)  # (B, G, L, S + 1)
        if S:
            hss_d = damp(hss, lam)
            if L:
                hss_d = hss_d - np.einsum("bgsl,bglt->bst", hsl, sol[..., :S])
                gs = gs - np.einsum("bgsl,bgl->bs", hsl, sol[..., S])
            ds = np.linalg.solve(hss_d, gs[..., None])[..., 0]
            step[:, self.s_index] = ds
        if L:
            dl = sol[..., S] - (np.einsum("bgls,bs->bgl", sol[..., :S], ds) if S else 0.0)
            step[:, self.l_index] = dl
        return step

    def _step_shared(self, x, r, jac, psi, om, lam) -> np.ndarray:
        """:meth:`_step` when every parameter is shared (one group): the damped system on all
        of them, its matrix ``J^T diag(om) J`` and gradient ``J^T psi`` by one batched
        matrix product each."""
        grad = np.matmul(psi[:, None, :], jac)[:, 0]  # (B, P)
        h = np.matmul(np.swapaxes(jac * om[:, :, None], 1, 2), jac)  # (B, P, P)
        held = ((x <= self.lo) & (grad > 0)) | ((x >= self.hi) & (grad < 0)) \
            | (self._vanished(r, jac) & (grad > 0))
        if held.any():
            free = ~held
            grad = grad * free
            h = h * (free[:, :, None] & free[:, None, :]) + held[:, :, None] * np.eye(len(x[0]))
        d = np.diagonal(h, axis1=-2, axis2=-1)
        eps = 1e-12 * (1.0 + np.max(d, axis=-1, keepdims=True))
        h = h + (lam[:, None] * d + eps)[..., None] * np.eye(h.shape[-1])
        return np.linalg.solve(h, grad[..., None])[..., 0]

    def _curvature(self, r, w, psi, near) -> np.ndarray:
        """Per-point curvature weights: ``psi(r)/r`` (IRLS, a majoriser of the loss) while far
        from the optimum; near it, the Huber loss's own curvature (1 inside delta) with a floor
        of 1% of IRLS's outside."""
        prob = self.prob
        with np.errstate(divide="ignore", invalid="ignore"):
            irls = np.where(r != 0, psi / r, w * prob.rho_prime(1.0))
        if prob.loss != "huber" or not near.any():
            return irls
        own = np.where(np.abs(r) <= prob.delta, w, 0.01 * irls)
        return np.where(near[:, None], own, irls)

    def _vanished(self, r: np.ndarray, jac: np.ndarray) -> np.ndarray:
        """Log coefficients whose term is below :data:`VANISHED` of the prediction on every
        point of their group(s): heading for a lower bound of 0 that the log scale puts at
        -inf, they are held there (and reported as 0, see
        :func:`~scaling_ladder.laws.objective.public_values`)."""
        prob = self.prob
        out = np.zeros((len(r), prob.n_free), bool)
        if not self.coef:
            return out
        share = np.abs(jac[:, :, :self.m])
        if prob.space != "log":
            share = share / np.maximum(np.abs(r + prob.t_y), 1e-300)[:, :, None]
        big = np.zeros((len(r), len(prob.groups), self.m))
        share = share if self.in_order else share[:, self.order]
        big[:, self.groups] = np.maximum.reduceat(share, self.starts, axis=1)
        for j in self.coef:
            if j in self.shared:
                out[:, prob.index[0, j]] = big[:, :, j].max(axis=1) < VANISHED
            else:
                out[:, prob.index[:, j]] = big[:, :, j] < VANISHED
        return out
