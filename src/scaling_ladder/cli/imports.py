"""``ladder import wandb · tensorboard · hf · lm-eval · mlflow``: runs trained elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..observations.importers import (
    read_hf,
    read_lm_eval,
    read_mlflow,
    read_tensorboard,
    read_wandb,
)
from ..observations.io import FORMATS
from ..observations.table import Observations
from .common import (
    Experiment,
    JsonOut,
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
# per-run metadata (observations.importers.meta): VALUE for every run, or RUN=VALUE (a glob)
MapAuto = Annotated[str | None, typer.Option("--map", help="key=name pairs: step, tokens, "
                                             "params and metrics, e.g. train=train/loss,"
                                             "val/c4=eval/c4_loss. Default: names that are "
                                             "metric names already (train/loss as train).")]
ParamsRun = Annotated[list[str] | None, typer.Option(
    "--params", help="N: one number for one run, or RUN=N per run (a glob on run names; "
    "repeatable).", metavar="[RUN=]N")]
ParamsFrom = Annotated[str | None, typer.Option(
    "--params-from", help="config: N from each run's config (a count it states, else "
    "counted from n_layer, d_model, vocab_size...); config-nonembed: without embeddings.")]
SameSize = Annotated[bool, typer.Option("--same-size", help="Several runs share the one "
                                        "bare --params on purpose.")]
TokensRun = Annotated[list[str] | None, typer.Option(
    "--tokens-per-step", help="Tokens per optimiser step (batch x sequence length), or "
    "RUN=X; default: from the run's config, where it has batch size and sequence length.",
    metavar="[RUN=]X")]
SeedRun = Annotated[list[str] | None, typer.Option("--seed", help="Seed, or RUN=SEED "
                                                   "(default: the run's config).",
                                                   metavar="[RUN=]SEED")]
LrRun = Annotated[list[str] | None, typer.Option("--lr", help="Learning rate, or RUN=LR "
                                                 "(default: the run's config).",
                                                 metavar="[RUN=]LR")]
RecipeRun = Annotated[list[str] | None, typer.Option("--recipe", help="Recipe, or RUN=NAME "
                                                     "(default: the run's config, else "
                                                     "default).", metavar="[RUN=]NAME")]


def import_summary(obs: Observations) -> dict:
    """What was imported: each run's N, D range, rows and metrics; the ranges; rows set aside."""
    f = obs.frame
    runs = []
    for (experiment, run), g in f.groupby(["experiment", "run"], sort=False):
        item = {"experiment": experiment, "run": run, "recipe": str(g["recipe"].iloc[0]),
                "params": int(g["params"].iloc[0]), "tokens": [float(g["tokens"].min()),
                                                                float(g["tokens"].max())],
                "rows": len(g), "metrics": sorted(g["metric"].unique())}
        for col in ("seed", "lr", "batch_tokens", "params_total", "params_nonembed"):
            if col in g and g[col].notna().any():
                value = float(g[col].dropna().iloc[0])
                item[col] = int(value) if col != "lr" and value.is_integer() else value
        runs.append(item)
    return {"rows": len(obs), "runs": obs.n_runs, "sources": list(obs.sources),
            "params": [int(f["params"].min()), int(f["params"].max())],
            "tokens": [float(f["tokens"].min()), float(f["tokens"].max())],
            "metrics": obs.metrics, "set_aside": dict(obs.set_aside), "run_list": runs}


def _report_import(obs: Observations, target: Path, json_out: str | None) -> None:
    obs.write(target)
    if emit_json(json_out, {**import_summary(obs), "out": str(target)}):
        return
    out.print(selection_table(obs))
    out.print(f"wrote {len(obs):,} rows to {target}")


@import_app.command("wandb")
@handle
def import_wandb(
    path: Annotated[Path, typer.Argument(help="W&B run folders (wandb/, run-*, offline-run-*), "
                                         "a history as JSON / JSON Lines, or a CSV export.")],
    out_path: Output,
    mapping: MapAuto = None,
    run: Annotated[str | None, typer.Option(help="Run name (run-history export), or the one "
                                            "run to keep.")] = None,
    params: ParamsRun = None,
    params_from: ParamsFrom = None,
    same_size: SameSize = False,
    experiment: Experiment = None,
    recipe: RecipeRun = None,
    tokens_per_step: TokensRun = None,
    seed: SeedRun = None,
    lr: LrRun = None,
    kind: KindOpt = "loss",
    json_out: JsonOut = None,
) -> None:
    """Convert W&B runs (local run folders, JSON, JSON Lines or CSV exports) to observations.

    Example: ladder import wandb wandb/ --params-from config -o runs.csv; ladder import wandb
    panel.csv --map val/c4=eval/c4_loss --params '125m=1.2e8' --params '350m=3.5e8'
    --tokens-per-step 524288 -o runs.csv
    """
    obs = read_wandb(path, mapping=mapping, run=run, params=params, params_from=params_from,
                     same_size=same_size, experiment=experiment, recipe=recipe,
                     tokens_per_step=tokens_per_step, seed=seed, lr=lr, kind=kind)
    _report_import(obs, out_path, json_out)


