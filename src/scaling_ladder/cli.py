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
from .compute import isoflop as isoflop_analysis
from .compute import optimal as optimal_allocation
from .data import commands as data_commands
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


# --------------------------------------------------------------------------- plan, train

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a spec key, e.g. "
                                                  "--set sizes.count=6 (TOML values; "
                                                  "repeatable).", show_default=False)]
DataDir = Annotated[Path | None, typer.Option("--data", help="Token data made by ladder data "
                                              "build: vocabulary and recipes come from it.")]


def _plan_overrides(**flags: Any) -> list[str]:
    """Flags of ``ladder plan`` as ``key=value`` spec overrides (TOML values)."""
    keys = {"recipes": "recipes", "sizes": "sizes.count", "min_params": "sizes.min_params",
            "max_params": "sizes.max_params", "multipliers": "token_multipliers",
            "tokens": "tokens", "protocol": "protocol.kind", "schedule": "hparams.schedule",
            "target_params": "target.params", "budget_flops": "budget.flops",
            "budget_hours": "budget.device_hours", "seq_len": "seq_len",
            "experiment": "experiment"}
    out = []
    for name, value in flags.items():
        if value is None:
            continue
        if name in ("recipes", "multipliers"):
            items = [v.strip() for v in str(value).split(",") if v.strip()]
            value = "[" + ", ".join(json.dumps(v if name == "recipes" else float(v))
                                    for v in items) + "]"
        elif isinstance(value, str):
            value = json.dumps(value)
        out.append(f"{keys[name]}={value}")
    return out


def _plan_table(p) -> Table:
    t = Table(title=f"Ladder {p.spec.experiment}: {len(p.runs)} runs, {p.flops:.3g} FLOPs "
              f"({100 * p.flops / p.target_flops:.2g}% of the target's)",
              caption=f"N = {p.spec.params_convention} parameters (drives tokens = k N); "
              "FLOPs with the attention term, head included; time on "
              f"{p.device.name} x{p.device.workers}, "
              f"{'measured' if p.device.measured else 'assumed'} peak")
    for col in ("stage", "runs", "shape", "N", "non-emb.", "no input emb.", "tokens", "LR",
                "batch", "steps", "FLOPs", "6ND", "time"):
        t.add_column(col, justify="left" if col in ("stage", "shape") else "right")
    groups: dict[tuple, list] = {}
    for r in p.runs:
        groups.setdefault((r.stage, r.size, r.tokens, r.lr), []).append(r)
    for (stage, size, tokens, lr), rs in groups.items():
        r = rs[0]
        t.add_row(stage, str(len(rs)), f"{size} h{r.n_heads} V{r.vocab_size}",
                  f"{r.params:,}", f"{r.params_nonembed:,}", f"{r.params_no_input_embed:,}",
                  f"{tokens:.3g}", f"{lr:.3g}", f"{r.batch_sequences}x{r.seq_len}",
                  str(r.steps), f"{r.flops:.3g}", f"{r.flops_6nd:.3g}",
                  f"{r.seconds * len(rs):.0f} s")
    return t


