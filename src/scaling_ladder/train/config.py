"""How runs are executed (not what they train: that is the plan's ``RunSpec``).

Validated by pydantic; from TOML or ``--set train.key=value`` overrides, e.g.
``--set train.eval_tokens=8192 --set train.compile=true``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TrainOptions(BaseModel):
    """Execution options shared by every run of a ladder.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:K``.
    ``threads``: torch CPU threads per run (the local executor sets 1 and runs one per core).
    ``precision``: ``auto`` is bf16 autocast on CUDA, and on a CPU with AMX for models of
    d_model >= 96 (``trainer.CPU_BF16_MIN_D``; narrower, autocast's casts cost more than the
    bf16 matmuls save); float32 otherwise. The run's hardware line names the choice.
    ``compile``: torch.compile the model. On a CPU it pays only for long runs: ~1.5x the eager
    bf16 step at d96-l4, after ~100 s of compiling a new shape (~17 s from the on-disk cache).
    ``eval_tokens``: tokens per validation slice at every evaluation (a fixed prefix of the
    slice, the same at every checkpoint, so curves are comparable).
    ``gns``: estimate the gradient noise scale at evaluations (one extra batch of gradients).
    ``keep``: checkpoints kept besides the stable points WSD cooldowns branch from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False
    eval_tokens: int = Field(default=16384, ge=1)
    eval_batch: int = Field(default=32, ge=1)
    gns: bool = True
    keep: int = Field(default=2, ge=1)
    status_every: float = Field(default=1.0, gt=0)


def options_from(values: dict | None = None, overrides: list[str] | tuple[str, ...] = ()
                 ) -> TrainOptions:
    """Options from a dict and ``key=value`` overrides (TOML values); ValueError when bad."""
    import tomllib

    merged = dict(values or {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"A train option takes KEY=VALUE, e.g. eval_tokens=8192. "
                             f"Got {item!r}.")
        try:
            merged[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            merged[key.strip()] = text.strip()
    try:
        return TrainOptions.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"The train option {key!r} is invalid: {first['msg'].lower()}. Known "
                         f"options: {', '.join(TrainOptions.model_fields)}.") from None
