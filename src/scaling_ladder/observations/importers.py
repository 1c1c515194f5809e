"""Importers: runs trained elsewhere (W&B CSV exports, TensorBoard events) -> observations.

A *mapping* names, for each observation field, the source's column (W&B) or tag (TensorBoard);
on the command line it is ``--map key=name,key=name`` (:func:`parse_mapping`). Keys:

- ``step``: the step column (W&B only; default ``_step``, else ``Step``);
- ``tokens``: tokens seen at each step; without it, tokens = step x ``tokens_per_step``
  (batch size x sequence length); one of the two is required;
- ``params``: the parameter count, constant over a run; without it, the ``params`` argument;
- any other key is a metric, ``train``, ``val/<slice>`` or ``ds/<task>``. ``kind`` (loss,
  perplexity, accuracy) applies to ``train`` and ``val/*``; ``ds/*`` are accuracies unless
  ``kind`` is a dict naming them.

An empty cell (W&B logs metrics at different steps) is no measurement and gives no row; NaN or
infinite values and checkpoints at 0 tokens are set aside and counted; anything else unreadable
raises :class:`InputError` naming the file, line, column and the fix.

**W&B.** A run-history export holds one run (``run``, default the file stem)::

    _step,_runtime,_timestamp,tokens_seen,train/loss,eval/c4_loss
    1000,61.2,1717000000,4096000,3.91,
    2000,122.0,1717000061,8192000,3.52,3.60

    --map step=_step,tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss

A panel "Export CSV" holds several runs, one ``<run> - <metric>`` column each (``__MIN`` and
``__MAX`` columns are ignored); a mapped name is looked up as ``<run> - <name>``, then as a
column shared by all runs (``Step``)::

    Step,125m - eval/c4_loss,125m - eval/c4_loss__MIN,125m - eval/c4_loss__MAX,350m - eval/...

    --map val/c4=eval/c4_loss          (and tokens_per_step, params)

**TensorBoard.** Every directory under ``logdir`` holding ``events.out.tfevents.*`` files is one
run, named by its path relative to ``logdir``; scalars (``simple_value`` or TF2 scalar tensors)
are read unsampled, at the steps they were logged::

    logs/125m/events.out.tfevents.*   logs/350m/events.out.tfevents.*

    --map train=loss/train,val/c4=loss/val_c4,tokens=progress/tokens

>>> obs = read_tensorboard("logs", mapping="train=loss/train", params=124_000_000,
...                        tokens_per_step=524_288)                     # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, LadderError
from .table import Observations, validate

_SPECIAL = ("step", "tokens", "params")
_METRIC = re.compile(r"train|(val|ds)/\S+")
_SEP = " - "  # W&B panel exports name columns "<run> - <metric>"
_KINDS = ("loss", "perplexity", "accuracy")


class MissingExtraError(LadderError, ImportError):
    """An optional dependency (a package extra) is not installed."""


def parse_mapping(text: str) -> dict[str, str]:
    """``"step=_step,train=train/loss"`` -> ``{"step": "_step", "train": "train/loss"}``."""
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, source = (s.strip() for s in item.partition("="))
        if not sep or not key or not source or key in mapping:
            problem = f'"{key}" is mapped twice' if key in mapping else f'"{item}" is not key=name'
            raise InputError(None, f"--map {problem}",
                             fix="write e.g. --map train=train/loss,val/c4=eval/c4_loss")
        mapping[key] = source
    return mapping


def read_wandb_csv(path: str | Path, *, mapping: Mapping[str, str] | str, run: str | None = None,
                   params: int | None = None, experiment: str | None = None,
                   recipe: str | None = None, tokens_per_step: float | None = None,
                   kind: str | Mapping[str, str] = "loss") -> Observations:
    """Read a W&B CSV export (run history or panel export) as validated observations.

    ``mapping`` is described in the module docstring. ``run`` names the run of a run-history
    export (default: the file stem) or picks one run of a panel export. ``params`` and
    ``tokens_per_step`` stand in for unmapped ``params`` and ``tokens``. ``final`` marks each
    run's last checkpoint per metric.
    """
    path = Path(path)
    mapping, metrics = _check_args(mapping, str(path), params, tokens_per_step, kind)
    table = _read_csv(path)
    cols = list(table.columns)
    runs = _panel_runs(cols, metrics.values())
    panel = bool(runs) and not any(src in cols for src in metrics.values())
    if not panel:
        runs = [run or path.stem]
    elif run is not None:
        if run not in runs:
            raise InputError(str(path), f'no run "{run}" in this panel export', line=1,
                             fix=f"choose one of {_listing(runs, run)}")
        runs = [run]
    sources = {k: mapping[k] for k in _SPECIAL if k in mapping}
    default = next((c for c in ("_step", "Step") if c in cols), None)
    if "step" not in sources and (default or "tokens" not in mapping):
        sources["step"] = default or "_step"  # a panel with a tokens x-axis has no step column
    for key, src in [*sources.items(), *metrics.items()]:
        _require_column(cols, str(path), key, src, runs if panel else [])
    parts = [_wandb_run(table, path, name, name if panel else None, sources, metrics, params,
                        tokens_per_step, kind) for name in runs]
    parts = [p for p in parts if p is not None]
    raw = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return _finish(raw, str(path), "line", experiment or path.stem, recipe)


def read_tensorboard(logdir: str | Path, *, mapping: Mapping[str, str] | str,
                     params: int | None = None, experiment: str | None = None,
                     recipe: str | None = None, tokens_per_step: float | None = None,
                     kind: str | Mapping[str, str] = "loss") -> Observations:
    """Read TensorBoard event files (one run per directory) as observations.

    Needs the ``tb`` extra. Arguments as for :func:`read_wandb_csv`; the mapping names tags.
    Scalars are read without sampling (``size_guidance`` 0), so every logged step is kept.
    """
    accumulator, tensor_util = _tensorboard()
    logdir = Path(logdir)
    mapping, metrics = _check_args(mapping, str(logdir), params, tokens_per_step, kind)
    if "step" in mapping:
        raise InputError(str(logdir), "TensorBoard events carry their own step",
                         fix="remove step= from the mapping")
    frames, aside = [], []
    for run_dir in _event_dirs(logdir):
        name = run_dir.relative_to(logdir).as_posix() if run_dir != logdir else logdir.name
        acc = accumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        scalars = _scalars(acc, tensor_util)
        raw = _tb_run(scalars, run_dir, name, mapping, metrics, params, tokens_per_step, kind)
        obs = _finish(raw, str(run_dir), "step", experiment or logdir.name, recipe)
        frames.append(obs.frame)
        aside += obs.set_aside
    totals = Counter()
    for reason, n in aside:
        totals[reason] += n
    return Observations(pd.concat(frames, ignore_index=True), tuple(totals.items()),
                        (str(logdir),))


# ------------------------------------------------------------------------------------ checks


def _check_args(mapping, where, params, tokens_per_step, kind):
    """The mapping as a dict and its metric part; the options checked up front."""
    mapping = parse_mapping(mapping) if isinstance(mapping, str) else dict(mapping)
    metrics = {k: v for k, v in mapping.items() if k not in _SPECIAL}
    for key in metrics:
        if not _METRIC.fullmatch(key):
            guess = _closest(key, ["train", "val/", "ds/", *_SPECIAL])
            raise InputError(where, f'mapping key "{key}" is not a metric name',
                             fix="use step, tokens, params, train, val/<slice> or ds/<task>"
                             + (f' (did you mean "{guess}"?)' if guess else ""))
    if not metrics:
        raise InputError(where, "the mapping names no metric", fix="add e.g. train=train/loss")
    for name, value, other in (("params", params, "params"),
                               ("tokens_per_step", tokens_per_step, "tokens")):
        if value is not None and other in mapping:
            raise ValueError(f"Give the '{name}' argument or map {other}=..., not both.")
        if value is not None and not (isinstance(value, numbers.Real) and value > 0):
            raise ValueError(f"The '{name}' argument must be a positive number. Got {value!r}.")
    if params is None and "params" not in mapping:
        raise InputError(where, "no parameter count",
                         fix="give params (the model's N) or map params=<column or tag>")
    if tokens_per_step is None and "tokens" not in mapping:
        raise InputError(where, "no token counts",
                         fix="map tokens=<column or tag> or give tokens_per_step "
                         "(batch size x sequence length)")
    kinds = kind.values() if isinstance(kind, Mapping) else [kind]
    if any(k not in _KINDS for k in kinds):
        raise ValueError(f"The 'kind' argument must be one of {_KINDS}. Got {kind!r}.")
    return mapping, metrics


def _kind_of(metric: str, kind) -> str:
    """The row's kind; "" lets validate() infer it (ds/* -> accuracy, else loss)."""
    if isinstance(kind, Mapping):
        return kind.get(metric, "")
    return "" if metric.startswith("ds/") else kind


