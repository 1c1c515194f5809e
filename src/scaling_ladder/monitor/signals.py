"""The stop signals of a run's checkpoints, each a :class:`Flag`; :mod:`monitor` scores a run
against its band and collects them.

Signals (the ladder's stop signals):

* **off band** (fails): the median z of the last ``window`` checkpoints beyond ``z_threshold``
  on the worse side. A median over a window, not one point, so that one noisy evaluation or a
  spike that recovers does not stop a job; a sustained drift does. Runs *better* than their
  band are reported (``below band``) but pass unless ``two_sided``: a learning-rate decay
  legitimately takes a run below a law fitted on constant-rate checkpoints.
* **spike**: the loss jumps above the median of the previous ``spike_window`` checkpoints by
  more than ``spike`` (relative) and ``spike_z`` times the run's checkpoint-to-checkpoint noise
  (OLMo-7B-Twin-2T jumps 15% near 535B tokens and recovers). Fails only while unrecovered at
  the last checkpoint.
* **residual jump**: the window median of z moves by more than ``z_threshold`` between two
  consecutive windows (a level shift: a changed data stream or evaluation).
* **larger batch did worse at equal FLOPs**: two runs of one size and recipe, the larger batch
  worse at their largest common compute by more than the noise (beyond the critical batch
  size, McCandlish et al. 2018, arXiv:1812.06162).
* **erratic IsoFLOP valley**: minima N*(C) of the ladder that shrink as compute grows or sit
  more than 0.3 dex off their power law (Hoffmann et al. 2022, approach 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.compute import isoflop

SEVERITIES = ("fail", "warn", "info")


@dataclass(frozen=True)
class Flag:
    """One signal: what (``kind``), how bad (``severity``), where (``tokens``) and why."""

    kind: str
    severity: str
    tokens: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "tokens": self.tokens,
                "message": self.message}


def band_flags(table: pd.DataFrame, zw: np.ndarray, threshold: float, window: int,
                two_sided: bool) -> tuple[bool, list[Flag]]:
    """Sustained excursions of the window median of z: off band (worse), below band."""
    med = pd.Series(zw).rolling(window, min_periods=1).median().to_numpy()
    tokens = table["tokens"].to_numpy()
    flags, off_now = [], False
    for sign, kind in ((1.0, "off band"), (-1.0, "below band")):
        out = sign * med > threshold
        fails = sign > 0 or two_sided
        for start, end in _episodes(out):
            ongoing = end == len(out) - 1
            z_peak = float(np.max(sign * zw[start:end + 1]))
            where = (f"from D = {tokens[start]:.4g}" + (" to the last checkpoint" if ongoing
                                                       else f" to {tokens[end]:.4g}"))
            side = "worse" if sign > 0 else "better"
            msg = (f"the median z of {window} checkpoints is {side} than the band by more "
                   f"than {threshold:g} sigma {where} (peak |z| {z_peak:.1f})")
            if not ongoing:
                msg += "; back on band since"
            severity = "fail" if (fails and ongoing) else "warn"
            if sign < 0 and not two_sided:
                msg += "; expected when the learning rate decays below the fitted schedule"
            flags.append(Flag(kind, severity, float(tokens[start]), msg))
            off_now |= fails and ongoing
    return off_now, flags


def _episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True values."""
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def spike_flags(table: pd.DataFrame, worse: float, rel: float, k: float,
            window: int) -> tuple[list[Flag], bool]:
    """Jumps of the metric above the median of the previous ``window`` checkpoints."""
    v = table["value"].to_numpy(float)
    if len(v) < 3:
        return [], False
    lv = worse * np.log(np.clip(v, 1e-12, None))
    d = np.diff(lv)
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
    ref = pd.Series(lv).rolling(window, min_periods=2).median().shift(1).to_numpy()
    jump = lv - ref
    limit = max(math.log1p(rel), k * noise)
    hit = np.nan_to_num(jump, nan=-np.inf) > limit
    tokens = table["tokens"].to_numpy()
    flags, unrecovered = [], False
    for start, end in _episodes(hit):
        base = ref[start]
        peak = start + int(np.argmax(jump[start:end + 1]))
        back = np.flatnonzero(lv[end + 1:] - base <= limit)
        rec = (f"recovered by D = {tokens[end + 1 + back[0]]:.4g}" if len(back)
               else "not recovered at the last checkpoint")
        if not len(back):
            unrecovered = True
        msg = (f"{'loss' if worse > 0 else 'metric'} jumped {100 * math.expm1(jump[peak]):+.1f}%"
               f" over the median of the previous {window} checkpoints at D = {tokens[peak]:.4g}"
               f" ({end - start + 1} checkpoint{'s' if end > start else ''}); {rec}")
        flags.append(Flag("spike", "warn" if len(back) else "fail", float(tokens[start]), msg))
    return flags, unrecovered


