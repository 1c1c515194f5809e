"""Plan a ladder: a TOML spec -> the runs (shape, N three ways, tokens, FLOPs, LR, batch,
seeds, checkpoints) and their cost on a device. No torch here: planning is arithmetic.

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

import heapq
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .compute import training_flops
from .errors import InputError
from .sizes import (  # noqa: F401 - re-exported: the planner's vocabulary
    CONVENTIONS,
    PEAK_FLOPS,
    SIZE_TABLE,
    Device,
    Shape,
    cpu_device,
    device_named,
    peak_flops_for,
    swiglu_hidden,
)

# -------------------------------------------------------------------------------- the spec


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
    """A ladder spec; ``PlanSpec.model_validate(dict)`` or :func:`load_spec` from TOML."""

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


def tiny_spec(recipes: Sequence[str], *, sizes: Sequence[str] = ("d16-l2", "d32-l2", "d48-l3",
                                                                  "d64-l4", "d96-l4"),
              tokens: float = 4e5, seeds: int = 1, experiment: str = "tiny") -> dict:
    """A CPU ladder of byte-level proxies (11k-470k parameters in 5 sizes, context 128) that
    trains in a few minutes on 2 cores: every run sees the same 400k tokens in batches of 4
    sequences (782 steps), so loss falls with N at equal D, and intermediate checkpoints add the
    D axis.

    The learning rate is OLMo's rule times 0.1 (``lr_ref = 4.7e-4``): at a few hundred steps
    the rule's own rate is too hot for models this small. Measured on the default corpus
    (balanced recipe, WSD, one seed), final mean validation loss for the 5 sizes was 2.27, 2.16,
    2.07, 2.01, 1.72 nats at x0.1 of the rule; at x0.3 the smallest model lost 0.4 nats and the
    order broke. Batches of 4 rather than 16 sequences (4x the steps for the same tokens and
    nearly the same time) lowered every size's loss by 0.2-0.4 nats.
    """
    return {"experiment": experiment, "recipes": list(recipes), "seq_len": 128,
            "tokens": tokens, "sizes": {"names": list(sizes)},
            "seeds": {"smallest": seeds, "largest": 1},
            "hparams": {"batch_sequences": 4, "lr_ref": 4.7e-4},
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


def parse_spec(raw: dict, *, path: str = "<spec>", text: str = "") -> PlanSpec:
    """Validate a spec table; a problem is one :class:`InputError` naming the key and line."""
    raw = {k: v for k, v in raw.items() if k != "runs"}
    try:
        return PlanSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(x) for x in first["loc"] if not isinstance(x, int)]
        raise InputError(path, f"{'.'.join(loc) or 'the spec'}: {first['msg'].lower()}",
                         line=_line_of(text, loc[-1] if loc else ""),
                         more=len(exc.errors()) - 1,
                         fix="see the spec format in ladder plan --help") from None


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


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if key and re.match(rf'^\s*(\[+)?"?{re.escape(key)}"?\s*(=|\])', line):
            return number
    return None


# ---------------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class RunSpec:
    """One training run, flat so it round-trips through TOML, JSON and observation rows.

    ``params`` is N in ``params_convention``; ``params_total``, ``params_nonembed`` and
    ``params_no_input_embed`` are all three counts. ``flops`` includes the attention term
    (``compute.training_flops`` with the head counted in N); ``flops_6nd`` is 6 N D.
    """

    name: str
    experiment: str
    stage: str
    recipe: str
    size: str
    d_model: int
    n_layers: int
    n_heads: int
    mlp_hidden: int
    vocab_size: int
    seq_len: int
    tied: bool
    params: int
    params_convention: str
    params_total: int
    params_nonembed: int
    params_no_input_embed: int
    multiplier: float
    tokens: float
    seed: int
    protocol: str
    lr: float
    lr_multiplier: float
    batch_sequences: int
    micro_batch: int
    batch_tokens: int
    steps: int
    warmup_steps: int
    schedule: str
    decay_fraction: float
    min_lr_ratio: float
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    eval_steps: list[int]
    cooldowns: list[float]
    flops: float
    flops_6nd: float
    seconds: float
    placeholder: bool = False

    def shape(self) -> Shape:
        return Shape(self.d_model, self.n_layers, self.n_heads, self.mlp_hidden)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"A run has unknown fields {unknown}.")
        return cls(**d)


@dataclass(frozen=True)
class Plan:
    """The runs of a ladder, their totals and caveats (``notes``)."""

    spec: PlanSpec
    runs: tuple[RunSpec, ...]
    device: Device = field(default_factory=cpu_device)
    notes: tuple[str, ...] = ()

    @property
    def flops(self) -> float:
        return float(sum(r.flops for r in self.runs))

    @property
    def target_flops(self) -> float:
        t = self.spec.target
        return float(training_flops(t.params, t.tokens or 20 * t.params))

    def wall_seconds(self, workers: int | None = None) -> float:
        """Longest-processing-time-first schedule of the runs over ``workers``."""
        loads = [0.0] * (workers or self.device.workers)
        for s in sorted((r.seconds for r in self.runs), reverse=True):
            heapq.heapreplace(loads, loads[0] + s)
        return max(loads)

    def stage(self, name: str) -> Plan:
        runs = tuple(r for r in self.runs if r.stage == name)
        if not runs:
            raise ValueError(f"The plan has no stage {name!r}: choose one of "
                             f"{sorted({r.stage for r in self.runs})}.")
        return replace(self, runs=runs)

    def with_recipes(self, stage: str, recipes: Sequence[str]) -> Plan:
        """Fill a top-k stage's placeholders ``@top1 ...`` with the recipes that advanced."""
        slots = sorted({r.recipe for r in self.runs if r.stage == stage and r.placeholder})
        if len(recipes) != len(slots):
            raise ValueError(f"Stage {stage!r} has {len(slots)} recipe slots. Got "
                             f"{len(recipes)} recipes.")
        names = dict(zip(slots, recipes))
        runs = tuple(replace(r, recipe=names[r.recipe], placeholder=False,
                             name=r.name.replace(r.recipe, names[r.recipe], 1))
                     if r.stage == stage and r.placeholder else r for r in self.runs)
        return replace(self, runs=runs)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.spec.experiment, "params_convention":
                self.spec.params_convention, "n_runs": len(self.runs), "flops": self.flops,
                "target_flops": self.target_flops, "compute_fraction":
                self.flops / self.target_flops, "device": asdict(self.device),
                "seconds": sum(r.seconds for r in self.runs),
                "wall_seconds": self.wall_seconds(), "notes": list(self.notes),
                "spec": self.spec.model_dump(), "runs": [r.to_dict() for r in self.runs]}

    def to_toml(self) -> str:
        """The resolved spec and its runs; :func:`load_plan` reads it back (runs as written,
        so a run can be edited or removed by hand)."""
        head = [f"# scaling-ladder plan: {len(self.runs)} runs, {self.flops:.3g} FLOPs; "
                f"N = {self.spec.params_convention} parameters"]
        head += [f"# note: {n}" for n in self.notes]
        body = {**self.spec.model_dump(exclude_none=True),
                "runs": [r.to_dict() for r in self.runs]}
        return "\n".join(head) + "\n" + dumps_toml(body)


