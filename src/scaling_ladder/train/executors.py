"""Where the runs of a ladder execute: a local process pool, or Ray tasks.

Both executors call :func:`run_job` once per run and learn progress the same way, by reading
each run's ``status.json`` (the trainer rewrites it about once a second), so a Ray cluster
only needs ``out_dir`` on a file system every node sees (for a local instance, any folder).
This module does not import torch; the worker does, when it starts a run.

A killed ``ladder train`` takes its runs with it: a local worker dies with its parent
(:func:`die_with_parent`), and Ray ends a driver's tasks when the driver goes (a local instance
started by the driver shares its fate), so a folder whose lock is free has no writer left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..files import write_json

Job = tuple[dict, str, str, dict]  # run spec, data dir, run dir, options
Poll = Callable[[], None]
PARENT_ENV = "SCALING_LADDER_PARENT_PID"  # set for a local worker: the pid it dies with


def run_job(run: dict, data_dir: str, run_dir: str, options: dict) -> dict:
    """Train one run in this process; a failure becomes a ``failed`` result, logged."""
    from ..plan.plan import RunSpec
    from .config import TrainOptions
    from .trainer import RunResult, train_run

    spec = RunSpec.from_dict(run)
    try:
        return train_run(spec, data_dir, run_dir, TrainOptions(**options)).to_dict()
    except Exception as exc:  # noqa: BLE001 - reported per run; the other runs go on
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(run_dir) / "train.log", "a", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
        return RunResult(spec.name, "failed", error=f"{type(exc).__name__}: {exc}").to_dict()


def failed(name: str, error: str) -> dict:
    """The result of a run that could not report one itself (its worker died)."""
    return {"name": name, "state": "failed", "final": {}, "tokens_per_s": None, "mfu": None,
            "gns_tokens": None, "seconds": 0.0, "resumed_from": None, "error": error,
            "notes": []}


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` ends: at once on Linux (the kernel sends
    SIGKILL, ``prctl(PR_SET_PDEATHSIG)``), and everywhere within half a second (a daemon thread
    that sees this process handed to another parent). Nothing is lost: files are written
    atomically and a resumed run redoes the steps after its last checkpoint."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PDEATHSIG
        except (OSError, AttributeError):
            pass  # the thread below still does it
    if os.getppid() != parent:  # the parent died before we asked
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class LocalExecutor:
    """Runs as subprocesses, ``workers`` at a time (default: one per core, each run on one
    thread; with CUDA, one per GPU, pinned by ``CUDA_VISIBLE_DEVICES``). A subprocess per run
    (``python -m scaling_ladder.train.executors RUN_DIR``) starts torch clean, survives the
    caller's ``__main__`` (no spawn re-import), and a crash takes down only its run; its
    stdout and stderr go to ``RUN_DIR/worker.log``."""

    name = "local"

    def __init__(self, workers: int | None = None, *, gpus: int = 0) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"The 'workers' argument of the local executor must be an int "
                             f">= 1 (runs at once). Got {workers!r}.")
        self.gpus = gpus
        self.workers = workers or (gpus or os.cpu_count() or 1)

    def resources(self) -> dict[str, Any]:
        return {"workers": self.workers, "gpus": self.gpus}

    def map(self, jobs: list[Job], poll: Poll) -> Iterable[dict]:
        queue = list(jobs)
        running: dict[int, tuple[subprocess.Popen, Job, Any]] = {}  # slot -> process
        try:
            while queue or running:
                for slot in range(self.workers):
                    if slot not in running and queue:
                        running[slot] = self._start(queue.pop(0), slot)
                time.sleep(0.2)
                poll()
                for slot, (proc, job, log) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    log.close()
                    del running[slot]
                    yield _result(job, proc.returncode)
        finally:
            for proc, _, log in running.values():
                proc.kill()
                proc.wait()
                log.close()

    def _start(self, job: Job, slot: int) -> tuple[subprocess.Popen, Job, Any]:
        run_dir = Path(job[2])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "result.json").unlink(missing_ok=True)
        write_json(run_dir / "job.json", {"run": job[0], "data_dir": job[1],
                                          "options": job[3]})
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
        log = open(run_dir / "worker.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "scaling_ladder.train.executors",
                                 str(run_dir)], stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        return proc, job, log


def _result(job: Job, returncode: int) -> dict:
    path = Path(job[2]) / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return failed(job[0]["name"], f"the worker exited with status {returncode} before "
                      f"finishing; see {Path(job[2]) / 'worker.log'}")


class RayExecutor:
    """Every run a Ray task with ``cpus`` and ``gpus`` (fractions allowed) on a local Ray
    instance, or on the cluster at ``address`` (``"auto"`` or ``"ray://host:10001"``), where
    the package and the token data must be installed and visible on every node."""

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus: float = 1, gpus: float = 0,
                 init_kwargs: dict | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError("The ray executor needs Ray: pip install 'scaling-ladder[ray]'"
                              ) from None
        self.address, self.cpus, self.gpus = address, cpus, gpus
        self.init_kwargs = init_kwargs or {}
        self._started = False

    def resources(self) -> dict[str, Any]:
        return {"address": self.address or "local", "cpus_per_run": self.cpus,
                "gpus_per_run": self.gpus}

    def map(self, jobs: list[Job], poll: Poll) -> Iterable[dict]:
        import ray

        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(**kwargs)
            self._started = True
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(run_job)
        pending = {task.remote(*job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                poll()
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the task or its node died
                        yield failed(job[0]["name"],
                                     f"ray task failed: {type(exc).__name__}: {exc}")
        finally:
            if self._started:
                ray.shutdown()
                self._started = False


def make_executor(kind: str | Any = "local", *, workers: int | None = None,
                  address: str | None = None, gpus: int = 0) -> Any:
    """``local`` or ``ray`` (or an executor object, returned as it is)."""
    if not isinstance(kind, str):
        return kind
    if kind == "local":
        return LocalExecutor(workers, gpus=gpus)
    if kind == "ray":
        return RayExecutor(address, gpus=1 if gpus else 0)
    raise ValueError(f"The 'executor' must be local or ray. Got {kind!r}.")


def main(argv: list[str] | None = None) -> int:
    """Worker entry point. ``RUN_DIR``: train the run of ``RUN_DIR/job.json`` (what the local
    executor starts). ``--plan P --run-name NAME --data D --out OUT``: one run of a plan, on
    several GPUs with DDP::

        torchrun --nproc_per_node 8 -m scaling_ladder.train.executors \\
            --plan plan.toml --run-name balanced-d768-l12-s0 --data tokens/ --out ladder/
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1:
        if os.environ.get(PARENT_ENV):
            die_with_parent(int(os.environ[PARENT_ENV]))
        run_dir = Path(argv[0])
        job = json.loads((run_dir / "job.json").read_text())
    else:
        import argparse

        from ..plan.plan import build_plan

        ap = argparse.ArgumentParser(prog="python -m scaling_ladder.train.executors")
        for flag in ("--plan", "--run-name", "--data", "--out"):
            ap.add_argument(flag, required=True)
        ap.add_argument("--set", action="append", default=[], help="train option KEY=VALUE")
        args = ap.parse_args(argv)
        from .config import options_from

        runs = {r.name: r for r in build_plan(args.plan, data_dir=args.data).runs}
        if args.run_name not in runs:
            ap.error(f"no run {args.run_name!r} in {args.plan}")
        run_dir = Path(args.out) / "runs" / args.run_name
        job = {"run": runs[args.run_name].to_dict(), "data_dir": args.data,
               "options": options_from({}, args.set).model_dump()}
    result = run_job(job["run"], job["data_dir"], str(run_dir), job["options"])
    if int(os.environ.get("RANK", 0)) == 0:
        write_json(run_dir / "result.json", result)
    return 0 if result["state"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
