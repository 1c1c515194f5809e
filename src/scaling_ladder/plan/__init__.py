"""Plan a ladder: the TOML spec (:mod:`.spec`), model shapes by size (:mod:`.sizes`), and the
runs with their cost (:mod:`.plan`)."""

from .plan import Plan, RunSpec, make_plan

__all__ = ["make_plan", "Plan", "RunSpec"]
