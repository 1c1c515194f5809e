"""The report's sections in the order a scaling report is read.

Each is a function of the shared :class:`~.model.Analysis` returning a
:class:`~.model.Section`: the decision and go / no-go (:mod:`.decision`), loss curves, scaling
fit and IsoFLOP valleys (:mod:`.scaling`), the experiment, downstream, regression and data
tables (:mod:`.tables`).
"""

from __future__ import annotations

from .decision import decision, gonogo
from .scaling import curves, isoflop, scaling
from .tables import data_checks, downstream, experiments

ORDER = (decision, experiments, curves, scaling, isoflop, gonogo, downstream, data_checks)
"""Reading order."""

BUILD_ORDER = ORDER[1:] + ORDER[:1]
"""Order of work: the decision last, because its warnings box gathers what the other sections
find (contamination in the data checks, IsoFLOP stop signals)."""
