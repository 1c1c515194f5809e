"""Stage-0 smoke checks of a built directory: catch data breakage before spending compute.

Per source: tokenizer round trip on a raw sample (``decode(encode(x)) == x``), replacement
character (U+FFFD) and unknown-token rates, exact- and near-duplicate rates (MinHash LSH,
Broder 1997), length distribution, diversity (distinct word n-gram ratio over an equal number
of words per source, Li et al. 2016) and gzip ratio (compressibility shifts the scaling law,
Pandey 2024), and the documents set aside at build time. Contamination: the share of each
validation slice's and eval set's word 13-grams that occur in each recipe's train stream, with
example matches (the GPT-3 study, Brown et al. 2020, appendix C).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Problems
from .filters import exact_duplicates, near_duplicates
from .ngrams import (
    Texts,
    distinct_ratio,
    isin_sorted,
    ngram_hashes,
    ngram_text,
    sorted_unique,
    words,
)
from .recipes import SourceSpec
from .sources import SourceReader
from .tokenfiles import TokenDataset, open_tokens, read_index
from .verify import token_files, verify

DIVERSITY_WORDS = 100_000
GZIP_BYTES = 1 << 20


@dataclass(frozen=True)
class SourceCheck:
    """The smoke checks of one source (train and validation documents together)."""

    source: str
    documents: int
    bytes: int
    tokens: int
    bytes_per_token: float
    length_bytes: dict[str, float]  # p5, p50, p95, max, mean
    exact_dup_rate: float
    near_dup_rate: float
    distinct_1: float
    distinct_4: float
    diversity_words: int
    gzip_ratio: float
    replacement_rate: float  # U+FFFD per character
    unknown_rate: float  # unknown-token ids per token
    roundtrip_checked: int
    roundtrip_failures: int
    roundtrip_example: str | None
    set_aside: dict[str, int]
    set_aside_examples: tuple[dict, ...]
    vocab_used: float = float("nan")  # share of the vocabulary the validation tokens use
    byte_token_share: float = float("nan")  # tokens that stand for one byte (no merge)


@dataclass(frozen=True)
class Contamination:
    """Overlap of one slice with one recipe's train stream, in word n-grams."""

    recipe: str
    slice: str
    ngrams: int  # n-grams in the slice
    matched: int  # of those, found in the recipe's train stream
    documents: int
    contaminated_documents: int  # slice documents with at least one match
    examples: tuple[str, ...]

    @property
    def rate(self) -> float:
        return self.matched / self.ngrams if self.ngrams else 0.0

    @property
    def document_rate(self) -> float:
        return self.contaminated_documents / self.documents if self.documents else 0.0


@dataclass(frozen=True)
class CheckResult:
    directory: str
    tokenizer: dict
    ngram: int
    near_threshold: float
    sources: tuple[SourceCheck, ...]
    contamination: tuple[Contamination, ...]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "directory": self.directory, "tokenizer": self.tokenizer, "ngram": self.ngram,
            "near_threshold": self.near_threshold,
            "sources": [asdict(s) for s in self.sources],
            "contamination": [{**asdict(c), "rate": c.rate, "document_rate": c.document_rate}
                              for c in self.contamination],
            "notes": list(self.notes),
        }


def check(directory: str | Path, *, evals: Mapping[str, str | Path | SourceSpec] | None = None,
          field: str = "text", ngram: int = 13, near_threshold: float = 0.8, examples: int = 3,
          progress: Callable[[str, float, float], None] | None = None) -> CheckResult:
    """Run the stage-0 smoke checks on a directory made by ``ladder data build``.

    Parameters
    ----------
    directory : the built directory.
    evals : extra eval sets checked for contamination, ``name -> path`` (file, folder, glob;
        JSON Lines or Parquet read ``field``) or a :class:`SourceSpec`; the recipe file's
        ``[evals]`` are always checked.
    ngram : words per n-gram for contamination (13, as in GPT-3).
    near_threshold : Jaccard similarity above which two documents are near-duplicates.
    examples : matching n-grams quoted per (recipe, slice) pair.

    Raises :class:`~scaling_ladder.errors.Problems` (bad input) first when a token file is
    missing, truncated, modified since the build or holds ids outside the vocabulary
    (:mod:`.verify`).

    Example: ``check("tokens", evals={"qa": "evals/qa.jsonl"}).to_dict()``
    """
    _check_args(ngram, near_threshold, examples)
    progress = progress or (lambda *_: None)
    ds = open_tokens(directory)
    bad = verify(ds, token_files(ds, sources=True))
    if bad:  # a truncated, modified or missing file: nothing below would mean anything
        raise Problems(f"{directory}: {len(bad)} token files do not match the manifest",
                       [str(e) for e in bad])
    tok = ds.tokenizer()
    names = ds.sources
    train, val = {}, {}
    for i, s in enumerate(names):
        progress("decode", i, len(names))
        train[s], val[s] = _source_texts(ds, tok, s)
    width = min([DIVERSITY_WORDS] + [len(words(_concat(train[s], val[s]))) for s in names])
    rows = []
    for i, s in enumerate(names):
        progress("sources", i, len(names))
        rows.append(_source_check(ds, tok, s, _concat(train[s], val[s]), near_threshold, width))
    slices = {f"val/{s}": val[s] for s in names}
    for name, spec in _eval_specs(ds, evals, field).items():
        slices[f"eval/{name}"] = _read_eval(name, spec)
    progress("contamination", 0, 1)
    pairs = contamination(ds, train, slices, n=ngram, examples=examples)
    notes = tuple(f"{r.source}: {r.roundtrip_failures} of {r.roundtrip_checked} sample "
                  f"documents do not survive decode(encode(x)), e.g. {r.roundtrip_example}"
                  for r in rows if r.roundtrip_failures)
    return CheckResult(str(directory), ds.manifest["tokenizer"], ngram, near_threshold,
                       tuple(rows), tuple(pairs), notes)


