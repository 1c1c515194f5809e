"""Train one run of a plan: token files in, checkpoints and observation rows out, resumable.

The run directory::

    RUN/config.json            the run, the options, the hardware, the data it read
    RUN/checkpoints/step-NNNNNNNN.ckpt   atomic, hashed (see checkpoint.py)
    RUN/observations.jsonl     rows appended and flushed at every evaluation
    RUN/cooldown-F.jsonl       rows of a WSD cooldown branch ending at fraction F (atomic)
    RUN/status.json            progress, rewritten about once a second
    RUN/summary.json           written last: final losses, tokens/s, MFU, noise scale
    RUN/train.log              human-readable log

Before anything is read, the run's token files are verified against the manifest
(:mod:`scaling_ladder.data.verify`) and temporary files of writes cut short by a kill are
removed. Resume: the newest checkpoint that verifies is loaded; rows after it are dropped from
``observations.jsonl`` and its own rows (stored in the checkpoint) rewritten, so a run killed at
any point ends with exactly the rows, and on CPU exactly the losses, of one never killed. The
data order is a seeded permutation of the stream's ``seq_len`` chunks per epoch, indexed by the
number of sequences consumed, so the step alone fixes the position. A corrupt checkpoint
(the newest, or the stable point a cooldown branch starts from) falls back to the good one
before it, or to a fresh start, and says so in the result's ``notes`` (``ladder train`` prints
them).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import bits_per_byte, open_tokens
from ..data.verify import token_files, verify
from ..errors import InputError
from ..files import remove_leftovers, write_atomic, write_json
from ..laws.compute import training_flops
from ..plan.plan import RunSpec, cooldown_branches
from ..plan.sizes import peak_flops_for
from . import checkpoint as ckpt
from .config import TrainOptions
from .model import GPT, ModelConfig

# ------------------------------------------------------------------------------ schedules


def cosine_lr(step: int, *, lr: float, steps: int, warmup: int, min_ratio: float) -> float:
    """Learning rate of the 0-based optimiser ``step``: linear warmup to ``lr`` over
    ``warmup`` steps, then half a cosine down to ``min_ratio * lr`` at the last step
    (Loshchilov & Hutter 2017; the Chinchilla schedule, Hoffmann et al. 2022)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup + 1) / max(1, steps - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def wsd_lr(step: int, *, lr: float, steps: int, warmup: int, decay_steps: int,
           min_ratio: float) -> float:
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): linear warmup,
    constant ``lr``, then a linear cooldown over the last ``decay_steps`` to ``min_ratio * lr``
    at the last step. A cooldown branch is the same function with a shorter ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    start = steps - decay_steps
    if step < start:
        return lr
    q = min(1.0, (step - start + 1) / decay_steps)
    return lr * (min_ratio + (1 - min_ratio) * (1 - q))


def schedule(run: RunSpec, steps: int | None = None):
    """``step -> lr`` of a run (or of its cooldown branch ending at ``steps``)."""
    steps = steps or run.steps
    if run.schedule == "cosine":
        return lambda s: cosine_lr(s, lr=run.lr, steps=steps, warmup=run.warmup_steps,
                                   min_ratio=run.min_lr_ratio)
    decay = max(1, round(run.decay_fraction * steps))
    return lambda s: wsd_lr(s, lr=run.lr, steps=steps, warmup=run.warmup_steps,
                            decay_steps=decay, min_ratio=run.min_lr_ratio)


# ----------------------------------------------------------------------------------- data


class Batches:
    """Sequence ``i`` of a run is chunk ``perm_e[i mod n]`` of epoch ``e = i // n``, where the
    ``n`` chunks are the stream's non-overlapping ``seq_len + 1`` windows (sharing one token)
    and ``perm_e`` a permutation seeded by ``(seed, e)``: deterministic, resumable by index."""

    def __init__(self, stream, seq_len: int, seed: int) -> None:
        shards = getattr(stream, "shards", None)
        self.tokens = shards[0] if shards is not None and len(shards) == 1 else np.asarray(stream)
        self.seq_len, self.seed = seq_len, seed
        self.n_chunks = (len(self.tokens) - 1) // seq_len
        if self.n_chunks < 1:
            raise InputError(None, f"the train stream has {len(self.tokens)} tokens, fewer than "
                             f"one sequence of {seq_len + 1}", fix="build more data")
        self._perm: dict[int, np.ndarray] = {}

    def epochs(self, sequences: int) -> float:
        return sequences / self.n_chunks

    def get(self, first: int, count: int) -> torch.Tensor:
        """Sequences ``first .. first + count - 1`` as a (count, seq_len + 1) int64 tensor."""
        idx = np.arange(first, first + count)
        epoch, within = idx // self.n_chunks, idx % self.n_chunks
        starts = np.empty(count, dtype=np.int64)
        for e in np.unique(epoch):
            if e not in self._perm:
                self._perm = {e: np.random.default_rng([self.seed, int(e)])
                              .permutation(self.n_chunks)}
            starts[epoch == e] = self._perm[e][within[epoch == e]] * self.seq_len
        windows = self.tokens[starts[:, None] + np.arange(self.seq_len + 1)]
        return torch.from_numpy(windows.astype(np.int64))


