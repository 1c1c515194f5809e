"""``ladder fit · holdout · optimal · isoflop``: scaling laws, hold-out, compute-optimal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..format import count
from ..laws.compute import isoflop as isoflop_analysis
from ..laws.compute import optimal as optimal_allocation
from ..laws.fit import LawFit
from ..laws.forms import make_law
from ..laws.holdout import holdout as holdout_eval
from .common import (
    Checkpoints,
    DataTable,
    Example,
    Experiment,
    Fix,
    JsonOut,
    LawName,
    Loss,
    Metric,
    Paths,
    Recipe,
    Where,
    app,
    emit_json,
    fixed_params,
    fmt,
    fmt_ci,
    handle,
    load,
    out,
    print_notes,
    progress_bar,
    selection_table,
)

# ------------------------------------------------------------------------------ the verbs


@app.command()
@handle
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
    obs = load(paths, example, experiment, recipe, metric, where, checkpoints)
    form = make_law(law, fixed=fixed_params(fix))
    share = tuple(s.strip() for s in shared.split(",") if s.strip()) if shared else ()
    with progress_bar("bootstrap", quiet=json_out == "-" or bootstrap == 0) as progress:
        result = form.fit(obs, loss=loss, bootstrap=bootstrap, seed=seed, by=by, shared=share,
                          weights=weights, progress=progress)
    if emit_json(json_out, {**result.to_dict(), "selection": dict(obs.set_aside)}):
        return
    out.print(selection_table(obs))
    _print_fit(result)


def _print_fit(result: LawFit) -> None:
    law = result.law
    t = DataTable(title=f"{law.name}: {law.formula}")
    t.add_column("parameter")
    t.add_column("estimate", justify="right")
    level = f"{result.level:.0%} CI"
    t.add_column(level + (f" ({len(result.draws)} run resamples)" if result.draws is not None
                          else ""), justify="right")
    for k, v in result.params.items():
        ci = result.ci.get(k)
        t.add_row(k, fmt(v), "fixed" if k in law.fixed else
                  (fmt_ci(ci)))
    out.print(t)
    out.print(f"{result.objective}; {result.n_points} points, {result.n_runs} runs; "
              f"{law.citation}", markup=False, highlight=False)
    print_notes(result.notes)


@app.command()
@handle
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
    obs = load(paths, example, experiment, recipe, metric, where, "all")
    result = holdout_eval(make_law(law), obs, checkpoints=checkpoints, min_params=min_params,
                          loss=loss)
    if emit_json(json_out, result.to_dict()):
        return
    t = DataTable(title=f"Hold-out: {law} fitted below N = {count(result.target_params)}",
                  caption="ARE = mean |L - L_hat| / L over the targets (lower is better)")
    for col in ("", "ARE", "fitted points", "target points"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row(law, f"{result.are:.4f}", str(result.n_fit_points), str(result.n_target_points))
    t.add_row("lowest observed loss", f"{result.baseline_are:.4f}", "", "")
    out.print(t)
    print_notes(result.fit.notes)


@app.command()
@handle
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
    if emit_json(json_out, result.to_dict()):
        return
    t = DataTable(title=f"Compute-optimal allocation at C = {flops:.3g} FLOPs ({fitted.law.name})")
    t.add_column("")
    t.add_column("estimate", justify="right")
    t.add_column(f"{fitted.level:.0%} CI", justify="right")
    for k, label in (("params", "N* (params)"), ("tokens", "D* (tokens)"),
                     ("tokens_per_param", "tokens per parameter"), ("loss", "loss")):
        ci = result.ci.get(k)
        f = count if k in ("params", "tokens") else fmt
        t.add_row(label, f(getattr(result, k)), f"[{f(ci.lo)}, {f(ci.hi)}]" if ci else "—")
    out.print(t)
    print_notes(result.notes)


@app.command()
@handle
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
    obs = load(paths, example, experiment, recipe, metric, where, "final")
    result = isoflop_analysis(obs, tolerance=tolerance)
    if emit_json(json_out, result.to_dict()):
        return
    t = DataTable(title=f"IsoFLOP minima: N* ~ C^{result.a:.3f}, D* ~ C^{result.b:.3f}")
    for col in ("FLOPs", "runs", "N*", "D*", "loss at N*"):
        t.add_column(col, justify="right")
    for b in result.budgets:
        t.add_row(f"{b['flops']:.3g}", str(b["n_runs"]), count(b["params"]), count(b["tokens"]),
                  f"{b['loss']:.4f}")
    out.print(t)
    print_notes(result.notes)
