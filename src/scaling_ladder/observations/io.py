"""Observation files: CSV, Parquet and JSON Lines to a table of raw values, and back.

Reading keeps every value as the file gave it (text for CSV) with the line (or row) number of
each row, so :func:`~scaling_ladder.observations.table.validate` can name the file, line and
column of a bad value; writing is atomic (:func:`scaling_ladder.files.open_atomic`). The
schema, the checks and the :class:`~scaling_ladder.observations.table.Observations` object are
:mod:`.table`'s.

A large table is read first by :func:`read_typed` (pyarrow, the number columns parsed while
reading, several threads): it gives up, returning None, on anything but a plain well-formed
file, and a table it read that fails a check is read again as text by :func:`read_raw`, so a
problem is always reported from the text as written, with its line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
            raw = read_csv_text(path)
            if raw is None:  # pandas, whose errors say what is wrong with the file
                raw = pd.read_csv(path, dtype=str, keep_default_na=False,
                                  skip_blank_lines=True)
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


# the columns read as numbers by read_typed (the others as text); table.py checks them all
NUMBER_COLUMNS = ("params", "tokens", "flops", "seed", "lr", "batch_tokens", "value",
                  "bytes_per_token", "train_bytes_per_token")
TEXT_COLUMNS = ("experiment", "recipe", "run", "metric", "kind", "final", "tokenizer", "unit")


def read_typed(path: Path) -> tuple[pd.DataFrame, str] | None:
    """A CSV or JSON Lines file read fast, the known number columns as float64 (NaN: empty),
    the others as text; or None where only :func:`read_raw` can say what the file holds.

    Nothing here reports a problem: a file this cannot read plainly (bad UTF-8, a ragged row,
    a cell that is not a number, ``nan`` or ``inf`` written out, a blank or repeated column
    name, no rows) is None, and the caller reads it with :func:`read_raw`, whose errors name
    the line. Rows of a table read here carry no line numbers: a table that fails
    :func:`~scaling_ladder.observations.table.validate` is read again with :func:`read_raw`.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "jsonl") or not path.is_file() or path.stat().st_size == 0:
        return None
    table = _arrow_csv(path, NUMBER_COLUMNS) if fmt == "csv" else _arrow_jsonl(path)
    if table is None or table.num_rows == 0 or table.num_columns < 2:
        return None
    names = [name.strip() for name in table.column_names]
    if "" in names or len(set(names)) < len(names):
        return None
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_null(kind):  # JSON: null in every record, as if the key were absent
            continue
        if name in NUMBER_COLUMNS:
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                return None
            if pa.types.is_floating(kind) and pc.any(pc.invert(pc.is_finite(column))).as_py():
                return None  # nan, inf written out: an error read_raw words from the text
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            continue
        elif name in TEXT_COLUMNS and not (name == "final" and pa.types.is_boolean(kind)):
            return None
        elif not (pa.types.is_floating(kind) or ((pa.types.is_integer(kind)
                  or pa.types.is_boolean(kind)) and column.null_count == 0)):
            return None  # e.g. nested JSON values, or true/false with gaps: read_raw's text
    frame = table.rename_columns(names).to_pandas(types_mapper=_TEXT_TYPES.get)
    return frame, "line"


_TEXT_TYPES = {pa.string(): pd.StringDtype(na_value=np.nan),
               pa.large_string(): pd.StringDtype(na_value=np.nan)}


def read_csv_text(path: Path) -> pd.DataFrame | None:
    """A CSV file with every cell as text, as ``pd.read_csv(dtype=str,
    keep_default_na=False)`` reads it, but by pyarrow (several threads); None where pyarrow
    cannot be sure to read it the same (then pandas reads it and words any problem)."""
    table = _arrow_csv(path, ())
    if table is None or table.num_rows == 0:
        return None
    return table.to_pandas(types_mapper=_TEXT_TYPES.get)


def _arrow_csv(path: Path, numbers) -> pa.Table | None:
    """The CSV read by pyarrow, the columns named in ``numbers`` as float64 (empty: null),
    the others as text (empty: ""); None for a file pandas would read differently or refuse:
    a blank or repeated column name, a ragged row, bad UTF-8, a cell that is not a number,
    a line break inside a cell (a quote left open swallows the lines after it)."""
    from pyarrow import csv as arrow_csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
        if not header or "" in header or len(set(header)) < len(header):
            return None
        types = {name: pa.float64() if name.strip() in numbers else pa.string()
                 for name in header}
        table = arrow_csv.read_csv(path, convert_options=arrow_csv.ConvertOptions(
            column_types=types, null_values=[""], strings_can_be_null=False,
            quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError, csv.Error):
        return None
    if table.column_names != header:
        return None
    for column in table.columns:
        if pa.types.is_string(column.type) and (
                pc.any(pc.match_substring(column, "\n")).as_py()
                or pc.any(pc.match_substring(column, "\r")).as_py()):
            return None
    return table


def _arrow_jsonl(path: Path) -> pa.Table | None:
    from pyarrow import json as arrow_json

    try:
        return arrow_json.read_json(path)
    except (pa.ArrowException, OSError):
        return None


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