def make_plan(spec: PlanSpec | dict | None = None, *, device: Device | None = None) -> Plan:
    """The runs of a spec, with FLOPs and estimated seconds on ``device``.

    Example
    -------
    >>> plan = make_plan({"recipes": ["a", "b"], "sizes": {"max_params": 5e5}})
    >>> len(plan.runs), plan.runs[0].size
    (20, 'd24-l2')
    """
    spec = spec if isinstance(spec, PlanSpec) else parse_spec(spec or {})
    device = device or cpu_device()
    shapes, notes = _sizes(spec)
    runs = _runs(spec, shapes, device, notes, scale=1.0)
    b = spec.budget
    limit_name, total, limit = None, 0.0, None
    if b.flops is not None:
        limit_name, total, limit = "FLOPs", sum(r.flops for r in runs), b.flops
    elif b.device_hours is not None:
        total = Plan(spec, tuple(runs), device).wall_seconds() / 3600
        limit_name, limit = "device hours", b.device_hours
    if limit is not None and total > limit:
        if b.scale_tokens:
            scale = limit / total
            runs = _runs(spec, shapes, device, notes, scale=scale)
            notes.append(f"tokens of every run scaled by {scale:.3g} to fit the budget of "
                         f"{limit:.3g} {limit_name}")
        else:
            notes.append(f"over budget: {total:.3g} {limit_name} planned, {limit:.3g} allowed")
    return Plan(spec, tuple(runs), device, tuple(notes))


