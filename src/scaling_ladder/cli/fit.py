"""``ladder fit · holdout · optimal · isoflop``: scaling laws, hold-out, compute-optimal."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..format import count
from ..laws.compute import isoflop as isoflop_analysis
from ..laws.compute import optimal as optimal_allocation
from ..laws.fit import LawFit
from ..laws.fit import jobs as processes
from ..laws.forms import make_law
from ..laws.holdout import holdout as holdout_eval
from ..laws.twostep import TaskOptions, step_two_baseline, step_two_rows, task_law
from ..observations.table import Observations
from ..units import BITS_PER_BYTE, DATA_UNITS, UNIT_NAMES, to_bits_per_byte
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
from .jobs import Jobs

# ------------------------------------------------------------------------------ the verbs


def in_units(obs: Observations, units: str) -> Observations:
    """``--units``: the observations with every loss in bits/byte (the only conversion)."""
    if UNIT_NAMES.get(units.strip().lower()) != BITS_PER_BYTE:
        raise ValueError(f"The --units option takes bits/byte (or bpb). Got {units!r}.")
    try:
        frame = to_bits_per_byte(obs.frame)
    except ValueError as exc:
        raise InputError(", ".join(obs.sources) or None, str(exc),
                         column="bytes_per_token") from None
    return Observations(frame, obs.set_aside, obs.sources)


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
    checkpoints: Annotated[str | None, typer.Option(
        help="final | all | auto | drop-first:F | drop-first-tokens:T | last:F (default: all; "
             "for a loss-to-accuracy law, step 2's default).")] = None,
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
    loss_metric: Annotated[str | None, typer.Option(help="With --law sigmoid or exp-error: "
                                                    "the loss metric paired with --metric "
                                                    "(the task) by run and checkpoint.")
                           ] = None,
    anchor: Annotated[bool | None, typer.Option("--anchor/--no-anchor", help="Step 2: add the "
                                                "point (L = 0, Acc = 1).",
                                                show_default=False)] = None,
    floor: Annotated[str | None, typer.Option(help="Step 2's floor: free, baseline or "
                                              "above-baseline (random_baseline column).")
                     ] = None,
    smooth: Annotated[int | None, typer.Option(help="Step 2: moving average over this many "
                                               "checkpoints.")] = None,
    units: Annotated[str | None, typer.Option(
        help="bits/byte: convert every loss first (from bytes_per_token, unit bpb or the "
        "trainer's bits_per_byte), as across tokenizers. The fit says its unit.")] = None,
    data: Annotated[str, typer.Option(
        help="The unit of D: tokens, or bytes (tokens x train_bytes_per_token, the training "
        "stream's UTF-8 bytes per token), to compare tokenizers. A bytes fit predicts at D in "
        "bytes; ladder optimal refuses it (6ND counts tokens).")] = "tokens",
    jobs: Jobs = None,
    json_out: JsonOut = None,
) -> None:
    """Fit a scaling law with a robust multi-start estimator and bootstrap CIs.

    Example: ladder fit --example chinchilla --where "besiroglu_outlier == False"; step 2 of a
    task prediction: ladder fit runs.csv --law sigmoid --metric ds/hellaswag --loss-metric
    val/c4; across tokenizers: ladder fit runs.csv --metric val/c4 --units bits/byte --data
    bytes
    """
    data = data.strip().lower()
    if data not in DATA_UNITS:
        raise ValueError(f"The --data option takes tokens or bytes. Got {data!r}.")
    form = make_law(law, fixed=fixed_params(fix))
    step2 = {"anchor": anchor, "floor": floor, "smooth": smooth}
    if form.inputs == ("loss",):
        if not (loss_metric and metric):
            raise ValueError(f"The {law} law maps a loss to a task's accuracy: give the task "
                             "as --metric and the loss as --loss-metric.")
        given = {k: v for k, v in {**step2, "checkpoints": checkpoints}.items() if v is not None}
        options = TaskOptions(law=law, **given)
        both = load(paths, example, experiment, recipe, [metric, loss_metric], where, "all")
        rows = step_two_rows(both.frame, loss_metric=loss_metric, metric=metric,
                             options=options)
        form = task_law(options, step_two_baseline(rows))
        form = replace(form, fixed={**form.fixed, **fixed_params(fix)})
        obs = Observations(rows, both.set_aside, both.sources)
    elif loss_metric or any(v is not None for v in step2.values()):
        raise ValueError(f"--loss-metric, --anchor, --floor and --smooth are for a "
                         f"loss-to-accuracy law (sigmoid, exp-error); the {law} law reads "
                         f"{', '.join(form.inputs)}.")
    else:
        obs = load(paths, example, experiment, recipe, metric, where, checkpoints or "all")
    if units is not None:
        obs = in_units(obs, units)
    share = tuple(s.strip() for s in shared.split(",") if s.strip()) if shared else ()
    with processes(jobs), progress_bar("bootstrap", quiet=json_out == "-" or bootstrap == 0) \
            as progress:
        result = form.fit(obs, loss=loss, bootstrap=bootstrap, seed=seed, by=by, shared=share,
                          weights=weights, progress=progress, data=data)
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
    quality = (f"; rmse {result.rmse:.3g}" + (f", R² {result.r2:.4f}" if result.r2 is not None
                                             else "") + f" ({result.space})"
               if result.rmse is not None else "")
    data = f"; D in {result.data}" if result.data != "tokens" else ""
    out.print(f"{result.objective}; values in {result.unit}{data}; {result.n_points} points, "
              f"{result.n_runs} runs{quality}; "
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
    fitted = LawFit.read(fit_path)
    try:
        result = optimal_allocation(fitted, flops=flops, group=group)
    except InputError as exc:
        raise exc.in_file(str(fit_path)) from None
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
def predict(
    fit_path: Annotated[Path, typer.Option("--fit", help="A fit written by ladder fit --json.")],
    then_path: Annotated[Path | None, typer.Option("--then", help="A loss-to-accuracy fit "
                                                   "(sigmoid, exp-error): predict the task "
                                                   "through the loss --fit predicts.")] = None,
    params: Annotated[float | None, typer.Option(help="Model size N.")] = None,
    tokens: Annotated[float | None, typer.Option(help="Training tokens D (in bytes for a fit "
                                                 "made with --data bytes).")] = None,
    flops: Annotated[float | None, typer.Option(help="Compute C (power-C).")] = None,
    unique_tokens: Annotated[float | None, typer.Option(help="Unique tokens U "
                                                        "(data-constrained).")] = None,
    loss: Annotated[float | None, typer.Option(help="Loss (a loss-to-accuracy fit alone).")
                    ] = None,
    points: Annotated[Path | None, typer.Option("--points", help="Many points: a table with "
                                                "one column per input of the law.")] = None,
    group: Annotated[str | None, typer.Option(help="Group of a fit made with --by.")] = None,
    level: Annotated[float | None, typer.Option(help="Interval level (default: the "
                                                "fit's).")] = None,
    json_out: JsonOut = None,
) -> None:
    """Evaluate a saved fit (or a chain: loss law, then loss-to-accuracy law) at new points,
    with the curve's CI and a new run's PI from the bootstrap draws.

    Example: ladder fit --example chinchilla --json fit.json && ladder predict --fit fit.json
    --params 7e10 --tokens 1.4e12
    """
    from ..laws.predict import predict as predict_points
    from ..laws.predict import read_points

    fitted = LawFit.read(fit_path)
    then = LawFit.read(then_path) if then_path else None
    if then is not None and then.law.inputs != ("loss",):
        raise InputError(str(then_path), f"is a {then.law.name} fit, which does not map loss "
                         "to accuracy", fix="give --then a sigmoid or exp-error fit "
                         "(ladder fit --law sigmoid --json FILE)")
    if then is not None and "loss" in fitted.law.inputs:
        raise InputError(str(fit_path), f"is a {fitted.law.name} fit of accuracy, not of loss",
                         fix="give --fit the loss law's fit and --then the accuracy law's")
    inputs = fitted.law.inputs
    flags = {"params": params, "tokens": tokens, "flops": flops,
             "unique_tokens": unique_tokens, "loss": loss}
    given = {k: v for k, v in flags.items() if v is not None}
    if points is not None:
        if given:
            raise ValueError(f"Give --points FILE or --{next(iter(given)).replace('_', '-')}, "
                             "not both.")
        table = read_points(points, inputs)
    else:
        for k, v in given.items():
            if k not in inputs:
                raise ValueError(f"The {fitted.law.name} law takes "
                                 f"{', '.join('--' + i.replace('_', '-') for i in inputs)}; "
                                 f"--{k.replace('_', '-')} is not one of them.")
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"--{k.replace('_', '-')} must be a number > 0. Got {v:g}.")
        missing = [k for k in inputs if k not in given]
        if missing:
            raise ValueError(f"The {fitted.law.name} law needs --"
                             f"{missing[0].replace('_', '-')} (or --points FILE).")
        table = {k: [given[k]] for k in inputs}
    if level is not None and not 0 < level < 1:
        raise ValueError(f"--level must lie in (0, 1). Got {level:g}.")
    result = predict_points(fitted, table, then=then, group=group, level=level)
    rows = []
    for rec in result.to_dict(orient="records"):
        row = {k: rec[k] for k in inputs}
        if then is not None:
            row["loss"] = rec["loss"]
        row.update(mean=rec["mean"], ci=[rec["ci_lo"], rec["ci_hi"]],
                   pi=[rec["pi_lo"], rec["pi_hi"]])
        rows.append(row)
    if emit_json(json_out, {"predictions": rows, "law": fitted.law.name,
                            "then": then.law.name if then else None,
                            "level": level if level is not None else fitted.level,
                            "data": fitted.data}):
        return
    what = f"{fitted.law.name} then {then.law.name}" if then else fitted.law.name
    t = DataTable(title=f"Predictions of {what}",
                  caption="CI: the fitted curve; PI: a new run (the fit's residuals added)")
    cols = [*inputs, *(["loss"] if then else []), "prediction", "CI", "PI"]
    for col in cols:  # a fit with D in bytes takes "tokens" in bytes: the header says so
        in_bytes = col in ("tokens", "unique_tokens") and fitted.data != "tokens"
        t.add_column(f"{col} (bytes)" if in_bytes else col, justify="right")
    for row in rows:
        t.add_row(*(count(row[k]) if k in ("params", "tokens", "unique_tokens") else fmt(row[k])
                    for k in inputs), *([fmt(row["loss"])] if then else []), fmt(row["mean"]),
                  _pair(row["ci"]), _pair(row["pi"]))
    out.print(t)
    if fitted.draws is None:
        out.print("no bootstrap draws in the fit, so no intervals: fit with --bootstrap 1000")


def _pair(bounds) -> str:
    lo, hi = bounds
    return "—" if lo is None or not math.isfinite(lo) else f"[{fmt(lo)}, {fmt(hi)}]"


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
