"""``ladder downstream``: every task of a ladder predicted at a target, or told unpredictable."""

from __future__ import annotations

from typing import Annotated

import typer

from ..format import count
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
    fmt,
    handle,
    load,
    out,
    print_notes,
    progress_bar,
)


@app.command()
@handle
def downstream(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    recipe: Recipe = None,
    where: Where = None,
    target_params: Annotated[float, typer.Option(help="Target model size N.")] = ...,
    target_tokens: Annotated[float, typer.Option(help="Target training tokens D.")] = ...,
    task: Annotated[list[str] | None, typer.Option(help="Only this task, e.g. ds/hellaswag "
                                                   "(repeatable; default: every ds/ metric).")
                    ] = None,
    loss_metric: Annotated[str | None, typer.Option(help="The loss that predicts each task: a "
                                                    "metric, or a template such as "
                                                    "'task_loss/{task}' (default: the loss "
                                                    "most correlated with the task).")
                           ] = None,
    law: LawName = "chinchilla",
    task_law: Annotated[str, typer.Option(help="Step 2: sigmoid (Bhagia et al. 2024) or "
                                          "exp-error (Gadre et al. 2024).")] = "sigmoid",
    anchor: Annotated[bool, typer.Option("--anchor/--no-anchor", help="Add the point "
                                         "(L = 0, Acc = 1) to step 2.")] = False,
    floor: Annotated[str, typer.Option(help="Step 2's floor: free, baseline (the task's "
                                       "random_baseline) or above-baseline.")] = "baseline",
    smooth: Annotated[int, typer.Option(help="Moving average over this many consecutive "
                                        "checkpoints in step 2.")] = 1,
    task_checkpoints: Annotated[str, typer.Option(help="Checkpoints of step 2 (last:0.5, all, "
                                                  "final, ...).")] = "all",
    checkpoints: Annotated[str, typer.Option(help="Checkpoints of step 1 (auto, final, all, "
                                             "...).")] = "auto",
    bootstrap: Annotated[int, typer.Option(help="Run-clustered resamples of each step.")
                         ] = 100,
    holdout: Annotated[bool, typer.Option("--holdout/--no-holdout", help="Score both steps on "
                                          "the largest model size held out.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Predict every task at the target through its loss (the two-step ladder), with each
    step's error on the largest size held out and a predictable? verdict per task.

    An unpredictable task (near chance at the largest proxy, not rising with compute, a step-2
    residual as large as the spread of accuracies, too few points past the sigmoid's knee)
    gets its reason and no number. Example: ladder downstream --example overtrain --recipe
    redpajama --target-params 6.9e9 --target-tokens 1.38e11
    """
    from ..laws.twostep import TaskOptions
    from ..laws.twostep import downstream as predict_tasks

    options = TaskOptions(law=task_law, anchor=anchor, floor=floor, smooth=smooth,
                          checkpoints=task_checkpoints)
    obs = load(paths, example, experiment, recipe, None, where, "all")
    with progress_bar("tasks", quiet=json_out == "-") as progress:
        result = predict_tasks(obs, target=(target_params, target_tokens), tasks=task,
                               loss_metric=loss_metric, law=law, options=options,
                               checkpoints=checkpoints, bootstrap=bootstrap, seed=seed,
                               holdout=holdout, progress=progress)
    if emit_json(json_out, result.to_dict()):
        return
    recipes = len({t.recipe for t in result.tasks}) > 1
    t = DataTable(title=f"Tasks at N = {count(target_params)}, D = {count(target_tokens)}: "
                  f"{len(result.predictable)} of {len(result.tasks)} predictable",
                  caption=f"step 1 {law}, step 2 {task_law}; held-out error: both steps "
                  "fitted without the largest size, in accuracy points")
    cols = (["recipe"] if recipes else []) + ["task", "loss metric", "accuracy", "95% CI",
                                              "held-out error", "verdict"]
    for col in cols:
        t.add_column(col, justify="right" if col in ("accuracy", "held-out error") else "left")
    for r in result.tasks:
        err = r.holdout.get("error") if r.holdout else None
        t.add_row(*([r.recipe] if recipes else []), r.task, r.loss_metric,
                  fmt(r.mean) if r.mean is not None else "—",
                  f"[{fmt(r.ci[0])}, {fmt(r.ci[1])}]" if r.ci else "—",
                  f"{100 * err:.1f}" if err is not None else "—",
                  "predictable" if r.predictable else
                  "; ".join(why.split(":")[0] for why in r.reasons))
    out.print(t)
    chosen: dict[str, list[str]] = {}
    for r in result.tasks:
        chosen.setdefault(r.loss_metric_reason.split(" (")[0], []).append(r.loss_metric)
    notes = [f"loss metric {why}: " + ", ".join(f"{m} ({ms.count(m)} tasks)"
                                                for m in sorted(set(ms)))
             for why, ms in chosen.items()]
    print_notes(notes + list(result.notes) + ["the reasons in full: --json"])
