"""Verify token files before they are read: present, the size and SHA-256 the manifest records,
and every token id inside the vocabulary.

One streamed pass per file computes its SHA-256 and its largest id. The result is cached in
``DIR/verified.json`` keyed by the file's path, size and ``mtime_ns``, so the next ``ladder
train`` on unchanged data only stats the files; a file rewritten since (new size or mtime) is
hashed again. A manifest without a file's ``sha256`` or ``tokens`` (token data made elsewhere)
skips that comparison; the id range is always checked.

Example::

    problems = verify(open_tokens("tokens"), token_files(ds, recipes=["balanced"]))
    # [InputError("tokens/balanced/train-00000.bin: ... ; run ladder data build again"), ...]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_json
from .tokenfiles import TokenDataset

CACHE = "verified.json"
CHUNK = 1 << 23  # bytes per read: a multiple of every token size


def token_files(ds: TokenDataset, *, recipes: Sequence[str] | None = None,
                sources: bool = False) -> list[dict]:
    """The manifest entries (``file``, and ``sha256``, ``tokens`` when recorded) of what is
    read: the train shards of ``recipes`` (default all), every validation slice, and with
    ``sources`` every source's train shards too (what ``ladder data check`` decodes)."""
    m = ds.manifest
    out = []
    for r in m.get("recipes", {}) if recipes is None else recipes:
        out += m.get("recipes", {}).get(r, {}).get("shards", [])
    for entry in m.get("sources", {}).values():
        if sources:
            out += entry.get("train", {}).get("shards", [])
        if "val" in entry:
            out.append(entry["val"])
    return out


def verify(ds: TokenDataset, files: Iterable[dict]) -> list[InputError]:
    """The problems of ``files`` (entries of :func:`token_files`), one per bad file."""
    cache_path = ds.directory / CACHE
    try:
        cache = json.loads(cache_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        cache = {}
    problems, changed, seen = [], False, set()
    fix = f"run ladder data build again into {ds.directory}"
    for entry in files:
        rel = entry["file"]
        if rel in seen:
            continue
        seen.add(rel)
        path = ds.directory / rel
        try:
            st = path.stat()
        except OSError:
            problems.append(InputError(str(path), "no such file, but the manifest lists it",
                                       fix=fix))
            continue
        size, want = st.st_size, entry.get("tokens")
        if want is not None and size != want * ds.dtype.itemsize:
            problems.append(InputError(str(path), f"is {size:,} bytes but the manifest says "
                                       f"{want:,} tokens ({want * ds.dtype.itemsize:,} bytes): "
                                       "truncated or replaced", fix=fix))
            continue
        if size % ds.dtype.itemsize:
            problems.append(InputError(str(path), f"is {size:,} bytes, not a whole number of "
                                       f"{ds.dtype.name} tokens", fix=fix))
            continue
        got = cache.get(rel)
        if not (got and got.get("size") == size and got.get("mtime_ns") == st.st_mtime_ns):
            got = {"size": size, "mtime_ns": st.st_mtime_ns,
                   **_scan(path, ds.dtype)}
            cache[rel], changed = got, True
        if entry.get("sha256") and got["sha256"] != entry["sha256"]:
            problems.append(InputError(str(path), f"SHA-256 {got['sha256'][:12]}... differs "
                                       f"from the manifest's {entry['sha256'][:12]}...: the file "
                                       "changed after it was built", fix=fix))
        elif got["max_id"] is not None and got["max_id"] >= ds.vocab_size:
            problems.append(InputError(str(path), f"holds token id {got['max_id']}, outside "
                                       f"the vocabulary of {ds.vocab_size} (ids 0 to "
                                       f"{ds.vocab_size - 1})", fix="tokenize it with the "
                                       "manifest's tokenizer (ladder data build)"))
    if changed:
        try:
            write_json(cache_path, {"version": 1, "files": cache})
        except OSError:
            pass  # a read-only data folder: verified again next time
    return problems


def _scan(path: Path, dtype: np.dtype) -> dict:
    """SHA-256 and largest token id of a file, streamed."""
    h, top = hashlib.sha256(), None
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            ids = np.frombuffer(chunk, dtype.newbyteorder("<"))
            if len(ids):
                m = int(ids.max())
                top = m if top is None else max(top, m)
    return {"sha256": h.hexdigest(), "max_id": top}
