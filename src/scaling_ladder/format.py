"""Numbers as a person reads them: one spelling in tables, notes, reasons and reports.

Counts (parameters, tokens) take three significant digits and a suffix: ``k`` (thousand),
``M`` (million), ``B`` (billion), ``T`` (trillion), as model cards write them ("7B", "1.4T");
FLOPs and other quantities without a customary suffix take the short scientific form.
"""

from __future__ import annotations

import math

_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
MISSING = "—"


def count(x: float | None) -> str:
    """A parameter or token count: ``4.116e8`` -> ``412M``, ``6.89e9`` -> ``6.89B``,
    ``4.12e5`` -> ``412k``, ``950`` -> ``950``; a dash when missing or not finite."""
    if x is None:
        return MISSING
    x = float(x)
    if not math.isfinite(x):
        return MISSING
    for div, unit in _UNITS:
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def sci(x: float) -> str:
    """Three significant digits, exponent without ``+``: ``1.23e21`` (FLOPs, hours)."""
    return f"{x:.3g}".replace("e+", "e")


def duration(seconds: float) -> str:
    """Seconds as the largest whole unit that reads well: 45 s, 12 min, 3.2 h, 4.1 d."""
    for div, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= 2 * div:
            return f"{seconds / div:.2g} {unit}" if seconds < 10 * div else \
                f"{seconds / div:.0f} {unit}"
    return f"{seconds:.0f} s"
