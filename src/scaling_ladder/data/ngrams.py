"""Vectorised word n-gram hashing over concatenated UTF-8 text, and MinHash signatures.

Texts are held as one ``uint8`` buffer with a newline after every document (:class:`Texts`),
so that words never run across documents. Words are maximal runs of ASCII letters and digits
or non-ASCII bytes, lower-cased in ASCII (the normalisation of the GPT-3 contamination study,
Brown et al. 2020, appendix C, up to Unicode case folding). A word's hash is a polynomial
hash over its bytes, computed for all words at once from prefix sums of ``byte * P^-j`` modulo
2^64; an n-gram's hash combines n word hashes. Collisions at 64 bits are negligible at corpus
scale (about n^2 / 2^65).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_P = 0x100000001B3  # the 64-bit FNV prime: odd, so invertible modulo 2^64
_P_INV = pow(_P, -1, 2**64)
_R = np.uint64(0x9E3779B97F4A7C15)  # combines word hashes into n-gram hashes
_WINDOW = 1 << 20


@dataclass(frozen=True)
class Texts:
    """Documents as one UTF-8 buffer: document i is ``buf[starts[i] : ends[i] - 1]``.

    ``ends[i]`` is one past the newline that follows document i.
    """

    buf: np.ndarray  # uint8, every document followed by b"\n"
    ends: np.ndarray  # int64, cumulative

    @classmethod
    def from_strings(cls, docs: Sequence[str]) -> Texts:
        return cls.from_bytes([d.encode("utf-8") for d in docs])

    @classmethod
    def from_bytes(cls, docs: Sequence[bytes]) -> Texts:
        lens = np.fromiter((len(d) + 1 for d in docs), np.int64, len(docs))
        joined = b"\n".join(docs) + b"\n" if docs else b""
        return cls(np.frombuffer(joined, np.uint8), np.cumsum(lens))

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([np.zeros(1, np.int64), self.ends])[:-1]

    @property
    def lengths(self) -> np.ndarray:
        """Bytes of each document (without its separator)."""
        return self.ends - self.starts - 1

    def doc(self, i: int) -> bytes:
        return self.buf[self.starts[i]: self.ends[i] - 1].tobytes()

    def subset(self, keep: np.ndarray) -> Texts:
        """The documents where ``keep`` is true (or at the given indices), in order."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        return Texts.from_bytes([self.doc(int(i)) for i in idx])


@dataclass(frozen=True)
class Words:
    """Word spans of a :class:`Texts`: byte offsets, owning document and 64-bit hash."""

    starts: np.ndarray
    ends: np.ndarray
    doc: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


@lru_cache(maxsize=1)
def _powers() -> tuple[np.ndarray, np.ndarray]:
    """``P^j`` and ``P^-j`` modulo 2^64 for j < _WINDOW (numpy uint64 products wrap)."""
    with np.errstate(over="ignore"):
        pw = np.cumprod(np.full(_WINDOW, _P, np.uint64))
        ipw = np.cumprod(np.full(_WINDOW, _P_INV, np.uint64))
    return np.concatenate([[np.uint64(1)], pw[:-1]]), np.concatenate([[np.uint64(1)], ipw[:-1]])


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads the bits of a polynomial hash."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def lower_ascii(buf: np.ndarray) -> np.ndarray:
    return np.where((buf >= 65) & (buf <= 90), buf + 32, buf).astype(np.uint8)


def words(texts: Texts) -> Words:
    """Every word of every document with its hash, in order."""
    low = lower_ascii(texts.buf)
    is_word = ((low >= 97) & (low <= 122)) | ((low >= 48) & (low <= 57)) | (low >= 128)
    edge = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    doc = np.searchsorted(texts.ends, starts, side="right")
    return Words(starts, ends, doc, _word_hashes(low, starts, ends))


def _word_hashes(low: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """sum_j b_j P^(e-1-j) for each word, from windowed prefix sums of b_j P^-j."""
    pw, ipw = _powers()
    out = np.empty(len(starts), np.uint64)
    i = 0
    with np.errstate(over="ignore"):
        while i < len(starts):
            a = int(starts[i])
            j = int(np.searchsorted(ends, a + _WINDOW, side="right"))
            if j == i:  # one word longer than the window: hash it alone, in Python
                out[i] = _long_word_hash(low[a: ends[i]].tobytes())
                i += 1
                continue
            b = int(ends[j - 1])
            x = low[a:b].astype(np.uint64) + np.uint64(1)
            prefix = np.concatenate([[np.uint64(0)], np.cumsum(x * ipw[: b - a], dtype=np.uint64)])
            s, e = starts[i:j] - a, ends[i:j] - a
            out[i:j] = (prefix[e] - prefix[s]) * pw[e - 1]
            i = j
    return _mix(out)


def _long_word_hash(word: bytes) -> np.uint64:
    h = 0
    for byte in word:
        h = (h * _P + byte + 1) % 2**64
    return np.uint64(h)


def ngram_hashes(w: Words, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-word window inside one document, and the index of its first word."""
    m = len(w) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    h = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _R + w.hashes[k: k + m]
    first = np.flatnonzero(w.doc[:m] == w.doc[n - 1:])
    return _mix(h[first]), first


def ngram_text(texts: Texts, w: Words, first: int, n: int) -> str:
    """The original text of the n-gram whose first word is ``first``."""
    raw = texts.buf[w.starts[first]: w.ends[first + n - 1]].tobytes()
    return raw.decode("utf-8", errors="replace")


def sorted_unique(h: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy 2's hash-based unique is slow on uint64 hashes)."""
    s = np.sort(h)
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def isin_sorted(h: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(h, pool)`` for a sorted, duplicate-free ``pool``, by binary search."""
    if not len(pool):
        return np.zeros(len(h), bool)
    i = np.minimum(np.searchsorted(pool, h), len(pool) - 1)
    return pool[i] == h


def distinct_ratio(w: Words, n: int, limit: int = 200_000) -> float:
    """Distinct n-grams over all n-grams in the first ``limit`` words (Li et al. 2016)."""
    sub = Words(w.starts[:limit], w.ends[:limit], w.doc[:limit], w.hashes[:limit])
    h, _ = ngram_hashes(sub, n)
    return float(len(sorted_unique(h)) / len(h)) if len(h) else float("nan")


def minhash_signatures(texts: Texts, *, shingle: int = 5, num_perm: int = 128,
                       seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures over word ``shingle``-grams (Broder 1997), all documents at once.

    The i-th hash function is multiply-shift, ``(a_i x + b_i) mod 2^64 >> 32`` with odd
    ``a_i`` (Dietzfelbinger et al. 1997): three vectorised operations per shingle and
    function, against a division for ``mod p``. Returns the ``(documents, num_perm)``
    ``uint32`` signatures and a mask of documents with at least one shingle (shorter ones
    have no signature and are never near-duplicates).
    """
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1))
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    w = words(texts)
    x, first = ngram_hashes(w, shingle)
    doc = w.doc[first]
    sig = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, np.uint32)
    step = max(1, (1 << 22) // num_perm)
    with np.errstate(over="ignore"):
        for i in range(0, len(x), step):
            d = doc[i: i + step]
            v = ((a[:, None] * x[None, i: i + step] + b[:, None]) >> np.uint64(32)).astype(
                np.uint32)  # (num_perm, chunk)
            cut = np.flatnonzero(np.diff(d, prepend=-1))
            sig[d[cut]] = np.minimum(sig[d[cut]], np.minimum.reduceat(v, cut, axis=1).T)
    has = np.zeros(len(texts), bool)
    has[doc] = True
    return sig, has
