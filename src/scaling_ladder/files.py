"""Writing files: the one atomic writer and the one JSON cleaner.

Every file the package writes (observation tables, plan files, run state, ``--json`` results,
token data, reports) goes through :func:`open_atomic`: a temporary file in the same folder,
flushed and fsynced, then renamed over the final name with :func:`os.replace`, and the folder
fsynced. A reader, or a run resumed after ``kill -9``, sees the old file or the new one, never
half of one; a failed write leaves no temporary file behind, and one left by ``kill -9``
(``.NAME.XXXXXXXX``) is removed by :func:`remove_leftovers` when the writer starts again.

:func:`plain` turns a result into plain JSON values, so ``to_dict()`` and ``--json`` agree.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd


@contextmanager
def open_atomic(path: str | Path, mode: str = "w", *, encoding: str = "utf-8"
                ) -> Iterator[IO[Any]]:
    """A file handle whose content replaces ``path`` atomically when the block ends cleanly.

    Parameters
    ----------
    path : the final name; missing parent folders are made.
    mode : ``"w"`` (text in ``encoding``) or ``"wb"`` (bytes).

    Examples
    --------
    >>> with open_atomic(tmp / "runs.csv") as fh:          # doctest: +SKIP
    ...     frame.to_csv(fh, index=False)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"The 'mode' argument of open_atomic must be 'w' or 'wb'. Got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary outputs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


# the names mkstemp gives open_atomic's temporary files: ".<final name>.<8 random chars>"
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}$")


def remove_leftovers(directory: str | Path) -> list[Path]:
    """Delete the temporary files of writes to ``directory`` that were cut short (the writer
    was killed between mkstemp and rename); return them. Call it only where no other process
    writes at the same time (a run's folder at its start, under the ladder's lock)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    gone = []
    for p in directory.iterdir():
        if _LEFTOVER.match(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def write_atomic(path: str | Path, data: str | bytes | memoryview) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically (see :func:`open_atomic`)."""
    path = Path(path)
    with open_atomic(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)
    return path


def write_json(path: str | Path, payload: Any, *, indent: int | None = 1) -> Path:
    """Write ``plain(payload)`` as strict JSON (no NaN) atomically, with a final newline."""
    return write_atomic(path, json_text(payload, indent=indent) + "\n")


def json_text(payload: Any, *, indent: int | None = 1) -> str:
    """``payload`` as strict JSON text: :func:`plain` values, so NaN and inf are ``null``."""
    return json.dumps(plain(payload), indent=indent, allow_nan=False)


def plain(x: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, NaN and inf to None, tuples to
    lists, DataFrames to lists of records, paths to strings; dict keys become strings."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, pd.DataFrame):
        return plain(x.to_dict(orient="records"))
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if x is pd.NA or x is None:
        return None
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
