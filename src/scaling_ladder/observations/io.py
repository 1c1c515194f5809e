"""Observation files: CSV, Parquet and JSON Lines to a table of raw values, and back.

Reading keeps every value as the file gave it (text for CSV) with the line (or row) number of
each row, so :func:`~scaling_ladder.observations.table.validate` can name the file, line and
column of a bad value; writing is atomic (:func:`scaling_ladder.files.open_atomic`). The
schema, the checks and the :class:`~scaling_ladder.observations.table.Observations` object are
:mod:`.table`'s.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..files import open_atomic

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}


def read_raw(path: Path) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The file as a table of raw values, each row's line (or row) number, and which."""
    fmt = FORMATS.get(path.suffix.lower())
    if not path.exists():
        raise InputError(str(path), "file not found", fix="check the path")
    if path.is_dir():
        raise InputError(str(path), "is a directory, not a table file",
                         fix="name the .csv, .jsonl or .parquet file inside it")
    if fmt is None:
        raise InputError(str(path), f'unknown file type "{path.suffix}"',
                         fix="use .csv, .jsonl or .parquet")
    if path.stat().st_size == 0:
        raise InputError(str(path), "file is empty", fix="write a header line and rows")
    if fmt == "csv":
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
        except UnicodeDecodeError:
            raise InputError(str(path), "is not a text table (it is not UTF-8 text)",
                             fix="pass a CSV file with a header line") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(str(path), f"is not a CSV table ({str(exc).strip()})",
                             fix="pass a CSV file with a header line") from None
        _no_repeated_columns(path)
        if raw.shape[1] < 2:
            raise InputError(str(path), "is not a CSV table (one column only)", line=1,
                             fix="separate columns with commas and start with a header line")
        return raw, np.arange(2, len(raw) + 2), "line"
    if fmt == "jsonl":
        return (*_read_jsonl(path), "line")
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several error types for a non-Parquet file
        raise InputError(str(path), f"is not a Parquet file ({type(exc).__name__})",
                         fix="write it with pandas.DataFrame.to_parquet") from None
    return raw, np.arange(1, len(raw) + 1), "row"


def _no_repeated_columns(path: Path) -> None:
    """pandas renames a repeated column (``value``, ``value.1``) and a reader would quietly use
    the first: two columns of one name are an error instead."""
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if name.strip() and name in seen:
            raise InputError(str(path), f'column "{name}" appears twice in the header (again '
                             f"as column {i})", line=1,
                             fix="rename or remove one of them")
        seen.add(name)


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    records, lines = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(str(path), "is not JSON Lines (not UTF-8 text)",
                         fix="write one JSON object per line") from None
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), f"is not valid JSON ({exc.msg})", line=i,
                             fix="write one JSON object per line") from None
        if not isinstance(rec, dict):
            raise InputError(str(path), "is not a JSON object", line=i,
                             fix='write one object per line, e.g. {"run": ..., "value": ...}')
        records.append(rec)
        lines.append(i)
    if not records:
        raise InputError(str(path), "file has no rows", fix="write one JSON object per line")
    return pd.DataFrame.from_records(records), np.asarray(lines)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as CSV, Parquet or JSON Lines, chosen by the suffix of ``path``."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"Cannot write {path}: the suffix must be .csv, .jsonl or .parquet.")
    with open_atomic(path, "wb" if fmt == "parquet" else "w") as fh:
        if fmt == "csv":
            frame.to_csv(fh, index=False)
        elif fmt == "parquet":
            frame.to_parquet(fh, index=False)
        else:
            frame.to_json(fh, orient="records", lines=True, double_precision=15)