def _sizes(spec: PlanSpec) -> tuple[list[Shape], list[str]]:
    s, notes = spec.sizes, []
    if s.shapes:
        shapes = [Shape(**x.model_dump()) for x in s.shapes]
    elif s.names:
        unknown = [n for n in s.names if n not in SIZE_TABLE]
        if unknown:
            raise InputError(None, f'size "{unknown[0]}" is not in the size table',
                             column="sizes.names", fix="choose from " + ", ".join(SIZE_TABLE))
        shapes = [SIZE_TABLE[n] for n in s.names]
    else:
        hi = s.max_params or spec.target.params / 10
        lo = s.min_params or hi / 30
        if not lo < hi:
            raise ValueError(f"The sizes need min_params < max_params. Got {lo:g} and {hi:g}.")

        def n_of(shape: Shape) -> int:
            return shape.params(spec.vocab_size, tied=spec.tied,
                                convention=spec.params_convention)

        table = sorted(SIZE_TABLE.values(), key=n_of)
        within = [t for t in table if lo / 1.3 <= n_of(t) <= hi * 1.3]
        want = [math.exp(x) for x in _linspace(math.log(lo), math.log(hi), s.count)]
        shapes = []
        for w in want:
            best = min(within, key=lambda t: abs(math.log(n_of(t) / w)), default=None)
            if best is not None and best not in shapes:
                shapes.append(best)
        if len(shapes) < s.count:
            raise InputError(None, f"the size table has {len(shapes)} distinct shapes between "
                             f"{lo:.3g} and {hi:.3g} parameters, fewer than sizes.count = "
                             f"{s.count}", column="sizes",
                             fix="widen min_params..max_params, lower count or give shapes")
    shapes = sorted(shapes, key=lambda t: t.params(spec.vocab_size, tied=spec.tied))
    if len(shapes) < 5:
        notes.append(f"{len(shapes)} sizes: Choshen et al. (2024) recommend at least 5 for a "
                     "reliable fit")
    return shapes, notes


def _linspace(a: float, b: float, n: int) -> list[float]:
    return [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]


def _stage_sizes(stage: StageSpec, shapes: list[Shape]) -> list[Shape]:
    if isinstance(stage.sizes, list):
        names = {t.name: t for t in shapes}
        missing = [n for n in stage.sizes if n not in names]
        if missing:
            raise InputError(None, f'stage "{stage.name}" names size "{missing[0]}", which is '
                             "not in the ladder", column="stages.sizes",
                             fix="choose from " + ", ".join(names))
        return [names[n] for n in stage.sizes]
    m = re.fullmatch(r"all|(first|last):(\d+)", stage.sizes)
    if not m:
        raise InputError(None, f'stage "{stage.name}" has sizes = "{stage.sizes}"',
                         column="stages.sizes", fix='use "all", "first:K", "last:K" or names')
    if stage.sizes == "all":
        return shapes
    k = int(m.group(2))
    return shapes[:k] if m.group(1) == "first" else shapes[-k:]


