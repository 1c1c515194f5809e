"""A run checked against the band of its ladder's fit: residual z-scores, spikes, stop signals.

The band is the fit's prediction interval for a new run, in the fit's residual space (log loss
by default): centre ``L_hat(N, D)``, scale ``sigma = sqrt(s_res^2 + s_curve^2)`` where
``s_res = 1.4826 MAD`` of the fit's residuals (robust to the outliers a Huber fit ignores, and
including the law's misfit) and ``s_curve`` is the spread of the bootstrap curves at that point
(zero without bootstrap draws). Each checkpoint gets ``z = (log L - log L_hat) / sigma``.

Signals, in :mod:`signals`: off band (fails), below band, spike, residual jump, larger batch
did worse at equal FLOPs, erratic IsoFLOP valley.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.compute import flops_6nd
from ..laws.fit import LawFit
from ..observations.io import FORMATS
from ..observations.table import Observations, read_observations
from ..units import BITS_PER_BYTE, TOKENS, loss_unit, to_bits_per_byte, tokens_to_bytes
from .signals import (
    SEVERITIES,
    Flag,
    band_flags,
    batch_flags,
    isoflop_flags,
    jump_flags,
    spike_flags,
)


@dataclass(frozen=True)
class RunCheck:
    """A run against its band: per-checkpoint z, the flags, and the verdict.

    ``verdict`` is ``on band`` or ``off band``; ``checkpoints`` has one row per checkpoint with
    ``tokens, flops, value, predicted, lo, hi, z`` (``lo``/``hi``: the band at ``z_threshold``).
    """

    run: str
    metric: str
    verdict: str
    band: str
    z_threshold: float
    window: int
    checkpoints: pd.DataFrame
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == "on band"

    def to_dict(self) -> dict[str, Any]:
        cp = self.checkpoints
        return {
            "run": self.run, "metric": self.metric, "verdict": self.verdict,
            "passed": self.passed, "band": self.band, "z_threshold": self.z_threshold,
            "window": self.window, "flags": [f.to_dict() for f in self.flags],
            "notes": list(self.notes),
            "checkpoints": {c: cp[c].astype(float).tolist() for c in cp.columns},
        }

    def summary(self) -> str:
        last = self.checkpoints.iloc[-1] if len(self.checkpoints) else None
        lines = [f"{self.run} ({self.metric}): {self.verdict.upper()}",
                 f"    band: {self.band}"]
        if last is not None:
            lines.append(f"    last checkpoint: D = {last['tokens']:.4g}, value {last['value']:.5g}"
                         f", predicted {last['predicted']:.5g}, z = {last['z']:+.2f}")
        lines += [f"    [{f.severity}] {f.kind}: {f.message}" for f in self.flags]
        lines += [f"    note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class Band:
    """The prediction band of a fitted law (see the module docstring for its scale)."""

    fit: LawFit
    group: str | None = None
    description: str = ""
    sigma_residual: float = field(default=0.0)

    @classmethod
    def of(cls, fit: LawFit, *, group: str | None = None) -> Band:
        if fit.residuals is None or not len(fit.residuals):
            raise InputError(None, "the fit carries no residuals, so it has no band",
                             fix="refit it with ladder fit --json (this version keeps them)")
        res = np.asarray(fit.residuals, float)
        res = res[np.isfinite(res)]
        s = float(1.4826 * np.median(np.abs(res - np.median(res))))
        if not s > 0:
            s = float(np.std(res)) or 1e-9
        curve = (f"the spread of its {len(fit.draws)} bootstrap curves" if fit.draws is not None
                 and len(fit.draws) else "no bootstrap draws, so no curve uncertainty")
        space = "log" if fit.space == "log" else "linear"
        text = (f"prediction band of the {fit.law.name} fit: residual scale {s:.3g} "
                f"(1.4826 MAD of its {len(res)} residuals, {space} space) combined with {curve}")
        return cls(fit, group, text, s)

    def evaluate(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre, residual (observed − centre, in the fit's space) and sigma per row."""
        law = self.fit.law
        missing = [k for k in law.inputs if k not in frame]
        if missing:
            raise InputError(None, f'the {law.name} band needs column "{missing[0]}"',
                             column=missing[0], fix="check the run against a law of N, D or C")
        x = {k: frame[k].to_numpy(float) for k in law.inputs}
        centre = self.fit.predict(group=self.group, **x)
        y = frame["value"].to_numpy(float)
        if law.kind == "error":
            y = 1.0 - y
        log = self.fit.space == "log"
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(y) - np.log(centre) if log else y - centre
        s_curve = np.zeros(len(frame))
        if self.fit.draws is not None and len(self.fit.draws):
            d = self.fit.predict_draws(group=self.group, **x)
            with np.errstate(divide="ignore", invalid="ignore"):
                s_curve = np.nanstd(np.log(d) if log else d, axis=0)
        sigma = np.sqrt(self.sigma_residual ** 2 + s_curve ** 2)
        return centre, r, sigma