def eval_windows(tokens: np.ndarray, seq_len: int, max_tokens: int) -> torch.Tensor:
    """A fixed prefix of a validation slice as (n, T + 1) windows, T <= seq_len."""
    t = min(seq_len, len(tokens) - 1)
    n = max(1, min((len(tokens) - 1) // t, max_tokens // t))
    arr = np.asarray(tokens[: n * t + 1]).astype(np.int64)
    return torch.from_numpy(np.stack([arr[i * t: i * t + t + 1] for i in range(n)]))


# ----------------------------------------------------------------------------- hardware


def cpu_peak_flops(threads: int, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a 1024^3 matmul in ``dtype`` on ``threads`` threads: the CPU's measured
    peak."""
    a = torch.randn(1024, 1024).to(dtype)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a @ a
        t0, reps = time.perf_counter(), 4
        for _ in range(reps):
            a @ a
        return 2 * 1024**3 * reps / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)


def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matmul units, ``"AMX"`` or ``"AVX512-BF16"``, or None: from
    ``torch.cpu.get_capabilities()`` (torch >= 2.8), else the flags in /proc/cpuinfo."""
    caps = dict(getattr(torch.cpu, "get_capabilities", dict)())
    if not caps:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), [])
        caps = {f: True for f in flags}
    if caps.get("amx_bf16") and caps.get("amx_tile"):
        return "AMX"
    return "AVX512-BF16" if caps.get("avx512_bf16") else None


# bf16 autocast pays on a CPU with AMX from this width up (bench/train_speed.py, one thread,
# batches of 16 x 128 tokens): below it the casts around each op cost more than the matmuls
# save. Without AMX, float32 (AVX512-BF16 alone was not measured to pay).
CPU_BF16_MIN_D = 96


def use_bf16(precision: str, device: torch.device, d_model: int) -> bool:
    """Whether a run trains under bf16 autocast: ``bfloat16`` always, ``float32`` never,
    ``auto`` on a GPU, and on a CPU with AMX for models at least ``CPU_BF16_MIN_D`` wide."""
    if precision != "auto":
        return precision == "bfloat16"
    if device.type != "cpu":
        return True
    return cpu_bf16_units() == "AMX" and d_model >= CPU_BF16_MIN_D


def describe_hardware(device: torch.device, bf16: bool = False) -> tuple[str, float | None]:
    """A name for observation rows (device, its bf16 units on a CPU, and the precision the
    run trains in) and the peak FLOP/s, in that precision, MFU is measured against."""
    precision = "bf16 autocast" if bf16 else "float32"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda:{name}, {precision}", peak_flops_for(name)
    threads = torch.get_num_threads()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    units = cpu_bf16_units()
    return (f"cpu:{cpu} x{threads} threads, {units + ' bf16' if units else 'no bf16 units'}, "
            f"{precision}", cpu_peak_flops(threads, torch.bfloat16 if bf16 else torch.float32))


# ----------------------------------------------------------------------------- the result


@dataclass
class RunResult:
    """What a run did: ``state`` is done, skipped (already done) or failed."""

    name: str
    state: str
    final: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float | None = None
    mfu: float | None = None
    gns_tokens: float | None = None
    seconds: float = 0.0
    resumed_from: int | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what went wrong and was recovered from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- the trainer


def train_run(run: RunSpec, data_dir: str | Path, run_dir: str | Path,
              options: TrainOptions | None = None) -> RunResult:
    """Train ``run`` on ``data_dir`` (made by ``ladder data build``) into ``run_dir``.

    Safe to call again on the same ``run_dir``: a finished run returns at once, an unfinished
    one resumes from its newest valid checkpoint. Under ``torchrun`` the run is data-parallel
    over the ranks (DDP); rank 0 writes.
    """
    options = options or TrainOptions()
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").exists():
        done = json.loads((run_dir / "summary.json").read_text())
        return RunResult(**{**done, "state": "skipped"})
    if run.placeholder:
        raise ValueError(f"Run {run.name!r} trains a placeholder recipe {run.recipe!r}: fill "
                         "it with Plan.with_recipes first.")
    s = _setup(run, Path(data_dir), run_dir, options)
    start = _resume(s)
    s.model.train()
    evals = set(run.eval_steps) | {run.steps} | s.protect
    _loop(s, start, run.steps, schedule(run), evals, run.name, run.steps,
          lambda *at: _checkpoint(s, *at))
    for branch in s.branches:
        _cooldown(s, branch)
    return _finish(s, start)


@dataclass
class _Session:
    """Everything one call of :func:`train_run` set up, shared by its steps below."""

    run: RunSpec
    options: TrainOptions
    run_dir: Path
    rank: int
    world: int
    writer: bool  # rank 0 writes files
    log: logging.Logger
    t_start: float
    device: torch.device
    autocast: Any  # torch.autocast in bfloat16, or a null context
    model: GPT
    net: torch.nn.Module  # the model as trained: DDP-wrapped and/or compiled
    opt: torch.optim.Optimizer
    batches: Batches
    val: dict[str, torch.Tensor]  # validation slice -> (n, T + 1) windows
    bpt: dict[str, float]  # metric -> bytes per token, for bits/byte
    peak: float | None  # FLOP/s of all ranks, for MFU
    fpt_mfu: float  # FLOPs per token as MFU counts them
    per_rank: int  # sequences per optimiser step on each rank
    micro: int  # sequences per forward/backward
    branches: list  # WSD cooldown branches
    protect: set[int]  # checkpoint steps the branches start from
    base_row: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=lambda: {
        "tokens_timed": 0.0, "seconds_timed": 0.0, "gns_s": 0.0, "gns_g2": 0.0,
        "gns_last": None})

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def obs_path(self) -> Path:
        return self.run_dir / "observations.jsonl"

    def tokens_per_s(self) -> float | None:
        st = self.stats
        return st["tokens_timed"] / st["seconds_timed"] if st["seconds_timed"] else None