@import_app.command("tensorboard")
@handle
def import_tensorboard(
    logdir: Annotated[Path, typer.Argument(help="A directory of TensorBoard event files; "
                                           "each subdirectory with events is a run.")],
    out_path: Output,
    mapping: MapAuto = None,
    params: ParamsRun = None,
    params_from: ParamsFrom = None,
    same_size: SameSize = False,
    experiment: Experiment = None,
    recipe: RecipeRun = None,
    tokens_per_step: TokensRun = None,
    seed: SeedRun = None,
    lr: LrRun = None,
    kind: KindOpt = "loss",
    json_out: JsonOut = None,
) -> None:
    """Convert TensorBoard scalars to observations (needs the tb extra); hparams
    (add_hparams) are each run's config.

    Example: ladder import tensorboard logs/ --map train=loss/train --params '125m=1.2e8'
    --params '350m=3.5e8' --tokens-per-step 524288 -o runs.csv
    """
    obs = read_tensorboard(logdir, mapping=mapping, params=params, params_from=params_from,
                           same_size=same_size, experiment=experiment, recipe=recipe,
                           tokens_per_step=tokens_per_step, seed=seed, lr=lr, kind=kind)
    _report_import(obs, out_path, json_out)


def _notes(obs: Observations, json_out: str | None, column: str, what: str) -> None:
    """Say where a value came from (a column such as tokens_from), with the runs it holds for."""
    if json_out is not None or column not in obs.frame:
        return
    for source, g in obs.frame.groupby(column, sort=False):
        runs = list(dict.fromkeys(g["run"]))
        out.print(f"{what}: {source} ({', '.join(runs[:6])}"
                  f"{f', … {len(runs)} runs' if len(runs) > 6 else ''})", markup=False,
                  highlight=False)


@import_app.command("hf")
@handle
def import_hf(
    path: Annotated[Path, typer.Argument(help="A Trainer output folder (checkpoint-*/"
                                         "trainer_state.json), or a folder of them.")],
    out_path: Output,
    params: ParamsRun = None,
    params_from: Annotated[str | None, typer.Option(
        "--params-from", help="config (default without --params): N counted from each run's "
        "config.json as the trainer counts it; config-nonembed: without embeddings.")] = None,
    same_size: SameSize = False,
    seq_len: Annotated[int | None, typer.Option(
        "--seq-len", min=1, help="Sequence length: tokens per step = the batch in "
        "training_args.bin x this, where no num_input_tokens_seen was logged.")] = None,
    tokens_per_step: TokensRun = None,
    eval_name: Annotated[str, typer.Option(help="Slice name of eval_loss (val/<name>).")
                         ] = "eval",
    experiment: Annotated[str | None, typer.Option(help="Experiment name (default: the "
                                                   "folder's name).")] = None,
    recipe: RecipeRun = None,
    seed: SeedRun = None,
    lr: LrRun = None,
    json_out: JsonOut = None,
) -> None:
    """Convert Hugging Face Trainer output folders (trainer_state.json log_history,
    config.json) to observations (N counted needs the hf extra).

    Example: ladder import hf out/ --seq-len 2048 -o runs.csv
    """
    obs = read_hf(path, params=params, params_from=params_from, same_size=same_size,
                  tokens_per_step=tokens_per_step, seq_len=seq_len, experiment=experiment,
                  recipe=recipe, seed=seed, lr=lr, eval_name=eval_name)
    _report_import(obs, out_path, json_out)
    _notes(obs, json_out, "tokens_from", "tokens")


@import_app.command("lm-eval")
@handle
def import_lm_eval(
    paths: Annotated[list[Path], typer.Argument(help="lm-eval results_*.json files, or "
                                                "folders of them (--output_path).")],
    out_path: Output,
    runs: Annotated[Path | None, typer.Option(
        "--runs", help="Observations of the evaluated runs (e.g. from ladder import hf): N and "
        "D of the checkpoint each file's model path names.")] = None,
    prefer: Annotated[str, typer.Option(help="acc_norm or acc, where a task has both.")
                      ] = "acc_norm",
    run: Annotated[str | None, typer.Option(help="Run name of every file (default: from "
                                            "the model path).")] = None,
    params: ParamsRun = None,
    same_size: SameSize = False,
    tokens: Annotated[float | None, typer.Option(help="Tokens seen by the evaluated "
                                                 "checkpoint (without --runs).")] = None,
    tokens_per_step: TokensRun = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment name without --runs.")
                          ] = None,
    recipe: Annotated[str | None, typer.Option(help="Recipe name without --runs.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Convert lm-evaluation-harness results to ds/<task> accuracies of the checkpoints
    they evaluate.

    Example: ladder import lm-eval evals/ --runs runs.csv -o tasks.csv
    """
    obs = read_lm_eval(paths, runs=runs, prefer=prefer, run=run, params=params,
                       same_size=same_size, tokens=tokens, tokens_per_step=tokens_per_step,
                       experiment=experiment, recipe=recipe)
    _report_import(obs, out_path, json_out)
    _notes(obs, json_out, "random_baseline_from", "random_baseline")


@import_app.command("mlflow")
@handle
def import_mlflow(
    path: Annotated[Path, typer.Argument(help="An MLflow tracking folder (mlruns/).")],
    out_path: Output,
    mapping: MapAuto = None,
    params: ParamsRun = None,
    params_from: ParamsFrom = None,
    same_size: SameSize = False,
    experiment: Annotated[str | None, typer.Option(help="Keep this MLflow experiment.")
                          ] = None,
    recipe: RecipeRun = None,
    tokens_per_step: TokensRun = None,
    seed: SeedRun = None,
    lr: LrRun = None,
    kind: KindOpt = "loss",
    json_out: JsonOut = None,
) -> None:
    """Convert MLflow runs (metric histories; params and tags as each run's config) to
    observations (needs the mlflow extra).

    Example: ladder import mlflow mlruns/ --map train=train_loss,val/c4=val_loss
    --params-from config -o runs.csv
    """
    obs = read_mlflow(path, mapping=mapping, params=params, params_from=params_from,
                      same_size=same_size, experiment=experiment, recipe=recipe,
                      tokens_per_step=tokens_per_step, seed=seed, lr=lr, kind=kind)
    _report_import(obs, out_path, json_out)