# ----------------------------------------------------------------------------- the check


def check_run(
    obs: Observations | pd.DataFrame,
    fit: LawFit | Band,
    *,
    run: str | None = None,
    metric: str | None = None,
    group: str | None = None,
    ladder: Observations | pd.DataFrame | None = None,
    z_threshold: float = 3.0,
    window: int = 5,
    spike: float = 0.02,
    spike_z: float = 6.0,
    spike_window: int = 10,
    two_sided: bool = False,
) -> RunCheck:
    """Check one run's checkpoints against the band of its ladder's fit.

    Parameters
    ----------
    obs : the run's observations (other runs in it join ``ladder`` for the batch checks).
    fit : the ladder's fit (``ladder fit --json``), or a :class:`Band`.
    run, metric : which run and metric, when ``obs`` holds several.
    group : the fit's group (default: the run's recipe, for a fit made with ``by="recipe"``).
    ladder : the ladder's other runs: "larger batch did worse" and IsoFLOP checks.
    z_threshold, window : off band when the median z of the last ``window`` checkpoints is
        beyond ``z_threshold`` on the worse side (either side with ``two_sided``).
    spike, spike_z, spike_window : a spike is a jump above the median of the previous
        ``spike_window`` checkpoints by more than ``spike`` (relative) and ``spike_z`` times the
        run's checkpoint noise.

    Returns
    -------
    RunCheck

    Example
    -------
    >>> fit = sl.LawFit.from_dict(json.load(open("fit.json")))      # doctest: +SKIP
    >>> sl.check_run(sl.read_observations("run.csv"), fit).verdict   # doctest: +SKIP
    'on band'
    """
    _check_args(z_threshold, window, spike, spike_z, spike_window)
    frame = _with_flops(obs.frame if isinstance(obs, Observations) else obs)
    rows, run, metric = _select(frame, run, metric)
    if isinstance(fit, Band):
        band = fit
    else:
        if group is None and fit.groups:
            group = str(rows["recipe"].iloc[0]) if "recipe" in rows else None
        band = Band.of(fit, group=group)
    rows, unit_notes = _in_fit_units(rows, band.fit)
    rows = rows.sort_values("tokens").reset_index(drop=True)
    x = _in_fit_data(rows, band.fit, unit_notes)  # the fit's D; the table keeps tokens
    centre, r, sigma = band.evaluate(x)
    worse = -1.0 if band.fit.law.kind == "accuracy" else 1.0
    z = r / sigma
    log = band.fit.space == "log"
    width = z_threshold * sigma
    lo = centre * np.exp(-width) if log else centre - width
    hi = centre * np.exp(width) if log else centre + width
    table = pd.DataFrame({"tokens": rows["tokens"].to_numpy(float),
                          "flops": rows["flops"].to_numpy(float),
                          "value": rows["value"].to_numpy(float), "predicted": centre,
                          "lo": lo, "hi": hi, "z": z})
    flags, notes = [], list(unit_notes)
    scored = _in_domain(band.fit, x)
    if not scored.all():
        first = float(table["tokens"][scored].min()) if scored.any() else math.nan
        notes.append(f"{int((~scored).sum())} checkpoints before D = {first:.4g}, below the "
                     "fit's smallest inputs (warm-up), are outside the band and not scored")
        table.loc[~scored, ["lo", "hi", "z"]] = np.nan
    if not scored.any():
        raise InputError(None, "no checkpoint lies within the fit's range of inputs yet",
                         fix="wait for later checkpoints, or check against a fit that covers them")
    inside = table[scored].reset_index(drop=True)
    off, off_flags = band_flags(inside, worse * z[scored], z_threshold, window, two_sided)
    flags += off_flags
    kind = str(rows["kind"].iloc[0]) if "kind" in rows else "loss"
    spiked, unrecovered = spike_flags(table, -1.0 if kind == "accuracy" else 1.0, spike, spike_z,
                                      spike_window)
    flags += spiked
    flags += jump_flags(inside, z[scored], z_threshold, window)
    context = [frame[(frame["metric"] == metric)]]
    if ladder is not None:
        lf = _with_flops(ladder.frame if isinstance(ladder, Observations) else ladder)
        context.append(lf[lf["metric"] == metric])
    ctx = pd.concat(context, ignore_index=True).drop_duplicates(["run", "tokens"])
    flags += batch_flags(ctx)
    iso_flags, iso_note = isoflop_flags(ctx)
    flags += iso_flags
    if iso_note:
        notes.append(iso_note)
    if len(inside) < window:
        notes.append(f"{len(inside)} checkpoints: the off-band window uses all of them")
    failed = off or unrecovered
    order = {s: i for i, s in enumerate(SEVERITIES)}
    flags.sort(key=lambda f: (order[f.severity], f.tokens if f.tokens is not None else -1))
    return RunCheck(run, metric, "off band" if failed else "on band", band.description,
                    float(z_threshold), int(window), table, tuple(flags), tuple(notes))


