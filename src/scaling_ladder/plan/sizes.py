"""Model shapes and devices: the size table, parameter counts three ways, peak FLOP/s.

Shared by the planner (no torch) and the trainer, whose ``train/model.py`` must match
:meth:`Shape.params` exactly (a test checks it for several shapes).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

CONVENTIONS = ("total", "non_embedding", "no_input_embedding")


# ---------------------------------------------------------------------------------- shapes


def swiglu_hidden(d_model: int) -> int:
    """SwiGLU hidden width: 8/3 d rounded up to a multiple (LLaMA; 11008 at d = 4096)."""
    multiple = 16 if d_model < 256 else 64 if d_model <= 1024 else 256
    return multiple * math.ceil(8 * d_model / 3 / multiple)


@dataclass(frozen=True)
class Shape:
    """A model shape and its parameter counts (the formula ``train/model.py`` must match)."""

    d_model: int
    n_layers: int
    n_heads: int
    mlp_hidden: int = 0  # 0: swiglu_hidden(d_model)

    def __post_init__(self) -> None:
        if self.mlp_hidden == 0:
            object.__setattr__(self, "mlp_hidden", swiglu_hidden(self.d_model))
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"The shape d_model={self.d_model}, n_heads={self.n_heads} needs "
                             "d_model to be n_heads times an even head dimension.")

    @property
    def name(self) -> str:
        return f"d{self.d_model}-l{self.n_layers}"

    def params(self, vocab_size: int, *, tied: bool = True, convention: str = "total") -> int:
        """N by convention. Per layer: qkv and output ``4 d^2``, SwiGLU ``3 d h``, two RMSNorm
        gains ``2 d``; then the final norm ``d``, the embedding ``V d`` and an untied head."""
        d, h = self.d_model, self.mlp_hidden
        non_embedding = self.n_layers * (4 * d * d + 3 * d * h + 2 * d) + d
        if convention == "non_embedding":
            return non_embedding
        if convention == "no_input_embedding":
            return non_embedding + vocab_size * d
        if convention == "total":
            return non_embedding + vocab_size * d * (1 if tied else 2)
        raise ValueError(f"The 'convention' must be one of {', '.join(CONVENTIONS)}. "
                         f"Got {convention!r}.")


def _table() -> dict[str, Shape]:
    rows = [  # d_model, n_layers, n_heads: head dim 16 below d 192, 32 to 320, then 64/128
        (16, 2, 1), (24, 2, 2), (32, 2, 2), (48, 2, 3), (48, 3, 3), (64, 3, 4), (64, 4, 4),
        (80, 4, 5), (96, 4, 6), (112, 4, 7), (128, 4, 8), (128, 6, 8),
        (160, 6, 10), (192, 6, 6), (256, 6, 8), (256, 8, 8), (320, 8, 10),
        (384, 8, 6), (512, 8, 8), (640, 10, 10), (768, 12, 12),  # GPT-2 small
        (1024, 16, 16), (1024, 24, 16), (1536, 24, 24), (2048, 16, 16),  # OLMo-1B
        (2048, 24, 16), (2560, 32, 32), (4096, 32, 32), (5120, 40, 40), (8192, 80, 64)]
    return {s.name: s for s in (Shape(*r) for r in rows)}


SIZE_TABLE: dict[str, Shape] = _table()
"""Named shapes, ~1.3-3x apart in N: tiny CPU proxies (aspect d/L 16-32) up to 70B (d/L ~100)."""


# ------------------------------------------------------------------------------ devices

PEAK_FLOPS: dict[str, float] = {
    # dense bf16 tensor-core peak per device (vendor datasheets); CPU: per core, measured
    "h200": 989e12, "h100-sxm": 989e12, "h100-pcie": 756e12, "a100": 312e12,
    "l40s": 362e12, "a10g": 70e12, "l4": 121e12, "v100": 125e12, "t4": 65e12,
    "mi300x": 1307e12, "cpu": 50e9,
}


def peak_flops_for(name: str) -> float | None:
    """Peak FLOP/s of a device named like ``torch.cuda.get_device_name()``, or None."""
    low = name.lower()
    if "h100" in low:
        return PEAK_FLOPS["h100-pcie" if "pcie" in low else "h100-sxm"]
    for key in ("h200", "a100", "l40s", "a10g", "l4", "v100", "t4", "mi300x", "cpu"):
        if re.search(rf"\b{key}\b", low) or low == key:
            return PEAK_FLOPS[key]
    return None


@dataclass(frozen=True)
class Device:
    """Where runs go: FLOP/s per worker and how many workers run at once.

    ``mfu`` is the assumed model FLOPs utilisation; on CPU it falls with d_model (tiny matmuls
    waste the vector units): ``0.8 d / (d + 64)`` of 50 GFLOP/s per core fits one-thread runs
    of ``train/model.py`` on a 2-core Xeon (2026), within the machine's 2x run-to-run spread.
    """

    name: str = "cpu"
    peak_flops: float = PEAK_FLOPS["cpu"]
    workers: int = 1
    mfu: float | None = None
    measured: bool = False
    overhead_s: float | None = None  # per run: start-up, evaluations, checkpoints

    def efficiency(self, d_model: int) -> float:
        if self.mfu is not None:
            return self.mfu
        if self.name == "cpu":
            return 0.8 * d_model / (d_model + 64)
        return 0.5 * d_model / (d_model + 256)

    def seconds(self, flops: float, d_model: int) -> float:
        """Training time plus a per-run overhead (default 6 s on CPU, where a worker's start
        and ~10 evaluations of a few thousand tokens per slice cost about that; 60 s on a GPU)."""
        overhead = self.overhead_s if self.overhead_s is not None else (
            6.0 if self.name == "cpu" else 60.0)
        return flops / (self.peak_flops * self.efficiency(d_model)) + overhead


def cpu_device(workers: int | None = None, peak_flops: float | None = None) -> Device:
    """The CPU: one thread per run and as many runs as cores (``peak_flops`` per core)."""
    return Device("cpu", peak_flops or PEAK_FLOPS["cpu"], workers or os.cpu_count() or 1,
                  measured=peak_flops is not None)


def device_named(name: str = "cpu", workers: int | None = None) -> Device:
    """A device for estimates: ``cpu`` (one run per core) or a GPU named in PEAK_FLOPS."""
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1. Got {workers}.")
    if name == "cpu":
        return cpu_device(workers)
    peak = peak_flops_for(name)
    if peak is None:
        raise ValueError(f"The device must be cpu or one of {', '.join(PEAK_FLOPS)}. "
                         f"Got {name!r}.")
    return Device(name, peak, workers or 1)