@app.command()
@_handle
def plan(
    spec: Annotated[Path | None, typer.Argument(help="A ladder spec or plan (TOML); flags and "
                                                "--set override it.", show_default=False)
                    ] = None,
    data: DataDir = None,
    recipes: Annotated[str | None, typer.Option(help="Recipes compared, comma-separated.")
                       ] = None,
    sizes: Annotated[int | None, typer.Option(help="Number of model sizes (>= 5 advised).")
                     ] = None,
    min_params: Annotated[float | None, typer.Option(help="Smallest N.")] = None,
    max_params: Annotated[float | None, typer.Option(help="Largest N.")] = None,
    multipliers: Annotated[str | None, typer.Option(help="Tokens per parameter k (tokens = "
                                                    "k N), comma-separated.")] = None,
    tokens: Annotated[float | None, typer.Option(help="One token count for every run.")
                      ] = None,
    protocol: Annotated[str | None, typer.Option(help="fixed, reduced-lr or sweep.")] = None,
    schedule: Annotated[str | None, typer.Option(help="cosine or wsd.")] = None,
    target_params: Annotated[float | None, typer.Option(help="N of the run being decided.")
                             ] = None,
    budget_flops: Annotated[float | None, typer.Option(help="Compute budget in FLOPs.")
                            ] = None,
    budget_hours: Annotated[float | None, typer.Option(help="Budget in device hours.")
                            ] = None,
    device: Annotated[str, typer.Option(help="Device for time estimates: cpu, h100-sxm, "
                                        "a100, ...")] = "cpu",
    workers: Annotated[int | None, typer.Option(help="Runs at once (default: cores, or 1 "
                                                "per GPU).")] = None,
    set_: SetOpt = None,
    out_path: Annotated[Path | None, typer.Option("-o", "--out", help="Write the plan (spec "
                                                  "and runs) as TOML for ladder train.")
                        ] = None,
    json_out: JsonOut = None,
) -> None:
    """Plan a ladder: sizes, tokens, seeds, learning rates, checkpoints, FLOPs and time.

    The spec format is in the docstring of scaling_ladder.plan. Example: ladder plan --recipes
    balanced,code-heavy --max-params 5e5 --tokens 4e5 --out plan.toml
    """
    from .plan import build_plan, device_named

    overrides = _plan_overrides(
        recipes=recipes, sizes=sizes, min_params=min_params, max_params=max_params,
        multipliers=multipliers, tokens=tokens, protocol=protocol, schedule=schedule,
        target_params=target_params, budget_flops=budget_flops, budget_hours=budget_hours)
    result = build_plan(spec, overrides + list(set_ or []), data_dir=data,
                        device=device_named(device, workers))
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(result.to_toml(), encoding="utf-8")
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    out.print(_plan_table(result))
    out.print(f"estimated time: {result.wall_seconds() / 60:.1f} min on {result.device.workers} "
              f"worker(s), {sum(r.seconds for r in result.runs) / 3600:.2f} device hours")
    for i, note in enumerate(result.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}")
    if out_path:
        out.print(f"wrote {out_path}")


