"""W&B CSV exports -> observations (see the package docstring for the mapping).

A run-history export holds one run (``run``, default the file stem)::

    _step,_runtime,_timestamp,tokens_seen,train/loss,eval/c4_loss
    1000,61.2,1717000000,4096000,3.91,
    2000,122.0,1717000061,8192000,3.52,3.60

    --map step=_step,tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss

A panel "Export CSV" holds several runs, one ``<run> - <metric>`` column each (``__MIN`` and
``__MAX`` columns are ignored); a mapped name is looked up as ``<run> - <name>``, then as a
column shared by all runs (``Step``)::

    Step,125m - eval/c4_loss,125m - eval/c4_loss__MIN,125m - eval/c4_loss__MAX,350m - eval/...

    --map val/c4=eval/c4_loss          (and tokens_per_step, params)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..table import Observations
from .common import SPECIAL, check_args, closest, finish, kind_of, listing

_SEP = " - "  # W&B panel exports name columns "<run> - <metric>"


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
    mapping, metrics = check_args(mapping, str(path), params, tokens_per_step, kind)
    table = _read_csv(path)
    cols = list(table.columns)
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
        _require_column(cols, str(path), key, src, runs if panel else [])
    parts = [_wandb_run(table, path, name, name if panel else None, sources, metrics, params,
                        tokens_per_step, kind) for name in runs]
    parts = [p for p in parts if p is not None]
    raw = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return finish(raw, str(path), "line", experiment or path.stem, recipe)


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
    guess = closest(src, names)
    raise InputError(where, f"no such column (mapped to {key})", line=1, column=src,
                     fix=f"did you mean {key}={guess}?" if guess
                     else f"map {key}= one of {listing(names, src)}")


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
            "kind": kind_of(metric, kind), "value": value[keep],
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
