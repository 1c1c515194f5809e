"""scaling-ladder: decide with small runs what deserves a big run.

The report lives in :mod:`scaling_ladder.report` (it imports matplotlib), the trainer in
:mod:`scaling_ladder.train` (it imports torch), the data tools in :mod:`scaling_ladder.data`.
"""

from .compare import CompareOptions, Comparison, compare
from .compare.decide import Decision, Rule
from .compare.ranking import RankAgreement, decision_accuracy, rank_agreement
from .errors import InputError, LadderError
from .evaluate.backtest import Backtest, backtest
from .evaluate.simulate import LadderDesign, Simulation, simulate, simulate_ladder
from .laws.bootstrap import Interval
from .laws.compute import (
    Allocation,
    IsoFlopResult,
    flops_6nd,
    isoflop,
    optimal,
    training_flops,
)
from .laws.downstream import ChainFit, chain, pair_metrics
from .laws.fit import LawFit, Prediction, fit
from .laws.forms import (
    ChinchillaLaw,
    DataConstrainedLaw,
    ExponentialErrorLaw,
    KaplanLaw,
    Law,
    OvertrainLaw,
    PowerLaw,
    SigmoidLaw,
    make_law,
)
from .laws.holdout import HoldoutResult, holdout
from .monitor.monitor import RunCheck, check_run
from .observations import datasets
from .observations.importers import read_tensorboard, read_wandb_csv
from .observations.table import Observations, from_frame, read_observations, write_observations
from .plan.plan import Plan, make_plan

__all__ = [
    "Allocation", "chain", "ChainFit", "ChinchillaLaw", "DataConstrainedLaw", "datasets",
    "ExponentialErrorLaw", "fit", "flops_6nd", "from_frame", "holdout", "HoldoutResult",
    "InputError",
    "Interval", "KaplanLaw", "isoflop", "IsoFlopResult", "LadderError", "Law", "LawFit", "make_law",
    "Observations", "optimal", "OvertrainLaw", "pair_metrics", "PowerLaw", "Prediction",
    "read_observations", "read_tensorboard", "read_wandb_csv", "SigmoidLaw", "training_flops",
    "write_observations",
    "Backtest", "backtest", "CompareOptions", "Comparison", "compare", "Decision",
    "decision_accuracy", "LadderDesign", "RankAgreement", "rank_agreement", "Rule",
    "Simulation", "simulate", "simulate_ladder", "RunCheck", "check_run", "Plan", "make_plan",
]
__version__ = "0.1.0"