def _in_fit_units(rows: pd.DataFrame, fit: LawFit) -> tuple[pd.DataFrame, list[str]]:
    """The run's losses in the fit's unit: converted to bits/byte when the fit is in bits/byte
    (a tokenizer experiment's), refused when they cannot be, or when the fit is per token and
    the run per byte."""
    if fit.law.kind != "loss" or "kind" not in rows:
        return rows, []
    try:
        have = loss_unit(rows)
    except ValueError as exc:
        raise InputError(None, str(exc), column="unit",
                         fix="give the run's losses in one unit") from None
    if have == fit.unit:
        return rows, []
    if fit.unit != BITS_PER_BYTE:
        raise InputError(None, f"the run's losses are in {have} but the fit's in {fit.unit}",
                         column="unit", fix="check against a fit made in the run's unit "
                         "(ladder fit --units bits/byte)")
    try:
        return to_bits_per_byte(rows), [f"the run's losses converted to {BITS_PER_BYTE}, the "
                                        "fit's unit"]
    except ValueError as exc:
        raise InputError(None, f"the fit is in {BITS_PER_BYTE}: {exc}",
                         column="bytes_per_token") from None


def _in_fit_data(rows: pd.DataFrame, fit: LawFit, notes: list[str]) -> pd.DataFrame:
    """The run's rows with D in the fit's unit: as they are for a fit in tokens; for a fit
    with D in bytes, tokens x ``train_bytes_per_token`` (:func:`tokens_to_bytes`; an
    :class:`InputError` naming the run when it lacks the column)."""
    if fit.data == TOKENS or "tokens" not in fit.law.inputs:
        return rows
    try:
        converted = tokens_to_bytes(rows)
    except ValueError as exc:
        raise InputError(None, f"the fit takes D in bytes: {exc}",
                         column="train_bytes_per_token") from None
    notes.append("the run's D converted to bytes (tokens x train_bytes_per_token), the fit's "
                 "unit; checkpoints are listed by tokens")
    return converted


def _with_flops(frame: pd.DataFrame) -> pd.DataFrame:
    """A table from a notebook may lack ``flops``: 6ND, as when reading a file."""
    if "flops" in frame and frame["flops"].notna().all():
        return frame
    six_nd = pd.Series(flops_6nd(frame["params"], frame["tokens"]), index=frame.index)
    return frame.assign(flops=frame["flops"].fillna(six_nd) if "flops" in frame else six_nd)


def _in_domain(fit: LawFit, rows: pd.DataFrame) -> np.ndarray:
    """Checkpoints at or beyond the fit's smallest tokens/FLOPs (the law's domain: no
    extrapolation backwards into warm-up, where a power law does not hold)."""
    ok = np.ones(len(rows), dtype=bool)
    for k in ("tokens", "flops"):
        if k in fit.law.inputs and fit.ranges and k in fit.ranges:
            ok &= rows[k].to_numpy(float) >= fit.ranges[k][0] * (1 - 1e-9)
    return ok


