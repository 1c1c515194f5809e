"""``ladder report · check``: the scaling report and the live monitor."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError
from ..laws.fit import LawFit
from ..observations.table import read_observations
from .common import (
    DataTable,
    Example,
    Experiment,
    JsonOut,
    LawName,
    Paths,
    Recipe,
    Where,
    app,
    emit_json,
    handle,
    load,
    out,
    output,
    progress_bar,
    source,
    write_json,
)
from .decide import RulePath
from .jobs import Jobs

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


@app.command("report")
@handle
def report_verb(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    where: Where = None,
    metric: Annotated[str | None, typer.Option(help="The loss metric to fit and decide on "
                                               "(default: the one most runs log).")] = None,
    out_path: Annotated[Path, typer.Option("-o", "--out", help="The report file (.html or "
                                           ".md).", callback=output(example="report.html"))
                        ] = Path("report.html"),
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
    tasks: Annotated[bool, typer.Option("--downstream", help="Predict every task at the "
                                        "target through its loss (ladder downstream's "
                                        "defaults); slower.")] = False,
    checks_path: Annotated[Path | None, typer.Option("--checks", help="Stage-0 data checks: "
                                                     "ladder data check --json FILE, or the "
                                                     "built data directory.")] = None,
    baseline: Annotated[str | None, typer.Option(help="The baseline recipe.")] = None,
    target_params: Annotated[float | None, typer.Option(help="Target model size N.")] = None,
    target_tokens: Annotated[float | None, typer.Option(help="Target tokens D.")] = None,
    law: LawName = "chinchilla",
    bootstrap: Annotated[int, typer.Option(help="Run-clustered bootstrap resamples of the "
                                           "fits made here (with --decide, also of the "
                                           "comparison's joint fit).")] = 100,
    slice_bootstrap: Annotated[int, typer.Option(help="With --decide: resamples of every other "
                                                 "slice's and task's fit.")] = 30,
    gate_bootstrap: Annotated[int, typer.Option(help="With --decide: resamples of each stage "
                                                "gate's fit (0: no stage gates).")] = 50,
    rule_path: RulePath = None,
    holdout: Annotated[bool, typer.Option("--holdout/--no-holdout", help="Hold out the largest "
                                          "model size from the fits made here.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    jobs: Jobs = None,
    json_out: JsonOut = None,
) -> None:
    """Write the scaling report: one self-contained HTML page (or Markdown).

    Warnings and the decision, experiments, loss curves, the scaling fit and its prediction at
    the target, IsoFLOP valleys, go/no-go, downstream and regression tables, data checks. With
    a comparison (--decide, or --compare FILE) its numbers are the report's, and its metric,
    baseline and target are the report's. Example: ladder report --example overtrain --metric
    val/c4 --baseline c4 --decide -o report.html
    """
    from ..compare import CompareOptions, Comparison
    from ..compare.decide import Rule
    from ..laws.fit import jobs as processes
    from ..report import build_report
    from ..report.fits import check_given_fit
    from ..report.render import report_format

    if (target_params is None) != (target_tokens is None):
        raise ValueError("Give both --target-params and --target-tokens, or neither.")
    if decide and compare_path:
        raise ValueError("Give --compare FILE or --decide, not both.")
    report_format(out_path, fmt)  # before the work, not after it
    obs = load(paths, example, experiment, recipe, None, where, "all")
    fitted = LawFit.read(fit_path) if fit_path else None
    if fitted is not None:
        try:
            check_given_fit(fitted)
        except InputError as exc:
            raise exc.in_file(str(fit_path)) from None
    compared = None
    if compare_path:
        data = _read_result(compare_path, "a comparison written by ladder compare --json",
                            "write it with ladder compare --json FILE")
        compared = Comparison.from_dict(data, source=str(compare_path))
    options = (CompareOptions(law=law, bootstrap=bootstrap, slice_bootstrap=slice_bootstrap,
                              gate_bootstrap=gate_bootstrap) if decide else None)
    rule = Rule.from_toml(rule_path) if decide and rule_path else None
    checked = None
    if checks_path is not None and checks_path.is_dir():
        from ..data import check as data_check

        checked = data_check(checks_path)
    elif checks_path is not None:
        checked = _read_result(checks_path, "data checks written by ladder data check --json",
                               "write it with ladder data check DIR --json FILE")
    target = (target_params, target_tokens) if target_params is not None else None
    with processes(jobs), progress_bar("report", quiet=json_out == "-") as progress:
        result = build_report(obs, metric=metric, fit=fitted,
                              compare=True if decide else compared, checks=checked,
                              target=target, baseline=baseline, law=law, bootstrap=bootstrap,
                              holdout=holdout, seed=seed, title=title, compare_options=options,
                              rule=rule, downstream=tasks or None, progress=progress)
    written = result.write(out_path, format=fmt)
    if emit_json(json_out, {**result.to_dict(), "out": str(written)}):
        return
    for w in result.warnings:
        out.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    t = DataTable(title=result.title, caption=f"wrote {written} "
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
@handle
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
    from ..monitor.monitor import check_run, read_growing
    from ..monitor.monitor import follow as follow_run

    fitted = LawFit.read(against)
    source(str(run_path))
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
        write_json(json_out, result.to_dict())
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
    t = DataTable(title=f"{result.run} · {result.metric}")
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
