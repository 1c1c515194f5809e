"""Go / no-go from a rule a team can read and change, with its reasons in plain words.

The default rule follows the literature on proxy decisions: act on a prediction at the target
only when it is confident (P(gain > 0) >= 0.9), when the small-scale sign is stable on the top
sizes (rankings at one scale predict the next only ~80% of the time, DataDecide: Magnusson et
al. 2025, arXiv:2504.11393), when the effect clears the run-to-run noise (Signal and Noise,
Heineman et al. 2025, arXiv:2508.13144: a decision is only as good as the signal-to-noise
ratio of its metric), and when no validation slice or task regresses beyond a threshold.

A rule is a TOML table, every key optional::

    [rule]
    p_go = 0.9                   # go needs P(gain > min_gain at target) >= p_go
    p_no_go = 0.1                # no-go when P(gain > min_gain at target) <= p_no_go
    min_gain = 0.0               # smallest gain worth having, in the metric's units
    sign_top_sizes = 2           # the sign must hold on the largest this-many model sizes
    sign_share = 0.8             # ... at this share of their scales
    min_effect_to_noise = 2.0    # |gain| at the largest scale / noise of the seed mean
    max_regression_loss = 0.01   # a slice worse by more than this (nats) blocks, beyond noise
    max_regression_accuracy = 0.01  # a task worse by more than this (accuracy) blocks
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from .scales import fmt_count


@dataclass(frozen=True)
class Rule:
    """Thresholds of the go / no-go rule (see the module docstring for each one)."""

    p_go: float = 0.9
    p_no_go: float = 0.1
    min_gain: float = 0.0
    sign_top_sizes: int = 2
    sign_share: float = 0.8
    min_effect_to_noise: float = 2.0
    max_regression_loss: float = 0.01
    max_regression_accuracy: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            want_int = f.type in ("int", int)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (
                    want_int and not float(v).is_integer()) or not math.isfinite(v):
                kind = "an int" if want_int else "a number"
                raise ValueError(f"The '{f.name}' rule setting must be {kind}. Got {v!r}.")
        for name in ("p_go", "p_no_go", "sign_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"The '{name}' rule setting must be in [0, 1]. "
                                 f"Got {getattr(self, name)!r}.")
        if not self.p_no_go < self.p_go:
            raise ValueError("The rule needs p_no_go < p_go. "
                             f"Got p_no_go={self.p_no_go}, p_go={self.p_go}.")
        if self.sign_top_sizes < 1:
            raise ValueError(f"The 'sign_top_sizes' rule setting must be >= 1. "
                             f"Got {self.sign_top_sizes}.")
        for name in ("min_gain", "min_effect_to_noise", "max_regression_loss",
                     "max_regression_accuracy"):
            if getattr(self, name) < 0:
                raise ValueError(f"The '{name}' rule setting must be >= 0. "
                                 f"Got {getattr(self, name)!r}.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown rule setting {unknown[0]!r}; the settings are "
                             f"{', '.join(sorted(known))}.")
        values = dict(d)
        if "sign_top_sizes" in values and isinstance(values["sign_top_sizes"], float) \
                and values["sign_top_sizes"].is_integer():
            values["sign_top_sizes"] = int(values["sign_top_sizes"])
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> Rule:
        """Read a rule from a TOML file: keys at the top level or in a ``[rule]`` table."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(str(path), "file not found", fix="check the path") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"is not valid TOML ({exc})",
                             fix="write key = value lines, e.g. p_go = 0.9") from None
        table = data.get("rule", data)
        if not isinstance(table, dict):
            raise InputError(str(path), "[rule] is not a table", fix="write [rule] then keys")
        try:
            return cls.from_dict(table)
        except (ValueError, TypeError) as exc:
            raise InputError(str(path), str(exc).rstrip("."),
                             fix="see `ladder compare --help` for the settings") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evidence:
    """What the rule looks at for one recipe (see :func:`decide`).

    ``gain`` values are improvements (positive = better) in the metric's units.
    ``regressions`` holds dicts with metric, where, delta, threshold, units, blocking.
    """

    recipe: str
    baseline: str
    metric: str
    units: str
    p_beats: float = math.nan
    gain: float = math.nan
    gain_ci: tuple[float, float] = (math.nan, math.nan)
    target: str = ""
    no_prediction: str = ""
    top_sizes: tuple[float, ...] = ()
    top_share_better: float = math.nan
    n_top_scales: int = 0
    largest_scale: str = ""
    largest_params: float = math.nan
    largest_gain: float = math.nan
    largest_worse_beyond_noise: bool = False
    noise_sd: float = math.nan
    noise_source: str = "none"
    n_seeds: int = 1
    n_sizes: int = 0
    regressions: tuple[dict, ...] = ()
    missing: str = ""
    basis: str = "fit"  # or "ranking at <scale>" when the prediction is flagged
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """``go``, ``no-go`` or ``inconclusive``, the reasons, and which runs would settle it."""

    decision: str
    reasons: tuple[str, ...]
    advice: tuple[str, ...] = ()
    checks: tuple[tuple[str, bool | None], ...] = ()
    headline: str = ""
    basis: str = "fit"
    p_beats: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "headline": self.headline,
                "reasons": list(self.reasons), "advice": list(self.advice),
                "checks": dict(self.checks), "basis": self.basis,
                "p_beats": None if math.isnan(self.p_beats) else self.p_beats}