def _finish(raw: pd.DataFrame, where: str, word: str, experiment: str, recipe) -> Observations:
    """Set aside unusable rows (counted), then validate; ``word`` is "line" or "step"."""
    if len(raw) == 0:
        raise InputError(where, "no values found for the mapped metrics",
                         fix="check the mapping names columns or tags that hold numbers")
    nonfinite = ~np.isfinite(raw["value"].to_numpy(float))
    at_zero = ~nonfinite & (raw["tokens"].to_numpy(float) == 0)
    aside = [(reason, int(bad.sum())) for reason, bad in (
        ("values NaN or infinite", nonfinite), ("checkpoints at 0 tokens", at_zero)) if bad.any()]
    raw = raw[~(nonfinite | at_zero)]
    raw = raw.assign(experiment=experiment, **({"recipe": recipe} if recipe else {}))
    lines = raw.pop("_line").to_numpy()
    try:
        frame, dropped = validate(raw.reset_index(drop=True), path=where, lines=lines,
                                  line_word="line" if word == "line" else "row")
    except InputError as err:
        if word == "line" or err.row is None:
            raise
        raise InputError(err.path, f"at step {err.row}, {err.problem}", column=err.column,
                         fix=err.fix, more=err.more) from None
    return Observations(frame, tuple(aside + dropped), (where,))


