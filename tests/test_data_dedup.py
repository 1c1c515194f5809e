"""Word hashing, exact and near-duplicate detection on constructed cases with known answers."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from scaling_ladder.data import FilterChain, exact_duplicates, near_duplicates
from scaling_ladder.data.filters import non_alpha_fraction
from scaling_ladder.data.ngrams import (
    Texts,
    distinct_ratio,
    minhash_signatures,
    ngram_hashes,
    words,
)
from scaling_ladder.data.recipes import ExactDedup, MaxNonAlpha, MinLength, NearDedup
from scaling_ladder.data.sources import Document

VOCAB = [f"w{i}" for i in range(5000)]


def random_doc(rng: random.Random, n: int = 200) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def edit(rng: random.Random, doc: str, changes: int) -> str:
    words_ = doc.split()
    for i in rng.sample(range(len(words_)), changes):
        words_[i] = "changed"
    return " ".join(words_)


def doc(text: str) -> Document:
    return Document(text, text.encode(), "test")


def test_words_split_on_non_alphanumerics_and_lowercase_ascii():
    texts = Texts.from_strings(["Hello, WORLD! héllo_x 42", "hello"])
    w = words(texts)
    spans = [texts.buf[a:b].tobytes().decode() for a, b in zip(w.starts, w.ends)]
    assert spans == ["Hello", "WORLD", "héllo", "x", "42", "hello"]
    assert w.doc.tolist() == [0, 0, 0, 0, 0, 1]
    assert w.hashes[0] == w.hashes[5]  # case-folded in ASCII
    assert len(set(w.hashes.tolist())) == 5


def test_word_hashes_do_not_depend_on_position_or_window():
    text = " ".join(["alpha", "beta"] * 300_000)  # longer than one hashing window
    w = words(Texts.from_strings([text]))
    assert len(set(w.hashes[0::2].tolist())) == 1 and len(set(w.hashes[1::2].tolist())) == 1
    assert w.hashes[0] != w.hashes[1]


def test_ngrams_never_cross_documents():
    texts = Texts.from_strings(["a b c", "d e f"])
    h, first = ngram_hashes(words(texts), 3)
    assert first.tolist() == [0, 3]  # "a b c" and "d e f", not "b c d" or "c d e"


def test_distinct_ratio_counts_repeated_ngrams():
    w = words(Texts.from_strings(["x y x y x y"]))
    assert distinct_ratio(w, 1) == pytest.approx(2 / 6)
    assert distinct_ratio(w, 2) == pytest.approx(2 / 5)


def test_exact_duplicates_flag_every_later_copy():
    digests = [b"a", b"b", b"a", b"c", b"b", b"a"]
    assert exact_duplicates(digests).tolist() == [False, False, True, False, True, True]


def test_near_duplicates_on_known_cases():
    rng = random.Random(0)
    base = [random_doc(rng) for _ in range(20)]
    # 2 of 200 words changed: at most 10 of 196 shingles differ, Jaccard >= 0.9
    near = [edit(rng, d, 2) for d in base[:10]]
    # 60 of 200 words changed: Jaccard of 5-shingles ~0.1
    far = [edit(rng, d, 60) for d in base[10:]]
    dup = near_duplicates(Texts.from_strings(base + near + far), threshold=0.8)
    assert dup.tolist() == [False] * 20 + [True] * 10 + [False] * 10


def test_minhash_estimates_jaccard_within_a_few_points():
    rng = random.Random(1)
    a = random_doc(rng, 400)
    b = edit(rng, a, 20)
    sa = {tuple(a.split()[i:i + 5]) for i in range(396)}
    sb = {tuple(b.split()[i:i + 5]) for i in range(396)}
    true = len(sa & sb) / len(sa | sb)
    sig, has = minhash_signatures(Texts.from_strings([a, b]), num_perm=512)
    assert has.all()
    assert np.mean(sig[0] == sig[1]) == pytest.approx(true, abs=0.06)


def test_documents_shorter_than_a_shingle_are_never_near_duplicates():
    dup = near_duplicates(Texts.from_strings(["one two", "one two", "three"]), shingle=5)
    assert not dup.any()


def test_near_dedup_keeps_the_first_copy_across_chunks():
    rng = random.Random(2)
    a = random_doc(rng)
    chain = FilterChain([NearDedup(kind="near_dedup", threshold=0.8)])
    first = chain([doc(a), doc(random_doc(rng))])
    second = chain([doc(edit(rng, a, 1)), doc(random_doc(rng))])
    assert first.tolist() == [True, True] and second.tolist() == [False, True]
    assert chain.removed == {"near_dedup(0.8)": 1}


def test_filter_chain_applies_filters_in_order_and_counts_removals():
    docs = [doc(t) for t in ["short", "a long enough document of words", "1234 5678 90ab !!",
                             "a long enough document of words", "another long document"]]
    chain = FilterChain([MinLength(kind="min_length", chars=10),
                         MaxNonAlpha(kind="max_non_alpha", fraction=0.5),
                         ExactDedup(kind="exact_dedup")])
    assert chain(docs).tolist() == [False, True, False, False, True]
    assert chain.removed == {"min_length(10)": 1, "max_non_alpha(0.5)": 1, "exact_dedup": 1}


def test_non_alpha_fraction_ignores_spaces():
    assert non_alpha_fraction("ab 12") == pytest.approx(0.5)
    assert non_alpha_fraction("héllo wörld") == 0.0
    assert non_alpha_fraction("   ") == 0.0
    text = "x = f(1, 2)  # 42"
    visible = re.sub(r"\s", "", text)
    assert non_alpha_fraction(text) == pytest.approx(1 - 2 / len(visible))