def _num(x: float, units: str = "") -> str:
    return ("n/a" if not math.isfinite(x) else f"{x:+.4g}") + (f" {units}" if units else "")


def decide(ev: Evidence, rule: Rule | None = None) -> Decision:
    """Apply the rule to one recipe's evidence: a decision with plain-word reasons.

    go: every check passes. no-go: a blocking regression, P(gain) <= p_no_go, or (with no
    prediction) worse beyond noise at the largest scale and on every top scale.
    inconclusive: anything else, with advice on which runs would settle it.
    """
    rule = rule or Rule()
    if ev.missing:
        return Decision("inconclusive", (ev.missing,), (), (("evidence", None),), ev.missing)
    reasons, advice, checks = [], [], []
    sizes = ", ".join(fmt_count(s) for s in ev.top_sizes)

    # 1. the prediction at the target, or the ranking the data show when it is flagged
    what = f"gain > {rule.min_gain:g}" if rule.min_gain else "gain > 0"
    if ev.flags:
        more = f" (and {len(ev.flags) - 1} more)" if len(ev.flags) > 1 else ""
        reasons.append(f"prediction at {ev.target} set aside: {ev.flags[0]}{more}")
    elif ev.basis != "fit" and ev.no_prediction:
        reasons.append(f"no prediction at {ev.target}: {ev.no_prediction}")
    if math.isfinite(ev.p_beats):
        ok = ev.p_beats >= rule.p_go
        where = ev.target if ev.basis == "fit" else ev.basis.removeprefix("ranking at ")
        said = ("predicted gain" if ev.basis == "fit"
                else "decided on the ranking there: measured gain")
        reasons.append(
            f"P({what} at {where}) = {ev.p_beats:.2f} ({'meets' if ok else 'below'} "
            f"{rule.p_go:g}); {said} {_num(ev.gain, ev.units)} (95% CI "
            f"{_num(ev.gain_ci[0])} to {_num(ev.gain_ci[1])})")
        checks.append(("p_beats", ok))
    else:
        reasons.append(f"no prediction at the target: {ev.no_prediction or 'no joint fit'}")
        checks.append(("p_beats", None))

    # 2. the sign on the top sizes
    if math.isfinite(ev.top_share_better) and ev.n_top_scales:
        ok = ev.top_share_better >= rule.sign_share
        n_better = round(ev.top_share_better * ev.n_top_scales)
        reasons.append(f"better at {n_better} of {ev.n_top_scales} scales on the top "
                       f"{len(ev.top_sizes)} size(s) ({sizes}; needs {rule.sign_share:.0%})")
        checks.append(("sign", ok))
    else:
        checks.append(("sign", None))

    # 3. the effect against the noise of the seed mean at the largest shared scale
    enr = math.nan
    if math.isfinite(ev.noise_sd) and ev.noise_sd > 0 and math.isfinite(ev.largest_gain):
        enr = ev.largest_gain / (ev.noise_sd / math.sqrt(max(ev.n_seeds, 1)))
        ok = enr >= rule.min_effect_to_noise
        reasons.append(f"gain at {ev.largest_scale} = {_num(ev.largest_gain, ev.units)}, "
                       f"{enr:+.1f}x the noise of the mean over {ev.n_seeds} seed(s) "
                       f"(noise from {ev.noise_source}; needs {rule.min_effect_to_noise:g}x)")
        checks.append(("effect", ok))
    else:
        reasons.append(f"no noise estimate at {ev.largest_scale or 'the largest scale'}")
        checks.append(("effect", None))

    # 4. regressions on other slices and tasks
    blocking = [r for r in ev.regressions if r.get("blocking")]
    for r in blocking[:3]:
        reasons.append(f"regresses on {r['metric']} {r['where']}: delta {_num(r['delta'])} "
                       f"{r['units']} (threshold {r['threshold']:g}, beyond noise)")
    if len(blocking) > 3:
        reasons.append(f"... and {len(blocking) - 3} more blocking regressions")
    checks.append(("regressions", not blocking))

    status = dict(checks)
    failing = [k for k, v in status.items() if v is not True]
    at = "the target" if ev.basis == "fit" else ev.basis.removeprefix("ranking at ")
    if math.isfinite(ev.p_beats) and ev.p_beats <= rule.p_no_go:
        decision = "no-go"
        headline = (f"P(gain > {rule.min_gain:g}) = {ev.p_beats:.2f} at {at} "
                    f"(no-go at <= {rule.p_no_go:g})")
        if blocking:
            headline += f"; also regresses on {len(blocking)} slice(s) or task(s)"
    elif blocking:
        decision = "no-go"
        r = blocking[0]
        headline = f"regresses on {r['metric']} {r['where']} ({_num(r['delta'])} {r['units']})"
    elif (not math.isfinite(ev.p_beats) and ev.largest_worse_beyond_noise
          and ev.top_share_better == 0):
        decision = "no-go"
        headline = f"worse beyond noise at {ev.largest_scale} and on every top scale"
    elif not failing:
        decision = "go"
        said = "predicted gain" if ev.basis == "fit" else f"gain at {at}"
        headline = (f"P(gain > {rule.min_gain:g}) = {ev.p_beats:.2f}, {said} "
                    f"{_num(ev.gain, ev.units)}; the sign holds and the effect clears the noise")
        if ev.basis != "fit":
            headline += " (the prediction at the target is set aside)"
    else:
        decision = "inconclusive"
        advice = _advice(ev, rule, status, enr)
        headline = "not settled: " + ", ".join(
            {"p_beats": "P(gain) at the target", "sign": "the sign on the top sizes",
             "effect": "the effect against the noise"}.get(k, k) for k in failing)
    return Decision(decision, tuple(reasons), tuple(advice), tuple(checks), headline,
                    ev.basis, ev.p_beats)


