"""Cells of the report's tables: every number formatted once, the same in HTML and Markdown."""

from __future__ import annotations

from typing import Any

import numpy as np


def num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{x:,}"
    if isinstance(x, (float, np.floating)):
        return f"{x:.{digits}g}".replace("e+", "e")
    return str(x)


def signed(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:+.{digits}g}"


def interval(ci, digits: int = 4, sign: bool = False) -> str:
    if ci is None:
        return "—"
    f = signed if sign else num
    return f"[{f(ci[0], digits)}, {f(ci[1], digits)}]"


def pct(x, digits: int = 2) -> str:
    if x is None:
        return "—"
    return f"{100 * float(x):.{digits}g}%"
