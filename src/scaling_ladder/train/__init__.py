"""Train a ladder of proxy models: ``train_ladder(plan, data_dir, out_dir)``.

The output folder::

    OUT/ladder.lock            held by the ladder training into OUT (one at a time)
    OUT/plan.toml              the plan trained (runs as written)
    OUT/runs/<run>/...         one folder per run (see :mod:`.trainer`): checkpoints,
                               observations.jsonl, cooldown-F.jsonl, status, summary, log
    OUT/observations.jsonl     every run's rows, in plan order (rewritten when runs finish)
    OUT/ladder.json            the executor, per-run results, totals

Example
-------
>>> from scaling_ladder.plan import make_plan                       # doctest: +SKIP
>>> from scaling_ladder.train import train_ladder
>>> plan = make_plan({"recipes": ["balanced", "code-heavy"], "tokens": 2e5})
>>> result = train_ladder(plan, "tokens/", "ladder-out/", executor="local")
>>> sl.read_observations(result.observations)

Importing this package does not import torch; a run does, in its worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import remove_leftovers, write_atomic, write_json
from ..plan.plan import Plan
from .config import TrainOptions, options_from
from .executors import LocalExecutor, RayExecutor, make_executor
from .lock import folder_lock
from .validate import check_ladder

__all__ = ["LadderProgress", "LadderResult", "LocalExecutor", "RayExecutor", "TrainOptions",
           "options_from", "train_ladder"]


@dataclass(frozen=True)
class LadderProgress:
    """What a ``progress`` callback receives, about twice a second."""

    steps_done: int
    steps_total: int
    runs_done: int
    runs_total: int
    running: tuple[tuple[str, int, int], ...] = ()  # (run, step, steps) of runs in flight
    finished: tuple[dict, ...] = ()  # results of runs finished since the last call


@dataclass(frozen=True)
class LadderResult:
    """Where the ladder's rows are, and how each run went."""

    out_dir: Path
    observations: Path
    runs: tuple[dict, ...]
    seconds: float
    executor: dict = field(default_factory=dict)
    skipped: tuple[str, ...] = ()  # placeholder runs of a top-k stage, not trained

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.runs if r["state"] == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "observations": str(self.observations),
                "seconds": self.seconds, "executor": self.executor,
                "n_runs": len(self.runs), "failed": [r["name"] for r in self.failed],
                "skipped": list(self.skipped), "runs": list(self.runs)}


def train_ladder(plan: Plan, data_dir: str | Path, out_dir: str | Path, *,
                 executor: str | Any = "local", options: TrainOptions | None = None,
                 workers: int | None = None, address: str | None = None,
                 progress: Callable[[LadderProgress], None] | None = None,
                 plan_file: str | Path | None = None) -> LadderResult:
    """Train every run of ``plan`` on the token data in ``data_dir``; rows in ``out_dir``.

    Parameters
    ----------
    plan : from :func:`scaling_ladder.plan.make_plan` or ``load_plan``; placeholder runs
        (``@top1`` ... of a top-k stage) are skipped until filled with ``Plan.with_recipes``.
    data_dir : a folder made by ``ladder data build``; the plan's recipes must be in it.
    out_dir : where runs go; calling again resumes unfinished runs and skips finished ones.
        One ladder at a time writes to it (:mod:`.lock`).
    executor : ``"local"`` (process pool; on CPU one thread per run, as many runs as
        ``workers``, default the cores), ``"ray"`` (a Ray task per run, local instance or
        ``address``), or an executor object.
    options : execution options (device, precision, compile, eval tokens, ...).
    progress : called with a :class:`LadderProgress` while runs train.
    plan_file : where the plan was read from, named in error messages.

    Returns
    -------
    LadderResult; ``result.observations`` reads with ``scaling_ladder.read_observations``.
    Each run's ``notes`` say what was recovered from (a corrupt checkpoint, ...).

    Raises
    ------
    Problems : before any work, listing everything wrong with the runs, the data (missing
        recipes, another vocabulary, token files truncated or changed since the build), the
        device and the options (:mod:`.validate`).
    InputError : another process is training into ``out_dir``.
    """
    options = options or TrainOptions()
    out_dir = Path(out_dir)
    runs = [r for r in plan.runs if not r.placeholder]
    skipped = tuple(r.name for r in plan.runs if r.placeholder)
    if not runs:
        raise ValueError("Every run of the plan is a placeholder of a top-k stage: fill it "
                         "with Plan.with_recipes, or train an earlier stage.")
    check_ladder(runs, data_dir, options, executor=executor, workers=workers,
                 plan_file=plan_file)
    gpus = _gpus(options)
    if options.threads is None and not gpus:
        options = options.model_copy(update={"threads": 1})  # one thread per run, run per core
    exe = make_executor(executor, workers=workers, address=address, gpus=gpus)
    with folder_lock(out_dir):
        remove_leftovers(out_dir)  # temporary files of a ladder killed mid-write
        return _train(plan, runs, skipped, Path(data_dir), out_dir, exe, options, progress)