def _setup(run: RunSpec, data_dir: Path, run_dir: Path, options: TrainOptions) -> _Session:
    """Rank, log, data, device, model, optimiser and batches of a run; its config.json."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    writer = rank == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _logger(run, run_dir, writer)
    t_start = time.perf_counter()
    if writer:  # temporary files of writes a kill cut short
        for d in (run_dir, run_dir / "checkpoints"):
            for p in remove_leftovers(d):
                log.info("removed %s, left by an interrupted write", p.name)
    ds = open_tokens(data_dir)
    _check_data(run, data_dir, ds)
    device = _device(options.device, rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if options.threads:
        torch.set_num_threads(options.threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        # which also fills every new tensor with NaN (a check for reads of uninitialised
        # memory): ~6% of a d96-l4 step in fill_; the kernels stay deterministic without it
        torch.utils.deterministic.fill_uninitialized_memory = False
    bf16 = use_bf16(options.precision, device, run.d_model)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext())
    model, net, opt = _model(run, options, device, world)
    batches = Batches(ds.train(run.recipe), run.seq_len, run.seed)
    val = {src: eval_windows(ds.val(src), run.seq_len, options.eval_tokens)
           for src in ds.sources}
    bpt = _bytes_per_token(run, ds, val)
    hardware, peak = describe_hardware(device, bf16)  # after the model: the CPU probe draws numbers
    peak = peak * world if peak else None
    fpt_mfu = model.flops_per_token(causal=False)  # PaLM's count, as MFU is usually quoted
    if world > 1 and run.batch_sequences % world:
        raise ValueError(f"The batch of {run.batch_sequences} sequences must divide among "
                         f"{world} ranks.")
    per_rank = run.batch_sequences // world
    micro = min(run.micro_batch, per_rank)
    if per_rank % micro:
        raise ValueError(f"The {per_rank} sequences per rank must be a multiple of the "
                         f"micro-batch ({micro}).")
    branches = cooldown_branches(run.steps, run.decay_fraction, run.cooldowns) \
        if run.schedule == "wsd" else []
    if writer:
        write_json(run_dir / "config.json", {"run": run.to_dict(),
                   "options": options.model_dump(), "hardware": hardware,
                   "data": {"dir": str(data_dir.resolve()),
                            "tokenizer": ds.manifest["tokenizer"]},
                   "torch": torch.__version__, "world_size": world})
    return _Session(
        run=run, options=options, run_dir=run_dir, rank=rank, world=world, writer=writer,
        log=log, t_start=t_start, device=device, autocast=autocast, model=model, net=net,
        opt=opt, batches=batches, val=val, bpt=bpt, peak=peak, fpt_mfu=fpt_mfu,
        per_rank=per_rank, micro=micro, branches=branches,
        protect={b.start for b in branches}, base_row=_base_row(run, hardware, ds))


def _check_data(run: RunSpec, data_dir: Path, ds) -> None:
    """The token data was built with the run's tokenizer and holds its recipe, and the files
    the run reads are whole, unchanged since the build, with ids inside the vocabulary."""
    if ds.vocab_size != run.vocab_size:
        raise InputError(str(data_dir / "manifest.json"), f"the tokenizer has "
                         f"{ds.vocab_size} tokens but run {run.name} was planned for "
                         f"{run.vocab_size}", fix="plan with --data DIR (or vocab_size = "
                         f"{ds.vocab_size})")
    if run.recipe not in ds.recipes:
        raise InputError(str(data_dir / "manifest.json"), f'no recipe "{run.recipe}" in '
                         "the token data", fix=f"plan with recipes from {', '.join(ds.recipes)}")
    bad = verify(ds, token_files(ds, recipes=[run.recipe]))
    if bad:
        raise bad[0]


def _model(run: RunSpec, options: TrainOptions, device: torch.device, world: int):
    """The seeded model, what trains it (DDP over ranks, compiled if asked) and AdamW."""
    torch.manual_seed(run.seed)
    cfg = ModelConfig(vocab_size=run.vocab_size, seq_len=run.seq_len, d_model=run.d_model,
                      n_layers=run.n_layers, n_heads=run.n_heads, mlp_hidden=run.mlp_hidden,
                      tied=run.tied)
    model = GPT(cfg).to(device)
    if model.num_params() != run.params_total:
        raise RuntimeError(f"model has {model.num_params()} parameters, the plan says "
                           f"{run.params_total}")
    # fused: one kernel per step on a GPU; on a CPU one loop over each tensor instead of ~6
    # passes (the for-each update at d256-l6 spent as long in lerp_, addcmul_, sqrt, ...)
    opt = torch.optim.AdamW(model.optimizer_groups(run.weight_decay), lr=run.lr,
                            betas=(run.beta1, run.beta2), eps=1e-8, fused=True)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if options.compile:
        net = torch.compile(net)
    return model, net, opt


def _bytes_per_token(run: RunSpec, ds, val: dict[str, torch.Tensor]) -> dict[str, float]:
    """Bytes per token of each metric, for bits/byte: the exact bytes of each evaluated prefix
    when the tokenizer is known (else the slice's mean bytes per token); the recipe's mean
    for training batches."""
    known = ds.manifest["tokenizer"].get("kind") in ("byte", "bpe")
    token_bytes = torch.from_numpy(ds.tokenizer().token_bytes()) if known else None
    bpt = {f"val/{s}": float(token_bytes[w[:, 1:]].sum()) / w[:, 1:].numel()
           if token_bytes is not None else ds.bytes_per_token(f"val/{s}")
           for s, w in val.items()}
    bpt["train"] = ds.bytes_per_token(run.recipe)
    return bpt


def _resume(s: _Session) -> int:
    """Load the newest valid checkpoint (model, optimiser, RNG, timing stats) and make the
    rows on disk end with its own; the step to start from (0 for a fresh run)."""
    start = 0
    corrupt: list[str] = []
    state = ckpt.load_latest(s.ckpt_dir, s.device, corrupt=corrupt)
    if state is not None:
        s.model.load_state_dict(state["model"])
        s.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if s.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], s.device)
        start = int(state["step"])
        s.stats.update(json.loads(state["stats"]))
        s.log.info("resumed from step %d of %d", start, s.run.steps)
    if corrupt:
        _note(s, "; ".join(corrupt) + (f": fell back to the checkpoint of step {start}"
                                       if state else ": no good checkpoint left, restarted "
                                       "the run from scratch"))
    if s.writer:
        _reconcile(s.obs_path, start, json.loads(state["rows"]) if state else [])
    return start


def _loop(s: _Session, first: int, last: int, lr_at, evals: set[int], name: str,
          final_step: int, on_eval) -> None:
    """Optimiser steps ``first .. last - 1`` (the main run, or a cooldown branch from its
    stable checkpoint); after each step in ``evals``, ``on_eval(step, name, train_loss,
    final)`` with the mean training loss since the last evaluation."""
    run, device, world = s.run, s.device, s.world
    train_sum = torch.zeros((), dtype=torch.float64, device=device)
    train_n, status_t = 0, 0.0
    warm, clock = 2, None  # the first steps after a (re)start pay for allocation, compile
    for step in range(first, last):
        if clock is None and step - first >= warm:
            clock = (_synced_time(device), step)
        lr = lr_at(step)
        for g in s.opt.param_groups:
            g["lr"] = lr
        seqs = s.batches.get(step * run.batch_sequences + s.rank * s.per_rank, s.per_rank)
        n_micro = s.per_rank // s.micro
        for m in range(n_micro):
            chunk = seqs[m * s.micro:(m + 1) * s.micro].to(device, non_blocking=True)
            sync = world > 1 and m < n_micro - 1
            with s.net.no_sync() if sync else nullcontext(), s.autocast:
                loss = s.net(chunk[:, :-1], chunk[:, 1:]) / n_micro
            loss.backward()
            train_sum += loss.detach().double()
        if run.grad_clip > 0:
            # foreach: one call over every gradient (the CPU default loops in Python)
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), run.grad_clip, foreach=True)
        s.opt.step()
        s.opt.zero_grad(set_to_none=True)
        train_n += 1
        done = step + 1
        if done in evals:
            if clock is not None:  # wall time between evaluations, evaluations excluded
                s.stats["seconds_timed"] += _synced_time(device) - clock[0]
                s.stats["tokens_timed"] += (done - clock[1]) * run.batch_tokens
            if world > 1:
                torch.distributed.all_reduce(train_sum)
                train_sum /= world
            on_eval(done, name, float(train_sum) / train_n, done == final_step)
            train_sum.zero_()
            train_n = 0
            clock = (_synced_time(device), done) if done - first >= warm else None
        if s.writer and time.perf_counter() - status_t > s.options.status_every:
            status_t = time.perf_counter()
            _status(s.run_dir, run, "running", done, s.stats)


def _evaluate(s: _Session, step: int, name: str, train_loss: float, final: bool) -> list[dict]:
    """The observation rows of one checkpoint: training loss, each validation slice's loss
    (and their mean), bits/byte, FLOPs, throughput, MFU and the gradient noise scale."""
    run, options, model = s.run, s.options, s.model
    model.eval()
    losses = {"train": train_loss}
    with torch.no_grad():
        for src, windows in s.val.items():
            total, count = 0.0, 0
            for i in range(0, len(windows), options.eval_batch):
                w = windows[i:i + options.eval_batch].to(s.device)
                with s.autocast:
                    total += float(model(w[:, :-1], w[:, 1:], reduction="sum"))
                count += w[:, 1:].numel()
            losses[f"val/{src}"] = total / count
    model.train()
    slices = [k for k in losses if k.startswith("val/")]
    bpb = {k: float(bits_per_byte(v, s.bpt[k])) for k, v in losses.items()}
    if len(slices) > 1:  # the unweighted mean over validation slices, a usual headline
        losses["val/mean"] = float(np.mean([losses[k] for k in slices]))
        bpb["val/mean"] = float(np.mean([bpb[k] for k in slices]))
    if options.gns:
        _noise_scale(model, s.batches, run, step, s.micro, s.device, s.autocast, s.stats)
    tokens = float(step * run.batch_tokens)
    flops = float(training_flops(run.params_no_input_embed, tokens, n_layers=run.n_layers,
                                 d_model=run.d_model, seq_len=run.seq_len))
    tps = s.tokens_per_s()
    rows = [{**s.base_row, "run": name, "tokens": tokens, "flops": flops, "final": final,
             "metric": metric, "kind": "loss", "value": loss, "step": step,
             "bits_per_byte": bpb[metric],
             "tokens_per_s": tps, "mfu": tps * s.fpt_mfu / s.peak if tps and s.peak else None,
             "gns_tokens": s.stats["gns_last"]} for metric, loss in losses.items()]
    if s.writer:
        s.log.info("%s step %d tokens %.4g train %.4f %s tok/s %s", name, step,
                   tokens, train_loss,
                   " ".join(f"{k} {v:.4f}" for k, v in losses.items() if k != "train"),
                   f"{tps:.0f}" if tps else "-")
    return rows


def _checkpoint(s: _Session, step: int, name: str, train_loss: float, final: bool) -> None:
    """An evaluation of the main run: its rows, then the checkpoint that holds them (first the
    checkpoint, then the rows on disk, so a resume can always rewrite them), then pruning."""
    rows = _evaluate(s, step, name, train_loss, final)
    state = {"model": s.model.state_dict(), "optimizer": s.opt.state_dict(),
             "rng_cpu": torch.get_rng_state(), "step": step,
             "rows": json.dumps(rows), "stats": json.dumps(s.stats)}
    if s.device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(s.device)
    if s.writer:
        ckpt.save(s.ckpt_dir, step, state)
        _append(s.obs_path, rows)
        ckpt.prune(s.ckpt_dir, keep=s.options.keep, protect=s.protect)
    if s.world > 1:
        torch.distributed.barrier()


def _cooldown(s: _Session, b) -> None:
    """A WSD cooldown branch from its stable checkpoint to ``b.end``: its rows, written once
    (atomically) as ``cooldown-F.jsonl``; a branch already written is skipped."""
    path = s.run_dir / f"cooldown-{b.fraction:g}.jsonl"
    if path.exists():
        return
    stable = ckpt.path_for(s.ckpt_dir, b.start)
    try:
        state = ckpt.load_file(stable, s.device)
        s.model.load_state_dict(state["model"])
        s.opt.load_state_dict(state["optimizer"])
    except (ckpt.CorruptCheckpoint, OSError) as exc:
        bad = exc if isinstance(exc, ckpt.CorruptCheckpoint) else \
            f"{stable}: cannot be read ({exc.strerror or exc})"
        _recompute(s, b.start, f"cooldown branch {b.fraction:g} starts from step {b.start}, "
                   f"but {bad}")
    name = f"{s.run.name}-cd{b.fraction:g}"
    rows: list[dict] = []
    _loop(s, b.start, b.end, schedule(s.run, b.end), {b.end}, name, b.end,
          lambda *at: rows.extend(_evaluate(s, *at)))
    for r in rows:
        r.update(cooldown_of=s.run.name, cooldown=b.fraction)
    if s.writer:
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def _recompute(s: _Session, step: int, why: str) -> None:
    """The main run's state at ``step`` when its checkpoint is unusable: trained again from the
    good checkpoint before it, or from scratch (on CPU bit for bit the same state)."""
    bad = ckpt.path_for(s.ckpt_dir, step)
    if s.writer and bad.exists():  # set aside, as load_latest does, so it is not tried again
        os.replace(bad, bad.with_suffix(".corrupt"))
    corrupt: list[str] = []
    state = ckpt.load_latest(s.ckpt_dir, s.device, at_most=step - 1, corrupt=corrupt)
    if state is None:
        s.model, s.net, s.opt = _model(s.run, s.options, s.device, s.world)  # seeded init
        first = 0
    else:
        s.model.load_state_dict(state["model"])
        s.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        first = int(state["step"])
    _note(s, "; ".join([why, *corrupt]) + f": recomputed step {step} from "
          + (f"the checkpoint of step {first}" if state else "scratch"))
    _loop(s, first, step, schedule(s.run), set(), s.run.name, s.run.steps, lambda *_: None)


def _note(s: _Session, text: str) -> None:
    """Something recovered from: logged, and passed to the caller in the result's notes."""
    s.notes.append(text)
    if s.writer:
        s.log.warning("%s", text)


def _finish(s: _Session, start: int) -> RunResult:
    """The run's result from its final rows; summary.json (written last: a run with one is
    done) and the final status; the log closed."""
    final_rows = [json.loads(line) for line in s.obs_path.read_text().splitlines()
                  if line.strip()] if s.writer else []
    final = {r["metric"]: r["value"] for r in final_rows if r.get("final")}
    tps = s.tokens_per_s()
    result = RunResult(
        name=s.run.name, state="done", final=final, tokens_per_s=tps,
        mfu=tps * s.fpt_mfu / s.peak if tps and s.peak else None,
        gns_tokens=s.stats["gns_s"] / s.stats["gns_g2"] if s.stats["gns_g2"] > 0 else None,
        seconds=time.perf_counter() - s.t_start, resumed_from=start or None,
        notes=list(s.notes))
    if s.writer:
        write_json(s.run_dir / "summary.json", result.to_dict())
        _status(s.run_dir, s.run, "done", s.run.steps, s.stats)
        s.log.info("done: %s", json.dumps(result.to_dict()))
    for h in list(s.log.handlers):
        h.close()
        s.log.removeHandler(h)
    return result


def _noise_scale(model, batches, run, step, micro, device, autocast, stats) -> None:
    """Gradient noise scale B_simple = tr(Sigma) / |G|^2 from K small-batch gradients and
    their mean (McCandlish et al. 2018, appendix A.1), in tokens. Numerator and denominator
    are summed over evaluations and divided at the end, as the paper advises."""
    k = 4
    b = max(1, micro // 2)
    rng = np.random.default_rng([run.seed, step, 7])  # apart from the training order
    first = int(rng.integers(0, 2**40))
    params = [p for p in model.parameters() if p.requires_grad]
    small_sq, total = 0.0, None
    for i in range(k):
        seqs = batches.get(first + i * b, b).to(device)
        with autocast:
            loss = model(seqs[:, :-1], seqs[:, 1:])
        grads = torch.autograd.grad(loss, params)
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        small_sq += float(flat.pow(2).sum())
        total = flat if total is None else total + flat
    b_small, b_big = b * run.seq_len, k * b * run.seq_len
    g_small, g_big = small_sq / k, float((total / k).pow(2).sum())
    g2 = (b_big * g_big - b_small * g_small) / (b_big - b_small)
    s = (g_small - g_big) / (1 / b_small - 1 / b_big)
    stats["gns_s"] += s
    stats["gns_g2"] += g2
    stats["gns_last"] = s / g2 if g2 > 0 else None


def _synced_time(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _device(name: str, rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    return dev


def _base_row(run: RunSpec, hardware: str, ds) -> dict[str, Any]:
    tok = ds.manifest["tokenizer"]
    return {"experiment": run.experiment, "recipe": run.recipe, "params": run.params,
            "seed": run.seed, "lr": run.lr, "batch_tokens": run.batch_tokens,
            "params_convention": run.params_convention, "params_total": run.params_total,
            "params_nonembed": run.params_nonembed,
            "params_no_input_embed": run.params_no_input_embed, "stage": run.stage,
            "size": run.size, "d_model": run.d_model, "n_layers": run.n_layers,
            "n_heads": run.n_heads, "vocab_size": run.vocab_size, "seq_len": run.seq_len,
            "tokenizer": f"{tok['kind']}-{tok['vocab_size']}",
            # the recipe's UTF-8 bytes per training token: D in bytes = tokens x this
            "train_bytes_per_token": float(ds.bytes_per_token(run.recipe)),
            "protocol": run.protocol,
            "lr_multiplier": run.lr_multiplier, "schedule": run.schedule,
            "multiplier": run.multiplier, "hardware": hardware}


def _logger(run: RunSpec, run_dir: Path, writer: bool) -> logging.Logger:
    log = logging.getLogger(f"scaling_ladder.train.{run.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if writer and not log.handlers:
        h = logging.FileHandler(run_dir / "train.log")
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(h)
    return log


def _reconcile(path: Path, step: int, ckpt_rows: list[dict]) -> None:
    """Rows before the checkpoint's step, then the checkpoint's own rows; nothing after."""
    keep = []
    if step and path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
            if row.get("step", 0) < step:
                keep.append(line + "\n")
    keep += [json.dumps(r) + "\n" for r in ckpt_rows]
    write_atomic(path, "".join(keep))


def _append(path: Path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
        fh.flush()
        os.fsync(fh.fileno())


def _status(run_dir: Path, run: RunSpec, state: str, step: int, stats: dict) -> None:
    tps = stats["tokens_timed"] / stats["seconds_timed"] if stats["seconds_timed"] else None
    write_json(run_dir / "status.json", {"run": run.name, "state": state, "step": step,
                                         "steps": run.steps, "tokens_per_s": tps,
                                         "time": time.time()})