# ---------------------------------------------------------------------------------- W&B CSV


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(str(path), "file not found", fix="check the path")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise InputError(str(path), "is not UTF-8 text", fix="pass the CSV W&B exported") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(str(path), f"is not a CSV table ({str(exc).strip()})",
                         fix="pass the CSV W&B exported") from None
    return table.rename(columns=lambda c: str(c).strip())


def _panel_runs(cols: list[str], sources) -> list[str]:
    """Run names of a panel export: prefixes of "<run> - <source>" columns, in file order."""
    runs: list[str] = []
    for col in cols:
        for src in sources:
            if col.endswith(_SEP + src) and col[: -len(_SEP + src)] not in runs:
                runs.append(col[: -len(_SEP + src)])
    return runs


def _pick(cols, src: str, prefix: str | None) -> str | None:
    """The column holding ``src`` for a run: its own panel column, else a shared one."""
    own = f"{prefix}{_SEP}{src}" if prefix is not None else None
    return own if own in cols else (src if src in cols else None)


def _require_column(cols, where: str, key: str, src: str, runs: list[str]) -> None:
    if any(_pick(cols, src, r) for r in runs or [None]):
        return
    names = [c.rpartition(_SEP)[2] for c in cols if _SEP in c] + list(cols)
    names = list(dict.fromkeys(n for n in names if not n.endswith(("__MIN", "__MAX"))))
    guess = _closest(src, names)
    raise InputError(where, f"no such column (mapped to {key})", line=1, column=src,
                     fix=f"did you mean {key}={guess}?" if guess
                     else f"map {key}= one of {_listing(names, src)}")


