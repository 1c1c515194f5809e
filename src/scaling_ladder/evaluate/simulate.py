"""Simulated ladders with a known answer: how good are the rule's decisions and probabilities?

Each simulated ladder has a baseline whose loss follows a Chinchilla law and one recipe whose
tokens are worth ``m`` baseline tokens (``L = E + A/N^alpha + B/(m D)^beta``), with ``m`` set so
that the recipe's true gain at the target is exactly the gain asked for; every run gets
seed-to-seed noise (log-normal, sd ``seed_noise`` on log-loss). :func:`compare` runs on the
ladder as on real data, and its output is scored against the truth:

* **calibration** of P(beats baseline): Brier score, a reliability table and the expected
  calibration error (n-weighted mean |observed share - mean P| over ten bins; Brier 1950,
  DeGroot & Fienberg 1983) over ladders with a non-zero effect;
* **false-go rate**: share of zero-effect ladders the rule calls "go" (nominal: 1 - p_go);
* **decision accuracy**: share of go / no-go calls whose sign matches the truth;
* **power**: P(go) per true gain and ladder design (seeds, sizes), for planners;
* **traps**: ladders where the recipe is much better at small N but has a worse irreducible
  loss, so its gain shrinks with N and reverses between the proxies and the target
  (:func:`trap_ladder`): P(beats) there should stay at or below 1/2 and the rule say no "go".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..compare import CompareOptions, compare
from ..compare.decide import Rule
from ..laws.forms import ChinchillaLaw
from ..observations.table import from_frame

TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}


@dataclass(frozen=True)
class LadderDesign:
    """A simulated ladder: sizes x tokens-per-parameter x seeds, noise, the target and truth."""

    sizes: tuple[float, ...] = (2e7, 5e7, 1e8, 2e8, 4e8)
    tokens_per_param: tuple[float, ...] = (10.0, 20.0, 40.0)
    seeds: int = 1
    seed_noise: float = 0.005
    target_params: float = 4e9
    target_tokens: float = 8e10
    truth: dict[str, float] = field(default_factory=lambda: dict(TRUTH))

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(s <= 0 for s in self.sizes):
            raise ValueError(f"The 'sizes' of a ladder design must be >= 2 positive model sizes. "
                             f"Got {self.sizes!r}.")
        if not (isinstance(self.seeds, int) and self.seeds >= 1):
            raise ValueError(f"The 'seeds' of a ladder design must be an int >= 1. "
                             f"Got {self.seeds!r}.")
        if not self.seed_noise >= 0:
            raise ValueError(f"The 'seed_noise' must be >= 0. Got {self.seed_noise!r}.")

    @property
    def label(self) -> str:
        return f"{len(self.sizes)} sizes x {len(self.tokens_per_param)} ratios x " \
               f"{self.seeds} seed(s)"

    def data_multiplier(self, gain: float) -> float:
        """m such that the recipe's loss at the target is the baseline's minus ``gain``."""
        t = self.truth
        term = t["B"] / self.target_tokens ** t["beta"]
        if gain >= term:
            raise ValueError(f"A gain of {gain} nats exceeds the whole data term ({term:.3g}).")
        return (1.0 - gain / term) ** (-1.0 / t["beta"])


def simulate_ladder(design: LadderDesign, *, gain: float, seed: int = 0) -> pd.DataFrame:
    """Observations of one simulated ladder: recipes ``baseline`` and ``recipe`` (final rows).

    ``gain`` is the recipe's true improvement at the target in nats (positive = better).
    """
    t = design.truth
    m = design.data_multiplier(gain)
    return _ladder_rows(design, {"baseline": t, "recipe": {**t, "B": t["B"] * m ** (-t["beta"])}},
                        seed)


def _ladder_rows(design: LadderDesign, laws: dict[str, dict[str, float]],
                 seed: int) -> pd.DataFrame:
    """Final rows of every recipe's Chinchilla law over the design, with log-normal seed
    noise."""
    rng = np.random.default_rng(seed)
    law, rows = ChinchillaLaw(), []
    for recipe, p in laws.items():
        for n in design.sizes:
            for r in design.tokens_per_param:
                clean = float(law(p, params=n, tokens=r * n))
                for s in range(design.seeds):
                    rows.append({"experiment": "sim", "recipe": recipe,
                                 "run": f"{recipe}-{n:g}-{r:g}-s{s}", "params": int(n),
                                 "tokens": r * n, "seed": s, "metric": "val/sim",
                                 "kind": "loss", "final": True,
                                 "value": clean * math.exp(rng.normal(0, design.seed_noise))})
    return pd.DataFrame(rows)


def trap_parameters(design: LadderDesign, *, crossing: float,
                    delta_e: float) -> dict[str, float]:
    """The trap recipe's law: E worse by ``delta_e``, A smaller so that its loss equals the
    baseline's at N = ``crossing`` (the A term alone depends on N: A' = A - delta_e N^alpha)."""
    t = design.truth
    a = t["A"] - delta_e * crossing ** t["alpha"]
    if a <= 0:
        raise ValueError(f"A crossing at N = {crossing:g} with delta_e = {delta_e} needs A <= 0; "
                         "choose a smaller crossing or delta_e.")
    return {**t, "E": t["E"] + delta_e, "A": a}


def trap_ladder(design: LadderDesign, *, crossing: float = 1e9, delta_e: float = 0.05,
                seed: int = 0) -> tuple[pd.DataFrame, float]:
    """A trap-shaped ladder and the recipe's true gain at the target (negative: it loses).

    The recipe follows :func:`trap_parameters`: better than the baseline on every proxy below
    ``crossing`` by a margin that shrinks with N, worse beyond it. Noise as in
    :func:`simulate_ladder`.
    """
    t = design.truth
    trap = trap_parameters(design, crossing=crossing, delta_e=delta_e)
    at = {"params": design.target_params, "tokens": design.target_tokens}
    law = ChinchillaLaw()
    gain = float(law(t, **at) - law(trap, **at))
    return _ladder_rows(design, {"baseline": t, "recipe": trap}, seed), gain


def _one(args) -> dict[str, Any]:
    """Run compare on one simulated ladder (a top-level function, so workers can pickle it)."""
    design, gain, seed, rule, bootstrap, group = args
    if group == "trap":
        frame, gain = trap_ladder(design, crossing=gain, seed=seed)
    else:
        frame = simulate_ladder(design, gain=gain, seed=seed)
    obs = from_frame(frame, name="simulated")
    opts = CompareOptions(bootstrap=bootstrap, slice_bootstrap=0, gate_bootstrap=0)
    res = compare(obs, baseline="baseline", target_params=design.target_params,
                  target_tokens=design.target_tokens, rule=rule, options=opts, seed=seed)
    s = res.recipe_summary("recipe")
    ci = s["ci95"]
    return {"group": group, "design": design.label, "seeds": design.seeds,
            "sizes": len(design.sizes), "true_gain": gain, "p_beats": s["p_beats_baseline"],
            "predicted_gain": -s["predicted_delta"] if s["predicted_delta"] is not None
            else np.nan, "gain_lo": -ci[1] if ci[1] is not None else np.nan,
            "gain_hi": -ci[0] if ci[0] is not None else np.nan, "decision": s["decision"],
            "seed": seed, "crossing": args[1] if group == "trap" else np.nan}


@dataclass(frozen=True)
class Simulation:
    """Scores of the rule on simulated ladders (see the module docstring)."""

    records: pd.DataFrame
    brier: float
    calibration_error: float
    reliability: pd.DataFrame
    false_go_rate: float
    false_go_ci: tuple[float, float]
    nominal_false_go: float
    decision_accuracy: float
    ci_coverage: float
    power: pd.DataFrame
    rule: Rule
    design: LadderDesign
    traps: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        def rec(f):
            return f.replace({np.nan: None}).to_dict(orient="records")

        return {"brier": self.brier, "calibration_error": self.calibration_error,
                "reliability": rec(self.reliability),
                "false_go_rate": self.false_go_rate, "false_go_ci95": list(self.false_go_ci),
                "nominal_false_go": self.nominal_false_go,
                "decision_accuracy": self.decision_accuracy, "ci_coverage": self.ci_coverage,
                "power": rec(self.power), "traps": rec(self.traps),
                "rule": self.rule.to_dict(),
                "design": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in self.design.__dict__.items()},
                "n_ladders": len(self.records)}

    def summary(self) -> str:
        lines = [f"[[Calibration]] Brier score {self.brier:.4f} over "
                 f"{int(self.reliability['n'].sum())} ladders with an effect "
                 f"(0 is perfect, 0.25 is a coin); calibration error {self.calibration_error:.3f}",
                 self.reliability.to_string(index=False, float_format="%.3f"),
                 f"[[False go]] {self.false_go_rate:.3f} of zero-effect ladders said go "
                 f"(95% CI {self.false_go_ci[0]:.3f}-{self.false_go_ci[1]:.3f}; nominal "
                 f"{self.nominal_false_go:.2f})",
                 f"[[Decisions]] go/no-go calls with the right sign: {self.decision_accuracy:.3f};"
                 f" 95% CI of the predicted gain covers the truth: {self.ci_coverage:.3f}"]
        if len(self.power):
            lines += ["[[Power]] P(go) by true gain at the target (nats) and design",
                      self.power.to_string(index=False, float_format="%.3f")]
        if len(self.traps):
            lines += ["[[Traps]] gain reverses between the proxies and the target: P(beats) "
                      "should be <= 0.5 and the decision not go",
                      self.traps.to_string(index=False, float_format="%.3f")]
        return "\n".join(lines)


def reliability_table(p: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Reliability diagram as a table: per bin of predicted probability, n, mean p, observed."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(sel.sum()),
                     "mean_p": float(p[sel].mean()) if sel.any() else np.nan,
                     "observed": float(outcome[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows)


def simulate(rule: Rule | None = None, *, design: LadderDesign | None = None,
             n_ladders: int = 200, effect_sd: float = 0.03, null_share: float = 0.4,
             gains: Sequence[float] = (), designs: Sequence[LadderDesign] = (),
             n_power: int = 40, crossings: Sequence[float] = (), n_traps: int = 20,
             bootstrap: int = 100, seed: int = 0, workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> Simulation:
    """Score the rule on simulated ladders with known truth.

    Parameters
    ----------
    rule : the go / no-go rule to score (default :class:`Rule`).
    design : the ladder of the calibration set (default :class:`LadderDesign`).
    n_ladders : ladders in the calibration set; a share ``null_share`` has no effect, the
        others a true gain at the target drawn from N(0, ``effect_sd``) nats.
    gains, designs, n_power : the power table: ``n_power`` ladders per true gain in ``gains``
        and design in ``designs`` (default: ``design``); P(go) per cell.
    crossings, n_traps : ``n_traps`` trap ladders (:func:`trap_ladder`) per crossing size N
        in ``crossings``; mean P(beats), share with P(beats) <= 0.5 and share called go.
    bootstrap : resamples of each ladder's joint fit.
    seed : seed of the whole simulation; ``workers`` > 1 runs ladders in processes.
    progress : called as ``progress(done, total)`` after every ladder.

    Example
    -------
    >>> sim = simulate(n_ladders=20, bootstrap=40)   # doctest: +SKIP
    >>> print(sim.summary())                          # doctest: +SKIP
    """
    rule = rule or Rule()
    design = design or LadderDesign()
    for name, v, lo in (("n_ladders", n_ladders, 1), ("n_power", n_power, 1),
                        ("bootstrap", bootstrap, 2), ("workers", workers, 1)):
        if not (isinstance(v, (int, np.integer)) and v >= lo) or isinstance(v, bool):
            raise ValueError(f"The '{name}' argument of simulate must be an int >= {lo}. "
                             f"Got {v!r}.")
    if not 0 <= null_share <= 1:
        raise ValueError(f"The 'null_share' argument must be in [0, 1]. Got {null_share!r}.")
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(n_ladders):
        gain = 0.0 if rng.random() < null_share else float(rng.normal(0, effect_sd))
        jobs.append((design, gain, int(rng.integers(2**31)), rule, bootstrap, "calibration"))
    for d in designs or ([design] if gains else []):
        for g in gains:
            jobs += [(d, float(g), int(rng.integers(2**31)), rule, bootstrap, "power")
                     for _ in range(n_power)]
    for c in crossings:
        jobs += [(design, float(c), int(rng.integers(2**31)), rule, bootstrap, "trap")
                 for _ in range(n_traps)]
    records = _run(jobs, workers, progress)
    return _score(records, rule, design)


def _run(jobs, workers, progress) -> pd.DataFrame:
    out = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, r in enumerate(pool.map(_one, jobs, chunksize=2), 1):
                out.append(r)
                if progress:
                    progress(i, len(jobs))
    else:
        for i, job in enumerate(jobs, 1):
            out.append(_one(job))
            if progress:
                progress(i, len(jobs))
    return pd.DataFrame(out)


def _score(records: pd.DataFrame, rule: Rule, design: LadderDesign) -> Simulation:
    traps = records[records["group"] == "trap"]
    if len(traps):
        traps = traps.groupby("crossing", as_index=False).agg(
            n=("decision", "size"), true_gain=("true_gain", "mean"),
            mean_p_beats=("p_beats", "mean"),
            p_beats_le_half=("p_beats", lambda p: float(np.mean(p <= 0.5))),
            p_go=("decision", lambda d: float(np.mean(d == "go"))))
    records = records[records["group"] != "trap"]
    cal = records[records["group"] == "calibration"]
    effect = cal[(cal["true_gain"] != 0) & cal["p_beats"].notna()]
    p = effect["p_beats"].to_numpy(float)
    truth = (effect["true_gain"] > 0).to_numpy(float)
    brier = float(np.mean((p - truth) ** 2)) if len(p) else float("nan")
    null = records[records["true_gain"] == 0]
    n_null, n_go = len(null), int((null["decision"] == "go").sum())
    ci = _binomial_ci(n_go, n_null)
    called = records[records["decision"].isin(["go", "no-go"]) & (records["true_gain"] != 0)]
    right = (called["decision"] == "go") == (called["true_gain"] > 0)
    cover = records[records["gain_lo"].notna()]
    covered = (cover["gain_lo"] <= cover["true_gain"]) & (cover["true_gain"] <= cover["gain_hi"])
    power = records[records["group"] == "power"]
    if len(power):
        power = power.groupby(["design", "true_gain"], as_index=False).agg(
            n=("decision", "size"), p_go=("decision", lambda d: float(np.mean(d == "go"))),
            p_no_go=("decision", lambda d: float(np.mean(d == "no-go"))),
            p_inconclusive=("decision", lambda d: float(np.mean(d == "inconclusive"))))
    else:
        power = pd.DataFrame(columns=["design", "true_gain", "n", "p_go", "p_no_go",
                                      "p_inconclusive"])
    rel = reliability_table(p, truth)
    filled = rel.dropna()
    ece = (float((np.abs(filled["mean_p"] - filled["observed"]) * filled["n"]).sum()
                 / filled["n"].sum()) if len(filled) else float("nan"))
    return Simulation(
        records=records, brier=brier, calibration_error=ece, reliability=rel,
        false_go_rate=n_go / n_null if n_null else float("nan"), false_go_ci=ci,
        nominal_false_go=round(1 - rule.p_go, 6),
        decision_accuracy=float(right.mean()) if len(called) else float("nan"),
        ci_coverage=float(covered.mean()) if len(cover) else float("nan"),
        power=power, rule=rule, design=design, traps=traps)


def _binomial_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval for k successes in n trials."""
    from scipy import stats  # imported when used: scipy.stats is a second to import
    if n == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return (lo, hi)


def design_with(design: LadderDesign, *, seeds: int | None = None,
                n_sizes: int | None = None) -> LadderDesign:
    """The same design with another number of seeds or of sizes (geometric over its range)."""
    kw: dict[str, Any] = {}
    if seeds is not None:
        kw["seeds"] = seeds
    if n_sizes is not None:
        lo, hi = min(design.sizes), max(design.sizes)
        kw["sizes"] = tuple(float(v) for v in np.geomspace(lo, hi, n_sizes))
    return replace(design, **kw)