def _advice(ev: Evidence, rule: Rule, status: dict, enr: float) -> list[str]:
    """Which runs would settle an inconclusive decision."""
    pair = f"{ev.recipe} and {ev.baseline}"
    at = fmt_count(ev.largest_params) if math.isfinite(ev.largest_params) else "the top size"
    out = []
    if status.get("effect") is not True:
        if ev.noise_source != "seeds":
            now = ("not estimated" if ev.noise_source == "none"
                   else f"now estimated from {ev.noise_source}")
            out.append(f"add seeds at {at}: train 2 more seeds of {pair} so the run-to-run "
                       f"noise is measured ({now})")
        elif math.isfinite(ev.largest_gain) and ev.largest_gain > 0:
            need = math.ceil((rule.min_effect_to_noise * ev.noise_sd / ev.largest_gain) ** 2)
            out.append(f"add seeds at {at}: {need} seeds per recipe would put a gain of "
                       f"{ev.largest_gain:.3g} at {rule.min_effect_to_noise:g}x the noise "
                       f"(have {ev.n_seeds})")
        else:
            out.append(f"at {at} {ev.recipe} is not better than {ev.baseline}; more seeds "
                       "there would confirm or refute a small gain")
    if status.get("sign") is False and ev.top_share_better > 0:
        out.append(f"add seeds at {', '.join(fmt_count(s) for s in ev.top_sizes)}: the sign of "
                   "the gain flips between scales there")
    if status.get("p_beats") is not True:
        if ev.n_sizes < 3:
            out.append(f"add model sizes: {ev.n_sizes} size(s) cannot carry an extrapolation "
                       f"(train {pair} at 3-5 sizes)")
        elif status.get("p_beats") is False and status.get("effect") and status.get("sign"):
            out.append(f"add a larger size: {pair} at ~{fmt_count(3 * ev.largest_params)}; "
                       "the gain is clear on the ladder but uncertain at the target")
    return out or ["the evidence is mixed; more seeds at the top sizes would settle it"]


def overall(decisions: dict[str, Decision], p_beats: dict[str, float]) -> tuple[str, list[str]]:
    """One decision for the comparison: the best recipe that is a go, else the consensus."""
    if not decisions:
        return "inconclusive", ["no recipe could be judged"]

    def line(r: str, d: Decision) -> str:
        tail = f" - {d.advice[0]}" if d.decision == "inconclusive" and d.advice else ""
        return f"{r}: {d.decision} ({d.headline}){tail}"

    go = [r for r, d in decisions.items() if d.decision == "go"]
    if go:
        def p(r: str) -> float:  # the P(beats) the recipe was decided on
            v = decisions[r].p_beats
            return v if math.isfinite(v) else p_beats.get(r, 0.0)
        best = max(go, key=p)
        rest = [r for r in decisions if r != best]
        return "go", [line(best, decisions[best])] + [line(r, decisions[r]) for r in rest]
    verdict = "no-go" if all(d.decision == "no-go" for d in decisions.values()) else \
        "inconclusive"
    return verdict, [line(r, d) for r, d in decisions.items()]
