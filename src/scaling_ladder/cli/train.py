"""``ladder plan · train · demo``: plan a ladder and train its proxies."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import LadderError
from ..files import write_atomic
from ..format import count, duration, sci
from .common import (
    DataTable,
    JsonOut,
    app,
    emit_json,
    err,
    handle,
    out,
    output,
    phase_progress,
    print_notes,
    progress_bar,
    write_json,
)

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
            value = "[" + ", ".join(json.dumps(v) if name == "recipes" else _toml_float(v)
                                    for v in items) + "]"
        elif isinstance(value, str):
            value = json.dumps(value)
        out.append(f"{keys[name]}={value}")
    return out


def _toml_float(text: str) -> str:
    """A --multipliers item as a TOML float (inf and nan too: the spec check names them)."""
    try:
        return repr(float(text))
    except ValueError:
        raise ValueError(f"--multipliers takes numbers, e.g. 5,20,80. Got {text!r}.") from None


def _plan_table(p) -> DataTable:
    untied = any(r.params_no_input_embed != r.params_total for r in p.runs)
    vocab = p.runs[0].vocab_size if p.runs else p.spec.vocab_size
    t = DataTable(title=f"Ladder {p.spec.experiment}: {len(p.runs)} runs, {sci(p.flops)} FLOPs "
                  f"({100 * p.flops / p.target_flops:.2g}% of the target's)",
                  caption=f"N = {p.spec.params_convention} parameters (drives tokens = k N); "
                  f"vocabulary {vocab}; FLOPs with the attention term, head included; time on "
                  f"{p.device.name} x{p.device.workers}, "
                  f"{'measured' if p.device.measured else 'assumed'} peak")
    staged = len({r.stage for r in p.runs}) > 1
    cols = (["stage"] if staged else []) + ["runs", "shape", "N", "non-emb."] + (
        ["no in-emb."] if untied else []) + ["tokens", "LR", "batch", "steps", "FLOPs", "6ND",
                                             "time"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("stage", "shape") else "right")
    groups: dict[tuple, list] = {}
    for r in p.runs:
        groups.setdefault((r.stage, r.size, r.tokens, r.lr), []).append(r)
    for (stage, size, tokens, lr), rs in groups.items():
        r = rs[0]
        t.add_row(*([stage] if staged else []), str(len(rs)), size, count(r.params),
                  count(r.params_nonembed),
                  *([count(r.params_no_input_embed)] if untied else []),
                  count(tokens), f"{lr:.3g}", f"{r.batch_sequences}x{r.seq_len}",
                  str(r.steps), sci(r.flops), sci(r.flops_6nd), duration(r.seconds * len(rs)))
    return t


@app.command()
@handle
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
                                                  "and runs) as TOML for ladder train.",
                                                  callback=output((".toml",),
                                                                  example="plan.toml"))
                        ] = None,
    json_out: JsonOut = None,
) -> None:
    """Plan a ladder: sizes, tokens, seeds, learning rates, checkpoints, FLOPs and time.

    The spec format is in the docstring of scaling_ladder.spec. Example: ladder plan --recipes
    balanced,code-heavy --max-params 5e5 --tokens 4e5 --out plan.toml
    """
    from ..plan.plan import build_plan, device_named

    overrides = _plan_overrides(
        recipes=recipes, sizes=sizes, min_params=min_params, max_params=max_params,
        multipliers=multipliers, tokens=tokens, protocol=protocol, schedule=schedule,
        target_params=target_params, budget_flops=budget_flops, budget_hours=budget_hours)
    result = build_plan(spec, overrides + list(set_ or []), data_dir=data,
                        device=device_named(device, workers))
    if out_path:
        write_atomic(out_path, result.to_toml())
    if emit_json(json_out, result.to_dict()):
        return
    out.print(_plan_table(result))
    out.print(f"estimated time: {duration(result.wall_seconds())} on {result.device.workers} "
              f"worker(s), {sci(sum(r.seconds for r in result.runs) / 3600)} device hours")
    print_notes(result.notes)
    if out_path:
        out.print(f"wrote {out_path}")


@app.command()
@handle
def train(
    spec: Annotated[Path, typer.Argument(help="A plan or spec (TOML) from ladder plan.",
                                         show_default=False)],
    data: Annotated[Path, typer.Option("--data", help="Token data made by ladder data build.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for runs, checkpoints, "
                                          "logs and observations.jsonl.",
                                          callback=output(folder=True))],
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
    train.precision=float32); the others re-plan. The plan, the data (token files verified
    by SHA-256), the device and the options are checked before the first step: exit status 2
    lists every problem. One ladder at a time trains into a folder. Example: ladder train
    plan.toml --data tokens/ --out runs/ --executor local
    """
    try:
        import torch  # noqa: F401 - only to say clearly that the extra is missing
    except ImportError:
        raise LadderError("ladder train needs torch: pip install 'scaling-ladder[train]'"
                          ) from None
    from ..plan.plan import build_plan
    from ..train import options_from, train_ladder

    sets = list(set_ or [])
    options = options_from({"device": device, "compile": compile_},
                           [s[len("train."):] for s in sets if s.startswith("train.")])
    ladder = build_plan(spec, [s for s in sets if not s.startswith("train.")], data_dir=data)
    if stage:
        ladder = ladder.stage(stage)
    with _ladder_progress(quiet or json_out == "-") as progress:
        result = train_ladder(ladder, data, out_dir, executor=executor, options=options,
                              workers=workers, address=address, progress=progress,
                              plan_file=spec)
    for r in result.runs:  # what a run trained now recovered from (a corrupt checkpoint, ...)
        for note in (r.get("notes") or []) if r["state"] != "skipped" else []:
            err.print(f"run {r['name']}: {note}", markup=False, highlight=False,
                      soft_wrap=True)
    if json_out:
        write_json(json_out, result.to_dict())
    if json_out != "-":
        t = DataTable(title=f"{len(result.runs)} runs in {result.seconds:.0f} s "
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


@app.command()
@handle
def demo(
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for the corpus, token files, "
                                          "runs and report (reused on a re-run).",
                                          callback=output(folder=True))] = Path(
        "ladder-demo"),
    experiment: Annotated[str, typer.Option(
        help="mixtures: 3 data mixtures compared against balanced; tokenizer: byte-level "
        "against a 4k BPE on one mixture, decided in bits/byte with the per-token ranking "
        "beside it.")] = "mixtures",
    json_out: JsonOut = None,
) -> None:
    """Run the whole loop on a tiny bundled ladder: data, plan, train, fit, compare, report.

    3 recipes x 3 sizes of byte-level proxies train on 2 CPU cores in a few minutes; run it
    again to resume. Example: ladder demo --out ladder-demo; ladder demo --experiment
    tokenizer --out tokenizer-demo
    """
    from .. import demo
    from ..demo import tokenizer

    if experiment not in ("mixtures", "tokenizer"):
        raise ValueError(f"The --experiment option is mixtures or tokenizer. Got {experiment!r}.")
    steps = tokenizer if experiment == "tokenizer" else demo
    quiet = json_out == "-"
    with phase_progress(quiet) as progress:
        data_dir = steps.build_data(out_dir, progress=progress)
    with _ladder_progress(quiet) as progress:
        observations = steps.train(out_dir, data_dir, progress=progress)
    with progress_bar("compare and report", quiet) as progress:
        result = steps.decide_and_report(out_dir, observations, data_dir, progress=progress)
    if emit_json(json_out, {"report": str(result.report), "observations": str(observations),
                            "decision": result.decision, "recipes": result.recipes,
                            "reasons": list(result.reasons)}):
        return
    t = DataTable(title=f"Decision against {steps.BASELINE} on {steps.METRIC}: {result.decision}")
    t.add_column("recipe")
    t.add_column("decision")
    for name, decision in result.recipes.items():
        t.add_row(name, decision)
    out.print(t)
    for reason in result.reasons:
        out.print(f"  {reason}", markup=False)
    per_token = json.loads((out_dir / "comparison.json").read_text()).get("per_token")
    if per_token:  # the tokenizer experiment: the trap beside the decision
        t = DataTable(title=f"{steps.METRIC} at the largest proxy: decided per byte, not per "
                      "token")
        for col in ("recipe", "bits/byte", "rank", "nats/token", "rank per token"):
            t.add_column(col, justify="left" if col == "recipe" else "right")
        for r in per_token:
            t.add_row(r["recipe"], f"{r['bits_per_byte']:.4f}", str(r["rank_per_byte"]),
                      f"{r['nats_per_token']:.4f}", str(r["rank_per_token"]))
        out.print(t)
    out.print(f"report: {result.report}")
