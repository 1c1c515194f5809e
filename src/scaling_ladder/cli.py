"""The ``ladder`` command: one thin function per verb over the library API.

Exit status: 0 done; 1 a verdict against the input; 2 bad input or usage (one line on stderr
naming file, line, column and the fix); 3 an internal error (please report it).
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import datasets
from .data import commands as data_commands
from .compute import isoflop as isoflop_analysis
from .compute import optimal as optimal_allocation
from .errors import InputError, LadderError
from .fitting import LawFit
from .holdout import holdout as holdout_eval
from .importers import parse_mapping, read_tensorboard, read_wandb_csv
from .laws import LAWS, make_law
from .observations import Observations, read_observations

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  pretty_exceptions_enable=False,
                  help="Decide with small runs what deserves a big run.")
import_app = typer.Typer(no_args_is_help=True, help="Import runs trained elsewhere.")
app.add_typer(import_app, name="import")
app.add_typer(data_commands.app, name="data")
out = Console()
err = Console(stderr=True)
ISSUES = "https://github.com/scaling-ladder/scaling-ladder/issues"

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
Checkpoints = Annotated[str, typer.Option(help="final | all | drop-first:F | "
                                          "drop-first-tokens:T | last:F.")]
LawName = Annotated[str, typer.Option(help=f"Law: {', '.join(LAWS)}.")]
Loss = Annotated[str, typer.Option(help="huber (delta 1e-3, on log-loss) or mse.")]
JsonOut = Annotated[str | None, typer.Option("--json", help="Write the result as JSON to "
                                             "FILE, or - for stdout.", metavar="FILE|-")]
Fix = Annotated[list[str] | None, typer.Option(help="Fix a parameter, e.g. --fix E=1.69 "
                                               "(repeatable).")]


def _handle(fn: Callable) -> Callable:
    """Map exceptions to exit status: bad input 2 (one line), anything else 3."""

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
            err.print(f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                      f"scaling-ladder; please report it at {ISSUES}", markup=False)
            raise typer.Exit(3) from None

    return wrapper


def _load(paths, example, experiment, recipe, metric, where, checkpoints) -> Observations:
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


def _fixed(items: list[str] | None) -> dict[str, float]:
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


def _write_json(target: str, payload: dict[str, Any]) -> None:
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


@contextmanager
def _progress(label: str, quiet: bool):
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


def _selection_table(obs: Observations) -> Table:
    t = Table(title="Selection", show_header=False, box=None)
    for k, v in obs.summary_rows():
        t.add_row(k, v)
    return t


def _fmt(v: float) -> str:
    return f"{v:.6g}"


# ------------------------------------------------------------------------------ the verbs


@app.command()
@_handle
def fit(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    metric: Metric = None,
    where: Where = None,
    law: LawName = "chinchilla",
    checkpoints: Checkpoints = "all",
    loss: Loss = "huber",
    bootstrap: Annotated[int, typer.Option(help="Run-clustered bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    fix: Fix = None,
    by: Annotated[str | None, typer.Option(help="One parameter set per value of this "
                                           "column, e.g. recipe.")] = None,
    shared: Annotated[str | None, typer.Option(help="With --by: parameters shared by all "
                                               "groups, e.g. alpha,beta.")] = None,
    weights: Annotated[str | None, typer.Option(help="run (each run weight 1) or a column of "
                                                "point weights.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Fit a scaling law with a robust multi-start estimator and bootstrap CIs.

    Example: ladder fit --example chinchilla --where "besiroglu_outlier == False"
    """
    obs = _load(paths, example, experiment, recipe, metric, where, checkpoints)
    form = make_law(law, fixed=_fixed(fix))
    share = tuple(s.strip() for s in shared.split(",") if s.strip()) if shared else ()
    with _progress("bootstrap", quiet=json_out == "-" or bootstrap == 0) as progress:
        result = form.fit(obs, loss=loss, bootstrap=bootstrap, seed=seed, by=by, shared=share,
                          weights=weights, progress=progress)
    if json_out:
        _write_json(json_out, {**result.to_dict(), "selection": dict(obs.set_aside)})
        if json_out == "-":
            return
    out.print(_selection_table(obs))
    _print_fit(result)


