"""What every verb shares: the app, consoles, option types, the exit-status wrapper,
JSON output and progress bars."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..errors import InputError, LadderError
from ..files import json_text, write_atomic
from ..laws.forms import LAWS
from ..observations import datasets
from ..observations.table import Observations, read_observations

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  pretty_exceptions_enable=False,
                  help="Decide with small runs what deserves a big run.")
out = Console()
err = Console(stderr=True)
ISSUES = "https://github.com/scaling-ladder/scaling-ladder/issues"
DEBUG_ENV = "SCALING_LADDER_DEBUG"

# ----------------------------------------------------------------------- shared options

Paths = Annotated[list[Path] | None, typer.Argument(help="Observation files (CSV, Parquet, "
                                                     "JSON Lines).", show_default=False)]
Example = Annotated[str | None, typer.Option(help=f"Use bundled data: "
                                             f"{', '.join(datasets.NAMES)}.")]
Experiment = Annotated[str | None, typer.Option(help="Keep this experiment.")]
Recipe = Annotated[str | None, typer.Option(help="Keep this recipe.")]
Metric = Annotated[str | None, typer.Option(help="Keep this metric (train, val/<slice>, "
                                            "ds/<task>).")]
Where = Annotated[str | None, typer.Option(help='A pandas query, e.g. "params > 1e8".')]
Checkpoints = Annotated[str, typer.Option(help="final | all | auto (final of WSD runs, else "
                                          "drop-first:0.1) | drop-first:F | "
                                          "drop-first-tokens:T | last:F.")]
LawName = Annotated[str, typer.Option(help=f"Law: {', '.join(LAWS)}.")]
Loss = Annotated[str, typer.Option(help="huber (delta 1e-3, on log-loss) or mse.")]
JsonOut = Annotated[str | None, typer.Option("--json", help="Write the result as JSON to "
                                             "FILE, or - for stdout.", metavar="FILE|-")]
Fix = Annotated[list[str] | None, typer.Option(help="Fix a parameter, e.g. --fix E=1.69 "
                                               "(repeatable).")]


_state = {"debug": False}


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option(
        "--debug", help=f"On an internal error, print the traceback (or set {DEBUG_ENV}=1).")
    ] = False,
) -> None:
    # runs before every verb, so one invocation's flag never leaks into the next
    _state["debug"] = debug


def handle(fn: Callable) -> Callable:
    """Map exceptions to exit status (DESIGN.md): bad input or usage 2, with one line on stderr;
    anything else is a bug: 3, one line saying where to report it, the traceback only with
    ``--debug``.

    A plain ``ValueError`` is usage too: the library raises it for a bad argument, in
    scikit-learn's form (``The 'bootstrap' argument of fit must be an int >= 0. Got -5.``).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InputError, LadderError, ValueError) as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if _debug():
                err.print(traceback.format_exc().rstrip(), markup=False, highlight=False,
                          soft_wrap=True)
            what = " ".join(str(exc).split())  # one line, whatever the message holds
            err.print(f"internal error: {type(exc).__name__}: {what}. This is a bug in "
                      f"scaling-ladder; please report it at {ISSUES}"
                      + ("" if _debug() else " (--debug shows the traceback)"),
                      markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper


def _debug() -> bool:
    """``ladder --debug VERB`` or SCALING_LADDER_DEBUG=1 in the environment."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return _state["debug"] or env


def load(paths, example, experiment, recipe, metric, where, checkpoints) -> Observations:
    if example and paths:
        raise ValueError("Give observation files or --example, not both.")
    if example:
        obs = datasets.load(example)
    elif paths:
        obs = read_observations(paths)
    else:
        raise ValueError("Give observation files (CSV, Parquet, JSON Lines) or --example NAME.")
    return obs.select(experiment=experiment, recipe=recipe, metric=metric, where=where,
                      checkpoints=checkpoints)


def fixed_params(items: list[str] | None) -> dict[str, float]:
    fixed = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"The --fix option takes NAME=VALUE, e.g. E=1.69. Got {item!r}.")
    return fixed


def write_json(target: str, payload: dict[str, Any]) -> None:
    """``payload`` as strict JSON to the file ``target`` (atomically), or to stdout for ``-``."""
    text = json_text(payload, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    write_atomic(target, text)


@contextmanager
def progress_bar(label: str, quiet: bool):
    """Yields a ``progress(done, total)`` callback that shows a rich bar on stderr once called."""
    if quiet:
        yield None
        return
    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), console=err, transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


class DataTable(Table):
    """A rich table whose text cells are plain: data strings (recipe and run names, parameters
    of a grouped fit such as ``A[balanced]``) are never read as console markup."""

    def add_row(self, *cells, **kwargs) -> None:
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kwargs)


def selection_table(obs: Observations) -> DataTable:
    t = DataTable(title="Selection", show_header=False, box=None)
    for k, v in obs.summary_rows():
        t.add_row(k, v)
    return t


def fmt(v: float) -> str:
    return f"{v:.6g}"


@contextmanager
def phase_progress(quiet: bool) -> Iterator[Callable | None]:
    """Yields a ``progress(phase, done, total)`` callback drawing one bar on stderr."""
    if quiet:
        yield None
        return
    bar = Progress(TextColumn("{task.description:<24}"), BarColumn(),
                   TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=err,
                   transient=True)
    with bar:
        task = bar.add_task("", total=None)
        yield lambda phase, done, total: bar.update(task, description=phase, completed=done,
                                                    total=total or None)


def print_notes(notes) -> None:
    """Numbered caveats under a table (their text is data, never rich markup)."""
    for i, note in enumerate(notes, 1):
        out.print(Text.assemble((f"note {i}: ", "yellow"), str(note)))


def fmt_ci(ci) -> str:
    """``[lo, hi]`` of an Interval, or a dash when there is none."""
    return f"[{fmt(ci.lo)}, {fmt(ci.hi)}]" if ci else "—"


def emit_json(target: str | None, payload: dict[str, Any]) -> bool:
    """Write ``--json`` output if asked; True when it went to stdout (print nothing else)."""
    if target:
        write_json(target, payload)
    return target == "-"

