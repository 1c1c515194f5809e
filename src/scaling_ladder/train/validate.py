"""Check a ladder before the first step: the runs, the token data, the device and the options.

:func:`check_ladder` collects every problem it finds and raises them together as one
:class:`~scaling_ladder.errors.Problems` (``ladder train`` exits 2 and prints one line each),
so a typo found after an hour of training, or a setting that would hang (``--workers 0``),
never gets that far. It reads no more than the manifest and the token files' hashes (cached,
see :mod:`scaling_ladder.data.verify`), and imports torch only to look for a CUDA device.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, Problems
from .config import TrainOptions

_CUDA = re.compile(r"^cuda(:(\d+))?$")


def check_ladder(runs: Sequence[Any], data_dir: str | Path, options: TrainOptions, *,
                 executor: Any = "local", workers: int | None = None,
                 plan_file: str | Path | None = None) -> None:
    """Raise :class:`Problems` listing everything wrong with training ``runs`` (RunSpecs) on
    ``data_dir`` with these options; return quietly when nothing is."""
    found = (_options(options, executor, workers) + _runs(runs, plan_file)
             + _data(runs, Path(data_dir)))
    if found:
        raise Problems(f"ladder train found {len(found)} problems before training; nothing "
                       "was trained (fix them and run it again):", found)


def _options(options: TrainOptions, executor: Any, workers: int | None) -> list[str]:
    out = []
    if isinstance(executor, str) and executor not in ("local", "ray"):
        out.append(f"--executor {executor!r} is unknown; use local or ray")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        out.append("--executor ray needs Ray: pip install 'scaling-ladder[ray]'")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        out.append(f"--workers {workers} is not a number of runs at once; give 1 or more, "
                   "or leave it out for one per core (one per GPU)")
    device = options.device
    m = _CUDA.match(device)
    if device not in ("auto", "cpu") and not m:
        out.append(f"--device {device!r} is unknown; use auto, cpu, cuda or cuda:K")
    elif m:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            out.append(f"--device {device}: no CUDA device is visible; use --device cpu "
                       "(or auto)")
        elif m.group(2) is not None and int(m.group(2)) >= n:
            out.append(f"--device {device}: there are {n} CUDA devices (cuda:0 to "
                       f"cuda:{n - 1}); choose one of them")
    return out


def _runs(runs: Sequence[Any], plan_file: str | Path | None) -> list[str]:
    """Values of the runs no training can use: one line per kind of problem, naming runs."""
    by_problem: dict[str, list[str]] = {}
    for r in runs:
        for problem in _run_problems(r):
            by_problem.setdefault(problem, []).append(r.name)
    where = f"{plan_file}, " if plan_file else ""
    return [f"{where}{_names(names)}: {problem}" for problem, names in by_problem.items()]


def _run_problems(r: Any) -> list[str]:
    out = []
    if not (isinstance(r.lr, (int, float)) and math.isfinite(r.lr) and r.lr > 0):
        out.append(f"lr = {r.lr} is not a learning rate; give a finite number > 0 (or plan "
                   "again with ladder plan)")
    if not (isinstance(r.steps, int) and r.steps >= 1):
        out.append(f"steps = {r.steps}; a run needs at least 1 step (plan again with ladder "
                   "plan, or give more tokens)")
        return out  # the checks below measure against the steps
    for key in ("batch_sequences", "micro_batch", "seq_len"):
        v = getattr(r, key)
        if not (isinstance(v, int) and v >= 1):
            out.append(f"{key} = {v}; it must be an integer >= 1")
    if not (isinstance(r.warmup_steps, int) and 0 <= r.warmup_steps <= r.steps):
        out.append(f"warmup_steps = {r.warmup_steps}; it must be between 0 and steps "
                   f"({r.steps})")
    if any(not 1 <= s <= r.steps for s in r.eval_steps):
        out.append(f"eval_steps must lie between 1 and steps ({r.steps})")
    return out


def _data(runs: Sequence[Any], data_dir: Path) -> list[str]:
    from ..data import open_tokens
    from ..data.verify import token_files, verify

    try:
        ds = open_tokens(data_dir)
    except InputError as exc:
        return [str(exc)]
    manifest = str(data_dir / "manifest.json")
    out = []
    vocab: dict[int, list[str]] = {}
    for r in runs:
        if r.vocab_size != ds.vocab_size:
            vocab.setdefault(r.vocab_size, []).append(r.name)
    for size, names in vocab.items():
        out.append(f"{manifest}: the tokenizer has {ds.vocab_size} tokens but {_names(names)} "
                   f"{'was' if len(names) == 1 else 'were'} planned for {size}; plan with "
                   f"--data {data_dir} (or vocab_size = {ds.vocab_size})")
    missing: dict[str, list[str]] = {}
    for r in runs:
        if r.recipe not in ds.recipes:
            missing.setdefault(r.recipe, []).append(r.name)
    for recipe, names in missing.items():
        out.append(f'{manifest}: no recipe "{recipe}" in the token data ({_names(names)}); '
                   f"plan with recipes from {', '.join(ds.recipes)}, or build it with ladder "
                   "data build")
    used = sorted({r.recipe for r in runs if r.recipe in ds.recipes})
    out += [str(e) for e in verify(ds, token_files(ds, recipes=used))]
    return out


def _names(names: list[str], shown: int = 3) -> str:
    head = ", ".join(names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"run{'s' if len(names) > 1 else ''} {head}{more}"
