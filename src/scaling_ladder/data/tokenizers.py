"""Tokenizers: byte-level (256 bytes + EOS) and byte-level BPE trained with HF ``tokenizers``.

Both are lossless: ``decode(encode(x)) == x`` for every string, because both work on UTF-8
bytes (the BPE is GPT-2's byte-level scheme, Radford et al. 2019) and nothing is normalised.
Every document in a token file is followed by the EOS id, which ``encode`` never emits: the
literal text ``<|endoftext|>`` inside a document is encoded as ordinary text.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..files import write_atomic

EOS_TEXT = "<|endoftext|>"
# GPT-2's pre-tokenizer regex, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
# ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+, written out for ASCII text, where \p{L} is [A-Za-z],
# \p{N} is [0-9] and \s is [ \t\n\v\f\r]: on an ASCII string it finds the same pre-tokens.
_WS = r" \t\n\x0b\x0c\r"
_ASCII_PRETOKENS = re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+"
                              rf"|[{_WS}]+(?![^{_WS}])|[{_WS}]+")
# Places where that regex always ends a pre-token, whatever the characters around, and whose
# lookahead sees the same in a piece as in the whole text: before a space that follows a
# printable ASCII character; after a newline between two of them.
_SAFE = re.compile(r"(?<=[!-~])(?= )|(?<=[!-~]\n)(?=[!-~])")


BYTE_SPEC = "scaling-ladder byte tokenizer v1: ids 0-255 are bytes, 256 is EOS"


def dtype_for(vocab_size: int) -> np.dtype:
    """``uint16`` when every id fits in 16 bits, else ``uint32`` (little-endian on disk)."""
    return np.dtype("<u2") if vocab_size <= 65536 else np.dtype("<u4")


def _with_eos(flat: np.ndarray, lens: np.ndarray, eos: int, dtype: np.dtype):
    """Concatenated ids with EOS after each document, and the cumulative document ends."""
    ends = np.cumsum(lens + 1, dtype=np.int64)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype)
    body = np.ones(len(out), bool)
    body[ends - 1] = False
    out[body] = flat
    out[ends - 1] = eos
    return out, ends


def split_docs(tokens: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """The documents of an EOS-separated array, without their EOS."""
    starts = np.concatenate([np.zeros(1, np.int64), ends])[:-1]
    return [tokens[s: e - 1] for s, e in zip(starts.tolist(), ends.tolist())]


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, EOS = 256: vocabulary 257, one token per byte."""

    kind = "byte"
    vocab_size = 257
    eos_id = 256
    unk_id = None
    file = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(BYTE_SPEC.encode()).hexdigest()

    @property
    def dtype(self) -> np.dtype:
        return dtype_for(self.vocab_size)

    def spec(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "eos_id": self.eos_id,
                "sha256": self.sha256, "file": None, "description": BYTE_SPEC}

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(self.dtype)

    def encode_docs(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        raw = [d.encode("utf-8") for d in docs]
        lens = np.fromiter(map(len, raw), np.int64, len(raw))
        return _with_eos(np.frombuffer(b"".join(raw), np.uint8), lens, self.eos_id, self.dtype)

    def decode(self, ids: np.ndarray | Sequence[int]) -> str:
        ids = np.asarray(ids)
        return ids[ids < 256].astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def decode_bytes(self, tokens: np.ndarray, ends: np.ndarray) -> list[bytes]:
        return [d.astype(np.uint8).tobytes() for d in split_docs(tokens, ends)]

    def token_bytes(self) -> np.ndarray:
        """UTF-8 bytes each id stands for: 1, and 0 for EOS."""
        return np.r_[np.ones(256, np.int64), 0]


class BPETokenizer:
    """Byte-level BPE from HF ``tokenizers`` (Sennrich et al. 2016; GPT-2's byte alphabet)."""

    kind = "bpe"
    file = "tokenizer.json"

    def __init__(self, hf, text: str) -> None:
        hf.encode_special_tokens = True  # "<|endoftext|>" in a document is plain text
        self._hf, self._text = hf, text
        self.eos_id = hf.token_to_id(EOS_TEXT)
        self.vocab_size = hf.get_vocab_size()
        self.unk_id = None
        self._reset_cache()

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        """Train on ``texts``; the vocabulary holds 256 bytes, EOS and the merges."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=[EOS_TEXT], show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        hf.train_from_iterator(texts, trainer)
        return cls(hf, hf.to_str())

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        from tokenizers import Tokenizer

        text = Path(path).read_text(encoding="utf-8")
        return cls(Tokenizer.from_str(text), text)

    def save(self, path: str | Path) -> None:
        write_atomic(path, self._text)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._text.encode("utf-8")).hexdigest()

    @property
    def dtype(self) -> np.dtype:
        return dtype_for(self.vocab_size)

    def spec(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "eos_id": self.eos_id,
                "sha256": self.sha256, "file": self.file,
                "description": "byte-level BPE (HF tokenizers), EOS " + EOS_TEXT}

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._hf.encode(text, add_special_tokens=False).ids, self.dtype)

    def encode_docs(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Encode documents, each followed by EOS, through a cache of pre-tokens.

        BPE acts on each pre-token alone, so a document's ids are the concatenation of its
        pre-tokens' ids, and a pre-token seen before is looked up (GPT-2's ``encoder.py`` keeps
        the same cache). ASCII text is cut into pre-tokens here (_ASCII_PRETOKENS); a
        non-ASCII piece between two safe cuts (_SAFE) goes to HF tokenizers whole. Either way
        the ids equal ``encode`` of the whole document, which the tests check on arbitrary
        text.
        """
        flats, lens = [np.empty(0, self.dtype)], [np.empty(0, np.int64)]
        for i in range(0, len(docs), 256):
            flat, n = self._encode_cached(docs[i: i + 256])
            flats.append(flat)
            lens.append(n)
        return _with_eos(np.concatenate(flats), np.concatenate(lens), self.eos_id, self.dtype)

    def _encode_cached(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the documents, concatenated, and each document's count of them."""
        if len(self._index) > 1 << 20:
            self._reset_cache()
        pieces = [_pretokens(d) for d in docs]
        new = sorted(set().union(*pieces).difference(self._index))
        if new:
            ids = [e.ids for e in self._hf.encode_batch_fast(new, add_special_tokens=False)]
            self._index.update(zip(new, range(len(self._index), len(self._index) + len(new))))
            n = np.fromiter(map(len, ids), np.int64, len(ids))
            self._starts = np.concatenate([self._starts, len(self._pool) + np.cumsum(n) - n])
            self._lens = np.concatenate([self._lens, n])
            self._pool = np.concatenate([self._pool, np.fromiter(
                itertools.chain.from_iterable(ids), self.dtype, int(n.sum()))])
        counts = np.fromiter(map(len, pieces), np.int64, len(pieces))
        pid = np.fromiter(map(self._index.__getitem__, itertools.chain.from_iterable(pieces)),
                          np.int64, int(counts.sum()))
        n, start = self._lens[pid], self._starts[pid]
        cum = np.concatenate([[0], np.cumsum(n)])
        flat = self._pool[np.repeat(start - cum[:-1], n) + np.arange(cum[-1])]
        doc_end = np.cumsum(counts)
        return flat, cum[doc_end] - cum[doc_end - counts]

    def _reset_cache(self) -> None:
        """Forget cached pre-tokens: their index, and their ids pooled in one array."""
        self._index: dict[str, int] = {}
        self._pool = np.empty(0, self.dtype)
        self._starts = np.empty(0, np.int64)
        self._lens = np.empty(0, np.int64)

    def decode(self, ids: np.ndarray | Sequence[int]) -> str:
        return self._hf.decode(np.asarray(ids).tolist(), skip_special_tokens=True)

    def decode_bytes(self, tokens: np.ndarray, ends: np.ndarray) -> list[bytes]:
        docs = [d.tolist() for d in split_docs(tokens, ends)]
        texts = self._hf.decode_batch(docs, skip_special_tokens=True)
        return [t.encode("utf-8") for t in texts]

    def token_bytes(self) -> np.ndarray:
        """UTF-8 bytes each id stands for (one per character of GPT-2's byte alphabet), 0 for
        EOS."""
        out = np.zeros(self.vocab_size, np.int64)
        for token, i in self._hf.get_vocab().items():
            out[i] = 0 if i == self.eos_id else len(token)
        return out


def _pretokens(text: str) -> list[str]:
    """Pieces of ``text`` whose BPE ids, concatenated, are those of ``text``."""
    if text.isascii():
        return _ASCII_PRETOKENS.findall(text)
    out: list[str] = []
    for piece in _SAFE.split(text):
        if piece.isascii():
            out += _ASCII_PRETOKENS.findall(piece)
        else:
            out.append(piece)
    return out


Tokenizer = ByteTokenizer | BPETokenizer


def make_tokenizer(kind: str, *, vocab: int = 4096, texts: Iterable[str] = ()) -> Tokenizer:
    """A byte tokenizer, or a BPE trained on ``texts`` with ``vocab`` entries."""
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab)
    raise ValueError(f"The 'tokenizer' argument must be 'byte' or 'bpe'. Got {kind!r}.")


def load_tokenizer(spec: dict, directory: str | Path) -> Tokenizer:
    """The tokenizer a manifest's ``tokenizer`` entry describes, checked against its hash."""
    tok = ByteTokenizer() if spec["kind"] == "byte" else BPETokenizer.load(
        Path(directory) / spec["file"])
    if tok.sha256 != spec.get("sha256"):
        from ..errors import InputError

        raise InputError(str(Path(directory) / (spec.get("file") or "manifest.json")),
                         "the tokenizer does not match the hash in manifest.json"
                         + ("" if spec.get("sha256") else " (it has none)"),
                         fix="rebuild the directory with ladder data build")
    return tok
