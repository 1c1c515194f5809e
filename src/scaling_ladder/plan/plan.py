"""Plan a ladder: a spec (:mod:`spec`) -> the runs (shape, N three ways, tokens, FLOPs, LR,
batch, seeds, checkpoints) and their cost on a device. No torch here: planning is arithmetic.
"""

from __future__ import annotations

import difflib
import heapq
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..format import count
from ..laws.compute import flops_6nd, training_flops
from ..names import check_name, is_name
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
from .spec import (  # noqa: F401 - re-exported with the plan
    CheckpointSpec,
    HparamSpec,
    PlanSpec,
    StageSpec,
    apply_overrides,
    dumps_toml,
    line_of,
    parse_spec,
    read_toml,
    tiny_spec,
    value_line,
)

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
        for recipe in recipes:
            check_name("recipe", recipe)
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
    check_runs(runs)
    return Plan(spec, tuple(runs), device, tuple(notes))


def check_runs(runs: Sequence[RunSpec], path: str | None = None, text: str = "") -> None:
    """Every name a run puts in a path (its own, its experiment, stage and recipe) is a plain
    file name (:mod:`..names`), and no two runs share a name (they would share a folder).
    A placeholder's recipe is ``@topK``, and its name holds it."""
    seen = set()
    for r in runs:
        line = value_line(text, "name", r.name)
        check_name("experiment", r.experiment, path=path, line=line)
        check_name("stage", r.stage, path=path, line=line)
        if r.placeholder and not re.fullmatch(r"@top[1-9]\d*", r.recipe):
            raise InputError(path, f'run "{r.name}" is a placeholder but its recipe '
                             f'"{r.recipe}" is not @topK', line=line,
                             fix="fill it with Plan.with_recipes, or re-plan")
        if not r.placeholder:
            check_name("recipe", r.recipe, path=path, line=line)
        if not is_name(r.name.replace("@", "", 1) if r.placeholder else r.name):
            check_name("run", r.name, path=path, line=line)
        if r.name in seen:
            raise InputError(path, f'two runs are named "{r.name}"', line=line,
                             fix="give every run its own name")
        seen.add(r.name)


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
                             f"{count(lo)} and {count(hi)} parameters, fewer than sizes.count = "
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
                                flops=flops, flops_6nd=float(flops_6nd(n, tokens)),
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
                             line=line_of(text, "runs"),
                             fix="write it with ladder plan --out, or delete the runs") from None
        check_runs(runs, str(path), text)
        return Plan(spec, runs, device or cpu_device())
    return make_plan(spec, device=device)


def build_plan(spec: str | Path | dict | None = None, overrides: Sequence[str] = (), *,
               data_dir: str | Path | None = None, device: Device | None = None) -> Plan:
    """A plan from a spec file (or table) and ``key=value`` overrides; with ``data_dir`` (made
    by ``ladder data build``) the vocabulary, tokenizer and, unless given, the recipes come
    from the token data. What ``ladder plan`` and ``ladder train`` call."""
    if spec is None or isinstance(spec, dict):
        raw, text, where = dict(spec or {}), "", "the spec (flags and --set)"
    else:
        raw, text = read_toml(spec)
        where = str(spec)
    data_recipes = None
    if data_dir is not None:
        from ..data import open_tokens

        ds = open_tokens(data_dir)
        tok = ds.manifest["tokenizer"]
        raw = {**raw, "vocab_size": ds.vocab_size, "tokenizer": f"{tok['kind']}"}
        raw.setdefault("recipes", ds.recipes)
        data_recipes = ds.recipes
    has_runs = "runs" in raw
    raw = apply_overrides(raw, overrides)
    if has_runs and not overrides:  # runs as written: train checks them against the data
        return load_plan(spec, device=device, vocab_size=raw.get("vocab_size"))
    parsed = parse_spec(raw, path=where, text=text)
    for recipe in parsed.recipes if data_recipes is not None else ():
        if recipe not in data_recipes:
            close = difflib.get_close_matches(recipe, data_recipes, n=1)
            raise InputError(where, f'recipe "{recipe}" is not in the token data {data_dir}',
                             line=line_of(text, "recipes"),
                             fix=(f'did you mean "{close[0]}"? ' if close else "")
                             + f"the data has {', '.join(data_recipes)} (build the recipe with "
                             "ladder data build, or choose another with --recipes)")
    return make_plan(parsed, device=device)