def _check_args(z_threshold, window, spike, spike_z, spike_window) -> None:
    if not (isinstance(z_threshold, (int, float)) and z_threshold > 0):
        raise ValueError(f"The 'z_threshold' argument of check_run must be > 0. "
                         f"Got {z_threshold!r}.")
    for name, v in (("window", window), ("spike_window", spike_window)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ValueError(f"The '{name}' argument of check_run must be an int >= 1. Got {v!r}.")
    if not (isinstance(spike, (int, float)) and spike > 0):
        raise ValueError(f"The 'spike' argument of check_run must be > 0. Got {spike!r}.")
    if not (isinstance(spike_z, (int, float)) and spike_z >= 0):
        raise ValueError(f"The 'spike_z' argument of check_run must be >= 0. Got {spike_z!r}.")


def _select(frame: pd.DataFrame, run: str | None, metric: str | None):
    if frame.empty:
        raise InputError(None, "the run has no checkpoints yet", fix="wait for the first one")
    runs = sorted(frame["run"].astype(str).unique())
    if run is None:
        if len(runs) > 1:
            raise InputError(None, f"the file holds {len(runs)} runs ({', '.join(runs[:5])}"
                             f"{', …' if len(runs) > 5 else ''})", column="run",
                             fix="choose one with --run")
        run = runs[0]
    elif run not in runs:
        raise InputError(None, f'no run "{run}"', column="run",
                         fix=f"choose one of {', '.join(runs[:8])}")
    rows = frame[frame["run"].astype(str) == run]
    metrics = sorted(rows["metric"].unique())
    if metric is None:
        if len(metrics) > 1:
            raise InputError(None, f'run "{run}" has {len(metrics)} metrics '
                             f"({', '.join(metrics[:5])}{', …' if len(metrics) > 5 else ''})",
                             column="metric", fix="choose the fitted one with --metric")
        metric = metrics[0]
    elif metric not in metrics:
        raise InputError(None, f'run "{run}" has no metric "{metric}"', column="metric",
                         fix=f"choose one of {', '.join(metrics[:8])}")
    rows = rows[rows["metric"] == metric]
    return rows.drop_duplicates("tokens", keep="last"), run, metric


# ------------------------------------------------------------------------------- follow


def read_growing(path: str | Path) -> Observations:
    """Read a table that may be half-written: complete lines only (CSV, JSON Lines)."""
    path = Path(path)
    if FORMATS.get(path.suffix.lower()) == "parquet":
        return read_observations(path)
    if not path.exists():
        raise InputError(str(path), "file not found", fix="check the path")
    data = path.read_bytes()
    cut = data.rfind(b"\n")
    if cut < 0 or cut == len(data) - 1:
        return read_observations(path)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / path.name
        part.write_bytes(data[:cut + 1])
        obs = read_observations(part)
    return Observations(obs.frame, obs.set_aside, (str(path),))


def follow(path: str | Path, fit: LawFit | Band, *, interval: float = 30.0,
           idle: float | None = None, on_check: Callable[[RunCheck], None] | None = None,
           sleep: Callable[[float], None] = time.sleep, **options: Any) -> RunCheck:
    """Check ``path`` again each time it grows, until the run is off its band (that check is
    returned) or the file has not grown for ``idle`` seconds (the last check is returned).

    ``on_check`` sees every new check; ``options`` go to :func:`check_run`.
    """
    if not interval > 0:
        raise ValueError(f"The 'interval' argument of follow must be > 0. Got {interval!r}.")
    last_size, quiet, result = -1, 0.0, None
    while True:
        size = Path(path).stat().st_size if Path(path).exists() else -1
        if size != last_size and size > 0:
            try:
                obs = read_growing(path)
            except InputError as exc:
                if "no rows" not in str(exc) and "empty" not in str(exc):
                    raise
                obs = None
            if obs is not None and len(obs):
                result = check_run(obs, fit, **options)
                if on_check:
                    on_check(result)
                if not result.passed:
                    return result
            last_size, quiet = size, 0.0
        elif idle is not None and quiet >= idle:
            if result is None:
                raise InputError(str(path), "no checkpoints arrived", fix="check the path")
            return result
        sleep(interval)
        quiet += interval
