"""The ladder spec: its TOML format, validation with errors that name the key and line,
``key=value`` overrides, and a small TOML writer for plans. :mod:`plan` turns a spec into runs.

A spec (every key optional; these are the defaults unless noted)::

    experiment = "ladder"
    recipes = ["default"]              # the arms compared (recipe names of the token data)
    vocab_size = 257                   # byte tokenizer + EOS; read from --data when given
    seq_len = 128
    tied = true                        # tie the input embedding and the head
    params_convention = "total"        # N that drives tokens = k N, the LR/batch rules use
                                       # non-embedding N (OLMo); rows carry all three counts
    token_multipliers = [20.0]         # tokens = k N per size; several k for over-training
    # tokens = 400_000                 # or one token count for every run (replaces k N)

    [target]                           # the run being decided, for the compute fraction
    params = 1e9                       # tokens default to 20 N (Hoffmann et al. 2022)

    [sizes]                            # >= 5 sizes by default (Choshen et al. 2024)
    count = 5
    min_params = 3e4                   # default max/30; N in params_convention
    max_params = 1e6                   # default target/10
    # names = ["d32-l2", "d64-l4"]     # or pick from SIZE_TABLE, or give shapes:
    # shapes = [{ d_model = 48, n_layers = 3, n_heads = 3 }]

    [seeds]                            # more seeds at small scale, interpolated in log N
    smallest = 3
    largest = 1
    base = 0

    [protocol]                         # fixed | reduced-lr | sweep (arXiv 2512.24503)
    kind = "fixed"
    lr_scale = 0.1                     # reduced-lr: every recipe at lr x this
    sweep = [0.5, 1.0, 2.0]            # sweep: every recipe at each lr x these

    [hparams]                          # OLMo ladder rules (Bhagia et al. 2024), overridable
    lr_ref = 0.0047                    # lr = lr_ref (N / ref_params)^lr_exponent
    lr_exponent = -0.3333333333
    batch_ref = 160                    # sequences of ref_seq_len at ref_params,
    batch_exponent = 0.6666666667      # scaled by (N / ref_params)^batch_exponent
    ref_params = 108e6
    ref_seq_len = 2048
    # lr = 3e-3; batch_sequences = 16  # fixed values replace the rules
    warmup_tokens_per_param = 1.0      # warmup ~ N tokens, capped below
    warmup_max_fraction = 0.1
    schedule = "cosine"                # cosine | wsd (warmup-stable-decay)
    decay_fraction = 0.2               # wsd: share of the run in its cooldown
    cooldowns = []                     # wsd: extra branches ending at these run fractions
    min_lr_ratio = 0.1
    weight_decay = 0.1
    beta1 = 0.9
    beta2 = 0.95
    grad_clip = 1.0

    [checkpoints]
    log_spaced = 8                     # evaluations log-spaced from first_fraction to the end
    first_fraction = 0.02
    every = 0.1                        # and every 10% of the run (0: none)

    [budget]                           # optional: FLOPs or device hours
    # flops = 1e15
    # device_hours = 0.1
    scale_tokens = true                # over budget: scale every run's tokens to fit

    [[stages]]                         # default: one stage "ladder" with every size
    name = "smoke"                     # many candidates at the bottom, few at the top:
    sizes = "first:1"                  # "all", "first:K", "last:K" or a list of names
    tokens_scale = 0.1
    seeds = 1
    [[stages]]
    name = "small"
    sizes = "first:3"
    [[stages]]
    name = "large"
    sizes = "last:2"
    recipes = 2                        # the top 2 of the stage below (placeholders @top1...)
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..names import check_name


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShapeSpec(_Spec):
    d_model: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    mlp_hidden: int = Field(default=0, ge=0)


class SizesSpec(_Spec):
    count: int = Field(default=5, ge=1)
    min_params: float | None = Field(default=None, gt=0)
    max_params: float | None = Field(default=None, gt=0)
    names: list[str] | None = None
    shapes: list[ShapeSpec] | None = None


class SeedsSpec(_Spec):
    smallest: int = Field(default=3, ge=1)
    largest: int = Field(default=1, ge=1)
    base: int = Field(default=0, ge=0)


class ProtocolSpec(_Spec):
    kind: Literal["fixed", "reduced-lr", "sweep"] = "fixed"
    lr_scale: float = Field(default=0.1, gt=0)
    sweep: list[float] = Field(default=[0.5, 1.0, 2.0], min_length=1)


class HparamSpec(_Spec):
    lr_ref: float = Field(default=0.0047, gt=0)
    lr_exponent: float = -1 / 3
    batch_ref: float = Field(default=160, gt=0)
    batch_exponent: float = 2 / 3
    ref_params: float = Field(default=108e6, gt=0)
    ref_seq_len: int = Field(default=2048, gt=0)
    lr: float | None = Field(default=None, gt=0)
    batch_sequences: int | None = Field(default=None, gt=0)
    micro_batch: int | None = Field(default=None, gt=0)
    warmup_tokens_per_param: float = Field(default=1.0, ge=0)
    warmup_max_fraction: float = Field(default=0.1, ge=0, le=1)
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_fraction: float = Field(default=0.2, gt=0, le=1)
    cooldowns: list[float] = []
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    weight_decay: float = Field(default=0.1, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    grad_clip: float = Field(default=1.0, ge=0)


class CheckpointSpec(_Spec):
    log_spaced: int = Field(default=8, ge=0)
    first_fraction: float = Field(default=0.02, gt=0, le=1)
    every: float = Field(default=0.1, ge=0, le=1)


class StageSpec(_Spec):
    name: str
    sizes: str | list[str] = "all"
    recipes: int | None = Field(default=None, ge=1)
    seeds: int | None = Field(default=None, ge=1)
    tokens_scale: float = Field(default=1.0, gt=0)


class BudgetSpec(_Spec):
    flops: float | None = Field(default=None, gt=0)
    device_hours: float | None = Field(default=None, gt=0)
    scale_tokens: bool = True


class TargetSpec(_Spec):
    params: float = Field(default=1e9, gt=0)
    tokens: float | None = Field(default=None, gt=0)


class PlanSpec(_Spec):
    """A ladder spec: :func:`parse_spec` of a table (:func:`read_toml` reads a file)."""

    experiment: str = "ladder"
    recipes: list[str] = Field(default=["default"], min_length=1)
    tokenizer: str = "byte"
    vocab_size: int = Field(default=257, gt=1)
    seq_len: int = Field(default=128, gt=1)
    tied: bool = True
    params_convention: Literal["total", "non_embedding", "no_input_embedding"] = "total"
    token_multipliers: list[float] = Field(default=[20.0], min_length=1)
    tokens: float | None = Field(default=None, gt=0)
    target: TargetSpec = TargetSpec()
    sizes: SizesSpec = SizesSpec()
    seeds: SeedsSpec = SeedsSpec()
    protocol: ProtocolSpec = ProtocolSpec()
    hparams: HparamSpec = HparamSpec()
    checkpoints: CheckpointSpec = CheckpointSpec()
    budget: BudgetSpec = BudgetSpec()
    stages: list[StageSpec] = [StageSpec(name="ladder")]


def tiny_spec(recipes: Sequence[str], *, sizes: Sequence[str] = ("d96-l4", "d112-l4", "d128-l4"),
              tokens: float = 4e5, seeds: int = 1, experiment: str = "tiny") -> dict:
    """A CPU ladder of byte-level proxies (0.47M-0.84M parameters in 3 sizes, context 128)
    that trains in about two minutes on 2 cores: every run sees the same 400k tokens in
    batches of 8 sequences (391 steps) at one learning rate, 3e-3, so loss falls with N at
    equal D, and intermediate checkpoints add the D axis.

    Why three sizes: a fourth (d128-l6, 1.24M) took the demo from ~2.3 to ~3.7 minutes and
    moved no decision; at 400k tokens D already limits what a larger N gains (0.01-0.04 nats
    per size step), and a fifth (d160-l6) came out no better than the fourth.

    Why these sizes: byte-level models below d96-l4 sit on a plateau at this budget. Measured
    on the default corpus (balanced recipe, WSD, 500k tokens, batches of 8), the final mean
    validation loss of d32-l2, d48-l3, d64-l4, d96-l4 was 2.14, 1.97, 1.97, 1.68 nats, and at a
    quarter of the tokens 3.02, 3.01, 2.96, 2.35: the sizes up to d64-l4 learn about the same,
    then d96-l4 drops by 0.3-0.6 nats. A law fitted across that step misses the largest size by
    ~20%; from d96-l4 up the loss falls smoothly with N. Why one learning rate: OLMo's rule
    (x0.1) gives the smaller models the larger rate, 5-8e-3 here, and they did 0.08-0.15 nats
    worse than at 3e-3. Why batches of 8: the gradient noise scale measured early in these
    runs is ~500 tokens (4 sequences), so larger batches buy throughput with tokens; at 8, bf16
    matmuls already pay on a CPU with AMX (d96-l4 and up train in bf16 there: ``ladder train``'s
    precision ``auto``).
    """
    return {"experiment": experiment, "recipes": list(recipes), "seq_len": 128,
            "tokens": tokens, "sizes": {"names": list(sizes)},
            "seeds": {"smallest": seeds, "largest": 1},
            "hparams": {"batch_sequences": 8, "lr": 3e-3},
            "checkpoints": {"log_spaced": 6, "every": 0.25}}


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    """``key.sub=value`` pairs into a copy of ``raw``; values are TOML (``[5, 20]``, ``true``,
    ``1e6``) or else plain text."""
    raw = _deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"The --set option takes KEY=VALUE, e.g. sizes.count=6. Got {item!r}.")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        node, parts = raw, key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item}: {part} is not a table")
        node[parts[-1]] = value
    return raw


def _deepcopy(x):
    if isinstance(x, dict):
        return {k: _deepcopy(v) for k, v in x.items()}
    return [_deepcopy(v) for v in x] if isinstance(x, list) else x


def parse_spec(raw: dict, *, path: str = "the spec", text: str = "") -> PlanSpec:
    """Validate a spec table; a problem is one :class:`InputError` naming the key and line."""
    raw = {k: v for k, v in raw.items() if k != "runs"}
    try:
        spec = PlanSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(x) for x in first["loc"] if not isinstance(x, int)]
        got = first.get("input")
        got = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else ""
        raise InputError(path, f"{'.'.join(loc) or 'the spec'}: {first['msg'].lower()}{got}",
                         line=line_of(text, loc[-1] if loc else ""),
                         more=len(exc.errors()) - 1,
                         fix="see the spec format in ladder plan --help") from None
    _check_spec(spec, path, text)
    return spec


def _check_spec(spec: PlanSpec, path: str, text: str) -> None:
    """What pydantic does not check: names that become folder names (:mod:`..names`) and
    token multipliers that are finite and positive."""
    check_name("experiment", spec.experiment, path=path, line=line_of(text, "experiment"))
    for recipe in spec.recipes:
        check_name("recipe", recipe, path=path, line=line_of(text, "recipes"))
    for stage in spec.stages:
        check_name("stage", stage.name, path=path, line=value_line(text, "name", stage.name))
    for k in spec.token_multipliers:
        if not (math.isfinite(k) and k > 0):
            raise InputError(path, f"token_multipliers: {k:g} tokens per parameter is not a "
                             "finite number > 0", line=line_of(text, "token_multipliers"),
                             fix="give tokens per parameter k > 0 (tokens = k N), e.g. "
                             "--multipliers 5,20,80")


def read_toml(path: str | Path) -> tuple[dict, str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except FileNotFoundError:
        raise InputError(str(path), "no such file", fix="give the path of a ladder spec "
                         "(TOML); see ladder plan --help") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(str(path), f"is not valid TOML ({exc})",
                         line=int(m.group(1)) if m else None, fix="fix the syntax") from None


def line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if key and re.match(rf'^\s*(\[+)?"?{re.escape(key)}"?\s*(=|\])', line):
            return number
    return None


def value_line(text: str, key: str, value: str) -> int | None:
    """The first line of ``text`` that sets ``key = "value"``."""
    pattern = re.compile(rf"""^\s*"?{re.escape(key)}"?\s*=\s*["']{re.escape(value)}["']""")
    return next((n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)), None)


def dumps_toml(d: dict, prefix: str = "") -> str:
    """A small TOML writer for plain tables: scalars, lists, nested tables, arrays of tables."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_key(k)}"
        if isinstance(v, dict):
            out += f"\n[{name}]\n" + dumps_toml(v, name + ".")
        else:
            for item in v:
                out += f"\n[[{name}]]\n" + dumps_toml(item, name + ".")
    return out


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else '"' + k.replace('"', '\\"') + '"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else "inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