def _print_fit(result: LawFit) -> None:
    law = result.law
    t = Table(title=f"{law.name}: {law.formula}", caption=f"{result.objective}; "
              f"{result.n_points} points, {result.n_runs} runs; {law.citation}")
    t.add_column("parameter")
    t.add_column("estimate", justify="right")
    level = f"{result.level:.0%} CI"
    t.add_column(level + (f" ({len(result.draws)} run resamples)" if result.draws is not None
                          else ""), justify="right")
    for k, v in result.params.items():
        ci = result.ci.get(k)
        t.add_row(k, _fmt(v), "fixed" if k in law.fixed else
                  (f"[{_fmt(ci.lo)}, {_fmt(ci.hi)}]" if ci else "—"))
    out.print(t)
    for i, note in enumerate(result.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}")


@app.command()
@_handle
def holdout(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    metric: Metric = None,
    where: Where = None,
    law: LawName = "chinchilla",
    checkpoints: Checkpoints = "all",
    loss: Loss = "huber",
    min_params: Annotated[float | None, typer.Option(help="Hold out every run with N >= this "
                                                     "(default: the largest N only).")] = None,
    json_out: JsonOut = None,
) -> None:
    """Fit below the largest model and score the prediction of it (Choshen et al. 2024).

    Targets: the largest model's checkpoints in the last 30% of its tokens. --checkpoints
    selects the fitted points only. Example: ladder holdout --example overtrain
    --recipe redpajama --metric val/c4
    """
    obs = _load(paths, example, experiment, recipe, metric, where, "all")
    result = holdout_eval(make_law(law), obs, checkpoints=checkpoints, min_params=min_params,
                          loss=loss)
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    t = Table(title=f"Hold-out: {law} fitted below N = {result.target_params:.4g}",
              caption="ARE = mean |L - L_hat| / L over the targets (lower is better)")
    for col in ("", "ARE", "fitted points", "target points"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row(law, f"{result.are:.4f}", str(result.n_fit_points), str(result.n_target_points))
    t.add_row("lowest observed loss", f"{result.baseline_are:.4f}", "", "")
    out.print(t)
    for i, note in enumerate(result.fit.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}")


@app.command()
@_handle
def optimal(
    fit_path: Annotated[Path, typer.Option("--fit", help="A fit written by ladder fit --json.")],
    flops: Annotated[float, typer.Option(help="Training compute budget C in FLOPs.")],
    group: Annotated[str | None, typer.Option(help="Group of a fit made with --by.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Compute-optimal model size and tokens for a budget, with bootstrap CIs.

    Example: ladder fit --example chinchilla --json fit.json && ladder optimal --fit fit.json
    --flops 1e23
    """
    try:
        fitted = LawFit.from_dict(json.loads(fit_path.read_text()))
    except FileNotFoundError:
        raise InputError(str(fit_path), "file not found", fix="write it with ladder fit "
                         "--json FILE") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(str(fit_path), f"is not a fit written by ladder fit --json ({exc})",
                         fix="write it with ladder fit --json FILE") from None
    result = optimal_allocation(fitted, flops=flops, group=group)
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    t = Table(title=f"Compute-optimal allocation at C = {flops:.3g} FLOPs ({fitted.law.name})")
    t.add_column("")
    t.add_column("estimate", justify="right")
    t.add_column(f"{fitted.level:.0%} CI", justify="right")
    for k, label in (("params", "N* (params)"), ("tokens", "D* (tokens)"),
                     ("tokens_per_param", "tokens per parameter"), ("loss", "loss")):
        ci = result.ci.get(k)
        t.add_row(label, _fmt(getattr(result, k)),
                  f"[{_fmt(ci.lo)}, {_fmt(ci.hi)}]" if ci else "—")
    out.print(t)
    for i, note in enumerate(result.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}")


@app.command()
@_handle
def isoflop(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    metric: Metric = None,
    where: Where = None,
    tolerance: Annotated[float, typer.Option(help="Widest gap in log10 FLOPs within one "
                                             "budget.")] = 0.05,
    json_out: JsonOut = None,
) -> None:
    """IsoFLOP profiles (Chinchilla approach 2): parabola per budget, minima -> N*(C), D*(C).

    Example: ladder isoflop runs.csv --metric val/c4
    """
    obs = _load(paths, example, experiment, recipe, metric, where, "final")
    result = isoflop_analysis(obs, tolerance=tolerance)
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    t = Table(title=f"IsoFLOP minima: N* ~ C^{result.a:.3f}, D* ~ C^{result.b:.3f}")
    for col in ("FLOPs", "runs", "N*", "D*", "loss at N*"):
        t.add_column(col, justify="right")
    for b in result.budgets:
        t.add_row(f"{b['flops']:.3g}", str(b["n_runs"]), _fmt(b["params"]), _fmt(b["tokens"]),
                  f"{b['loss']:.4f}")
    out.print(t)
    for i, note in enumerate(result.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}")


# ------------------------------------------------------------------------------- import

MapOpt = Annotated[str, typer.Option("--map", help="key=name pairs: step, tokens, params and "
                                     "metrics, e.g. train=train/loss,val/c4=eval/c4_loss.")]
Output = Annotated[Path, typer.Option("-o", "--out", help="Write observations here (.csv, "
                                      ".jsonl, .parquet).")]
ParamsOpt = Annotated[float | None, typer.Option("--params", help="Parameter count N.")]
TokensPerStep = Annotated[float | None, typer.Option(help="Tokens per optimiser step (batch x "
                                                     "sequence length).")]
KindOpt = Annotated[str, typer.Option(help="loss, perplexity or accuracy.")]


def _report_import(obs: Observations, target: Path, json_out: str | None) -> None:
    obs.write(target)
    if json_out:
        _write_json(json_out, {"rows": len(obs), "runs": obs.n_runs, "out": str(target),
                               "metrics": obs.metrics, "set_aside": dict(obs.set_aside)})
        if json_out == "-":
            return
    out.print(_selection_table(obs))
    out.print(f"wrote {len(obs):,} rows to {target}")


@import_app.command("wandb")
@_handle
def import_wandb(
    path: Annotated[Path, typer.Argument(help="A W&B CSV export (run history or panel).")],
    mapping: MapOpt,
    out_path: Output,
    run: Annotated[str | None, typer.Option(help="Run name (run-history export).")] = None,
    params: ParamsOpt = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    tokens_per_step: TokensPerStep = None,
    kind: KindOpt = "loss",
    json_out: JsonOut = None,
) -> None:
    """Convert a W&B CSV export to observations.

    Example: ladder import wandb history.csv --map tokens=tokens_seen,train=train/loss
    --params 1.2e8 -o runs.csv
    """
    obs = read_wandb_csv(path, mapping=parse_mapping(mapping), run=run, params=params,
                         experiment=experiment, recipe=recipe,
                         tokens_per_step=tokens_per_step, kind=kind)
    _report_import(obs, out_path, json_out)


@import_app.command("tensorboard")
@_handle
def import_tensorboard(
    logdir: Annotated[Path, typer.Argument(help="A directory of TensorBoard event files; "
                                           "each subdirectory with events is a run.")],
    mapping: MapOpt,
    out_path: Output,
    params: ParamsOpt = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    tokens_per_step: TokensPerStep = None,
    kind: KindOpt = "loss",
    json_out: JsonOut = None,
) -> None:
    """Convert TensorBoard scalars to observations (needs the tb extra).

    Example: ladder import tensorboard logs/ --map train=loss/train --params 1.2e8
    --tokens-per-step 524288 -o runs.csv
    """
    obs = read_tensorboard(logdir, mapping=parse_mapping(mapping), params=params,
                           experiment=experiment, recipe=recipe,
                           tokens_per_step=tokens_per_step, kind=kind)
    _report_import(obs, out_path, json_out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
