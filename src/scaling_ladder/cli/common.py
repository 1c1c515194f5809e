"""What every verb shares: the app, consoles, option types, the exit-status wrapper,
JSON output and progress bars."""

from __future__ import annotations

import difflib
import errno
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


class _Ladder(typer.core.TyperGroup):
    """The root group: a usage error (unknown option, a value of the wrong type, a missing
    argument) is one line on stderr and exit 2, like every other bad input."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as exc:  # typer's click exceptions derive from it
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare ``ladder`` or group
                out.print(ctx.get_help(), markup=False, highlight=False)
                sys.exit(0)
            verb = " ".join(["ladder", *(ctx.command_path.split()[1:] if ctx else [])])
            what = " ".join(exc.format_message().split()).rstrip(".")
            err.print(f"error: {verb}: {what[:1].lower() + what[1:]} (see {verb} --help)",
                      markup=False, highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted", markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_Ladder, add_completion=True, no_args_is_help=True,
                  rich_markup_mode="rich", pretty_exceptions_enable=False,
                  help="Decide with small runs what deserves a big run.")
out = Console()
err = Console(stderr=True)
ISSUES = "https://github.com/scaling-ladder/scaling-ladder/issues"
DEBUG_ENV = "SCALING_LADDER_DEBUG"
# errors of the file system around a path the user chose, not of the program: exit 2
ENVIRONMENT = {errno.EACCES, errno.EPERM, errno.EEXIST, errno.EISDIR, errno.ENOTDIR,
               errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.EDQUOT}

# ----------------------------------------------------------------------- shared options

Paths = Annotated[list[Path] | None, typer.Argument(help="Observation files (CSV, Parquet, "
                                                     "JSON Lines).", show_default=False)]
Example = Annotated[str | None, typer.Option(help=f"Use bundled data: "
                                             f"{', '.join(datasets.NAMES)}.")]
Experiment = Annotated[str | None, typer.Option(help="Keep this experiment.")]
Recipe = Annotated[str | None, typer.Option(help="Keep this recipe.")]
Metric = Annotated[str | None, typer.Option(help="Keep this metric (train, val/<slice>, "
                                            "ds/<task>).")]
Where = Annotated[str | None, typer.Option(help='Keep rows where a condition holds, e.g. "params > 1e8 and recipe != \'c4\'": columns (`val/c4` in backticks), numbers, \'text\', True/False, == != < <= > >=, in \\[...], not in \\[...], and/or/not (or & | ~), + - * /, parentheses; nothing else (no calls).')]  # noqa: E501
Checkpoints = Annotated[str, typer.Option(help="final | all | auto (final of WSD runs, else "
                                          "drop-first:0.1) | drop-first:F | "
                                          "drop-first-tokens:T | last:F.")]
LawName = Annotated[str, typer.Option(help=f"Law: {', '.join(LAWS)}.")]
Loss = Annotated[str, typer.Option(help="huber (delta 1e-3, on log-loss) or mse.")]


def output_problem(path: Path, *, suffixes: tuple[str, ...] = (), folder: bool = False,
                   example: str = "out.json") -> str | None:
    """Why ``path`` cannot be written as an output file (or ``folder``), or None: checked
    before any work, so a long run never ends in a write that was bound to fail."""
    if folder:
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder; give a folder name"
    elif path.is_dir():
        return f"{path} is a folder; give a file name, e.g. {path / example}"
    elif suffixes and path.suffix.lower() not in suffixes:
        return (f"{path} has the suffix \"{path.suffix}\" and this writes "
                f"{' or '.join(suffixes)}; name the file with one of those")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, so {path} cannot be made in it; choose another path"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable; choose another path"
            break
    return None


def output(suffixes: tuple[str, ...] = (), *, folder: bool = False, example: str = "out.json"
           ) -> Callable:
    """A typer callback that rejects an output path :func:`output_problem` finds fault with."""

    def check(value):
        if value is not None and str(value) != "-":
            problem = output_problem(Path(value), suffixes=suffixes, folder=folder,
                                     example=example)
            if problem:
                raise typer.BadParameter(problem)
        return value

    return check


JsonOut = Annotated[str | None, typer.Option("--json", help="Write the result as JSON to "
                                             "FILE, or - for stdout.", metavar="FILE|-",
                                             callback=output(example="result.json"))]
Fix = Annotated[list[str] | None, typer.Option(help="Fix a parameter, e.g. --fix E=1.69 "
                                               "(repeatable).")]


_state: dict[str, Any] = {"debug": False, "source": None}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"scaling-ladder {version('scaling-ladder')}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option(
        "--debug", help=f"On an internal error, print the traceback (or set {DEBUG_ENV}=1).")
    ] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    # runs before every verb, so one invocation's flag never leaks into the next
    _state.update(debug=debug, source=None)


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
            if isinstance(exc, InputError):
                exc.in_file(_state["source"])  # a problem of the table read for this verb
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if isinstance(exc, OSError) and exc.errno in ENVIRONMENT and exc.filename:
                err.print(f"error: {exc.filename}: {exc.strerror.lower()}; check the path and "
                          "its permissions, or choose another", markup=False, highlight=False,
                          soft_wrap=True)
                raise typer.Exit(2) from None
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


def source(name: str) -> None:
    """Name the file this verb reads: an InputError without a file of its own names it."""
    _state["source"] = name


def load(paths, example, experiment, recipe, metric, where, checkpoints) -> Observations:
    if example and paths:
        raise ValueError("Give observation files or --example, not both.")
    if example:
        if example not in datasets.NAMES:
            close = difflib.get_close_matches(example, datasets.NAMES, n=1)
            raise ValueError(f"--example {example!r} is not a bundled dataset: choose one of "
                             f"{', '.join(datasets.NAMES)}"
                             + (f" (did you mean {close[0]!r}?)" if close else "") + ".")
        obs = datasets.load(example)
        source(f"{example}.csv (--example {example})")
    elif paths:
        obs = read_observations(paths)
        source(" + ".join(map(str, paths)))
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