@app.command()
@_handle
def train(
    spec: Annotated[Path, typer.Argument(help="A plan or spec (TOML) from ladder plan.",
                                         show_default=False)],
    data: Annotated[Path, typer.Option("--data", help="Token data made by ladder data build.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for runs, checkpoints, "
                                          "logs and observations.jsonl.")],
    executor: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    workers: Annotated[int | None, typer.Option(help="local: runs at once (default: cores, "
                                                "or 1 per GPU).")] = None,
    address: Annotated[str | None, typer.Option(help="ray: address of an existing cluster "
                                                "(default: a local instance).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda.")] = "auto",
    stage: Annotated[str | None, typer.Option(help="Train only this stage.")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")
                        ] = False,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Train a ladder (resumable: run it again to resume), writing observations.jsonl.

    --set keys starting with train. are execution options (train.eval_tokens=8192,
    train.precision=float32); the others re-plan. Example: ladder train plan.toml --data
    tokens/ --out runs/ --executor local
    """
    try:
        import torch  # noqa: F401 - only to say clearly that the extra is missing
    except ImportError:
        raise LadderError("ladder train needs torch: pip install 'scaling-ladder[train]'"
                          ) from None
    from .plan import build_plan
    from .train import options_from, train_ladder

    sets = list(set_ or [])
    options = options_from({"device": device, "compile": compile_},
                           [s[len("train."):] for s in sets if s.startswith("train.")])
    ladder = build_plan(spec, [s for s in sets if not s.startswith("train.")], data_dir=data)
    if stage:
        ladder = ladder.stage(stage)
    with _ladder_progress(quiet or json_out == "-") as progress:
        result = train_ladder(ladder, data, out_dir, executor=executor, options=options,
                              workers=workers, address=address, progress=progress)
    if json_out:
        _write_json(json_out, result.to_dict())
    if json_out != "-":
        t = Table(title=f"{len(result.runs)} runs in {result.seconds:.0f} s "
                  f"({result.executor.get('kind')})")
        for col in ("run", "state", "final train loss", "tokens/s", "MFU",
                    "noise scale (tokens)"):
            t.add_column(col, justify="left" if col in ("run", "state") else "right")
        for r in result.runs:
            t.add_row(r["name"], r["state"], _opt(r.get("final", {}).get("train"), ".4f"),
                      _opt(r.get("tokens_per_s"), ",.0f"), _opt(r.get("mfu"), ".1%"),
                      _opt(r.get("gns_tokens"), ",.0f"))
        out.print(t)
        out.print(f"observations: {result.observations}")
    if result.failed:
        for r in result.failed:
            err.print(f"run {r['name']} failed: {r.get('error')}", markup=False)
        err.print("run the same command again to resume", markup=False)
        raise typer.Exit(1)


def _opt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


@contextmanager
def _ladder_progress(quiet: bool):
    """A ``progress(LadderProgress)`` callback drawing the ladder and its running runs."""
    if quiet:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                   console=err, transient=True)
    tasks: dict[str, Any] = {}

    def update(p) -> None:
        if "ladder" not in tasks:
            bar.start()
            tasks["ladder"] = bar.add_task("ladder (steps)", total=p.steps_total)
        bar.update(tasks["ladder"], completed=p.steps_done,
                   description=f"ladder: {p.runs_done}/{p.runs_total} runs")
        live = {name for name, _, _ in p.running}
        for name, step, steps in p.running:
            if name not in tasks:
                tasks[name] = bar.add_task(f"  {name}", total=steps)
            bar.update(tasks[name], completed=step)
        for name in [n for n in tasks if n != "ladder" and n not in live]:
            bar.remove_task(tasks.pop(name))
        for r in p.finished:
            bar.console.print(f"{r['name']}: {r['state']}" + (
                f" ({r['error']})" if r.get("error") else ""), markup=False)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


# ------------------------------------------------------------------------- report, check


def _read_result(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A JSON object written by another verb's --json, or InputError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(str(path), "file not found", fix=fix) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"is not {what} ({exc})", fix=fix) from None
    if not isinstance(data, dict):
        raise InputError(str(path), f"is not {what} (not a JSON object)", fix=fix)
    return data


def _read_fit_file(path: Path) -> LawFit:
    fix = "write it with ladder fit --json FILE"
    data = _read_result(path, "a fit written by ladder fit --json", fix)
    try:
        return LawFit.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(str(path), f"is not a fit written by ladder fit --json ({exc})",
                         fix=fix) from None


@app.command("report")
@_handle
def report_verb(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    where: Where = None,
    metric: Annotated[str | None, typer.Option(help="The loss metric to fit and decide on "
                                               "(default: the one most runs log).")] = None,
    out_path: Annotated[Path, typer.Option("-o", "--out", help="The report file (.html or "
                                           ".md).")] = Path("report.html"),
    fmt: Annotated[str | None, typer.Option("--format", help="html or md (default: from the "
                                            "file's suffix).")] = None,
    fit_path: Annotated[Path | None, typer.Option("--fit", help="Use this fit (ladder fit "
                                                  "--json; --by recipe for several recipes) "
                                                  "instead of fitting here.")] = None,
    compare_path: Annotated[Path | None, typer.Option("--compare", help="The comparison "
                                                      "(ladder compare --json).")] = None,
    decide: Annotated[bool, typer.Option("--decide", help="Compare the recipes here (ladder "
                                         "compare's defaults) for the decision; "
                                         "slower.")] = False,
    checks_path: Annotated[Path | None, typer.Option("--checks", help="Stage-0 data checks: "
                                                     "ladder data check --json FILE, or the "
                                                     "built data directory.")] = None,
    baseline: Annotated[str | None, typer.Option(help="The baseline recipe.")] = None,
    target_params: Annotated[float | None, typer.Option(help="Target model size N.")] = None,
    target_tokens: Annotated[float | None, typer.Option(help="Target tokens D.")] = None,
    law: LawName = "chinchilla",
    bootstrap: Annotated[int, typer.Option(help="Run-clustered bootstrap resamples of the "
                                           "fits made here.")] = 100,
    holdout: Annotated[bool, typer.Option("--holdout/--no-holdout", help="Hold out the largest "
                                          "model size from the fits made here.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Write the scaling report: one self-contained HTML page (or Markdown).

    Decision, experiments, loss curves, the scaling fit and its prediction at the target,
    IsoFLOP valleys, go/no-go, downstream and regression tables, data checks. Example: ladder
    report --example overtrain --metric val/c4 --baseline c4 --decide -o report.html
    """
    from .report import build_report

    if (target_params is None) != (target_tokens is None):
        raise ValueError("Give both --target-params and --target-tokens, or neither.")
    if decide and compare_path:
        raise ValueError("Give --compare FILE or --decide, not both.")
    obs = _load(paths, example, experiment, recipe, None, where, "all")
    fitted = _read_fit_file(fit_path) if fit_path else None
    compared = (_read_result(compare_path, "a comparison written by ladder compare --json",
                             "write it with ladder compare --json FILE")
                if compare_path else None)
    checked = None
    if checks_path is not None and checks_path.is_dir():
        from .data import check as data_check

        checked = data_check(checks_path)
    elif checks_path is not None:
        checked = _read_result(checks_path, "data checks written by ladder data check --json",
                               "write it with ladder data check DIR --json FILE")
    target = (target_params, target_tokens) if target_params is not None else None
    with _progress("report", quiet=json_out == "-") as progress:
        result = build_report(obs, metric=metric, fit=fitted,
                              compare=True if decide else compared, checks=checked,
                              target=target, baseline=baseline, law=law, bootstrap=bootstrap,
                              holdout=holdout, seed=seed, title=title, progress=progress)
    written = result.write(out_path, format=fmt)
    if json_out:
        _write_json(json_out, {**result.to_dict(), "out": str(written)})
        if json_out == "-":
            return
    t = Table(title=result.title, caption=f"wrote {written} "
              f"({written.stat().st_size / 1e3:,.0f} kB)")
    t.add_column("section")
    t.add_column("shows")
    for i, s in enumerate(result.sections, 1):
        shows = (f"omitted: {s.omitted.split('. ')[0]}" if s.omitted else
                 ", ".join(filter(None, [s.verdict, f"{len(s.figures)} figure(s)" if s.figures
                                         else "", f"{len(s.tables)} table(s)" if s.tables
                                         else ""])))
        t.add_row(f"{i}. {s.title}", shows)
    out.print(t)


@app.command("check")
@_handle
def check_verb(
    run_path: Annotated[Path, typer.Argument(help="The run's observations (CSV, JSON Lines, "
                                             "Parquet); may still be growing.",
                                             show_default=False)],
    against: Annotated[Path, typer.Option("--against", help="The ladder's fit (ladder fit "
                                          "--json).")],
    run: Annotated[str | None, typer.Option(help="The run to check, when the file holds "
                                            "several.")] = None,
    metric: Annotated[str | None, typer.Option(help="The fitted metric, when the run logs "
                                               "several.")] = None,
    group: Annotated[str | None, typer.Option(help="Group of a fit made with --by (default: "
                                              "the run's recipe).")] = None,
    ladder: Annotated[list[Path] | None, typer.Option(help="The ladder's runs, for the batch "
                                                      "and IsoFLOP checks (repeatable).")] = None,
    z_threshold: Annotated[float, typer.Option("--z", help="Off band beyond this many sigma "
                                               "(median of --window checkpoints).")] = 3.0,
    window: Annotated[int, typer.Option(help="Checkpoints in the off-band median.")] = 5,
    spike: Annotated[float, typer.Option(help="Relative jump that counts as a spike.")] = 0.02,
    two_sided: Annotated[bool, typer.Option("--two-sided", help="Also fail a run that is "
                                            "better than its band.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Keep checking as the file grows; "
                                         "stop when off band.")] = False,
    interval: Annotated[float, typer.Option(help="With --follow: seconds between "
                                            "looks.")] = 30.0,
    idle: Annotated[float | None, typer.Option(help="With --follow: stop after this many "
                                               "seconds without growth.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Check a run against the band of its ladder's fit; exit 1 when it is off band.

    Residual z of each checkpoint, loss spikes, residual jumps, larger batch worse at equal
    FLOPs, erratic IsoFLOP valleys. Example: ladder check run.csv --against fit.json --follow
    """
    from .monitor import check_run, read_growing
    from .monitor import follow as follow_run

    fitted = _read_fit_file(against)
    context = read_observations(ladder) if ladder else None
    options = dict(run=run, metric=metric, group=group, ladder=context,
                   z_threshold=z_threshold, window=window, spike=spike, two_sided=two_sided)
    quiet = json_out == "-"
    if follow:
        seen: list = []

        def show(res) -> None:
            if not quiet:  # new checkpoints only, at most the last 20 of a batch
                before = len(seen[-1].checkpoints) if seen else 0
                _print_checkpoints(res, max(before, len(res.checkpoints) - 20))
            seen.append(res)

        try:
            result = follow_run(run_path, fitted, interval=interval, idle=idle, on_check=show,
                                **options)
        except KeyboardInterrupt:  # stopped by hand: the verdict so far
            if not seen:
                raise
            result = seen[-1]
    else:
        result = check_run(read_growing(run_path), fitted, **options)
    if json_out:
        _write_json(json_out, result.to_dict())
    if not quiet:
        if not follow:
            _print_checkpoints(result, max(0, len(result.checkpoints) - 8))
        _print_verdict(result)
    if not result.passed:
        raise typer.Exit(1)


def _print_checkpoints(result, start: int) -> None:
    cp = result.checkpoints.iloc[start:]
    if cp.empty:
        return
    t = Table(title=f"{result.run} · {result.metric}")
    for col in ("tokens D", "value", "predicted", f"band (±{result.z_threshold:g} sigma)", "z"):
        t.add_column(col, justify="right")
    for _, r in cp.iterrows():
        band = "—" if math.isnan(r["lo"]) else f"[{r['lo']:.4f}, {r['hi']:.4f}]"
        z = "—" if math.isnan(r["z"]) else f"{r['z']:+.2f}"
        t.add_row(f"{r['tokens']:.4g}", f"{r['value']:.4f}", f"{r['predicted']:.4f}", band, z)
    out.print(t)


def _print_verdict(result) -> None:
    style = "bold green" if result.passed else "bold red"
    out.print(f"[{style}]{result.verdict.upper()}[/]: {result.run} ({result.metric})")
    out.print(f"band: {result.band}", markup=False, highlight=False)
    colors = {"fail": "red", "warn": "yellow", "info": "blue"}
    for f in result.flags:
        out.print(f"[{colors[f.severity]}]{f.severity} · {f.kind}:[/] ", end="")
        out.print(f.message, markup=False, highlight=False)
    for n in result.notes:
        out.print(f"note: {n}", markup=False, highlight=False)


# ------------------------------------------------------------------------ compare, simulate

DecisionMetric = Annotated[str | None, typer.Option(
    "--metric", help="The loss metric the decision rests on (default: the first val/ loss "
    "every recipe has). Every other metric is still compared.")]
TargetN = Annotated[float | None, typer.Option(help="Target model size N (with "
                                               "--target-tokens).")]
TargetD = Annotated[float | None, typer.Option(help="Target training tokens D.")]
RulePath = Annotated[Path | None, typer.Option("--rule", help="Go/no-go thresholds (TOML; "
                                               "keys of scaling_ladder.Rule).")]


def _rule(path: Path | None):
    from .decide import Rule

    return Rule.from_toml(path) if path else Rule()


def _ci(ci, digits: int = 4, sign: bool = True) -> str:
    if not ci or ci[0] is None or ci[1] is None or not all(map(math.isfinite, ci)):
        return "—"
    f = f"{'+' if sign else ''}.{digits}g"
    return f"[{ci[0]:{f}}, {ci[1]:{f}}]"


def _num(v, digits: int = 4, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.{digits}g}" if sign else f"{v:.{digits}g}"


@app.command("compare")
@_handle
def compare_verb(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    where: Where = None,
    baseline: Annotated[str, typer.Option(help="The recipe the others are compared with.",
                                          show_default=False)] = "",
    metric: DecisionMetric = None,
    target_params: TargetN = None,
    target_tokens: TargetD = None,
    target_flops: Annotated[float | None, typer.Option(
        help="Target compute C (each recipe at its compute-optimal N, D).")] = None,
    rule_path: RulePath = None,
    law: Annotated[str, typer.Option(help="chinchilla or overtrain.")] = "chinchilla",
    checkpoints: Checkpoints = "final",
    match: Annotated[str, typer.Option(help="auto | params-tokens | flops (IsoFLOP "
                                       "designs).")] = "auto",
    protocol: Annotated[str | None, typer.Option(help="Decide under this protocol when runs "
                                                 "have several (protocol or lr column).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Resamples of the decision metric's joint "
                                           "fit.")] = 100,
    slice_bootstrap: Annotated[int, typer.Option(help="Resamples of every other slice's and "
                                                 "task's fit.")] = 30,
    gate_bootstrap: Annotated[int, typer.Option(help="Resamples of each stage gate's fit (0: "
                                                "no stage gates).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Compare recipes across scales against a baseline and decide go / no-go.

    Per scale: deltas with CIs against seed noise; across scales: sign, trend, rank stability
    and decision accuracy; at the target: P(beats baseline), predicted delta and the compute
    multiplier from a joint fit; regressions, downstream, protocols and stage gates.
    --checkpoints selects the points the laws are fitted to. Example: ladder compare
    --example overtrain --baseline c4 --target-params 6.9e9 --target-tokens 1.38e11
    """
    from .compare import CompareOptions
    from .compare import compare as run_compare

    if not baseline:
        raise ValueError("Name the baseline recipe with --baseline.")
    rule = _rule(rule_path)
    obs = _load(paths, example, experiment, None, None, where, "all")
    options = CompareOptions(law=law, bootstrap=bootstrap, slice_bootstrap=slice_bootstrap,
                             gate_bootstrap=gate_bootstrap, match=match,
                             fit_checkpoints=checkpoints, protocol=protocol)
    with _progress("compare", quiet=json_out == "-") as progress:
        result = run_compare(obs, baseline=baseline, metric=metric, target_params=target_params,
                             target_tokens=target_tokens, target_flops=target_flops, rule=rule,
                             options=options, seed=seed, progress=progress)
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    _print_comparison(result)


def _print_comparison(res) -> None:
    d = res.to_dict()
    t = Table(title=f"{d['decision'].upper()}: recipes against {res.baseline} on {res.metric} "
              f"at {res.target.label}",
              caption="delta = recipe - baseline (loss: negative is better); compute multiplier"
              " k: the recipe reaches the baseline's target loss with k x the compute")
    for col in ("recipe", "decision", "P(beats)", "predicted delta", "95% CI",
                "compute multiplier", "trend with N"):
        t.add_column(col, justify="left" if col in ("recipe", "decision") else "right")
    for name, r in d["recipes"].items():
        t.add_row(name, r["decision"], _num(r["p_beats_baseline"], 3),
                  _num(r["predicted_delta"], 4, sign=True), _ci(r["ci95"]),
                  f"{_num(r['compute_multiplier'], 3)} "
                  f"{_ci(r['compute_multiplier_ci95'], 3, sign=False)}",
                  (r["survival"] or {}).get("trend", "—"))
    out.print(t)
    for name, r in d["recipes"].items():
        out.print(f"[bold]{name}[/]: {r['decision']} - {r['headline']}", highlight=False)
        for reason in r["reasons"]:
            out.print(f"  - {reason}", markup=False)
        for advice in r["advice"]:
            out.print(f"  > {advice}", markup=False)
    _print_scales(res)
    _print_findings(res, d)


def _print_scales(res) -> None:
    prim = res.per_scale[res.per_scale["metric"] == res.metric].sort_values(
        ["params", "tokens", "recipe"])
    others = [r for r in res.recipes if r != res.baseline]
    t = Table(title=f"{res.metric} per scale", caption="delta = recipe - baseline, "
              "± half-width of its 95% CI; (k x) = |delta| / noise")
    for col in ["scale", "noise", res.baseline] + [f"{r} delta" for r in others]:
        t.add_column(col, justify="left" if col == "scale" else "right")
    for scale, g in prim.groupby("scale", sort=False):
        g = g.set_index("recipe")
        first = g.iloc[0]
        cells = [f"{g.loc[res.baseline, 'value']:.4g}" if res.baseline in g.index else "—"]
        for r in others:
            if r not in g.index or not math.isfinite(g.loc[r, "delta"]):
                cells.append("—")
                continue
            row = g.loc[r]
            half = (row["ci_hi"] - row["ci_lo"]) / 2
            enr = _num(row["effect_to_noise"], 2)
            cells.append(f"{row['delta']:+.3g} ±{_num(half, 2)} ({enr}x)")
        t.add_row(scale, f"{_num(first['noise_sd'], 2)} {first['noise_source']}", *cells)
    out.print(t)
    rs = res.rank_stability
    if rs["scales"]:
        t = Table(title=f"Rank stability against {rs['reference_scale']}")
        for col in ("scale", "compute", "recipes", "signal/noise", "Kendall tau",
                    "Spearman rho", "decision accuracy"):
            t.add_column(col, justify="left" if col == "scale" else "right")
        for s in rs["scales"]:
            t.add_row(s["scale"], f"{s['compute_fraction']:.2%}", str(s["n_recipes"]),
                      _num(s["snr"], 2), _num(s["kendall_tau"], 3), _num(s["spearman_rho"], 3),
                      _num(s["decision_accuracy"], 3))
        out.print(t)


def _print_findings(res, d) -> None:
    regs = res.regressions
    if len(regs):
        t = Table(title=f"Regressions beyond noise ({int(regs['blocking'].sum())} blocking)")
        for col in ("recipe", "metric", "where", "delta", "95% CI", "blocking"):
            t.add_column(col, justify="right" if col in ("delta", "95% CI") else "left")
        for r in regs.head(20).itertuples():
            t.add_row(r.recipe, r.metric, r.where, f"{r.delta:+.4g}", _ci((r.ci_lo, r.ci_hi)),
                      "yes" if r.blocking else "")
        out.print(t)
    if res.near_chance:
        out.print(f"near chance (flagged, not ranked): {', '.join(res.near_chance)}")
    ds = d["downstream"]
    if ds.get("recipes"):
        t = Table(title=f"Loss -> downstream ({ds['metric']}; gains: positive is better)")
        for col in ("recipe", "loss gain", "L0 shift", "accuracy gain from loss",
                    "accuracy gain", "verdict"):
            t.add_column(col, justify="left" if col in ("recipe", "verdict") else "right")
        for name, r in ds["recipes"].items():
            t.add_row(name, _num(r["loss_gain"], 3, True), _num(r["l0_shift"], 3, True),
                      _num(r["accuracy_gain_from_loss"], 3, True),
                      _num(r["accuracy_gain"], 3, True), r["verdict"])
        out.print(t)
    for flip in (res.protocols or {}).get("flips", []):
        out.print(f"[yellow]protocol:[/] {flip}")
    if res.gates:
        t = Table(title="Stage gates")
        for col in ("gate", "evidence", "target", "decisions"):
            t.add_column(col)
        for g in res.gates:
            t.add_row(g["gate"], g["evidence"], g["target"], ", ".join(
                f"{r}: {v['decision']}" + ("" if v.get("agrees") is None else
                                           (" (right)" if v["agrees"] else " (wrong)"))
                for r, v in g["recipes"].items()))
        out.print(t)
    for i, note in enumerate(res.notes, 1):
        out.print(f"[yellow]note {i}:[/] {note}", highlight=False)


@app.command("simulate")
@_handle
def simulate_verb(
    ladders: Annotated[int, typer.Option(help="Simulated ladders for calibration.")] = 100,
    gain: Annotated[list[float] | None, typer.Option(help="True gain at the target (nats) for "
                                                     "the power table (repeatable).")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds per run; a list (1,2,4) gives one power "
                                       "design each.")] = "1",
    sizes: Annotated[str, typer.Option(help="Model sizes per ladder (2e7..4e8); a list (3,5) "
                                       "gives one power design each.")] = "5",
    noise: Annotated[float, typer.Option(help="Seed-to-seed sd of log-loss.")] = 0.003,
    power_ladders: Annotated[int, typer.Option(help="Ladders per power cell.")] = 40,
    rule_path: RulePath = None,
    bootstrap: Annotated[int, typer.Option(help="Resamples of each ladder's fit.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes to run ladders in.")] = 1,
    json_out: JsonOut = None,
) -> None:
    """Score the go/no-go rule on simulated ladders with a known answer.

    Calibration of P(beats baseline) (Brier score, reliability table), the false-go rate on
    zero-effect ladders, and with --gain the power table: P(go) per true gain and design, to
    plan how many seeds and sizes a gain needs. Example: ladder simulate --ladders 200
    --gain 0.01 --gain 0.02 --seeds 1,2
    """
    from .simulate import LadderDesign, design_with, simulate

    def ints(text: str, name: str) -> list[int]:
        try:
            vals = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            vals = []
        if not vals or min(vals) < 1:
            raise ValueError(f"The --{name} option takes positive integers, e.g. 1,2. "
                             f"Got {text!r}.")
        return vals

    n_seeds, n_sizes = ints(seeds, "seeds"), ints(sizes, "sizes")
    if min(n_sizes) < 2:
        raise ValueError(f"The --sizes option needs at least 2 sizes per ladder. Got {sizes!r}.")
    base = design_with(LadderDesign(seed_noise=noise), seeds=n_seeds[0], n_sizes=n_sizes[0])
    designs = [design_with(base, seeds=s, n_sizes=k) for s in n_seeds for k in n_sizes]
    with _progress("ladders", quiet=json_out == "-") as progress:
        result = simulate(_rule(rule_path), design=base, n_ladders=ladders, gains=gain or (),
                          designs=designs, n_power=power_ladders, bootstrap=bootstrap,
                          seed=seed, workers=workers, progress=progress)
    if json_out:
        _write_json(json_out, result.to_dict())
        if json_out == "-":
            return
    t = Table(title=f"Calibration of P(beats baseline): Brier {result.brier:.4f} "
              f"({base.label})", caption="0 is perfect, 0.25 is a coin")
    for col in ("P bin", "ladders", "mean P", "observed share"):
        t.add_column(col, justify="right")
    for r in result.reliability.itertuples():
        t.add_row(r.bin, str(r.n), _num(r.mean_p, 3), _num(r.observed, 3))
    out.print(t)
    lo, hi = result.false_go_ci
    out.print(f"false go on zero-effect ladders: {_num(result.false_go_rate, 3)} "
              f"(95% CI {_num(lo, 3)}-{_num(hi, 3)}; nominal {result.nominal_false_go:g}); "
              f"right-sign go/no-go calls: {_num(result.decision_accuracy, 3)}")
    if len(result.power):
        t = Table(title="Power: P(go) by true gain at the target (nats)")
        for col in ("design", "gain", "ladders", "P(go)", "P(no-go)", "P(inconclusive)"):
            t.add_column(col, justify="left" if col == "design" else "right")
        for r in result.power.itertuples():
            t.add_row(r.design, f"{r.true_gain:g}", str(r.n), _num(r.p_go, 3),
                      _num(r.p_no_go, 3), _num(r.p_inconclusive, 3))
        out.print(t)


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
