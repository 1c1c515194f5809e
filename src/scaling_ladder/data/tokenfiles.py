"""Token files on disk: atomic, hashed shards, the build state, and the reader the trainer uses.

A token file is a raw little-endian array (``uint16`` when the vocabulary fits, else
``uint32``) in which every document is followed by the EOS id. An ``.idx`` file beside a
source shard or validation slice holds the cumulative end offset (``int64``) of each document.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_atomic, write_json
from ..units import bits_per_byte  # noqa: F401  (the one conversion; re-exported)

FORMAT = "scaling-ladder-tokens"
VERSION = 1


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 23):
            h.update(chunk)
    return h.hexdigest()


def write_hashed(path: Path, data: bytes | memoryview) -> str:
    """Write ``data`` to ``path`` atomically (:func:`scaling_ladder.files.write_atomic`);
    return its SHA-256, which the build state records."""
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def write_tokens(path: Path, tokens: np.ndarray, ends: np.ndarray | None = None) -> str:
    """A token array (and its document ends as ``.idx``); returns the token file's SHA-256."""
    if ends is not None:
        write_hashed(path.with_suffix(".idx"), np.ascontiguousarray(ends, "<i8").data)
    return write_hashed(path, np.ascontiguousarray(tokens).data)


def read_index(path: Path) -> np.ndarray:
    return np.fromfile(path.with_suffix(".idx"), "<i8")


class BuildState:
    """What a build finished, file by file: ``DIR/state.json`` maps a file to the key of the
    inputs it was made from and its SHA-256. A file is reused only when both still match."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "state.json"
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())["entries"]
            except (ValueError, KeyError, TypeError):
                self.entries = {}  # an unreadable state only costs a rebuild
        self.directory, self.reused, self.written = directory, 0, 0

    def done(self, rel: str, key: str) -> bool:
        entry = self.entries.get(rel)
        path = self.directory / rel
        ok = bool(entry and entry["key"] == key and path.exists()
                  and sha256_file(path) == entry["sha256"])
        self.reused += ok
        return ok

    def record(self, rel: str, key: str, sha256: str) -> None:
        self.entries[rel] = {"key": key, "sha256": sha256}
        self.written += 1
        write_json(self.path, {"version": VERSION, "entries": self.entries})

    def sha256(self, rel: str) -> str:
        return self.entries[rel]["sha256"]


def key_of(*parts: object) -> str:
    """A stable hash of JSON-able inputs (the build key of a file)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TokenStream:
    """The shards of a recipe's train stream read as one array (no copy until sliced)."""

    shards: tuple[np.memmap, ...]

    @property
    def _starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(s) for s in self.shards])])

    def __len__(self) -> int:
        return int(sum(len(s) for s in self.shards))

    def __getitem__(self, item):
        n = len(self)
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                return np.asarray(self)[item]
            parts, starts = [], self._starts
            for shard, a in zip(self.shards, starts[:-1]):
                lo, hi = max(start - a, 0), min(stop - a, len(shard))
                if lo < hi:
                    parts.append(shard[lo:hi])
            return np.concatenate(parts) if parts else np.empty(0, self.shards[0].dtype)
        i = int(item) + (n if int(item) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {item} is out of range for {n} tokens")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.shards[k][i - self._starts[k]]

    def __array__(self, dtype=None, copy=None):
        out = np.concatenate(self.shards)
        return out.astype(dtype) if dtype is not None else out


class TokenDataset:
    """A built directory: train streams per recipe, validation slices per source."""

    def __init__(self, directory: Path, manifest: dict) -> None:
        self.directory, self.manifest = directory, manifest
        tok = manifest["tokenizer"]
        self.vocab_size: int = tok["vocab_size"]
        self.eos_id: int = tok["eos_id"]
        self.dtype = np.dtype(manifest["dtype"])

    @property
    def recipes(self) -> list[str]:
        return list(self.manifest["recipes"])

    @property
    def sources(self) -> list[str]:
        return list(self.manifest["sources"])

    def _memmap(self, rel: str) -> np.memmap:
        return np.memmap(self.directory / rel, dtype=self.dtype, mode="r")

    def train(self, recipe: str) -> TokenStream:
        entry = self._get("recipes", recipe)
        return TokenStream(tuple(self._memmap(s["file"]) for s in entry["shards"]))

    def val(self, source: str) -> np.memmap:
        return self._memmap(self._get("sources", source)["val"]["file"])

    def val_documents(self, source: str) -> np.ndarray:
        """Cumulative end offsets of the validation slice's documents."""
        return read_index(self.directory / self._get("sources", source)["val"]["file"])

    def bytes_per_token(self, slice_name: str) -> float:
        """UTF-8 bytes per token of ``val/<source>`` or ``train/<recipe>`` (or a recipe)."""
        kind, _, name = slice_name.partition("/")
        if kind == "val":
            return self._get("sources", name)["val"]["bytes_per_token"]
        return self._get("recipes", name if kind == "train" else slice_name)["bytes_per_token"]

    def tokenizer(self):
        from .tokenizers import load_tokenizer

        return load_tokenizer(self.manifest["tokenizer"], self.directory)

    def _get(self, table: str, name: str) -> dict:
        try:
            return self.manifest[table][name]
        except KeyError:
            raise InputError(str(self.directory / "manifest.json"), f'no {table[:-1]} "{name}"',
                             fix=f"choose one of {', '.join(self.manifest[table])}") from None


def open_tokens(directory: str | Path) -> TokenDataset:
    """Open a directory made by ``ladder data build``.

    Example::

        ds = open_tokens("tokens")
        x = ds.train("balanced")[0:1025]            # a window of token ids
        bpb = bits_per_byte(2.1, ds.bytes_per_token("val/stdlib-code"))
    """
    directory = Path(directory)
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(str(path), "no such file", fix="give a folder made by ladder data "
                         "build (an interrupted build has no manifest: run it again)") from None
    except ValueError as exc:
        raise InputError(str(path), f"is not valid JSON ({exc})",
                         fix="rebuild with ladder data build") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InputError(str(path), f"is not a {FORMAT} manifest of version {VERSION}",
                         fix="rebuild with this version of ladder data build")
    return TokenDataset(directory, manifest)
