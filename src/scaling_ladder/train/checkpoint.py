"""Checkpoints that survive ``kill -9``: atomic, hashed, loaded without pickle.

A checkpoint file is a header line ``SLCKPT1 <sha256 of the payload>\\n`` followed by the bytes
of ``torch.save(state)``. It is written to a temporary file in the same folder, flushed,
fsynced and renamed over the final name, so a reader sees the whole file or none of it; the
hash catches what the rename cannot (a disk fault, a truncated copy). Loading verifies the hash
and uses ``torch.load(weights_only=True)``: a state holds tensors, numbers, strings, lists and
dicts only, never pickled objects. A corrupt newest checkpoint is skipped with a warning and
the one before it used.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..files import open_atomic

MAGIC = b"SLCKPT1 "
_NAME = re.compile(r"^step-(\d{8})\.ckpt$")


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used and an older one (or none) was taken instead."""


class CorruptCheckpoint(Exception):
    """The file's hash does not match its content, or it cannot be loaded."""


def path_for(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.ckpt"


def save(directory: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as the checkpoint of ``step`` atomically; return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    final = path_for(directory, step)
    with open_atomic(final, "wb") as fh:
        fh.write(MAGIC + digest + b"\n")
        fh.write(payload)
    return final


def load_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify and load one checkpoint file; :class:`CorruptCheckpoint` when it is damaged."""
    data = Path(path).read_bytes()
    head, sep, payload = data.partition(b"\n")
    if not sep or not head.startswith(MAGIC):
        raise CorruptCheckpoint(f"{path}: not a scaling-ladder checkpoint (bad header)")
    want = head[len(MAGIC):].decode("ascii", "replace")
    if hashlib.sha256(payload).hexdigest() != want:
        raise CorruptCheckpoint(f"{path}: content hash mismatch (corrupt or truncated)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a bad payload
        raise CorruptCheckpoint(f"{path}: cannot be loaded ({exc})") from exc


def steps_in(directory: str | Path) -> list[int]:
    """Steps of the checkpoint files in ``directory``, ascending (temporary files ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name)))


def load_latest(directory: str | Path, map_location: str | torch.device = "cpu",
                *, at_most: int | None = None, corrupt: list[str] | None = None
                ) -> dict[str, Any] | None:
    """The newest checkpoint that verifies (at or before step ``at_most``), or None.

    A damaged one is reported with a :class:`CheckpointWarning` (and its message appended to
    ``corrupt``, for the caller to pass on), renamed ``*.corrupt`` so it is not tried again,
    and the previous one is used.
    """
    for step in reversed(steps_in(directory)):
        if at_most is not None and step > at_most:
            continue
        path = path_for(directory, step)
        try:
            return load_file(path, map_location)
        except CorruptCheckpoint as exc:
            warnings.warn(f"{exc}; using the checkpoint before it", CheckpointWarning,
                          stacklevel=2)
            if corrupt is not None:
                corrupt.append(str(exc))
            os.replace(path, path.with_suffix(".corrupt"))
    return None


def prune(directory: str | Path, *, keep: int, protect: set[int] = frozenset()) -> None:
    """Delete all but the newest ``keep`` checkpoints, sparing the steps in ``protect``."""
    steps = [s for s in steps_in(directory) if s not in protect]
    for step in steps[:-keep] if keep > 0 else steps:
        path_for(directory, step).unlink(missing_ok=True)
