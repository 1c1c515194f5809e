"""Scaling-law forms: one small frozen class per law, with its formula and its paper.

Every law here is a sum of signed terms with positive coefficients,

    y = sum_j  s_j * c_j * phi_j(x; theta),       c_j > 0,  s_j = +1 or -1,

or such a sum raised to a positive power ``q`` that is one of the exponents (``outer``; Kaplan's
joint law), so for fixed nonlinear parameters ``theta`` (exponents) the coefficients ``c`` enter
linearly (in ``y**(1/q)``):
the estimator in :mod:`fitting` screens starting points by variable projection (solving ``c``
exactly on a grid of ``theta``) and then refines everything with analytic gradients.
Optimisation runs on ``z = (log c, theta)``; a law supplies ``log phi`` and its gradient.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class Law:
    """Base class: parameter names, bounds, fixed values, ``__call__`` and ``fit``.

    Parameters
    ----------
    fixed : mapping of parameter name to value, held constant in fits (e.g. ``{"E": 1.69}``).
    bounds : mapping of parameter name to ``(lo, hi)``, replacing the default bounds.
    """

    fixed: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    name: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    coefficients: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[tuple[int, ...]] = ()
    exponents: ClassVar[tuple[str, ...]] = ()
    default_bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    kind: ClassVar[str] = "loss"  # what the law predicts: loss (fit on log) or accuracy
    outer: ClassVar[str | None] = None  # an exponent q raising the sum: y = (sum ...)**q

    def __post_init__(self) -> None:
        unknown = set(self.fixed) | set(self.bounds)
        unknown -= set(self.param_names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has parameters {', '.join(self.param_names)}. "
                f"Got {', '.join(sorted(unknown))}.")
        for k, (lo, hi) in self.bounds.items():
            if not lo < hi:
                raise ValueError(f"The bounds of {k!r} must satisfy lo < hi. Got ({lo}, {hi}).")
        for k, v in self.fixed.items():
            lo, hi = self.bounds_of(k)
            if not (lo <= v <= hi) or not np.isfinite(v):
                raise ValueError(f"The fixed value of {k!r} must lie in [{lo}, {hi}]. Got {v}.")

    # ---- names and bounds
    @property
    def param_names(self) -> tuple[str, ...]:
        return self.coefficients + self.exponents

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns of the observations table the law reads."""
        raise NotImplementedError

    def bounds_of(self, name: str) -> tuple[float, float]:
        default = (0.0, np.inf) if name in self.coefficients else (-np.inf, np.inf)
        return tuple(self.bounds.get(name, self.default_bounds.get(name, default)))

    # ---- the formula
    def log_basis(self, theta: np.ndarray, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """``log phi_j`` for nonlinear parameters ``theta`` (..., q): returns (..., n, m)."""
        raise NotImplementedError

    def log_basis_grad(self, theta: np.ndarray, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """d log phi_j / d theta_k at ``theta`` (n or 1, q): returns (n, m, q)."""
        raise NotImplementedError

    def terms_grad(self, terms: np.ndarray, theta: np.ndarray,
                   x: Mapping[str, np.ndarray]) -> np.ndarray:
        """d/d theta_k of the sum of ``terms`` (n, m) = ``c_j phi_j`` at ``theta`` (n or 1, q):
        ``sum_j terms_j d log phi_j / d theta_k``, (n, q)."""
        return np.einsum("nm,nmq->nq", terms, self.log_basis_grad(theta, x))

    def grid(self, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Screening values of each nonlinear parameter (lmfit's ``guess``), from the data."""
        raise NotImplementedError

    def __call__(self, params: Mapping[str, float] | None = None, /, **inputs: Any) -> np.ndarray:
        """Evaluate the law at named parameters, e.g. ``law(p, params=7e10, tokens=1.4e12)``."""
        params = {**self.fixed, **(params or {})}
        missing = [k for k in self.param_names if k not in params]
        if missing:
            raise ValueError(f"{self.name} needs parameters {', '.join(missing)}.")
        return self.at(np.array([[params[k] for k in self.param_names]]), inputs)[0]

    def at(self, rows: np.ndarray, inputs: Mapping[str, Any]) -> np.ndarray:
        """The law under K rows of parameters (K, p; columns ``param_names``) at ``inputs``
        (broadcast together): array (K, *shape)."""
        x = self.check_inputs(inputs)
        shape = np.broadcast(*x.values()).shape
        x = {k: np.broadcast_to(v, shape).ravel() for k, v in x.items()}
        return self.evaluate(self.to_internal(rows), x).reshape((len(rows),) + shape)

    def check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        missing = [k for k in self.inputs if k not in inputs]
        extra = [k for k in inputs if k not in self.inputs]
        if missing or extra:
            raise ValueError(f"{self.name} takes inputs {', '.join(self.inputs)}. "
                             f"Got {', '.join(inputs) or 'none'}.")
        return {k: np.asarray(inputs[k], dtype=float) for k in self.inputs}

    # ---- internal parametrisation z = (log c, theta)
    def to_internal(self, values: np.ndarray) -> np.ndarray:
        m = len(self.coefficients)
        z = np.array(values, dtype=float)
        with np.errstate(divide="ignore"):
            z[..., :m] = np.log(z[..., :m])
        return z

    def to_public(self, z: np.ndarray) -> np.ndarray:
        m = len(self.coefficients)
        out = np.array(z, dtype=float)
        out[..., :m] = np.exp(out[..., :m])
        return out

    def internal_bounds(self) -> list[tuple[float | None, float | None]]:
        out = []
        for k in self.param_names:
            lo, hi = self.bounds_of(k)
            if k in self.coefficients:
                lo = np.log(lo) if lo > 0 else -np.inf
                hi = np.log(hi) if np.isfinite(hi) else np.inf
            out.append((lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None))
        return out

    def evaluate(self, z: np.ndarray, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predictions for internal parameter rows ``z`` (K, p) or per point (K, n, p)."""
        m = len(self.coefficients)
        z = np.asarray(z, dtype=float)
        per_point = z.ndim == 3
        lc = z[..., :m] if per_point else z[:, None, :m]
        th = z[..., m:] if per_point else z[:, None, m:]
        expo = np.minimum(lc + self.log_basis(th, x), 700.0)
        total = np.exp(expo) @ np.asarray(self.signs, dtype=float)
        if self.outer is None:
            return total
        return total ** th[..., self.exponents.index(self.outer)]

    # ---- fitting
    def fit(self, obs, **options):
        """Fit the law to observations: ``law.fit(obs)`` is :func:`scaling_ladder.laws.fit.fit`
        (``fit(law, obs)``), in the style of lmfit's ``Model.fit``; see it for the options."""
        # imported when called: the estimator imports the forms, so forms cannot import it
        # at module level (tests/test_layout.py lists this deferred import)
        from .fit import fit

        return fit(self, obs, **options)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.fixed:
            out["fixed"] = dict(self.fixed)
        if self.bounds:
            out["bounds"] = {k: list(v) for k, v in self.bounds.items()}
        return out


def _log(x: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    """``log x[key]``: from ``x.logs`` where the inputs carry their logs (a fit's
    :class:`~scaling_ladder.laws.objective.Inputs`, computed once per problem rather than at
    every evaluation)."""
    logs = getattr(x, "logs", None)
    if logs is not None and key in logs:
        return logs[key]
    return np.log(np.asarray(x[key], dtype=float))


_EXPONENT_GRID = np.linspace(0.02, 1.6, 28)


@dataclass(frozen=True)
class ChinchillaLaw(Law):
    """Chinchilla loss law ``L(N, D) = E + A / N**alpha + B / D**beta``.

    Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", eq. 2 and
    approach 3 (arXiv:2203.15556); refitted by Besiroglu et al. (2024), "Chinchilla Scaling: A
    replication attempt" (arXiv:2404.10102). ``N`` = parameters, ``D`` = training tokens.
    """

    name: ClassVar[str] = "chinchilla"
    formula: ClassVar[str] = "L(N, D) = E + A/N^alpha + B/D^beta"
    citation: ClassVar[str] = "Hoffmann et al. 2022 (arXiv:2203.15556); Besiroglu et al. 2024"
    coefficients: ClassVar[tuple[str, ...]] = ("E", "A", "B")
    signs: ClassVar[tuple[int, ...]] = (1, 1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    default_bounds: ClassVar[dict] = {"alpha": (0.0, 5.0), "beta": (0.0, 5.0)}

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("params", "tokens")

    def log_basis(self, theta, x):
        ln_n, ln_d = _log(x, "params"), _log(x, "tokens")
        a, b = theta[..., 0], theta[..., 1]
        out = np.empty(np.broadcast_shapes(a.shape, ln_n.shape) + (3,))
        out[..., 0] = 0.0  # written in place: np.stack of the columns copied them once more
        np.multiply(-a, ln_n, out=out[..., 1])
        np.multiply(-b, ln_d, out=out[..., 2])
        return out

    def log_basis_grad(self, theta, x):
        ln_n, ln_d = _log(x, "params"), _log(x, "tokens")
        g = np.zeros((len(ln_n), 3, 2))
        g[:, 1, 0], g[:, 2, 1] = -ln_n, -ln_d
        return g

    def terms_grad(self, terms, theta, x):
        # the einsum's products without those by the gradient's zeros (which add exactly 0):
        # the same values, without an (n, 3, 2) array per evaluation
        out = np.empty((len(terms), 2))
        np.multiply(terms[:, 1], _log(x, "params"), out=out[:, 0])
        np.multiply(terms[:, 2], _log(x, "tokens"), out=out[:, 1])
        return np.negative(out, out=out)

    def grid(self, x):
        return {"alpha": _EXPONENT_GRID, "beta": _EXPONENT_GRID}


@dataclass(frozen=True)
class OvertrainLaw(Law):
    """Over-training law ``L(N, D) = E + A / N**alpha + B / D**alpha`` (one exponent).

    Gadre et al. (2024), "Language models scale reliably with over-training and on downstream
    tasks", eq. 4 (arXiv:2403.08540): with alpha = beta the loss at a fixed token multiplier
    M = D/N is a power law in compute, ``L(C, M) = E + (a M^eta + b M^-eta) C^-eta`` with
    ``eta = alpha/2``, ``a = A 6^eta``, ``b = B 6^eta``.
    """

    name: ClassVar[str] = "overtrain"
    formula: ClassVar[str] = "L(N, D) = E + A/N^alpha + B/D^alpha"
    citation: ClassVar[str] = "Gadre et al. 2024 (arXiv:2403.08540)"
    coefficients: ClassVar[tuple[str, ...]] = ("E", "A", "B")
    signs: ClassVar[tuple[int, ...]] = (1, 1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("alpha",)
    default_bounds: ClassVar[dict] = {"alpha": (0.0, 5.0)}

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("params", "tokens")

    def log_basis(self, theta, x):
        ln_n, ln_d = _log(x, "params"), _log(x, "tokens")
        a = theta[..., 0]
        zero = np.zeros(np.broadcast_shapes(a.shape, ln_n.shape))
        return np.stack([zero, -a * ln_n, -a * ln_d], axis=-1)

    def log_basis_grad(self, theta, x):
        ln_n, ln_d = _log(x, "params"), _log(x, "tokens")
        g = np.zeros((len(ln_n), 3, 1))
        g[:, 1, 0], g[:, 2, 0] = -ln_n, -ln_d
        return g

    def grid(self, x):
        return {"alpha": np.linspace(0.02, 1.0, 50)}


@dataclass(frozen=True)
class PowerLaw(Law):
    """Saturating power law in one variable, ``L(X) = E + A / X**alpha``.

    Kaplan et al. (2020), "Scaling Laws for Neural Language Models", eqs. 1.1-1.3
    (arXiv:2001.08361), with the irreducible term E of Henighan et al. (2020) and Hoffmann
    et al. (2022). ``variable`` is ``params`` (L(N)), ``tokens`` (L(D)) or ``flops`` (L(C)).
    """

    variable: str = "params"

    formula: ClassVar[str] = "L(X) = E + A/X^alpha"
    citation: ClassVar[str] = "Kaplan et al. 2020 (arXiv:2001.08361)"
    coefficients: ClassVar[tuple[str, ...]] = ("E", "A")
    signs: ClassVar[tuple[int, ...]] = (1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("alpha",)
    default_bounds: ClassVar[dict] = {"alpha": (0.0, 5.0)}
    _letters: ClassVar[dict[str, str]] = {"params": "N", "tokens": "D", "flops": "C"}

    def __post_init__(self) -> None:
        if self.variable not in self._letters:
            raise ValueError("The 'variable' argument of PowerLaw must be params, tokens or "
                             f"flops. Got {self.variable!r}.")
        super().__post_init__()

    @property
    def name(self) -> str:  # type: ignore[override]
        return "power-" + self._letters[self.variable]

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.variable,)

    def log_basis(self, theta, x):
        ln_x = _log(x, self.variable)
        a = theta[..., 0]
        return np.stack([np.zeros(np.broadcast_shapes(a.shape, ln_x.shape)), -a * ln_x], -1)

    def log_basis_grad(self, theta, x):
        ln_x = _log(x, self.variable)
        g = np.zeros((len(ln_x), 2, 1))
        g[:, 1, 0] = -ln_x
        return g

    def grid(self, x):
        return {"alpha": np.linspace(0.01, 1.6, 80)}

    def to_dict(self):
        return {**super().to_dict(), "variable": self.variable}


@dataclass(frozen=True)
class DataConstrainedLaw(Law):
    """Data-constrained law: Chinchilla with repeated tokens discounted.

    Muennighoff et al. (2023), "Scaling Data-Constrained Language Models", eq. 5
    (arXiv:2305.16264): ``L = E + A/N^alpha + B/D'^beta`` with effective data
    ``D' = U + U R* (1 - exp(-R/R*))``, ``U`` unique tokens, ``R = D/U - 1`` repetitions
    beyond the first epoch (0 when D <= U) and ``R*`` (``R_star``) the repetitions after which
    repeated data is worth ~1/e of fresh data (published 15.4). Reads ``unique_tokens``.
    The parameter-excess term ``N'`` of the paper is not modelled: N is used as is.
    """

    name: ClassVar[str] = "data-constrained"
    formula: ClassVar[str] = "L = E + A/N^alpha + B/D'^beta, D' = U + U R*(1 - exp(-R/R*))"
    citation: ClassVar[str] = "Muennighoff et al. 2023 (arXiv:2305.16264)"
    coefficients: ClassVar[tuple[str, ...]] = ("E", "A", "B")
    signs: ClassVar[tuple[int, ...]] = (1, 1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("alpha", "beta", "R_star")
    default_bounds: ClassVar[dict] = {"alpha": (0.0, 5.0), "beta": (0.0, 5.0),
                                      "R_star": (0.01, 1e4)}

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("params", "tokens", "unique_tokens")

    @staticmethod
    def effective_tokens(tokens, unique_tokens, r_star) -> np.ndarray:
        """``D'`` of Muennighoff et al. (2023), eq. 5."""
        u = np.asarray(unique_tokens, dtype=float)
        r = np.maximum(np.asarray(tokens, dtype=float) / u - 1.0, 0.0)
        return np.minimum(np.asarray(tokens, dtype=float), u) + u * r_star * -np.expm1(-r / r_star)

    def log_basis(self, theta, x):
        ln_n = _log(x, "params")
        a, b, rs = theta[..., 0], theta[..., 1], theta[..., 2]
        d_eff = self.effective_tokens(x["tokens"], x["unique_tokens"], rs)
        zero = np.zeros(np.broadcast_shapes(a.shape, ln_n.shape))
        return np.stack([zero, -a * ln_n, -b * np.log(d_eff)], axis=-1)

    def log_basis_grad(self, theta, x):
        ln_n = _log(x, "params")
        b, rs = theta[..., 1], theta[..., 2]
        u = np.asarray(x["unique_tokens"], dtype=float)
        r = np.maximum(np.asarray(x["tokens"], dtype=float) / u - 1.0, 0.0)
        d_eff = self.effective_tokens(x["tokens"], u, rs)
        q = r / rs
        dd_drs = u * (-np.expm1(-q) - q * np.exp(-q))
        g = np.zeros((len(ln_n), 3, 3))
        g[:, 1, 0] = -ln_n
        g[:, 2, 1] = -np.log(d_eff)
        g[:, 2, 2] = -b * dd_drs / d_eff
        return g

    def grid(self, x):
        return {"alpha": _EXPONENT_GRID[::2], "beta": _EXPONENT_GRID[::2],
                "R_star": np.geomspace(1.0, 300.0, 8)}


@dataclass(frozen=True)
class KaplanLaw(Law):
    """Kaplan's joint law ``L(N, D) = (A / N**a + B / D)**alpha_D``, with no irreducible term.

    Kaplan et al. (2020), "Scaling Laws for Neural Language Models", eq. 1.5 (arXiv:2001.08361):
    ``L = ((N_c / N)**(alpha_N / alpha_D) + D_c / D)**alpha_D``, here with ``a = alpha_N /
    alpha_D``, ``A = N_c**a`` and ``B = D_c`` so that the coefficients enter linearly;
    :meth:`paper_params` gives ``N_c, D_c, alpha_N, alpha_D`` back (published: 6.4e13, 1.8e13,
    0.076, 0.095). A form for runs far from the irreducible loss, where Chinchilla's E is not
    identified.
    """

    name: ClassVar[str] = "kaplan"
    formula: ClassVar[str] = "L(N, D) = (A/N^a + B/D)^alpha_D"
    citation: ClassVar[str] = "Kaplan et al. 2020 (arXiv:2001.08361)"
    coefficients: ClassVar[tuple[str, ...]] = ("A", "B")
    signs: ClassVar[tuple[int, ...]] = (1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("a", "alpha_D")
    default_bounds: ClassVar[dict] = {"a": (1e-3, 10.0), "alpha_D": (1e-3, 5.0)}
    outer: ClassVar[str | None] = "alpha_D"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("params", "tokens")

    def log_basis(self, theta, x):
        ln_n, ln_d = _log(x, "params"), _log(x, "tokens")
        a = theta[..., 0]
        return np.stack([-a * ln_n, -np.broadcast_to(ln_d, np.broadcast_shapes(
            a.shape, ln_d.shape))], axis=-1)

    def log_basis_grad(self, theta, x):
        ln_n = _log(x, "params")
        g = np.zeros((len(ln_n), 2, 2))
        g[:, 0, 0] = -ln_n
        return g

    def grid(self, x):
        return {"a": np.geomspace(0.1, 3.0, 16), "alpha_D": np.geomspace(0.02, 1.0, 16)}

    @staticmethod
    def paper_params(p: Mapping[str, float]) -> dict[str, float]:
        """``N_c, D_c, alpha_N, alpha_D`` of Kaplan et al. (2020) from ``A, B, a, alpha_D``."""
        return {"N_c": p["A"] ** (1.0 / p["a"]), "D_c": p["B"],
                "alpha_N": p["a"] * p["alpha_D"], "alpha_D": p["alpha_D"]}


@dataclass(frozen=True)
class SigmoidLaw(Law):
    """Loss to downstream accuracy, ``Acc(L) = b + a / (1 + exp(k (L - L0)))``.

    Step 2 of the two-step task prediction of Bhagia et al. (2024), "Establishing Task Scaling
    Laws via Compute-Efficient Model Ladders" (arXiv:2412.04403), as used by the OLMo ladder and
    DataDecide: accuracy falls from ``a + b`` to the floor ``b`` (near the random baseline) as
    the task loss rises past ``L0``. Reads the ``loss`` column (see
    :func:`.downstream.pair_metrics`).
    """

    name: ClassVar[str] = "sigmoid"
    formula: ClassVar[str] = "Acc(L) = b + a/(1 + exp(k (L - L0)))"
    citation: ClassVar[str] = "Bhagia et al. 2024 (arXiv:2412.04403)"
    coefficients: ClassVar[tuple[str, ...]] = ("a", "b")
    signs: ClassVar[tuple[int, ...]] = (1, 1)
    exponents: ClassVar[tuple[str, ...]] = ("k", "L0")
    default_bounds: ClassVar[dict] = {"a": (0.0, 1.0), "b": (0.0, 1.0), "k": (0.0, 1e3),
                                      "L0": (0.0, 50.0)}
    kind: ClassVar[str] = "accuracy"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("loss",)

    def log_basis(self, theta, x):
        loss = np.asarray(x["loss"], dtype=float)
        k, l0 = theta[..., 0], theta[..., 1]
        u = k * (loss - l0)
        out = np.zeros(u.shape + (2,))  # the second basis is 1 (log 0): b is a constant
        np.negative(np.logaddexp(0.0, u), out=out[..., 0])
        return out

    def log_basis_grad(self, theta, x):
        loss = np.asarray(x["loss"], dtype=float)
        k, l0 = theta[..., 0], theta[..., 1]
        s = expit(k * (loss - l0))  # d softplus(u) / du at u = k (L - L0)
        g = np.zeros((len(loss), 2, 2))
        g[:, 0, 0] = -s * (loss - l0)
        g[:, 0, 1] = s * k
        return g

    def terms_grad(self, terms, theta, x):
        # the einsum's products without those by the gradient's zeros (which add exactly 0):
        # the same values, without an (n, 2, 2) array per evaluation (the 26 task sigmoids of
        # a comparison evaluate it tens of thousands of times)
        loss = np.asarray(x["loss"], dtype=float)
        k, l0 = theta[..., 0], theta[..., 1]
        s = expit(k * (loss - l0))
        out = np.empty((len(loss), 2))
        np.multiply(terms[:, 0], -s * (loss - l0), out=out[:, 0])
        np.multiply(terms[:, 0], s * k, out=out[:, 1])
        return out

    def grid(self, x):
        loss = np.asarray(x["loss"], dtype=float)
        return {"k": np.geomspace(0.3, 60.0, 14),
                "L0": np.quantile(loss, np.linspace(0.0, 1.0, 11)) if len(loss) else [1.0]}


@dataclass(frozen=True)
class ExponentialErrorLaw(Law):
    """Loss to downstream error, ``Err(L) = eps - k exp(-gamma L)``.

    Gadre et al. (2024), eq. 5 (arXiv:2403.08540): average top-1 error as an exponential decay
    in loss towards the random-chance error ``eps``. Predicts the *error* ``1 - accuracy``;
    fitted on accuracy rows, which the estimator turns into errors. Reads the ``loss`` column.
    """

    name: ClassVar[str] = "exp-error"
    formula: ClassVar[str] = "Err(L) = eps - k exp(-gamma L)"
    citation: ClassVar[str] = "Gadre et al. 2024 (arXiv:2403.08540)"
    coefficients: ClassVar[tuple[str, ...]] = ("eps", "k")
    signs: ClassVar[tuple[int, ...]] = (1, -1)
    exponents: ClassVar[tuple[str, ...]] = ("gamma",)
    default_bounds: ClassVar[dict] = {"eps": (0.0, 1.0), "gamma": (0.0, 50.0)}
    kind: ClassVar[str] = "error"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("loss",)

    def log_basis(self, theta, x):
        loss = np.asarray(x["loss"], dtype=float)
        g = theta[..., 0]
        return np.stack([np.zeros(np.broadcast_shapes(g.shape, loss.shape)), -g * loss], -1)

    def log_basis_grad(self, theta, x):
        loss = np.asarray(x["loss"], dtype=float)
        out = np.zeros((len(loss), 2, 1))
        out[:, 1, 0] = -loss
        return out

    def grid(self, x):
        return {"gamma": np.geomspace(0.05, 20.0, 40)}


LAWS: dict[str, Any] = {
    "chinchilla": ChinchillaLaw,
    "kaplan": KaplanLaw,
    "overtrain": OvertrainLaw,
    "data-constrained": DataConstrainedLaw,
    "power-N": lambda **kw: PowerLaw(variable="params", **kw),
    "power-D": lambda **kw: PowerLaw(variable="tokens", **kw),
    "power-C": lambda **kw: PowerLaw(variable="flops", **kw),
    "sigmoid": SigmoidLaw,
    "exp-error": ExponentialErrorLaw,
}


def make_law(name: str, **kwargs: Any) -> Law:
    """A law by its name (``chinchilla``, ``power-N``, ...), as written in fit JSON."""
    if name not in LAWS:
        close = difflib.get_close_matches(str(name), list(LAWS), n=1)
        raise ValueError(f"The 'law' argument must be one of {', '.join(LAWS)}. Got {name!r}"
                         + (f" (did you mean {close[0]!r}?)." if close else "."))
    kwargs.pop("variable", None)
    return LAWS[name](**kwargs)


def law_from_dict(d: Mapping[str, Any]) -> Law:
    bounds = {k: tuple(v) for k, v in d.get("bounds", {}).items()}
    return make_law(d["name"], fixed=dict(d.get("fixed", {})), bounds=bounds)