def jump_flags(table: pd.DataFrame, z: np.ndarray, threshold: float, window: int) -> list[Flag]:
    """Level shifts of the residual: consecutive window medians of z differ by > threshold."""
    if len(z) < 2 * window:
        return []
    med = pd.Series(z).rolling(window).median().to_numpy()
    shift = med[window:] - med[:-window]
    tokens = table["tokens"].to_numpy()
    flags = []
    for start, end in _episodes(np.abs(np.nan_to_num(shift)) > threshold):
        i = start + int(np.argmax(np.abs(shift[start:end + 1])))
        at = i + window
        flags.append(Flag("residual jump", "warn", float(tokens[at - window + 1]),
                          f"the residual's level moved by {shift[i]:+.1f} sigma within "
                          f"{window} checkpoints near D = {tokens[at]:.4g} (a changed data "
                          "stream, evaluation or optimiser state?)"))
    return flags


def batch_flags(ctx: pd.DataFrame) -> list[Flag]:
    """Larger batch worse at equal FLOPs, among runs of one size and recipe."""
    if "batch_tokens" not in ctx or ctx["batch_tokens"].isna().all():
        return []
    keys = [k for k in ("recipe", "params") if k in ctx]
    flags = []
    for _, grp in ctx.dropna(subset=["batch_tokens"]).groupby(keys, sort=False):
        runs = {r: g.sort_values("flops") for r, g in grp.groupby("run", sort=False)}
        batches = {r: float(g["batch_tokens"].iloc[0]) for r, g in runs.items()}
        names = sorted(runs, key=lambda r: batches[r])
        for i, small in enumerate(names):
            for large in names[i + 1:]:
                if batches[large] <= batches[small]:
                    continue
                gap = _gap_at_equal_flops(runs[small], runs[large])
                if gap is None:
                    continue
                c, rel, noise = gap
                if rel > max(3 * noise, 0.005):
                    flags.append(Flag(
                        "batch", "warn", None,
                        f"larger batch did worse at equal FLOPs: {large} (batch "
                        f"{batches[large]:.3g} tokens) is {100 * rel:+.1f}% above {small} "
                        f"(batch {batches[small]:.3g}) at C = {c:.3g}: past the critical "
                        "batch size?"))
    return flags


def _gap_at_equal_flops(a: pd.DataFrame, b: pd.DataFrame):
    """Relative loss gap b/a − 1 at their largest common compute, and the checkpoint noise."""
    ca, cb = a["flops"].to_numpy(float), b["flops"].to_numpy(float)
    va, vb = np.log(a["value"].to_numpy(float)), np.log(b["value"].to_numpy(float))
    if len(ca) == 1 or len(cb) == 1:  # final points only: same compute within 5%
        if abs(math.log(ca[-1] / cb[-1])) > math.log(1.05):
            return None
        return float(ca[-1]), math.expm1(vb[-1] - va[-1]), 0.0
    c = min(ca.max(), cb.max())
    if c < max(ca.min(), cb.min()):
        return None
    la = np.interp(np.log(c), np.log(ca), va)
    lb = np.interp(np.log(c), np.log(cb), vb)
    return float(c), math.expm1(lb - la), max(_wiggle(va), _wiggle(vb))


def _wiggle(logv: np.ndarray) -> float:
    """Checkpoint noise of a smooth curve: robust scale of second differences / sqrt(6)."""
    if len(logv) < 4:
        return 0.0
    d2 = np.diff(logv, 2)
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6))


def isoflop_flags(ctx: pd.DataFrame) -> tuple[list[Flag], str | None]:
    fin = ctx[ctx["final"].to_numpy(bool)] if "final" in ctx else ctx
    if fin["params"].nunique() < 3:
        return [], None
    try:
        iso = isoflop(fin)
    except InputError:
        return [], "no IsoFLOP check: no two compute budgets with three model sizes"
    b = iso.budgets
    logc = np.log10([x["flops"] for x in b])
    logn = np.log10([x["params"] for x in b])
    fitted = np.log10(iso.params_coef) + iso.a * logc
    flags = []
    for i in range(len(b)):
        shrink = i > 0 and logn[i] < logn[i - 1]
        off = abs(logn[i] - fitted[i]) > 0.3
        if shrink or off:
            why = ("smaller than at the budget below" if shrink else
                   f"{logn[i] - fitted[i]:+.2f} dex off the N* ~ C^{iso.a:.2f} line")
            flags.append(Flag("isoflop", "warn", None,
                              f"the IsoFLOP valley at C = {b[i]['flops']:.3g} has its minimum "
                              f"at N* = {b[i]['params']:.3g}, {why}: an erratic valley"))
    return flags, None