def _runs(spec: PlanSpec, shapes: list[Shape], device: Device, notes: list[str], *,
          scale: float) -> list[RunSpec]:
    h, runs, names = spec.hparams, [], set()
    order = {t.name: i for i, t in enumerate(shapes)}
    lrs = {"fixed": [1.0], "reduced-lr": [spec.protocol.lr_scale],
           "sweep": spec.protocol.sweep}[spec.protocol.kind]
    for stage in spec.stages:
        recipes = spec.recipes if stage.recipes is None or stage.recipes >= len(spec.recipes) \
            else [f"@top{i + 1}" for i in range(stage.recipes)]
        for shape in _stage_sizes(stage, shapes):
            i, n_sizes = order[shape.name], len(shapes)
            counts = {c: shape.params(spec.vocab_size, tied=spec.tied, convention=c)
                      for c in CONVENTIONS}
            n = counts[spec.params_convention]
            frac = i / (n_sizes - 1) if n_sizes > 1 else 0.0
            n_seeds = stage.seeds or round(spec.seeds.smallest
                                           + (spec.seeds.largest - spec.seeds.smallest) * frac)
            rule_n = counts["non_embedding"] / h.ref_params
            lr_base = h.lr or h.lr_ref * rule_n ** h.lr_exponent
            batch = h.batch_sequences or max(1, round(
                h.batch_ref * h.ref_seq_len * rule_n ** h.batch_exponent / spec.seq_len))
            micro = min(h.micro_batch or batch, batch)
            if batch % micro:
                raise ValueError(f"The batch of {batch} sequences is not a multiple of "
                                 f"micro_batch = {micro}.")
            multipliers = [None] if spec.tokens else spec.token_multipliers
            for k in multipliers:
                want = (spec.tokens or k * n) * stage.tokens_scale * scale
                bt = batch * spec.seq_len
                steps = max(1, math.ceil(want / bt))
                tokens = float(steps * bt)
                warmup = min(round(h.warmup_tokens_per_param * n / bt),
                             math.floor(h.warmup_max_fraction * steps))
                flops = float(training_flops(counts["no_input_embedding"], tokens,
                                             n_layers=shape.n_layers, d_model=shape.d_model,
                                             seq_len=spec.seq_len))
                for recipe in recipes:
                    for lr_mult in lrs:
                        for s in range(n_seeds):
                            seed = spec.seeds.base + s
                            parts = [recipe, shape.name]
                            parts += [f"k{k:g}"] if len(multipliers) > 1 else []
                            parts += [f"lr{lr_mult:g}"] if len(lrs) > 1 else []
                            name = "-".join(parts + [f"s{seed}"])
                            if stage.name != spec.stages[0].name or len(spec.stages) > 1:
                                name = f"{stage.name}-{name}"
                            if name in names:
                                raise ValueError(f"Two runs are both named {name!r}.")
                            names.add(name)
                            runs.append(RunSpec(
                                name=name, experiment=spec.experiment, stage=stage.name,
                                recipe=recipe, size=shape.name, d_model=shape.d_model,
                                n_layers=shape.n_layers, n_heads=shape.n_heads,
                                mlp_hidden=shape.mlp_hidden, vocab_size=spec.vocab_size,
                                seq_len=spec.seq_len, tied=spec.tied, params=n,
                                params_convention=spec.params_convention,
                                params_total=counts["total"],
                                params_nonembed=counts["non_embedding"],
                                params_no_input_embed=counts["no_input_embedding"],
                                multiplier=float(k or tokens / n), tokens=tokens, seed=seed,
                                protocol=spec.protocol.kind, lr=lr_base * lr_mult,
                                lr_multiplier=lr_mult, batch_sequences=batch, micro_batch=micro,
                                batch_tokens=bt, steps=steps, warmup_steps=warmup,
                                schedule=h.schedule, decay_fraction=h.decay_fraction,
                                min_lr_ratio=h.min_lr_ratio, weight_decay=h.weight_decay,
                                beta1=h.beta1, beta2=h.beta2, grad_clip=h.grad_clip,
                                eval_steps=eval_steps(steps, spec.checkpoints, h),
                                cooldowns=list(h.cooldowns) if h.schedule == "wsd" else [],
                                flops=flops, flops_6nd=6.0 * n * tokens,
                                seconds=device.seconds(flops, shape.d_model),
                                placeholder=recipe.startswith("@")))
    if spec.hparams.cooldowns and spec.hparams.schedule != "wsd":
        notes.append("hparams.cooldowns are ignored: they branch from a wsd schedule")
    return runs


