"""Speed of ``ladder data build`` (byte and BPE) and of the contamination check, in MB/s of
source text, against straightforward pure-Python baselines on the same input in the same run.

The input is the bundled default corpus (about 5 MB at scale 1). Baselines:

- build: read the JSON Lines, split by BLAKE2b hash, tokenize document by document
  (``list(text.encode())``; for BPE, GPT-2's ``encoder.py`` merge loop with a word cache over
  the merges our build trained, its training time not charged), mix the recipe by weight with
  ``random``, write ``array('H')`` files. Our build also trains the BPE, verifies hashes,
  writes shards and the manifest.
- contamination: Python sets of 13-word tuples per recipe, membership per slice n-gram
  (Brown et al. 2020, appendix C), from texts already in memory.

Run: ``python bench/data_speed.py [--scale 1.0] [--vocab 4096]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import tempfile
import time
from array import array
from pathlib import Path

import numpy as np

from scaling_ladder.data import build, default_recipes, load_recipes, open_tokens
from scaling_ladder.data.checks import _source_texts, contamination

WORD = re.compile(r"[A-Za-z0-9\u0080-\U0010FFFF]+")
PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def read_sources(recipes: Path) -> dict[str, list[str]]:
    cfg = load_recipes(recipes)
    out = {}
    for name, spec in cfg.sources.items():
        path = Path(cfg.base) / spec.paths[0]
        out[name] = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return out


# ------------------------------------------------------------------------ pure-Python build


def byte_encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


class PythonBPE:
    """GPT-2's encoder.py: byte-to-unicode map, greedy lowest-rank merges, a word cache."""

    def __init__(self, tokenizer_json: Path) -> None:
        model = json.loads(tokenizer_json.read_text())["model"]
        self.vocab = model["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in model["merges"]]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
              + list(range(ord("®"), ord("ÿ") + 1)))
        cs, n = bs[:], 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        self.byte_map = dict(zip(bs, map(chr, cs)))
        self.cache: dict[str, list[int]] = {}

    def _word(self, word: str) -> list[int]:
        if word in self.cache:
            return self.cache[word]
        parts = [self.byte_map[b] for b in word.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            parts[i: i + 2] = [parts[i] + parts[i + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        return [i for w in PRETOKEN.findall(text) for i in self._word(w)]


def python_build(sources: dict[str, list[str]], weights: dict[str, float], encode, eos: int,
                 out: Path, val_fraction: float) -> int:
    """Split, tokenize, mix one recipe and write token files, the plain way."""
    out.mkdir(parents=True, exist_ok=True)
    train: dict[str, list[list[int]]] = {}
    for name, docs in sources.items():
        train[name], val = [], array("H")
        for text in docs:
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            ids = encode(text) + [eos]
            if int.from_bytes(digest[:8], "big") / 2.0**64 < val_fraction:
                val.extend(ids)
            else:
                train[name].append(ids)
        (out / f"val-{name}.bin").write_bytes(val.tobytes())
    avail = {s: sum(map(len, train[s])) for s in weights}
    budget = min(avail[s] / w for s, w in weights.items())
    rng, stream = random.Random(0), []
    for s, w in weights.items():
        docs, got = train[s][:], 0
        rng.shuffle(docs)
        for d in docs:
            if got >= budget * w:
                break
            stream.append(d)
            got += len(d)
    rng.shuffle(stream)
    tokens = array("H", [t for d in stream for t in d])
    (out / "train.bin").write_bytes(tokens.tobytes())
    return len(tokens)


def python_contamination(train: dict[str, list[str]], slices: dict[str, list[str]],
                         n: int = 13) -> dict[str, int]:
    def grams(text: str):
        words = [w.lower() for w in WORD.findall(text)]
        return {tuple(words[i: i + n]) for i in range(len(words) - n + 1)}

    pool = set()
    for docs in train.values():
        for d in docs:
            pool |= grams(d)
    out = {}
    for name, docs in slices.items():
        out[name] = 0
        for d in docs:
            words = [w.lower() for w in WORD.findall(d)]
            out[name] += sum(tuple(words[i: i + n]) in pool
                             for i in range(len(words) - n + 1))
    return out


# ------------------------------------------------------------------------------ the run


REPEAT = 2


def timed(fn):
    """The value of ``fn()`` and its best time over REPEAT runs (timeit's rule: the minimum
    is the run least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return value, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--vocab", type=int, default=4096)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="data-speed-"))
    recipes = default_recipes(work / "corpus", scale=args.scale)
    only = (work / "recipes.toml")
    text = recipes.read_text()
    only.write_text(text[: text.index("[recipes.")].replace(
        'paths = ["', f'paths = ["{work / "corpus"}/') + "[recipes.balanced]\n"
        'weights = { "stdlib-code" = 1, "stdlib-prose" = 1, "grammar-simple" = 1, '
        '"grammar-rich" = 1 }\n')
    sources = read_sources(only)
    mb = sum(len(t.encode("utf-8")) for docs in sources.values() for t in docs) / 1e6
    weights = {s: 0.25 for s in sources}
    frac = load_recipes(only).build.val_fraction
    rows = []

    fresh = iter(range(1000))
    ours, t_ours = timed(lambda: build(only, work / f"byte-{next(fresh)}"))
    shutil.copytree(work / "byte-0", work / "byte")
    base, t_base = timed(lambda: python_build(sources, weights, byte_encode, 256,
                                              work / "py-byte", frac))
    rows.append(("build, byte", t_ours, t_base,
                 f"{ours.manifest['recipes']['balanced']['tokens']:,} vs {base:,} tokens"))

    ours, t_train = timed(lambda: build(only, work / f"bpe-{next(fresh)}", tokenizer="bpe",
                                        vocab=args.vocab))
    shutil.copytree(work / "bpe-2", work / "bpe")

    def again():  # a fresh folder holding only the trained tokenizer
        folder = work / f"bpe-again-{next(fresh)}"
        folder.mkdir()
        for name in ("tokenizer.json", "state.json"):
            shutil.copy(work / "bpe" / name, folder / name)
        return build(only, folder, tokenizer="bpe", vocab=args.vocab)

    again, t_ours = timed(again)
    assert again.reused == 1 and again.manifest == {**ours.manifest}
    def python_bpe_build():  # a new encoder each run: its word cache starts cold, like ours
        bpe = PythonBPE(work / "bpe" / "tokenizer.json")
        return python_build(sources, weights, bpe.encode, bpe.vocab["<|endoftext|>"],
                            work / "py-bpe", frac)

    base, t_base = timed(python_bpe_build)
    tokens = f"{ours.manifest['recipes']['balanced']['tokens']:,} vs {base:,} tokens"
    rows.append((f"build, BPE {args.vocab}", t_ours, t_base,
                 tokens + " (tokenizer already trained)"))
    rows.append(("  + training the BPE", t_train, t_base, "ours trains, Python does not"))

    ds = open_tokens(work / "byte")
    tok = ds.tokenizer()

    def ours_contamination():
        texts = {s: _source_texts(ds, tok, s) for s in ds.sources}
        train = {s: t for s, (t, _) in texts.items()}
        slices = {f"val/{s}": v for s, (_, v) in texts.items()}
        return contamination(ds, train, slices, n=13)

    pairs, t_ours = timed(ours_contamination)
    split = {s: ([], []) for s in sources}  # the same documents, by the same hash rule
    for s, docs in sources.items():
        for d in docs:
            digest = hashlib.blake2b(d.encode("utf-8"), digest_size=16).digest()
            split[s][int.from_bytes(digest[:8], "big") / 2.0**64 < frac].append(d)
    plan = np.load(work / "byte" / "balanced" / "documents.npy")
    names = list(ds.manifest["recipes"]["balanced"]["weights"])
    used = {s: [split[s][0][d] for d in plan[plan[:, 0] == i, 1]] for i, s in enumerate(names)}
    base, t_base = timed(lambda: python_contamination(
        used, {f"val/{s}": v for s, (_, v) in split.items()}))
    rows.append(("contamination, 13-grams", t_ours, t_base,
                 f"matched {sum(p.matched for p in pairs):,} vs {sum(base.values()):,}"))

    print(f"input: bundled default corpus, {mb:.2f} MB of text, 4 sources, 1 recipe; "
          f"scale {args.scale}; best of {REPEAT} runs each")
    print(f"{'task':<26}{'ours MB/s':>11}{'python MB/s':>13}{'ratio':>8}  check")
    for name, t_ours, t_base, note in rows:
        print(f"{name:<26}{mb / t_ours:>11.2f}{mb / t_base:>13.2f}{t_base / t_ours:>7.1f}x  "
              f"{note}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