def _check_args(ngram: int, threshold: float, examples: int) -> None:
    if not (isinstance(ngram, int) and ngram >= 1):
        raise ValueError(f"The 'ngram' argument of check must be an int >= 1. Got {ngram!r}.")
    if not 0 < threshold <= 1:
        raise ValueError("The 'near_threshold' argument of check must be in (0, 1]. "
                         f"Got {threshold!r}.")
    if not (isinstance(examples, int) and examples >= 0):
        raise ValueError(f"The 'examples' argument of check must be an int >= 0. "
                         f"Got {examples!r}.")


# ---------------------------------------------------------------------------- decoding


def decode_texts(tok, tokens: np.ndarray, ends: np.ndarray) -> Texts:
    """The documents of an EOS-separated token array as :class:`Texts`."""
    if tok.kind == "byte":  # EOS becomes the newline that Texts puts after each document
        buf = np.where(tokens == tok.eos_id, 10, tokens).astype(np.uint8)
        return Texts(buf, np.asarray(ends, np.int64))
    return Texts.from_bytes(tok.decode_bytes(np.asarray(tokens), np.asarray(ends)))


def _source_texts(ds: TokenDataset, tok, source: str) -> tuple[Texts, Texts]:
    entry = ds.manifest["sources"][source]
    parts = []
    for shard in entry["train"]["shards"]:
        path = ds.directory / shard["file"]
        parts.append(decode_texts(tok, np.fromfile(path, ds.dtype), read_index(path)))
    val_path = ds.directory / entry["val"]["file"]
    val = decode_texts(tok, np.fromfile(val_path, ds.dtype), read_index(val_path))
    return _concat(*parts), val


def _concat(*parts: Texts) -> Texts:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Texts(np.empty(0, np.uint8), np.empty(0, np.int64))
    offsets = np.cumsum([0] + [len(p.buf) for p in parts[:-1]])
    return Texts(np.concatenate([p.buf for p in parts]),
                 np.concatenate([p.ends + o for p, o in zip(parts, offsets)]))


# -------------------------------------------------------------------------- per source


def _source_check(ds: TokenDataset, tok, source: str, texts: Texts, threshold: float,
                  width: int) -> SourceCheck:
    entry = ds.manifest["sources"][source]
    lengths = texts.lengths
    digests = [hashlib.blake2b(texts.buf[a: b - 1].tobytes(), digest_size=16).digest()
               for a, b in zip(texts.starts.tolist(), texts.ends.tolist())]
    n = len(texts)
    shuffled = _shuffled(texts, seed=0)
    w = words(shuffled)
    sample = shuffled.buf[:GZIP_BYTES].tobytes()
    chars = int(np.count_nonzero((texts.buf & 0xC0) != 0x80))
    bad = texts.buf.tobytes().count("\ufffd".encode())
    checked, failures, example = _roundtrip(ds, tok, entry["sample"])
    tokens = entry["train"]["tokens"] + entry["val"]["tokens"]
    return SourceCheck(
        source=source, documents=n, bytes=int(lengths.sum()), tokens=tokens,
        bytes_per_token=entry["val"]["bytes_per_token"],
        length_bytes={k: float(v) for k, v in zip(
            ("p5", "p50", "p95", "max"), np.percentile(lengths, [5, 50, 95, 100]))}
        | {"mean": float(lengths.mean())},
        exact_dup_rate=float(exact_duplicates(digests).mean()),
        near_dup_rate=float(near_duplicates(texts, threshold).mean()),
        distinct_1=distinct_ratio(w, 1, width), distinct_4=distinct_ratio(w, 4, width),
        diversity_words=width,
        gzip_ratio=len(zlib.compress(sample, 6)) / max(len(sample), 1),
        replacement_rate=bad / max(chars, 1), unknown_rate=_unknown_rate(ds, tok, entry),
        roundtrip_checked=checked, roundtrip_failures=failures, roundtrip_example=example,
        set_aside=entry["set_aside"], set_aside_examples=tuple(entry["set_aside_examples"]),
        **_token_use(ds, tok, entry))