def _numbers(table: pd.DataFrame, where: str, col: str, *, finite: bool):
    """A text column as floats (NaN where empty) and its empty mask; text is an error."""
    text = table[col].str.strip()
    empty = (text == "").to_numpy()
    x = pd.to_numeric(text.where(~empty, "nan"), errors="coerce").to_numpy(float)
    named = text.str.lower().isin(["nan", "-nan", "inf", "-inf", "infinity", "-infinity"])
    bad = ~empty & (~np.isfinite(x) if finite else np.isnan(x) & ~named.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(where, f'"{text.iloc[i]}" is not a {"finite " * finite}number',
                         line=i + 2, column=col, more=int(bad.sum()) - 1,
                         fix="fix the cell, or empty it if nothing was measured there")
    return x, empty


def _wandb_run(table, path, name, prefix, sources, metrics, params, tokens_per_step, kind):
    """One run's rows: one per non-empty mapped metric cell."""
    where, cols = str(path), list(table.columns)
    step_col = _pick(cols, sources["step"], prefix) if "step" in sources else None
    step = (_numbers(table, where, step_col, finite=True)[0] if step_col
            else np.full(len(table), np.nan))
    tok_col = _pick(cols, sources["tokens"], prefix) if "tokens" in sources else None
    tokens = (_numbers(table, where, tok_col, finite=True)[0] if tok_col
              else step * (tokens_per_step or np.nan))
    if "params" in sources:
        params = _wandb_params(table, where, _pick(cols, sources["params"], prefix), name)
    parts = []
    for metric, src in metrics.items():
        col = _pick(cols, src, prefix)
        if col is None:  # this panel run did not log the metric
            continue
        value, empty = _numbers(table, where, col, finite=False)
        for need, what in ((step_col, step), (tok_col, tokens)):
            gap = ~empty & np.isnan(what)
            if need and gap.any():
                i = int(np.flatnonzero(gap)[0])
                raise InputError(where, f'is empty where "{col}" has a value', line=i + 2,
                                 column=need, more=int(gap.sum()) - 1,
                                 fix=f"fill it in, or empty the {col} cell")
        keep = ~empty
        parts.append(pd.DataFrame({
            "run": name, "params": params, "tokens": tokens[keep], "metric": metric,
            "kind": _kind_of(metric, kind), "value": value[keep],
            "_line": np.flatnonzero(keep) + 2, **({"step": step[keep]} if step_col else {})}))
    return pd.concat(parts, ignore_index=True) if parts else None


def _wandb_params(table, where: str, col: str, run: str) -> float:
    """The run's parameter count from a column: the one value in its non-empty cells."""
    x, empty = _numbers(table, where, col, finite=True)
    values = np.unique(x[~empty])
    if len(values) != 1:
        problem = "is empty" if len(values) == 0 else f"changes within run {run}"
        raise InputError(where, problem, column=col,
                         fix="give the run's parameter count, or pass params instead")
    return float(values[0])


# ------------------------------------------------------------------------------ TensorBoard


def _tensorboard():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise MissingExtraError('reading TensorBoard event files needs tensorboard: '
                                'pip install "scaling-ladder[tb]"') from None
    return EventAccumulator, tensor_util


def _event_dirs(logdir: Path) -> list[Path]:
    if not logdir.is_dir():
        raise InputError(str(logdir), "directory not found",
                         fix="name the TensorBoard log directory")
    dirs = sorted({p.parent for p in logdir.rglob("events.out.tfevents.*") if p.is_file()})
    if not dirs:
        raise InputError(str(logdir), "holds no events.out.tfevents.* files",
                         fix="name the TensorBoard log directory")
    return dirs


def _scalars(acc, tensor_util) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] for scalar summaries and one-number tensor summaries (TF2)."""
    tags = acc.Tags()
    out = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags.get("scalars", [])}
    for tag in tags.get("tensors", []):
        events = acc.Tensors(tag)
        arrays = [tensor_util.make_ndarray(e.tensor_proto) for e in events]
        if all(a.size == 1 and np.issubdtype(a.dtype, np.number) for a in arrays):
            pairs = zip(events, arrays, strict=True)
            out.setdefault(tag, [(e.step, float(a.reshape(()))) for e, a in pairs])
    return out


def _tb_run(scalars, run_dir: Path, name, mapping, metrics, params, tokens_per_step, kind):
    """One run's rows: one per logged (step, mapped tag)."""
    def get(key: str, tag: str) -> list[tuple[int, float]]:
        if tag in scalars:
            return scalars[tag]
        raise InputError(str(run_dir), f'no scalar tag "{tag}" (mapped to {key})',
                         fix=f"map {key}= one of this run's tags: {_listing(scalars, tag)}")

    if "params" in mapping:
        values = {v for _, v in get("params", mapping["params"])}
        if len(values) != 1:
            raise InputError(str(run_dir), f'tag "{mapping["params"]}" changes within the run',
                             fix="log the parameter count once, or pass params instead")
        params = round(values.pop())  # scalars are float32: a count is rounded back
    tokens = dict(get("tokens", mapping["tokens"])) if "tokens" in mapping else None
    rows = []
    for metric, tag in metrics.items():
        for step, value in get(metric, tag):
            if tokens is not None and step not in tokens:
                raise InputError(str(run_dir), f'tag "{mapping["tokens"]}" has no value at '
                                 f'step {step}, where "{tag}" has one',
                                 fix="log tokens at every step, or give tokens_per_step")
            seen = tokens[step] if tokens is not None else step * tokens_per_step
            rows.append((name, params, seen, metric, _kind_of(metric, kind), value, step, step))
    return pd.DataFrame(rows, columns=["run", "params", "tokens", "metric", "kind", "value",
                                       "step", "_line"])


def _closest(word: str, options) -> str | None:
    guess = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return guess[0] if guess else None


def _listing(values, near: str | None = None, limit: int = 8) -> str:
    """Up to ``limit`` names, closest to ``near`` first."""
    values = [str(v) for v in values]
    if near is not None:
        values.sort(key=lambda v: -difflib.SequenceMatcher(None, near, v).ratio())
    head = ", ".join(values[:limit])
    return head + (f", … ({len(values)} in all)" if len(values) > limit else "")
