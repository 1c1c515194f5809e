"""``ladder import wandb · tensorboard``: runs trained elsewhere into observations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..observations.importers import parse_mapping, read_tensorboard, read_wandb_csv
from ..observations.io import FORMATS
from ..observations.table import Observations
from .common import (
    Experiment,
    JsonOut,
    Recipe,
    app,
    emit_json,
    handle,
    out,
    output,
    selection_table,
)

import_app = typer.Typer(no_args_is_help=True, help="Import runs trained elsewhere.")
app.add_typer(import_app, name="import")

# ------------------------------------------------------------------------------- import

MapOpt = Annotated[str, typer.Option("--map", help="key=name pairs: step, tokens, params and "
                                     "metrics, e.g. train=train/loss,val/c4=eval/c4_loss.")]
Output = Annotated[Path, typer.Option("-o", "--out", help="Write observations here (.csv, "
                                      ".jsonl, .parquet).",
                                      callback=output(tuple(FORMATS), example="runs.csv"))]
ParamsOpt = Annotated[float | None, typer.Option("--params", help="Parameter count N.")]
TokensPerStep = Annotated[float | None, typer.Option(help="Tokens per optimiser step (batch x "
                                                     "sequence length).")]
KindOpt = Annotated[str, typer.Option(help="loss, perplexity or accuracy.")]


def _report_import(obs: Observations, target: Path, json_out: str | None) -> None:
    obs.write(target)
    if emit_json(json_out, {"rows": len(obs), "runs": obs.n_runs, "out": str(target),
                               "metrics": obs.metrics, "set_aside": dict(obs.set_aside)}):
        return
    out.print(selection_table(obs))
    out.print(f"wrote {len(obs):,} rows to {target}")


@import_app.command("wandb")
@handle
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
@handle
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