def _shuffled(texts: Texts, seed: int) -> Texts:
    """Documents in a seeded random order, so that prefix samples are unbiased."""
    order = np.random.default_rng(seed).permutation(len(texts))
    return texts.subset(order)


def _roundtrip(ds: TokenDataset, tok, rel: str) -> tuple[int, int, str | None]:
    checked, failures, example = 0, 0, None
    for line in (ds.directory / rel).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        checked += 1
        if tok.decode(tok.encode(record["text"])) != record["text"]:
            failures += 1
            example = example or record["origin"]
    return checked, failures, example


def _token_use(ds: TokenDataset, tok, entry: dict) -> dict[str, float]:
    """How the tokenizer meets this source's validation text: the share of its vocabulary
    used, and of tokens that stand for a single byte (a byte-level BPE falling back to bytes;
    all of a byte tokenizer's)."""
    tokens = np.fromfile(ds.directory / entry["val"]["file"], ds.dtype)
    if not len(tokens):
        return {}
    width = tok.token_bytes()
    ids = tokens[tokens < len(width)]
    text = width[ids]
    text = text[text > 0]  # end-of-document tokens stand for no text
    return {"vocab_used": len(np.unique(ids)) / tok.vocab_size,
            "byte_token_share": float(np.mean(text == 1)) if len(text) else float("nan")}


def _unknown_rate(ds: TokenDataset, tok, entry: dict) -> float:
    if tok.unk_id is None:
        return 0.0
    path = ds.directory / entry["val"]["file"]
    tokens = np.fromfile(path, ds.dtype)
    return float(np.mean(tokens == tok.unk_id)) if len(tokens) else 0.0


# ------------------------------------------------------------------------ contamination


def _eval_specs(ds: TokenDataset, evals, field: str) -> dict[str, SourceSpec]:
    specs = {name: SourceSpec(**{**e, "on_bad": "skip"})
             for name, e in ds.manifest.get("evals", {}).items()}
    for name, value in (evals or {}).items():
        specs[name] = value if isinstance(value, SourceSpec) else SourceSpec(
            paths=[str(value)], field=field, on_bad="skip")
    return specs


def _read_eval(name: str, spec: SourceSpec) -> Texts:
    """An eval set's documents; unusable ones are skipped, never a crash."""
    reader = SourceReader(name, spec.model_copy(update={"on_bad": "skip"}), ".")
    return Texts.from_bytes([d.data for d in reader])


def contamination(ds: TokenDataset, train: dict[str, Texts], slices: dict[str, Texts], *,
                  n: int = 13, examples: int = 3) -> list[Contamination]:
    """Every (recipe, slice) pair: the slice's word n-grams found in the recipe's train docs.

    A recipe's train n-grams are those of the source documents its train stream holds (after
    its filters; ``DIR/<recipe>/documents.npy``), hashed to 64 bits and compared with
    binary search; examples quote the first matching n-gram of distinct slice documents.
    """
    per_source = {}
    for s, texts in train.items():
        w = words(texts)
        h, first = ngram_hashes(w, n)
        per_source[s] = (h, w.doc[first])
    slice_grams = {}
    for name, texts in slices.items():
        w = words(texts)
        h, first = ngram_hashes(w, n)
        slice_grams[name] = (texts, w, h, first)
    out = []
    for recipe, entry in ds.manifest["recipes"].items():
        plan = np.load(ds.directory / entry["documents_file"])
        order = list(entry["weights"])
        sets = []
        for i, s in enumerate(order):
            used = np.zeros(len(train[s]), bool)
            used[plan[plan[:, 0] == i, 1]] = True
            h, doc = per_source[s]
            sets.append(h[used[doc]])
        pool = sorted_unique(np.concatenate(sets))
        for name, (texts, w, h, first) in slice_grams.items():
            hit = isin_sorted(h, pool)
            docs = w.doc[first[hit]]
            quoted, seen = [], set()
            for pos, d in zip(first[hit].tolist(), docs.tolist()):
                if len(quoted) >= examples:
                    break
                if d not in seen:
                    seen.add(d)
                    quoted.append(ngram_text(texts, w, pos, n))
            out.append(Contamination(recipe, name, int(len(h)), int(hit.sum()), len(texts),
                                     int(len(sorted_unique(docs))), tuple(quoted)))
    return out
