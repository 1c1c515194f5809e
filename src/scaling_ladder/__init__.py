"""scaling-ladder: decide with small runs what deserves a big run."""

from . import datasets
from .bootstrap import Interval
from .errors import InputError, LadderError
from .fitting import ChainFit, LawFit, Prediction, chain, fit, pair_metrics
from .laws import (
    ChinchillaLaw,
    DataConstrainedLaw,
    ExponentialErrorLaw,
    Law,
    OvertrainLaw,
    PowerLaw,
    SigmoidLaw,
    make_law,
)
from .observations import Observations, from_frame, read_observations, write_observations

__all__ = [
    "ChainFit", "ChinchillaLaw", "DataConstrainedLaw", "ExponentialErrorLaw", "InputError",
    "Interval", "LadderError", "Law", "LawFit", "Observations", "OvertrainLaw", "PowerLaw",
    "Prediction", "SigmoidLaw", "chain", "datasets", "fit", "from_frame", "make_law",
    "pair_metrics", "read_observations", "write_observations",
]
__version__ = "0.1.0"
