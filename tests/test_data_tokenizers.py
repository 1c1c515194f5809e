"""Tokenizers: lossless round trips, EOS placement, deterministic BPE training, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling_ladder.data import BPETokenizer, ByteTokenizer, load_tokenizer
from scaling_ladder.data.tokenizers import EOS_TEXT, dtype_for, split_docs
from scaling_ladder.errors import InputError

CORPUS = [f"The {w} number {i} sat on the mat; naïve café 世界 🙂 {w * (i % 3)}\n\tdef f(x):"
          for i in range(300) for w in ("cat", "dog", "bird")]
ODD = ["", " ", "  leading spaces", "trailing  ", "\r\n\r\n", "\x00\x01 control", "é" * 50,
       "\ufffd replacement", "mixed 中文 and العربية and emoji 👩‍👩‍👧", EOS_TEXT,
       "x" + EOS_TEXT + "y", "tab\tand\u00a0nbsp and \u2028 line separator"]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(CORPUS, 400)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_byte_tokenizer_round_trips_any_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(ids) == len(text.encode("utf-8"))
    assert ids.max(initial=0) < 256


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bpe_round_trips_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


PIECES = list("ab Zs'tmldrevé²½9_ \t\n\r\x0b\x0c\x1c\x00\x85\xa0\u2028.,:()!?-\"世🙂") + [
    "'s", "'ll", "'re", "  ", "\n\n", " '", EOS_TEXT]
TRICKY = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(TRICKY, min_size=1, max_size=4))
def test_cached_bpe_encoding_equals_plain_encoding(bpe, docs):
    tokens, ends = bpe.encode_docs(docs)
    got = [d.tolist() for d in split_docs(tokens, ends)]
    assert got == [bpe._hf.encode(d, add_special_tokens=False).ids for d in docs]


@pytest.mark.parametrize("text", ODD)
def test_both_tokenizers_round_trip_awkward_text(bpe, text):
    for tok in (ByteTokenizer(), bpe):
        assert tok.decode(tok.encode(text)) == text


def test_bpe_compresses_its_training_text(bpe):
    text = CORPUS[7]
    assert len(bpe.encode(text)) < 0.6 * len(text.encode("utf-8"))


def test_literal_eos_text_in_a_document_is_not_the_eos_id(bpe):
    ids = bpe.encode("a " + EOS_TEXT + " b")
    assert bpe.eos_id not in ids.tolist()
    assert bpe.decode(ids) == "a " + EOS_TEXT + " b"


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_encode_docs_puts_one_eos_after_every_document(bpe, kind):
    tok = ByteTokenizer() if kind == "byte" else bpe
    docs = ["first doc", "second, longer document", "é"]
    tokens, ends = tok.encode_docs(docs)
    assert (tokens == tok.eos_id).sum() == 3
    assert tokens[ends - 1].tolist() == [tok.eos_id] * 3
    assert [tok.decode(d) for d in split_docs(tokens, ends)] == docs


def test_byte_tokens_are_the_utf8_bytes():
    tokens, ends = ByteTokenizer().encode_docs(["hé", "a"])
    assert tokens.tolist() == [104, 0xC3, 0xA9, 256, 97, 256]
    assert ends.tolist() == [4, 6]


def test_bpe_training_is_deterministic():
    a = BPETokenizer.train(CORPUS[:200], 350)
    b = BPETokenizer.train(CORPUS[:200], 350)
    assert a.sha256 == b.sha256
    assert a.vocab_size == 350


def test_dtype_is_uint16_up_to_65536_ids():
    assert dtype_for(257) == np.dtype("<u2")
    assert dtype_for(65536) == np.dtype("<u2")
    assert dtype_for(65537) == np.dtype("<u4")


def test_saved_bpe_loads_with_the_same_hash(bpe, tmp_path):
    bpe.save(tmp_path / "tokenizer.json")
    again = load_tokenizer(bpe.spec(), tmp_path)
    assert again.sha256 == bpe.sha256
    assert again.encode("The cat sat").tolist() == bpe.encode("The cat sat").tolist()


def test_a_changed_tokenizer_file_is_refused(bpe, tmp_path):
    bpe.save(tmp_path / "tokenizer.json")
    spec = {**bpe.spec(), "sha256": "0" * 64}
    with pytest.raises(InputError, match="does not match the hash in manifest.json"):
        load_tokenizer(spec, tmp_path)
