"""How good are the decisions? Backtests on real ladders (:mod:`.backtest`) and simulated
ladders with a known truth (:mod:`.simulate`)."""

from .backtest import Backtest, backtest
from .simulate import LadderDesign, Simulation, simulate, simulate_ladder

__all__ = ["Backtest", "backtest", "LadderDesign", "Simulation", "simulate", "simulate_ladder"]
