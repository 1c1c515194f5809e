"""Sources: documents read from plain text, JSON Lines or Parquet, and their train/val split.

A document that cannot be used is never dropped quietly. Empty documents are set aside and
counted. Undecodable (not UTF-8), binary (holding a NUL byte, git's rule) and malformed
documents (bad JSON, no text field) stop the build with one line naming the file and line,
unless the source says ``on_bad = "skip"``: then they are set aside, counted and listed in the
manifest, and ``ladder data check`` shows them.

The split is by document hash: a document is in validation when the first 64 bits of its
BLAKE2b digest, read as a fraction of 2^64, fall below ``val_fraction``. The same text always
lands in the same split, whatever file, order or source it comes from, so exact duplicates
never straddle train and validation.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .recipes import SourceSpec

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
            ".pq": "parquet"}
BAD = ("undecodable", "binary", "malformed")
EXAMPLES = 20


@dataclass(frozen=True)
class Document:
    text: str
    data: bytes  # text as UTF-8
    origin: str  # "file", "file:line N" or "file:row N"

    @property
    def digest(self) -> bytes:
        return hashlib.blake2b(self.data, digest_size=16).digest()


def uniform(digest: bytes, salt: int = 0) -> float:
    """A number in [0, 1) read from 64 bits of a digest (salt 0 or 1 picks which)."""
    return int.from_bytes(digest[8 * salt: 8 * salt + 8], "big") / 2.0**64


def is_val(digest: bytes, val_fraction: float) -> bool:
    return uniform(digest) < val_fraction


@dataclass
class SourceReader:
    """Iterate a source's documents in a fixed order (files sorted, then file order).

    ``set_aside`` counts unusable documents by reason; ``examples`` lists the first few.
    """

    name: str
    spec: SourceSpec
    base: str = "."
    on_bad: str | None = None
    files: list[Path] = field(init=False)
    total_bytes: int = field(init=False)
    bytes_read: int = 0
    set_aside: Counter = field(default_factory=Counter)
    examples: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.files = resolve_paths(self.spec.paths, self.base, self.name)
        self.total_bytes = sum(f.stat().st_size for f in self.files)
        self.on_bad = self.on_bad or self.spec.on_bad

    def __iter__(self) -> Iterator[Document]:
        self.bytes_read, self.set_aside, self.examples = 0, Counter(), []
        n = 0
        for path in self.files:
            fmt = file_format(path, self.spec.format)
            reader = {"text": self._text, "jsonl": self._jsonl, "parquet": self._parquet}[fmt]
            for doc in reader(path):
                n += 1
                yield doc
            self.bytes_read += path.stat().st_size
        if n == 0:
            aside = ", ".join(f"{k} {v}" for k, v in self.set_aside.items())
            raise InputError(str(self.files[0]), f'source "{self.name}" has no usable document'
                             + (f" (set aside: {aside})" if aside else ""),
                             fix="point the source at files holding text")

    # ------------------------------------------------------------------------ per format

    def _text(self, path: Path) -> Iterator[Document]:
        raw = _read_bytes(path)
        mode = self.spec.documents
        if mode == "file":
            pieces = [(raw, 1, None)]
        else:
            pattern = rb"\r?\n" if mode == "line" else rb"\r?\n(?:[ \t\r]*\n)+|\r?\n\Z"
            pieces = _split_with_lines(raw, pattern)
        for chunk, line, label in pieces:
            if mode != "file" and not chunk.strip():
                continue  # blank lines separate documents; they are not documents
            origin = f"{path}:{label} {line}" if label else str(path)
            doc = self._decode(chunk, path, origin, line)
            if doc is not None:
                yield doc

    def _jsonl(self, path: Path) -> Iterator[Document]:
        key = self.spec.field
        for number, line in enumerate(_read_bytes(path).split(b"\n"), 1):
            if not line.strip():
                continue
            origin = f"{path}:line {number}"
            try:
                record = json.loads(line)
            except UnicodeDecodeError as exc:
                self._bad("undecodable", path, origin, number, _byte_problem(line, exc))
                continue
            except ValueError as exc:
                self._bad("malformed", path, origin, number, f"not valid JSON ({exc})")
                continue
            text = record.get(key) if isinstance(record, dict) else None
            if not isinstance(text, str):
                what = "not an object" if not isinstance(record, dict) else (
                    f'no field "{key}"' if key not in record else f'field "{key}" is not text')
                self._bad("malformed", path, origin, number, what, column=key)
                continue
            doc = self._check_text(text, path, origin, number)
            if doc is not None:
                yield doc

    def _parquet(self, path: Path) -> Iterator[Document]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(str(path), f"is not a readable Parquet file ({exc})") from None
        names = pf.schema_arrow.names
        if self.spec.field not in names:
            raise InputError(str(path), f'no column "{self.spec.field}"', fix=f"choose one of "
                             f'{", ".join(names)} with field = "..." in [sources.{self.name}]')
        row = 0
        for batch in pf.iter_batches(columns=[self.spec.field]):
            for value in batch.column(0).to_pylist():
                row += 1
                origin = f"{path}:row {row}"
                if isinstance(value, bytes):
                    doc = self._decode(value, path, origin, None, row=row)
                elif isinstance(value, str) or value is None:
                    doc = self._check_text(value or "", path, origin, None, row=row)
                else:
                    self._bad("malformed", path, origin, None, "value is not text", row=row)
                    continue
                if doc is not None:
                    yield doc

    # ------------------------------------------------------------------------ checks

    def _decode(self, data: bytes, path: Path, origin: str, line: int | None,
                row: int | None = None) -> Document | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = line + data.count(b"\n", 0, exc.start) if line else None
            self._bad("undecodable", path, origin, bad_line, _byte_problem(data, exc), row=row)
            return None
        return self._check_text(text, path, origin, line, row=row, data=data)

    def _check_text(self, text: str, path: Path, origin: str, line: int | None,
                    row: int | None = None, data: bytes | None = None) -> Document | None:
        if "\x00" in text:
            self._bad("binary", path, origin, line, "holds a NUL byte (binary data)", row=row)
            return None
        if not text.strip():
            self._note("empty", origin, "empty document")
            return None
        return Document(text, data if data is not None else text.encode("utf-8"), origin)

    def _bad(self, reason: str, path: Path, origin: str, line: int | None, problem: str,
             row: int | None = None, column: str | None = None) -> None:
        if self.on_bad == "error":
            raise InputError(str(path), problem, line=line, row=row, column=column,
                             fix=f'fix or remove it, or set on_bad = "skip" in '
                             f"[sources.{self.name}] to set such documents aside "
                             "(ladder data check lists them)")
        self._note(reason, origin, problem)

    def _note(self, reason: str, origin: str, problem: str) -> None:
        self.set_aside[reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"origin": origin, "reason": reason, "problem": problem})


def _byte_problem(data: bytes, exc: UnicodeDecodeError) -> str:
    start = data.rfind(b"\n", 0, exc.start) + 1
    column = exc.start - start + 1
    return f"byte 0x{data[exc.start]:02x} at column {column} is not UTF-8"


def _split_with_lines(raw: bytes, pattern: bytes) -> list[tuple[bytes, int, str]]:
    """Pieces of ``raw`` between separators, each with the line it starts on."""
    out, pos, line = [], 0, 1
    for m in re.finditer(pattern, raw):
        out.append((raw[pos: m.start()], line, "line"))
        line += raw.count(b"\n", pos, m.end())
        pos = m.end()
    out.append((raw[pos:], line, "line"))
    return out


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror or exc})") from None


def file_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffixes = path.suffixes[-2:] if path.suffix == ".gz" else path.suffixes[-1:]
    return SUFFIXES.get(suffixes[0].lower() if suffixes else "", "text")


def resolve_paths(paths: list[str], base: str, name: str) -> list[Path]:
    """Files named by paths, directories (recursively, hidden names skipped) and globs."""
    files: dict[Path, None] = {}
    for p in paths:
        full = Path(os.path.expanduser(p))
        full = full if full.is_absolute() else Path(base) / full
        if glob.has_magic(str(full)):
            found = sorted(Path(f) for f in glob.glob(str(full), recursive=True)
                           if Path(f).is_file())
            if not found:
                raise InputError(str(full), f'no file matches this pattern (source "{name}")',
                                 fix="check the path; relative paths start at the recipe "
                                 "file's folder")
        elif full.is_dir():
            found = sorted(f for f in full.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(full).parts))
            if not found:
                raise InputError(str(full), f'folder holds no file (source "{name}")',
                                 fix="point the source at files holding text")
        elif full.is_file():
            found = [full]
        else:
            raise InputError(str(full), f'no such file or folder (source "{name}")',
                             fix="check the path; relative paths start at the recipe file's "
                             "folder")
        files.update(dict.fromkeys(found))
    return list(files)
