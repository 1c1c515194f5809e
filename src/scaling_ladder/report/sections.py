"""The report's sections in the order a scaling report is read.

Each is a function of the shared :class:`~.build.Analysis` returning a
:class:`~.build.Section`: the decision and go / no-go (:mod:`.decision`), loss curves, scaling
fit and IsoFLOP valleys (:mod:`.scaling`), the experiment, downstream, regression and data
tables (:mod:`.tables`).
"""

from __future__ import annotations

from .decision import decision, gonogo
from .scaling import curves, isoflop, scaling
from .tables import data_checks, downstream, experiments

ORDER = (decision, experiments, curves, scaling, isoflop, gonogo, downstream, data_checks)
