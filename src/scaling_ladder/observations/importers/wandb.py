"""W&B exports -> observations (see the package docstring for the mapping).

Four sources, told apart by the path: a folder is W&B's local run folders (:mod:`.wandb_runs`);
``.json`` is a run history as a list of records (``history.to_json(orient="records")``, or the
API's records saved with ``json.dump``); ``.jsonl`` / ``.ndjson`` one record a line
(``to_json(orient="records", lines=True)``); anything else a CSV export.

A run-history export holds one run (``run``, default the file stem)::

    _step,_runtime,_timestamp,tokens_seen,train/loss,eval/c4_loss
    1000,61.2,1717000000,4096000,3.91,
    2000,122.0,1717000061,8192000,3.52,3.60

    --map step=_step,tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss

A panel "Export CSV" holds several runs, one ``<run> - <metric>`` column each (``__MIN`` and
``__MAX`` columns are ignored); a mapped name is looked up as ``<run> - <name>``, then as a
column shared by all runs (``Step``)::

    Step,125m - eval/c4_loss,125m - eval/c4_loss__MIN,125m - eval/c4_loss__MAX,350m - eval/...

    --map val/c4=eval/c4_loss --params '125m=1.2e8' --params '350m=3.5e8'

Without a mapping, names that are metric names already are taken (:func:`.common.default_mapping`).
Each run's N, tokens per step, seed, learning rate and recipe come from :class:`.meta.Meta`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ...errors import InputError
from ..io import read_csv_text
from ..table import Observations, parse_numbers
from .common import SPECIAL, check_args, closest, default_mapping, finish, kind_of, listing
from .meta import Meta, with_meta
from .wandb_runs import read_run, record_class, run_folders

_SEP = " - "  # W&B panel exports name columns "<run> - <metric>"
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def read_wandb(path: str | Path, *, mapping: Mapping[str, str] | str | None = None,
               run: str | None = None, params=None, params_from: str | None = None,
               same_size: bool = False, experiment: str | None = None, recipe=None,
               tokens_per_step=None, seed=None, lr=None,
               kind: str | Mapping[str, str] = "loss") -> Observations:
    """Read a W&B export (run folders, JSON, JSON Lines or CSV) as validated observations.

    ``mapping`` is described in the module docstring (None: :func:`.common.default_mapping`).
    ``run`` names the run of a run-history export (default: the file stem) or picks one run of
    a panel export. ``params``, ``tokens_per_step``, ``seed``, ``lr`` and ``recipe`` are a
    value for every run, ``{"RUN": value}`` (RUN a glob) or the command line's list of
    ``VALUE`` / ``RUN=VALUE``; ``params_from="config"`` counts N from each run's config
    (:mod:`.meta`). ``final`` marks each run's last checkpoint per metric.
    """
    path = Path(path)
    given = dict(params=params, params_from=params_from, same_size=same_size,
                 tokens_per_step=tokens_per_step, seed=seed, lr=lr, recipe=recipe)
    if path.is_dir():
        return read_wandb_dir(path, mapping=mapping, meta=Meta.from_args(**given),
                              experiment=experiment, kind=kind, run=run)
    typed = _typed_jsonl(path) if path.suffix.lower() in (".jsonl", ".ndjson") else None
    if typed is not None:
        try:
            return _read_history(typed, path, mapping, run, Meta.from_args(**given), kind,
                                 experiment)
        except InputError:
            pass  # read again as text below: the error quotes the record and names its line
    table = (read_json(path) if path.suffix.lower() in JSON_SUFFIXES else _read_csv(path))
    return _read_history(table, path, mapping, run, Meta.from_args(**given), kind, experiment)


read_wandb_csv = read_wandb  # the name from before JSON and run folders were read


def _read_history(table: pd.DataFrame, path: Path, mapping, run, meta: Meta, kind,
                  experiment) -> Observations:
    """A run history or panel export read as a table (text, or :func:`_typed_jsonl`'s)."""
    cols = list(table.columns)
    if mapping is None:
        mapping = default_mapping(_names(cols), str(path))
    mapping, metrics = check_args(mapping, str(path), kind=kind, meta=meta)
    runs = _panel_runs(cols, metrics.values())
    panel = bool(runs) and not any(src in cols for src in metrics.values())
    if not panel:
        runs = [run or path.stem]
    elif run is not None:
        if run not in runs:
            raise InputError(str(path), f'no run "{run}" in this panel export', line=1,
                             fix=f"choose one of {listing(runs, run)}")
        runs = [run]
    sources = {k: mapping[k] for k in SPECIAL if k in mapping}
    default = next((c for c in ("_step", "Step") if c in cols), None)
    if "step" not in sources and (default or "tokens" not in mapping):
        sources["step"] = default or "_step"  # a panel with a tokens x-axis has no step column
    for key, src in [*sources.items(), *metrics.items()]:
        _require_column(table, str(path), key, src, runs if panel else [])
    parts = []
    for name in runs:
        m = meta.of(name, None, str(path), mapping)
        part = table_run(table, path, name, name if panel else None, sources, metrics,
                         m.get("params"), m.get("tokens_per_step"), kind)
        if part is not None:
            parts.append(with_meta(part, m))
    meta.check_shared(str(path), runs)
    raw = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return finish(raw, str(path), table.attrs.get("loc", ("line", 2))[0],
                  experiment or path.stem)


def _text(v) -> str:
    """A logged value as the text a CSV export holds: None (nothing logged) is empty, NaN
    "nan", a number its text, a nested value its JSON."""
    if v is None:
        return ""
    if isinstance(v, float) and v != v:
        return "nan"
    return str(v) if not isinstance(v, dict | list) else json.dumps(v)


def records_table(records: list[dict], where: str, loc: tuple[str, int]) -> pd.DataFrame:
    """Records (dicts) as a text table like a CSV read as text: a missing key or null is an
    empty cell (nothing logged), NaN is "nan", a number its text."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    table = pd.DataFrame({k: [_text(r.get(k)) for r in records] for k in keys}, dtype=str)
    table.attrs["loc"] = loc
    if table.empty and not keys:
        raise InputError(where, "holds no records", fix="pass a run history with logged steps")
    return table


def read_json(path: Path) -> pd.DataFrame:
    """A history as JSON (a list of records, or pandas' default dict of columns) or JSON Lines
    (one record a line); NaN and Infinity literals are read as numbers."""
    if not path.is_file():
        raise InputError(str(path), "file not found", fix="check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(str(path), "is not UTF-8 text", fix="pass the JSON W&B or pandas "
                         "wrote") from None
    fix = 'write it with history.to_json(path, orient="records"), with or without lines=True'
    try:
        data, loc = json.loads(text), ("row", 1)
    except json.JSONDecodeError as whole:
        if not text.lstrip().startswith("{"):
            raise InputError(str(path), f"is not JSON ({whole.msg})", line=whole.lineno,
                             fix=fix) from None
        data, loc = [], ("line", 1)  # JSON Lines: record i is on line i + 1
        for number, line in enumerate(text.splitlines(), 1):
            try:
                data.append(json.loads(line) if line.strip() else {})
            except json.JSONDecodeError as exc:
                raise InputError(str(path), f"is not a JSON record ({exc.msg})", line=number,
                                 fix=fix) from None
            if not isinstance(data[-1], dict):
                raise InputError(str(path), "is not a JSON object", line=number,
                                 fix=fix) from None
    if isinstance(data, dict):
        if data and all(isinstance(v, Mapping) for v in data.values()):  # orient="columns"
            index = list(dict.fromkeys(i for v in data.values() for i in v))
            data = [{k: v.get(i) for k, v in data.items()} for i in index]
        else:
            data, loc = [data], ("line", 1)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(str(path), "is not a list of records", fix=fix)
    return records_table(data, str(path), loc)


def _typed_jsonl(path: Path) -> pd.DataFrame | None:
    """A JSON Lines history read by pyarrow (several threads, no Python object per value):
    number columns stay numbers (``pd.ArrowDtype``: null is nothing logged, NaN and inf as
    logged), text columns text, others (true/false, nested values) the text of
    :func:`records_table`. None where pyarrow cannot read the file; a table that fails a check
    is read again by :func:`read_json`, whose errors name the line (a blank line is a line
    here too)."""
    from pyarrow import json as arrow_json

    if not path.is_file():
        return None
    try:
        data = arrow_json.read_json(path)
    except (pa.ArrowException, OSError):
        return None
    if data.num_rows == 0:
        return None
    columns = {}
    for name, column in zip(data.column_names, data.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            columns[name] = pd.Series(pd.arrays.ArrowExtensionArray(column))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = pd.Series(column.to_pandas(types_mapper=_STR.get)).fillna("")
        elif pa.types.is_null(kind):
            columns[name] = pd.Series("", index=range(data.num_rows), dtype=str)
        else:
            columns[name] = pd.Series([_text(v) for v in column.to_pylist()], dtype=str)
    table = pd.DataFrame(columns)
    table.attrs["loc"] = ("line", 1)
    return table


_STR = {pa.string(): pd.StringDtype(na_value=np.nan),
        pa.large_string(): pd.StringDtype(na_value=np.nan)}


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(str(path), "file not found", fix="check the path")
    try:
        table = read_csv_text(path)  # pyarrow, else pandas, whose errors say what is wrong
        if table is None:
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


def _names(cols) -> list[str]:
    """Column names, a panel's "<run> - <name>" as <name>, without __MIN / __MAX."""
    names = [c.rpartition(_SEP)[2] for c in cols if _SEP in c] + list(cols)
    return list(dict.fromkeys(n for n in names if not n.endswith(("__MIN", "__MAX"))))


def _at(table: pd.DataFrame, i) -> dict:
    """Where row ``i`` of a table is in its file: ``{"line": ...}`` or ``{"row": ...}``."""
    word, first = table.attrs.get("loc", ("line", 2))
    return {word: i + first}


def _require_column(table, where: str, key: str, src: str, runs: list[str]) -> None:
    cols = list(table.columns)
    if any(_pick(cols, src, r) for r in runs or [None]):
        return
    names = _names(cols)
    guess = closest(src, names)
    head = {"line": 1} if table.attrs.get("loc", ("line", 2)) == ("line", 2) else {}
    raise InputError(where, f"no such column (mapped to {key})", **head, column=src,
                     fix=f"did you mean {key}={guess}?" if guess
                     else f"map {key}= one of {listing(names, src)}")


def _numbers(table: pd.DataFrame, where: str, col: str, *, finite: bool):
    """A text column as floats (NaN where empty) and its empty mask; text is an error.

    A column of numbers (:func:`_typed_jsonl`) has its nulls as empty and NaN, inf as
    logged."""
    if isinstance(table[col].dtype, pd.ArrowDtype):
        empty = table[col].isna().to_numpy()
        x = table[col].to_numpy(dtype=float, na_value=np.nan)
        bad = ~empty & ~np.isfinite(x) if finite else np.zeros(len(x), dtype=bool)
        text = table[col]
    else:
        text = table[col].str.strip()
        empty = (text == "").to_numpy()
        x = parse_numbers(text, empty)
        bad = ~empty & (~np.isfinite(x) if finite else np.isnan(x))
        if not finite and bad.any():  # "nan", "inf": logged as such
            named = text.str.lower().isin(["nan", "-nan", "inf", "-inf", "infinity",
                                           "-infinity"])
            bad &= ~named.to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(where, f'"{text.iloc[i]}" is not a {"finite " * finite}number',
                         **_at(table, i), column=col, more=int(bad.sum()) - 1,
                         fix="fix the cell, or empty it if nothing was measured there")
    return x, empty


def table_run(table, path, name, prefix, sources, metrics, params, tokens_per_step, kind):
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
                raise InputError(where, f'is empty where "{col}" has a value', **_at(table, i),
                                 column=need, more=int(gap.sum()) - 1,
                                 fix=f"fill it in, or empty the {col} cell")
        keep = ~empty
        parts.append(pd.DataFrame({
            "run": name, "params": params, "tokens": tokens[keep], "metric": metric,
            "kind": kind_of(metric, kind), "value": value[keep],
            "_line": np.flatnonzero(keep) + _at(table, 0).popitem()[1],
            **({"step": step[keep]} if step_col else {})}))
    return pd.concat(parts, ignore_index=True) if parts else None


def _wandb_params(table, where: str, col: str, run: str) -> float:
    """The run's parameter count from a column: the one value in its non-empty cells."""
    x, empty = _numbers(table, where, col, finite=True)
    values = np.unique(x[~empty])
    if len(values) != 1:
        problem = "is empty" if len(values) == 0 else f"changes within run {run}"
        raise InputError(where, problem, column=col,
                         fix="log the run's parameter count once, or give --params instead")
    return float(values[0])


# ------------------------------------------------------------------- local run folders


def read_wandb_dir(path: Path, *, mapping=None, meta: Meta, experiment: str | None = None,
                   kind="loss", run: str | None = None) -> Observations:
    """Every run folder under ``path`` as observations (see the module docstring)."""
    record_class()
    runs = [read_run(folder) for folder in run_folders(path)]
    names = Counter(r["name"] for r in runs)
    for r in runs:  # W&B display names need not be unique; ids are
        if names[r["name"]] > 1:
            r["name"] = f'{r["name"]}-{r["id"]}'
    if run is not None:
        keep = [r for r in runs if r["name"] == run or r["id"] == run]
        if not keep:
            raise InputError(str(path), f'no run "{run}" here',
                             fix=f"choose one of {listing([r['name'] for r in runs], run)}")
        runs = keep
    if mapping is None:
        mapping = default_mapping([k for r in runs for h in r["history"][:50] for k in h],
                                  str(path))
    mapping, metrics = check_args(mapping, str(path), kind=kind, meta=meta)
    sources = {k: mapping[k] for k in SPECIAL if k in mapping}
    sources.setdefault("step", "_step")
    logged = {k for r in runs for h in r["history"] for k in h}
    for key, src in [*sources.items(), *metrics.items()]:
        if src not in logged and not (key == "params" and _stated(runs, src)):
            guess = closest(src, logged)
            raise InputError(str(path), f'no run logged "{src}" (mapped to {key})',
                             fix=f"did you mean {key}={guess}?" if guess
                             else f"map {key}= one of {listing(sorted(logged), src)}")
    parts, aside = [], Counter()
    for r in runs:
        m = meta.of(r["name"], r["config"], r["where"], mapping)
        if "params" in sources and not any(sources["params"] in h for h in r["history"]):
            m["params"] = _stated(runs=[r], key=sources["params"])
        table = records_table(r["history"], r["where"], ("row", 1))
        cols = set(table.columns)
        use = {k: v for k, v in metrics.items() if v in cols}
        need = {k: v for k, v in sources.items() if not (k == "params" and "params" in m)}
        missing = [v for v in need.values() if v not in cols]
        part = None if missing or not use else table_run(
            table, r["where"], r["name"], None, need, use, m.get("params"),
            m.get("tokens_per_step"), kind)
        if part is None:
            aside["runs that logged none of the mapped metrics"] += 1
            continue
        parts.append((r["where"], with_meta(part, m)))
        aside["logs cut short at the end (their last record)"] += r["cut"]
    meta.check_shared(str(path), [r["name"] for r in runs])
    if not parts:
        raise InputError(str(path), "no run logged the mapped metrics",
                         fix="check --map against the keys the runs logged")
    experiment = experiment or path.resolve().name
    frames = []
    for where, part in parts:  # an error names the run's log and its history row
        obs = finish(part, where, "row", experiment)
        frames.append(obs.frame)
        aside.update(dict(obs.set_aside))
    return Observations(pd.concat(frames, ignore_index=True),
                        tuple((k, n) for k, n in aside.items() if n), (str(path),))


def _stated(runs, key: str) -> float | None:
    """A count the runs state in their summary or config under ``key`` (the first run's)."""
    for r in runs:
        for source in (r["summary"], r["config"]):
            if isinstance(source.get(key), int | float) and not isinstance(source[key], bool):
                return float(source[key])
    return None