def _train(plan: Plan, runs: list, skipped: tuple[str, ...], data_dir: Path, out_dir: Path,
           exe: Any, options: TrainOptions, progress) -> LadderResult:
    """:func:`train_ladder` once checked and holding the folder's lock."""
    write_atomic(out_dir / "plan.toml", plan.to_toml())
    run_dirs = {r.name: out_dir / "runs" / r.name for r in runs}
    jobs = [(r.to_dict(), str(data_dir.resolve()), str(run_dirs[r.name].resolve()),
             options.model_dump()) for r in runs]
    total = sum(r.steps for r in runs)
    results: dict[str, dict] = {}
    fresh: list[dict] = []

    def poll() -> None:
        if progress is None:
            return
        done_steps, running = 0, []
        for r in runs:
            if r.name in results:
                done_steps += r.steps
                continue
            status = _read_json(run_dirs[r.name] / "status.json")
            if status and status.get("state") == "running":
                done_steps += status["step"]
                running.append((r.name, status["step"], r.steps))
        progress(LadderProgress(done_steps, total, len(results), len(runs), tuple(running),
                                tuple(fresh)))
        fresh.clear()

    t0 = time.perf_counter()
    for r in runs:  # finished before: no worker needed
        summary = _read_json(run_dirs[r.name] / "summary.json")
        if summary is not None:
            results[r.name] = {**summary, "state": "skipped"}
    # longest first (the plan's time estimate; stable, so plan order among equals), as
    # Plan.wall_seconds assumes: the last run to finish is then a short one, not a large
    # run alone while the other workers idle. Results and rows stay in plan order.
    jobs = sorted((j for j in jobs if j[0]["name"] not in results),
                  key=lambda j: -j[0]["seconds"])
    poll()
    for res in exe.map(jobs, poll) if jobs else ():
        results[res["name"]] = res
        fresh.append(res)
        _merge(out_dir, runs, run_dirs)
    poll()
    obs = _merge(out_dir, runs, run_dirs)
    result = LadderResult(out_dir, obs, tuple(results[r.name] for r in runs),
                          time.perf_counter() - t0, {"kind": exe.name, **exe.resources()},
                          skipped)
    write_json(out_dir / "ladder.json", result.to_dict())
    return result


def _gpus(options: TrainOptions) -> int:
    if options.device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _merge(out_dir: Path, runs, run_dirs: dict[str, Path]) -> Path:
    """Concatenate every run's rows (main run, then its cooldown branches) in plan order."""
    parts = []
    for r in runs:
        d = run_dirs[r.name]
        for path in [d / "observations.jsonl", *sorted(d.glob("cooldown-*.jsonl"))]:
            if path.exists():
                text = path.read_text(encoding="utf-8")
                # a run still writing may have a line cut short: keep whole lines only
                parts.append(text[: text.rfind("\n") + 1])
    path = out_dir / "observations.jsonl"
    write_atomic(path, "".join(parts))
    return path


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
