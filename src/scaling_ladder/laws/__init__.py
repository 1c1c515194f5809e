"""Laws and the one estimator that fits them.

:mod:`.forms` (one small frozen class per law), :mod:`.objective` and :mod:`.fit` (the robust
multi-start estimator and :class:`LawFit`), :mod:`.bootstrap` (run-clustered resampling),
:mod:`.holdout` (would the law have predicted the largest model?), :mod:`.compute` (the one
FLOPs formula, compute-optimal allocation, IsoFLOP valleys), :mod:`.downstream` (loss to task
accuracy: pair, chain).
"""

from .bootstrap import Interval
from .downstream import ChainFit, chain, pair_metrics
from .fit import LawFit, Prediction
from .forms import (
    LAWS,
    ChinchillaLaw,
    DataConstrainedLaw,
    ExponentialErrorLaw,
    KaplanLaw,
    Law,
    OvertrainLaw,
    PowerLaw,
    SigmoidLaw,
    law_from_dict,
    make_law,
)

__all__ = ["chain", "ChainFit", "ChinchillaLaw", "DataConstrainedLaw", "ExponentialErrorLaw",
           "Interval", "KaplanLaw", "Law", "law_from_dict", "LAWS", "LawFit", "make_law",
           "OvertrainLaw", "pair_metrics", "PowerLaw", "Prediction", "SigmoidLaw"]
