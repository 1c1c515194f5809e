"""``ladder data build``: sources -> tokenizer -> per-source token shards -> recipe streams.

Three stages, each resumable file by file (a file is reused when the key of its inputs and its
SHA-256 both match ``DIR/state.json``): (1) the tokenizer, BPE trained on a seeded sample of
train text; (2) every source, read in chunks of ``source_shard_bytes``, split by document hash,
tokenized into ``DIR/sources/<source>/{train,val}-NNNNN.bin`` and filtered for every recipe
that uses it; its validation shards concatenated into ``DIR/val/<source>.bin``; (3) every
recipe, its documents drawn by weight (:func:`mixture_plan`) and gathered from the source
shards into ``DIR/<recipe>/train-NNNNN.bin``. The manifest is written last.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ..errors import InputError
from ..files import write_atomic, write_json
from .filters import FilterChain, code_filters, label
from .recipes import RecipeFile, TokenizerSpec, load_recipes, mixture_plan
from .sources import SourceReader, is_val, resolve_paths, uniform
from .tokenfiles import (
    FORMAT,
    VERSION,
    BuildState,
    key_of,
    read_index,
    write_hashed,
    write_tokens,
)
from .tokenizers import BPETokenizer, ByteTokenizer, Tokenizer

Progress = Callable[[str, float, float], None]
SAMPLE_DOCS, SAMPLE_BYTES = 64, 1 << 18


@dataclass(frozen=True)
class BuildResult:
    """What a build made: the manifest, and how many files were written or reused."""

    directory: Path
    manifest: dict
    written: int
    reused: int
    seconds: float

    def to_dict(self) -> dict:
        m = self.manifest
        return {"directory": str(self.directory), "written": self.written,
                "reused": self.reused, "seconds": self.seconds, "tokenizer": m["tokenizer"],
                "dtype": m["dtype"], "sources": m["sources"], "recipes": m["recipes"]}


@dataclass
class _Source:
    """A source as built: shard files, per-document token/byte counts, filter masks."""

    name: str
    sha256: str = ""
    shards: list[dict] = field(default_factory=list)
    ends: list[np.ndarray] = field(default_factory=list)  # per train shard
    tokens: list[np.ndarray] = field(default_factory=list)  # per train doc, EOS included
    nbytes: list[np.ndarray] = field(default_factory=list)
    val: dict = field(default_factory=dict)
    keep: dict[str, list[np.ndarray]] = field(default_factory=dict)
    chains: dict[str, FilterChain] = field(default_factory=dict)


def build(recipes: str | Path | RecipeFile, out: str | Path, *, tokenizer: str | None = None,
          vocab: int | None = None, only: Sequence[str] | None = None,
          progress: Progress | None = None, allow_code: bool = False) -> BuildResult:
    """Build token files for every recipe (or those in ``only``) of a recipe file.

    Parameters
    ----------
    recipes : path of a recipe file (TOML, see :mod:`.recipes`) or a parsed one.
    out : the directory to fill; a finished file in it is reused when it still matches.
    tokenizer, vocab : override the file's ``[tokenizer]`` (``"byte"``, ``"bpe"`` or
        ``"bpe:4096"``).
    only : recipe names to build (all sources are tokenized: each is a validation slice).
    progress : called as ``progress(phase, done, total)`` while bytes are processed.
    allow_code : run ``callable`` filters (``module:function`` named by the recipe file, i.e.
        code the file chooses); without it only those registered in the entry point group
        ``scaling_ladder.filters`` run, and any other is an :class:`InputError` before
        anything is written.

    Returns
    -------
    BuildResult, whose ``manifest`` is what ``DIR/manifest.json`` holds.
    """
    t0 = time.perf_counter()
    cfg = recipes if isinstance(recipes, RecipeFile) else load_recipes(recipes)
    cfg = _override(cfg, tokenizer, vocab)
    names = _select(cfg, only)
    code_filters(cfg, names, allow_code=allow_code)
    readers = {s: SourceReader(s, spec, cfg.base) for s, spec in cfg.sources.items()}
    evals = {e: [str(p) for p in resolve_paths(spec.paths, cfg.base, e)]
             for e, spec in cfg.evals.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # a half-rebuilt folder has no manifest
    state = BuildState(out)
    progress = progress or (lambda *_: None)
    tok = _tokenizer(cfg, readers, out, state, progress)
    built = {s: _build_source(r, cfg, names, tok, out, state, progress, allow_code)
             for s, r in readers.items()}
    recipes_out = {r: _build_recipe(r, cfg, built, tok, out, state, progress) for r in names}
    manifest = {
        "format": FORMAT, "version": VERSION, "created_by": f"scaling-ladder {_version()}",
        "recipe_file": {"path": cfg.path, "copy": "recipes.toml"},
        "tokenizer": tok.spec(), "dtype": tok.dtype.name, "vocab_size": tok.vocab_size,
        "eos_id": tok.eos_id, "seed": cfg.build.seed,
        "sources": {s: _source_entry(b, readers[s], cfg) for s, b in built.items()},
        "recipes": recipes_out,
        "evals": {e: {**cfg.evals[e].model_dump(), "paths": p} for e, p in evals.items()},
    }
    if Path(cfg.path).is_file():
        write_atomic(out / "recipes.toml", Path(cfg.path).read_bytes())
    write_json(out / "manifest.json", manifest)
    return BuildResult(out, manifest, state.written, state.reused, time.perf_counter() - t0)


def build_each(recipes: str | Path | RecipeFile, out: str | Path, tokenizers: Sequence[str], *,
               vocab: int | None = None, only: Sequence[str] | None = None,
               progress: Progress | None = None, allow_code: bool = False
               ) -> dict[str, BuildResult]:
    """The same recipes built with several tokenizers side by side, for a tokenizer experiment.

    ``tokenizers`` are ``"byte"``, ``"bpe"`` (``vocab`` or the file's) or ``"bpe:4096"``. Each
    is built by :func:`build` into ``out/<label>`` (``byte``, ``bpe-4096``), its recipes named
    ``<recipe>.<label>``: every arm of the experiment is its own recipe, so the ladders trained
    on these folders can be compared in one table (in bits/byte: ``ladder compare``).
    Returns the results by label.
    """
    cfg = recipes if isinstance(recipes, RecipeFile) else load_recipes(recipes)
    names = _select(cfg, only)
    specs = {}
    for text in tokenizers:
        spec = _override(cfg, str(text), vocab).tokenizer
        label = "byte" if spec.kind == "byte" else f"bpe-{spec.vocab}"
        if label in specs:
            raise ValueError(f"The tokenizer {label} is given twice.")
        specs[label] = spec
    results = {}
    for label, spec in specs.items():
        renamed = {f"{r}.{label}": cfg.recipes[r] for r in cfg.recipes}
        check = spec.train_on
        spec = spec.model_copy(update={"train_on": f"{check}.{label}" if check else None})
        one = cfg.model_copy(update={"tokenizer": spec, "recipes": renamed})
        results[label] = build(one, Path(out) / label, only=[f"{r}.{label}" for r in names],
                               progress=progress, allow_code=allow_code)
    return results


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scaling-ladder")
    except PackageNotFoundError:
        return "unknown"


def _override(cfg: RecipeFile, kind: str | None, vocab: int | None) -> RecipeFile:
    """The file with its tokenizer overridden: ``kind`` is byte, bpe or bpe:VOCAB."""
    if kind is None and vocab is None:
        return cfg
    kind, _, size = (kind or "").partition(":")
    if size:
        if not size.strip().isdigit():
            raise ValueError(f"The tokenizer is byte, bpe or bpe:VOCAB (e.g. bpe:4096). "
                             f"Got {kind}:{size}.")
        vocab = int(size)
    kind = kind.strip() or None
    spec = cfg.tokenizer.model_dump()
    spec.update({k: v for k, v in (("kind", kind), ("vocab", vocab)) if v is not None})
    try:
        new = TokenizerSpec(**spec)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ValueError(f"The '{e['loc'][0]}' argument of build is invalid: "
                         f"{e['msg'].lower()}. Got {e['input']!r}.") from None
    return cfg.model_copy(update={"tokenizer": new})


def _select(cfg: RecipeFile, only: Sequence[str] | None) -> list[str]:
    names = list(only) if only else list(cfg.recipes)
    for n in names:
        if n not in cfg.recipes:
            raise InputError(cfg.path, f'no recipe "{n}"',
                             fix=f"choose one of {', '.join(cfg.recipes)}")
    return names


# ----------------------------------------------------------------------- stage 1: tokenizer


def _tokenizer(cfg: RecipeFile, readers: dict[str, SourceReader], out: Path,
               state: BuildState, progress: Progress) -> Tokenizer:
    spec = cfg.tokenizer
    if spec.kind == "byte":
        return ByteTokenizer()
    shares = (cfg.weights(spec.train_on) if spec.train_on
              else {s: 1 / len(readers) for s in readers})
    texts, digests = [], hashlib.sha256()
    for s, share in shares.items():
        reader, quota, got = readers[s], spec.train_bytes * share, 0
        rate = min(1.0, quota / max(reader.total_bytes, 1))
        frac = cfg.val_fraction(s)
        for doc in reader:
            progress(f"sample {s}", reader.bytes_read, reader.total_bytes)
            d = doc.digest
            if not is_val(d, frac) and uniform(d, 1) < rate:
                texts.append(doc.text)
                digests.update(d)
                got += len(doc.data)
                if got >= quota:
                    break
    key = key_of("bpe", spec.vocab, digests.hexdigest())
    if state.done("tokenizer.json", key):
        return BPETokenizer.load(out / "tokenizer.json")
    progress("train BPE", 0, 1)
    tok = BPETokenizer.train(texts, spec.vocab)
    sha = write_hashed(out / "tokenizer.json", tok._text.encode("utf-8"))
    state.record("tokenizer.json", key, sha)
    return tok


# ------------------------------------------------------------------------- stage 2: sources


def _build_source(reader: SourceReader, cfg: RecipeFile, recipes: list[str], tok: Tokenizer,
                  out: Path, state: BuildState, progress: Progress,
                  allow_code: bool = False) -> _Source:
    """Tokenize a source chunk by chunk into train and val shards; filter it per recipe."""
    name, frac = reader.name, cfg.val_fraction(reader.name)
    src = _Source(name)
    for r in recipes:
        specs = cfg.filters_for(r, name)
        if specs and cfg.weights(r).get(name):
            src.chains.setdefault(_chain_key(specs), FilterChain(specs, config=cfg.path,
                                                                 allow_code=allow_code))
    src.keep = {k: [] for k in src.chains}
    content, sample, val_parts = hashlib.sha256(), [], []
    for i, chunk in enumerate(_chunks(reader, cfg.build.source_shard_bytes)):
        digests = [d.digest for d in chunk]
        val = np.array([is_val(g, frac) for g in digests], bool)
        for g, v in zip(digests, val):
            content.update(g + bytes([int(v)]))
        key = key_of("source-shard", tok.sha256, frac,
                     hashlib.sha256(b"".join(digests)).hexdigest(), val.tolist())
        val_docs = [d for d, v in zip(chunk, val) if v]
        val_parts.append(_tokenize(val_docs, f"sources/{name}/val-{i:05d}.bin", key, tok, out,
                                   state)[0])
        docs = [d for d, v in zip(chunk, val) if not v]
        entry, ends = _tokenize(docs, f"sources/{name}/train-{i:05d}.bin", key, tok, out, state)
        src.shards.append(entry)
        src.ends.append(ends)
        src.tokens.append(np.diff(ends, prepend=0))
        src.nbytes.append(np.array([len(d.data) for d in docs], np.int64))
        for k, chain in src.chains.items():
            src.keep[k].append(chain(docs))
        for d, g in zip(chunk, digests):  # the first documents, then 1% of the rest
            if len(sample) < SAMPLE_DOCS and (len(sample) < SAMPLE_DOCS // 2
                                              or uniform(g, 1) < 0.01):
                sample.append({"origin": d.origin, "text": d.text[:SAMPLE_BYTES]})
        progress(f"tokenize {name}", reader.bytes_read, reader.total_bytes)
    src.sha256 = content.hexdigest()
    for part, n in (("train", sum(e["documents"] for e in src.shards)),
                    ("validation", sum(e["documents"] for e in val_parts))):
        if n == 0:
            raise InputError(str(reader.files[0]), f'source "{name}" has no {part} document '
                             f"({sum(e['documents'] for e in src.shards + val_parts)} in all, "
                             f"val_fraction {frac})", fix="add documents or change "
                             f"val_fraction in [sources.{name}]")
    src.val = _concat_val(name, val_parts, out, state)
    write_atomic(out / f"sources/{name}/sample.jsonl",
                 "".join(json.dumps(s) + "\n" for s in sample).encode())
    return src


def _chunks(reader: SourceReader, size: int):
    """The source's documents in lists of about ``size`` bytes."""
    chunk, n = [], 0
    for doc in reader:
        chunk.append(doc)
        n += len(doc.data)
        if n >= size:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


def _tokenize(docs: list, rel: str, key: str, tok: Tokenizer, out: Path,
              state: BuildState) -> tuple[dict, np.ndarray]:
    """Token file ``rel`` of ``docs`` (reused when its key and hash match) and its ends."""
    if state.done(rel, key):
        ends = read_index(out / rel)
    else:
        tokens, ends = tok.encode_docs([d.text for d in docs])
        state.record(rel, key, write_tokens(out / rel, tokens, ends))
    return {"file": rel, "sha256": state.sha256(rel), "documents": len(docs),
            "tokens": int(ends[-1]) if len(ends) else 0,
            "bytes": sum(len(d.data) for d in docs)}, ends


def _chain_key(specs) -> str:
    return key_of([s.model_dump() for s in specs])


def _concat_val(name: str, parts: list[dict], out: Path, state: BuildState) -> dict:
    rel = f"val/{name}.bin"
    key = key_of("val", [p["sha256"] for p in parts])
    if not state.done(rel, key):
        arrays = [np.fromfile(out / p["file"], "<u1") for p in parts]
        ends, offset = [], 0
        for p in parts:
            e = read_index(out / p["file"])
            ends.append(e + offset)
            offset += p["tokens"]
        state.record(rel, key, write_tokens(out / rel, np.concatenate(arrays),
                                            np.concatenate(ends)))
    tokens, nbytes = sum(p["tokens"] for p in parts), sum(p["bytes"] for p in parts)
    return {"file": rel, "index": f"val/{name}.idx", "sha256": state.sha256(rel),
            "documents": sum(p["documents"] for p in parts), "bytes": nbytes,
            "tokens": tokens, "bytes_per_token": nbytes / tokens}


def _source_entry(src: _Source, reader: SourceReader, cfg: RecipeFile) -> dict:
    tokens = int(sum(e["tokens"] for e in src.shards))
    nbytes = int(sum(e["bytes"] for e in src.shards))
    shards = [{**e, "index": e["file"][:-4] + ".idx"} for e in src.shards]
    return {
        "sha256": src.sha256, "paths": [str(p) for p in reader.files],
        "format": cfg.sources[src.name].format, "field": cfg.sources[src.name].field,
        "val_fraction": cfg.val_fraction(src.name),
        "set_aside": dict(reader.set_aside), "set_aside_examples": reader.examples,
        "train": {"documents": int(sum(e["documents"] for e in src.shards)), "bytes": nbytes,
                  "tokens": tokens, "bytes_per_token": nbytes / tokens, "shards": shards},
        "val": src.val, "sample": f"sources/{src.name}/sample.jsonl",
    }


# ------------------------------------------------------------------------- stage 3: recipes


def _build_recipe(name: str, cfg: RecipeFile, built: dict[str, _Source], tok: Tokenizer,
                  out: Path, state: BuildState, progress: Progress) -> dict:
    weights = cfg.weights(name)
    counts, removed = {}, {}
    for s in weights:
        t = np.concatenate(built[s].tokens).copy()
        k = _chain_key(cfg.filters_for(name, s))
        if k in built[s].keep:
            t[~np.concatenate(built[s].keep[k])] = -1
            removed[s] = dict(built[s].chains[k].removed)
        counts[s] = t
        if not (t > 0).any():
            raise InputError(cfg.path, f'the filters of recipe "{name}" remove every document '
                             f'of source "{s}"', fix="loosen the filters or drop the source")
    recipe = cfg.recipes[name]
    seed = int(key_of(cfg.build.seed, name)[:8], 16)
    src_idx, doc_idx, stats = mixture_plan(counts, weights, recipe.tokens, seed)
    order = list(weights)
    lens, nbytes = np.zeros(len(src_idx), np.int64), 0
    for i, s in enumerate(order):
        mine = src_idx == i
        lens[mine] = counts[s][doc_idx[mine]]
        nbytes += int(np.concatenate(built[s].nbytes)[doc_idx[mine]].sum())
    key = key_of("recipe", tok.sha256, [built[s].sha256 for s in order], weights,
                 recipe.tokens, [f.model_dump() for f in recipe.filters], seed,
                 cfg.build.shard_tokens)
    buf = io.BytesIO()
    np.save(buf, np.stack([src_idx, doc_idx], axis=1).astype(np.int64))
    plan_rel = f"{name}/documents.npy"
    if not state.done(plan_rel, key):
        state.record(plan_rel, key, write_hashed(out / plan_rel, buf.getvalue()))
    shards = _write_recipe_shards(name, order, src_idx, doc_idx, lens, built, tok, out, state,
                                  key, cfg.build.shard_tokens, progress)
    total = int(lens.sum())
    for s in order:
        stats[s]["removed_by_filters"] = removed.get(s, {})
    return {"weights": weights, "tokens_budget": recipe.tokens,
            "filters": [{**f.model_dump(), "label": label(f)} for f in recipe.filters],
            "documents": int(len(lens)), "tokens": total, "bytes": nbytes,
            "bytes_per_token": nbytes / total, "sources": stats,
            "documents_file": plan_rel, "shards": shards}


def _write_recipe_shards(name, order, src_idx, doc_idx, lens, built, tok, out, state, key,
                         shard_tokens, progress) -> list[dict]:
    cum = np.concatenate([[0], np.cumsum(lens)])
    total = int(cum[-1])
    bounds = {s: np.concatenate([[0], np.cumsum([len(e) for e in built[s].ends])])
              for s in order}
    maps: dict[str, np.memmap] = {}
    shards = []
    for k in range(-(-total // shard_tokens)):
        rel = f"{name}/train-{k:05d}.bin"
        lo, hi = k * shard_tokens, min((k + 1) * shard_tokens, total)
        if not state.done(rel, key_of(key, k)):
            d0 = int(np.searchsorted(cum, lo, side="right")) - 1
            d1 = int(np.searchsorted(cum, hi, side="left"))
            parts = []
            for j in range(d0, d1):
                s = order[src_idx[j]]
                sh = int(np.searchsorted(bounds[s], doc_idx[j], side="right")) - 1
                ends = built[s].ends[sh]
                local = int(doc_idx[j] - bounds[s][sh])
                rel_src = built[s].shards[sh]["file"]
                if rel_src not in maps:
                    maps[rel_src] = np.memmap(out / rel_src, dtype=tok.dtype, mode="r")
                a = int(ends[local - 1]) if local else 0
                parts.append(maps[rel_src][a: int(ends[local])])
            arr = np.concatenate(parts)[lo - int(cum[d0]): hi - int(cum[d0])]
            state.record(rel, key_of(key, k), write_tokens(out / rel, arr))
        shards.append({"file": rel, "sha256": state.sha256(rel), "tokens": hi - lo})
        progress(f"mix {name}", hi, total)
    return shards
