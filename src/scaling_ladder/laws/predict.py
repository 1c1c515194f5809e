"""A saved fit (or a chain: loss law, then loss-to-accuracy law) evaluated at new points, with
the confidence interval of the curve and the prediction interval of a run from its bootstrap
draws: what ``ladder predict`` prints.

>>> table = predict(fit, {"params": [7e10], "tokens": [1.4e12]})      # doctest: +SKIP
>>> table[["mean", "ci_lo", "ci_hi"]]                                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .downstream import chain
from .fit import LawFit

COLUMNS = ("mean", "ci_lo", "ci_hi", "pi_lo", "pi_hi")


def predict(fit: LawFit, points: Mapping[str, Sequence[float]] | pd.DataFrame, *,
            then: LawFit | None = None, group: str | None = None, level: float | None = None,
            seed: int = 0) -> pd.DataFrame:
    """``fit`` at each point (columns: the law's inputs), or the chain ``fit`` then ``then``.

    Returns the points with ``mean``, ``ci_lo``/``ci_hi`` (bootstrap percentiles of the curve)
    and ``pi_lo``/``pi_hi`` (a new run: residuals added); for a chain ``mean`` is the accuracy
    and ``loss`` the loss law's prediction that feeds it. Without draws the bounds are NaN.
    """
    frame = pd.DataFrame(points).reset_index(drop=True)
    inputs = fit.law.inputs
    frame = frame[list(inputs)].astype(float)
    level = fit.level if level is None else level
    x = {k: frame[k].to_numpy() for k in inputs}
    if then is None:
        pred = fit.predict_interval(group=group, level=level, seed=seed, **x)
    else:
        pred = chain(fit, then).predict_interval(group=group, level=level, seed=seed, **x)
        frame["loss"] = fit.predict(group=group, **x)
    nan = np.full(len(frame), np.nan)
    frame["mean"] = pred.mean
    for name, bounds in (("ci", pred.ci), ("pi", pred.pi)):
        lo, hi = bounds if bounds is not None else (nan, nan)
        frame[f"{name}_lo"], frame[f"{name}_hi"] = lo, hi
    return frame


def read_points(path: str | Path, inputs: Sequence[str]) -> pd.DataFrame:
    """The points of ``--points FILE`` (CSV, JSON Lines or Parquet with one column per input
    of the law), each value a finite number > 0, or an InputError naming file, line, column."""
    from ..observations.io import read_raw

    raw, lines, word = read_raw(Path(path))
    raw = raw.rename(columns=lambda c: str(c).strip())
    missing = [k for k in inputs if k not in raw]
    if missing:
        raise InputError(str(path), f'column "{missing[0]}" is missing', column=missing[0],
                         fix=f"give one column per input of the law: {', '.join(inputs)}")
    out = pd.DataFrame(index=raw.index)
    for k in inputs:
        values = pd.to_numeric(raw[k].astype(str).str.strip(), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if len(bad):
            i = bad[0]
            raise InputError(str(path), f'"{raw[k].iloc[i]}" is not a number > 0',
                             column=k, fix="give finite positive values", more=len(bad) - 1,
                             **{word: int(lines[i])})
        out[k] = values
    return out
