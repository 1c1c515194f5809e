"""lm-evaluation-harness results -> ``ds/<task>`` observations of the checkpoints they evaluate.

A results file (``results_<date>.json``, written by ``lm_eval --output_path``; a folder is
searched for them) holds ``results`` per task (``acc,none``, ``acc_norm,none`` and their
``_stderr``) and ``config.model_args``, whose model path or revision names the checkpoint::

    pretrained=out/run-125m/checkpoint-3000        -> run run-125m, step 3000
    pretrained=EleutherAI/pythia-160m,revision=step3000  -> run pythia-160m, step 3000

Each task gives one row (kind accuracy): ``acc_norm`` where the task has it, else ``acc``
(``prefer``), with ``stderr``, ``measure`` and ``random_baseline`` (chance accuracy), taken
from the task's list of choices in the file's ``configs``, else from the number of choices
of each sample in ``samples_<task>_<date>.jsonl`` beside it (``--log_samples``), else from
:data:`KNOWN_BASELINES`; ``random_baseline_from`` says which.

N and D come from ``runs`` (observations of the same runs, e.g. from ``ladder import hf``):
the row of the run whose name is a component of the model path, at the evaluated step (its
final checkpoint when the path names none); or from ``params`` and ``tokens`` /
``tokens_per_step`` x step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..table import Observations, read_observations
from .common import finish, listing
from .meta import Meta

MEASURES = ("acc", "acc_norm")
KNOWN_BASELINES = {"hellaswag": 0.25, "arc_easy": 0.25, "arc_challenge": 0.25, "piqa": 0.5,
                   "winogrande": 0.5, "boolq": 0.5, "copa": 0.5, "openbookqa": 0.25,
                   "sciq": 0.25, "mmlu": 0.25}
_CKPT = re.compile(r"checkpoint-(\d+)")
_STEP = re.compile(r"(?:global_)?step[-_]?(\d+)")
_FIX = "pass the results_*.json that lm_eval --output_path wrote"


def read_lm_eval(paths, *, runs: str | Path | Observations | None = None,
                 prefer: str = "acc_norm", run: str | None = None, params=None,
                 same_size: bool = False, tokens: float | None = None, tokens_per_step=None,
                 experiment: str | None = None, recipe: str | None = None) -> Observations:
    """Read lm-eval results files (or folders of them) as ``ds/<task>`` accuracy rows.

    ``runs``: an observations file (or table) to join on; else ``params`` and
    ``tokens_per_step`` as in :mod:`.meta` (one value or per run), or ``tokens`` for all.
    """
    if prefer not in MEASURES:
        raise ValueError(f"The 'prefer' argument must be one of {MEASURES}. Got {prefer!r}.")
    files = _result_files(paths)
    meta = Meta.from_args(params=params, same_size=same_size, tokens_per_step=tokens_per_step)
    table = runs if isinstance(runs, Observations) or runs is None else read_observations(runs)
    order = (prefer, *(m for m in MEASURES if m != prefer))
    parts, seen = [], {}
    for path in files:
        data = _load(path)
        name, step = _checkpoint(data, path, run, table)
        where = _locate(table, name, step, path, meta, tokens)
        rows = _task_rows(data, path, order)
        for task in rows["metric"]:
            key = (name, step if step is not None else where["tokens"], task)
            if key in seen:
                raise InputError(str(path), f"evaluates {name} at step {step} on "
                                 f"{task[3:]} again, as {seen[key]} does",
                                 fix="pass one results file per checkpoint and task")
            seen[key] = path
        for col, value in where.items():
            rows[col] = value
        rows["run"], rows["step"], rows["source"] = name, step, str(path)
        parts.append(rows)
    meta.check_shared(str(files[0]) if len(files) == 1 else f"{len(files)} results files",
                      list(dict.fromkeys(p["run"].iloc[0] for p in parts)))
    raw = pd.concat(parts, ignore_index=True)
    raw["experiment"] = raw["experiment"].fillna(experiment or "lm-eval")
    raw["recipe"] = raw["recipe"].fillna(recipe or "default")
    frames, aside = [], []
    for (exp, rec), group in raw.groupby(["experiment", "recipe"], sort=False):
        src = " + ".join(dict.fromkeys(group["source"]))
        obs = finish(group.drop(columns=["experiment", "recipe"]), src, "step", exp, rec)
        frames.append(obs.frame)
        aside += obs.set_aside
    return Observations(pd.concat(frames, ignore_index=True), tuple(aside),
                        tuple(map(str, files)))


def _result_files(paths) -> list[Path]:
    files = []
    for p in map(Path, [paths] if isinstance(paths, str | Path) else paths):
        if p.is_dir():
            found = sorted(p.rglob("results*.json"))
            if not found:
                raise InputError(str(p), "holds no results*.json", fix=_FIX)
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(str(p), "file not found", fix=_FIX)
    if not files:
        raise InputError(None, "no results files given", fix=_FIX)
    return files


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot be read as JSON ({exc})", fix=_FIX) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(str(path), 'has no "results" object', fix=_FIX)
    return data


def _model_args(data: dict) -> dict[str, str]:
    args = (data.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):
        args = dict(a.partition("=")[::2] for a in args.split(",") if "=" in a)
    return {str(k).strip(): str(v).strip() for k, v in args.items()}


def _checkpoint(data: dict, path: Path, run: str | None, table) -> tuple[str, int | None]:
    """(run name, step or None) of the model the file evaluates."""
    args = _model_args(data)
    model = args.get("pretrained") or args.get("model") or data.get("model_name") or ""
    parts = [p for p in re.split(r"[/\\]", model) if p]
    step = None
    for text in [args.get("revision", ""), *reversed(parts)]:
        match = _CKPT.fullmatch(text) or _STEP.fullmatch(text)
        if match:
            step = int(match.group(1))
            break
    if run is not None:
        return run, step
    names = parts[:-1] if parts and _CKPT.fullmatch(parts[-1]) else parts
    if table is not None:
        known = set(table.frame["run"])
        name = next((p for p in reversed(parts) if p in known), None)
        if name is None:
            raise InputError(str(path), f'its model "{model}" names none of the runs',
                             fix=f"give --run, or name the runs as in the model path: "
                             f"{listing(known, names[-1] if names else '')}")
        return name, step
    if not names:
        raise InputError(str(path), "config.model_args names no model path",
                         fix="give --run NAME")
    return names[-1], step


def _locate(table, name, step, path, meta: Meta, tokens) -> dict:
    """N, D (and experiment, recipe, seed where known) of the evaluated checkpoint."""
    out = {"experiment": None, "recipe": None}
    if table is not None:
        f = table.frame[table.frame["run"] == name]
        if step is None:
            at = f[f["tokens"] == f["tokens"].max()]
        elif "step" in f:
            at = f[f["step"] == step]
            if at.empty:
                raise InputError(str(path), f"evaluates {name} at step {step}, and the runs "
                                 f"table has no such step", fix="log that checkpoint, or "
                                 f"choose one of steps {listing(sorted(set(f['step'])))}")
        else:
            per = meta.tokens_per_step.of(name)[0]
            if per is None:
                raise InputError(str(path), "the runs table has no step column to find "
                                 f"step {step} by", fix="give --tokens-per-step")
            at = f.assign(tokens=step * per).head(1)
        row = at.iloc[0]
        out.update(params=int(row["params"]), tokens=float(row["tokens"]),
                   experiment=row["experiment"], recipe=row["recipe"])
        for col in ("seed", "lr", "params_total", "params_nonembed"):
            if col in at and pd.notna(row[col]):
                out[col] = row[col]
        return out
    n, source = meta.params.of(name)
    if n is None:
        raise InputError(str(path), f"no parameter count for run {name}",
                         fix=f"give --runs runs.csv or --params {name}=N")
    if source == "bare":
        meta.shared.append(name)
    per = meta.tokens_per_step.of(name)[0]
    if tokens is None and (per is None or step is None):
        raise InputError(str(path), f"no token count for run {name}" + (
            "" if step is not None else " (its model path names no step)"),
            fix="give --runs runs.csv, --tokens D" + (", or --tokens-per-step T"
                                                        if step is not None else ""))
    return {**out, "params": n, "tokens": tokens if tokens is not None else step * per}


def _number(result: dict, name: str) -> float | None:
    """``acc,none`` (0.4), else ``acc`` (0.3), else ``acc,<filter>``."""
    keys = [f"{name},none", name, *(k for k in result if k.startswith(f"{name},"))]
    value = next((result[k] for k in keys if k in result), None)
    return float(value) if isinstance(value, int | float) else None


def _task_rows(data: dict, path: Path, order) -> pd.DataFrame:
    rows = []
    for task, result in data["results"].items():
        if not isinstance(result, dict):
            continue
        measure = next((m for m in order if _number(result, m) is not None), None)
        if measure is None:
            continue
        baseline, source = _baseline(data, path, task)
        n = ((data.get("n-samples") or {}).get(task) or {}).get("effective")
        rows.append((f"ds/{task}", "accuracy", _number(result, measure),
                     _number(result, f"{measure}_stderr"), measure, baseline, source, n))
    if not rows:
        raise InputError(str(path), "no task in results has acc or acc_norm",
                         fix="import multiple-choice tasks (acc, acc_norm)")
    raw = pd.DataFrame(rows, columns=["metric", "kind", "value", "stderr", "measure",
                                      "random_baseline", "random_baseline_from", "n_samples"])
    return raw.assign(_line=0)


def _baseline(data: dict, path: Path, task: str) -> tuple[float, str]:
    """Chance accuracy: 1 / choices from the task config, the samples, or the known table."""
    choices = ((data.get("configs") or {}).get(task) or {}).get("doc_to_choice")
    if isinstance(choices, list) and choices:
        return 1 / len(choices), "task config"
    date = path.stem.removeprefix("results").lstrip("_")
    for samples in sorted(path.parent.glob(f"samples_{task}_{date}*.jsonl")):
        counts = []
        for line in samples.read_text().splitlines():
            try:
                args = json.loads(line).get("arguments") if line.strip() else None
            except json.JSONDecodeError:
                args = None
            if args:
                counts.append(len(args))
        if counts:
            return float(np.mean(1 / np.array(counts))), f"samples ({samples.name})"
    if task in KNOWN_BASELINES:
        return KNOWN_BASELINES[task], "known tasks table"
    return float("nan"), "unknown"