def eval_steps(steps: int, ck: CheckpointSpec, h: HparamSpec | None = None) -> list[int]:
    """Evaluation (and checkpoint) steps, 1-based: log-spaced from ``first_fraction`` of the
    run, every ``every`` of it, the last step, and the stable points WSD cooldowns branch from.
    """
    out = {steps}
    if ck.log_spaced:
        first = max(1.0, ck.first_fraction * steps)
        out |= {round(math.exp(x)) for x in _linspace(math.log(first), math.log(steps),
                                                       ck.log_spaced)}
    if ck.every:
        stride = max(1, round(ck.every * steps))
        out |= set(range(stride, steps + 1, stride))
    if h is not None and h.schedule == "wsd":
        out |= {b.start for b in cooldown_branches(steps, h.decay_fraction, h.cooldowns)}
    return sorted(s for s in out if 1 <= s <= steps)


@dataclass(frozen=True)
class Branch:
    """A WSD cooldown branch: from the stable checkpoint at ``start``, decay until ``end``."""

    fraction: float
    start: int
    end: int


def cooldown_branches(steps: int, decay_fraction: float, fractions: Sequence[float]
                      ) -> list[Branch]:
    """Branches ending at ``fraction`` of the run, each decaying over its last
    ``decay_fraction`` (Hägele et al. 2024: one stable run, many (N, D) points)."""
    out = []
    for f in sorted(set(fractions)):
        if not 0 < f < 1:
            raise ValueError(f"A cooldown fraction must lie in (0, 1). Got {f}.")
        end = max(2, round(f * steps))
        start = end - max(1, round(decay_fraction * end))
        if end < steps and start >= 1:
            out.append(Branch(f, start, end))
    return out


# ---------------------------------------------------------------------------- reading back


def load_plan(path: str | Path, overrides: Sequence[str] = (), *, device: Device | None = None,
              vocab_size: int | None = None) -> Plan:
    """Read a spec or a plan written by ``ladder plan --out``. A file with ``[[runs]]`` keeps
    them as written (unless ``overrides`` are given, which re-plan from the spec)."""
    raw, text = read_toml(path)
    raw = apply_overrides(raw, overrides)
    if vocab_size is not None:
        raw["vocab_size"] = vocab_size
    spec = parse_spec(raw, path=str(path), text=text)
    if "runs" in raw and not overrides and vocab_size in (None, spec.vocab_size):
        try:
            runs = tuple(RunSpec.from_dict(r) for r in raw["runs"])
        except (TypeError, ValueError) as exc:
            raise InputError(str(path), f"a [[runs]] table is not a run ({exc})",
                             line=_line_of(text, "runs"),
                             fix="write it with ladder plan --out, or delete the runs") from None
        return Plan(spec, runs, device or cpu_device())
    return make_plan(spec, device=device)


def build_plan(spec: str | Path | dict | None = None, overrides: Sequence[str] = (), *,
               data_dir: str | Path | None = None, device: Device | None = None) -> Plan:
    """A plan from a spec file (or table) and ``key=value`` overrides; with ``data_dir`` (made
    by ``ladder data build``) the vocabulary, tokenizer and, unless given, the recipes come
    from the token data. What ``ladder plan`` and ``ladder train`` call."""
    if spec is None or isinstance(spec, dict):
        raw, text, where = dict(spec or {}), "", "<spec>"
    else:
        raw, text = read_toml(spec)
        where = str(spec)
    if data_dir is not None:
        from .data import open_tokens

        ds = open_tokens(data_dir)
        tok = ds.manifest["tokenizer"]
        raw = {**raw, "vocab_size": ds.vocab_size, "tokenizer": f"{tok['kind']}"}
        raw.setdefault("recipes", ds.recipes)
    has_runs = "runs" in raw
    raw = apply_overrides(raw, overrides)
    if has_runs and not overrides:
        return load_plan(spec, device=device, vocab_size=raw.get("vocab_size"))
    return make_plan(parse_spec(raw, path=where, text=text), device=device)


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
