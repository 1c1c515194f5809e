"""Where recipes are compared: the target scale, (N, D) on a tokens-per-parameter path or a
compute budget C on each recipe's compute-optimal path (Hoffmann et al. 2022, eq. 4)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..format import count
from ..laws.compute import flops_6nd

# ------------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """Where recipes are compared: (N, D) on a tokens-per-parameter path, or FLOPs."""

    params: float | None
    tokens: float | None
    flops: float
    path: str  # "tokens-per-param" or "compute-optimal"
    given: bool = True

    @property
    def label(self) -> str:
        if self.path == "compute-optimal":
            return f"C = {self.flops:.3g} FLOPs (compute-optimal N, D per recipe)"
        return f"N = {count(self.params)}, D = {count(self.tokens)} tokens"

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "tokens": self.tokens, "flops": self.flops,
                "path": self.path, "given": self.given, "label": self.label}


def resolve_target(*, params: float | None, tokens: float | None, flops: float | None,
                   default: tuple[float, float] | None) -> Target:
    """The comparison target from the options, or the largest scale trained (``default``)."""
    for name, v in (("target_params", params), ("target_tokens", tokens),
                    ("target_flops", flops)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"The '{name}' argument of compare must be a number > 0. Got {v!r}.")
    if flops is not None:
        if params is not None or tokens is not None:
            raise ValueError("Give the target as target_params and target_tokens, or as "
                             "target_flops, not both.")
        return Target(None, None, float(flops), "compute-optimal")
    if (params is None) != (tokens is None):
        raise ValueError("The target needs both target_params and target_tokens (or give "
                         "target_flops for a compute-optimal target).")
    if params is not None:
        return Target(float(params), float(tokens), float(flops_6nd(params, tokens)),
                      "tokens-per-param")
    if default is None:
        raise ValueError("No target given and no scale to default to.")
    n, d = default
    return Target(float(n), float(d), float(flops_6nd(n, d)), "tokens-per-param", given=False)
