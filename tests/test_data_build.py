"""ladder data build: deterministic splits and bytes, resume by hash, mixtures, the reader."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling_ladder.data import SourceReader, SourceSpec, build, mixture_plan, open_tokens
from scaling_ladder.data.ngrams import Texts
from scaling_ladder.data.sources import is_val
from scaling_ladder.data.tokenfiles import bits_per_byte, read_index
from scaling_ladder.errors import InputError

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def make_corpus(root, *, extra: str = "", seed: int = 0):
    """Three sources (text folder, JSON Lines, Parquet) and a recipe file over them."""
    rng = random.Random(seed)
    (root / "notes").mkdir(parents=True)
    for i in range(40):
        (root / "notes" / f"{i:03d}.txt").write_text(f"Note {i}: " + text(rng, 60))
    with open(root / "web.jsonl", "w") as fh:
        for i in range(200):
            body = f"Page {i}. " + text(rng, rng.randint(10, 50))
            fh.write(json.dumps({"id": i, "body": body}) + "\n")
    pq.write_table(pa.table({"text": [f"Row {i} " + text(rng, 20) for i in range(60)]}),
                   root / "table.parquet")
    recipes = root / "recipes.toml"
    recipes.write_text(f"""
[build]
val_fraction = 0.2
shard_tokens = 5000
source_shard_bytes = 4000

[sources.notes]
paths = ["notes/"]
[sources.web]
paths = ["web.jsonl"]
field = "body"
[sources.table]
paths = ["*.parquet"]

[recipes.mix]
weights = {{ notes = 1, web = 2, table = 1 }}
[recipes.web-only]
weights = {{ web = 1, notes = 0 }}
filters = [{{ source = "web", kind = "min_length", chars = 10 }}]
[recipes.budget]
weights = {{ notes = 1, table = 1 }}
tokens = 30000
{extra}""")
    return recipes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    recipes = make_corpus(root)
    result = build(recipes, root / "out")
    return root, recipes, result


def files(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.suffix != ".json"}


def test_same_input_gives_the_same_bytes(built, tmp_path):
    root, recipes, result = built
    again = build(recipes, tmp_path / "again")
    a, b = files(result.directory), files(again.directory)
    assert a.keys() == b.keys() and any(k.startswith("mix/train-") for k in a)
    assert a == b
    strip = ("directory",)
    assert {k: v for k, v in result.to_dict().items() if k not in strip + ("seconds",)} == \
        {k: v for k, v in again.to_dict().items() if k not in strip + ("seconds",)}


def test_documents_are_split_by_their_hash(built):
    root, _, result = built
    ds = open_tokens(result.directory)
    tok = ds.tokenizer()
    val = ds.val("web")
    docs = [tok.decode(d) for d in np.split(np.asarray(val), read_index(
        result.directory / "val/web.bin")[:-1])]
    expected = [json.loads(line)["body"] for line in (root / "web.jsonl").read_text()
                .splitlines()]
    expected_val = [t for t in expected if is_val(hashlib.blake2b(
        t.encode(), digest_size=16).digest(), 0.2)]
    assert docs == expected_val
    assert 0.1 < len(expected_val) / len(expected) < 0.3
    m = result.manifest["sources"]["web"]
    assert m["train"]["documents"] + m["val"]["documents"] == 200


def test_val_slice_decodes_to_the_held_out_documents_with_eos_between(built):
    _, _, result = built
    ds = open_tokens(result.directory)
    val = np.asarray(ds.val("notes"))
    ends = ds.val_documents("notes")
    assert val[ends - 1].tolist() == [ds.eos_id] * len(ends)
    assert (val == ds.eos_id).sum() == len(ends) == result.manifest["sources"]["notes"][
        "val"]["documents"]


def test_rerun_reuses_every_file_and_rewrites_a_corrupted_shard(tmp_path):
    recipes = make_corpus(tmp_path)
    first = build(recipes, tmp_path / "out")
    assert first.reused == 0 and first.written > 5
    second = build(recipes, tmp_path / "out")
    assert second.written == 0 and second.reused == first.written
    shard = tmp_path / "out" / "mix" / "train-00001.bin"
    good = shard.read_bytes()
    shard.write_bytes(b"\x00" * len(good))
    third = build(recipes, tmp_path / "out")
    assert third.written == 1 and shard.read_bytes() == good


def test_changed_source_rebuilds_only_what_depends_on_it(tmp_path):
    recipes = make_corpus(tmp_path)
    build(recipes, tmp_path / "out")
    pq.write_table(pa.table({"text": [f"a different row {i}" for i in range(60)]}),
                   tmp_path / "table.parquet")
    again = build(recipes, tmp_path / "out")
    assert again.reused > 0 and again.written > 0
    written = {rel for rel, e in json.loads((tmp_path / "out/state.json").read_text())[
        "entries"].items()}
    assert "sources/table/train-00000.bin" in written
    assert again.manifest["sources"]["notes"]["sha256"] == build(
        recipes, tmp_path / "out").manifest["sources"]["notes"]["sha256"]


def test_train_stream_reads_across_shards(built):
    _, _, result = built
    ds = open_tokens(result.directory)
    stream = ds.train("mix")
    assert len(result.manifest["recipes"]["mix"]["shards"]) > 1
    whole = np.concatenate([np.fromfile(result.directory / s["file"], "<u2")
                            for s in result.manifest["recipes"]["mix"]["shards"]])
    assert len(stream) == len(whole) == result.manifest["recipes"]["mix"]["tokens"]
    assert np.array_equal(stream[4990:5010], whole[4990:5010])
    assert stream[5000] == whole[5000] and stream[-1] == ds.eos_id


def test_mixture_gives_each_source_its_weight_of_tokens(built):
    _, _, result = built
    mix = result.manifest["recipes"]["mix"]
    assert mix["weights"] == {"notes": 0.25, "web": 0.5, "table": 0.25}
    total = mix["tokens"]
    for source, share in mix["weights"].items():
        assert mix["sources"][source]["tokens"] / total == pytest.approx(share, abs=0.02)
    # without a budget, the scarcest source (relative to its weight) is used once, whole
    assert max(s["epochs"] for s in mix["sources"].values()) == pytest.approx(1, abs=0.01)


def test_a_token_budget_larger_than_the_data_repeats_documents(built):
    _, _, result = built
    budget = result.manifest["recipes"]["budget"]
    assert budget["tokens"] == pytest.approx(30000, rel=0.02)
    assert budget["sources"]["table"]["epochs"] > 1


def test_zero_weight_sources_are_left_out(built):
    _, _, result = built
    assert result.manifest["recipes"]["web-only"]["weights"] == {"web": 1.0}


def test_mixture_plan_is_seeded():
    tokens = {"a": np.full(100, 10), "b": np.full(50, 20)}
    one = mixture_plan(tokens, {"a": 0.5, "b": 0.5}, None, seed=3)
    two = mixture_plan(tokens, {"a": 0.5, "b": 0.5}, None, seed=3)
    other = mixture_plan(tokens, {"a": 0.5, "b": 0.5}, None, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(one[:2], two[:2]))
    assert not np.array_equal(one[1], other[1])
    assert one[2]["a"]["tokens"] == one[2]["b"]["tokens"] == 1000


def test_mixture_plan_skips_documents_a_filter_removed():
    tokens = {"a": np.array([5, -1, 5, -1])}
    src, doc, stats = mixture_plan(tokens, {"a": 1.0}, None, seed=0)
    assert sorted(doc.tolist()) == [0, 2] and stats["a"]["available_tokens"] == 10


def test_bits_per_byte_by_hand():
    # "hello" in bytes is 5 tokens + EOS = 6 tokens for 5 bytes: 5/6 bytes per token.
    # A loss of 2 nats/token is 2 / ln 2 = 2.885 bits/token, over 5/6 bytes: 3.462 bits/byte.
    assert bits_per_byte(2.0, 5 / 6) == pytest.approx(2 / math.log(2) * 6 / 5)
    assert bits_per_byte(2.0, 5 / 6) == pytest.approx(3.4624, abs=1e-4)
    assert np.allclose(bits_per_byte(np.array([1.0, 2.0]), 2.0), [0.7213, 1.4427], atol=1e-4)


def test_bytes_per_token_counts_utf8_bytes_over_tokens_with_eos(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in
                                                ["hello", "héllo wörld", "abc"] * 20))
    (tmp_path / "r.toml").write_text('[build]\nval_fraction = 0.5\n[sources.a]\npaths = '
                                     '["a.jsonl"]\n[recipes.r]\nweights = { a = 1 }\n')
    result = build(tmp_path / "r.toml", tmp_path / "out")
    ds = open_tokens(tmp_path / "out")
    val = result.manifest["sources"]["a"]["val"]
    texts = Texts.from_bytes([ds.tokenizer().decode(d).encode() for d in np.split(
        np.asarray(ds.val("a")), ds.val_documents("a")[:-1])])
    assert val["bytes"] == int(texts.lengths.sum())
    assert val["tokens"] == val["bytes"] + val["documents"]  # byte tokenizer: bytes + EOS
    assert ds.bytes_per_token("val/a") == pytest.approx(val["bytes"] / val["tokens"])


def test_bpe_build_round_trips_the_validation_slices(tmp_path):
    recipes = make_corpus(tmp_path)
    result = build(recipes, tmp_path / "out", tokenizer="bpe", vocab=300)
    ds = open_tokens(tmp_path / "out")
    assert ds.vocab_size == 300 and result.manifest["tokenizer"]["kind"] == "bpe"
    tok = ds.tokenizer()
    byte = build(recipes, tmp_path / "bytes")
    for source in ("notes", "web", "table"):
        bpe_docs = [tok.decode(d) for d in np.split(np.asarray(ds.val(source)),
                                                     ds.val_documents(source)[:-1])]
        byte_ds = open_tokens(tmp_path / "bytes")
        byte_docs = [byte_ds.tokenizer().decode(d) for d in np.split(
            np.asarray(byte_ds.val(source)), byte_ds.val_documents(source)[:-1])]
        assert bpe_docs == byte_docs
        assert ds.bytes_per_token(f"val/{source}") > 1.5 * byte.manifest["sources"][source][
            "val"]["bytes_per_token"]
        # per-token byte counts add up to the slice's UTF-8 bytes (what bits/byte divides by)
        for t, d in ((tok, ds), (byte_ds.tokenizer(), byte_ds)):
            ids = np.asarray(d.val(source)).astype(np.int64)
            assert t.token_bytes()[ids].sum() == pytest.approx(
                d.bytes_per_token(f"val/{source}") * len(ids))


def test_filters_remove_documents_from_the_train_stream_only(tmp_path):
    recipes = make_corpus(tmp_path, extra="""
[recipes.long-web]
weights = { web = 1 }
filters = [{ source = "web", kind = "min_length", chars = 150 }]
""")
    result = build(recipes, tmp_path / "out", only=["long-web"])
    entry = result.manifest["recipes"]["long-web"]
    removed = entry["sources"]["web"]["removed_by_filters"]["min_length(150)"]
    assert 0 < removed < result.manifest["sources"]["web"]["train"]["documents"]
    assert list(result.manifest["recipes"]) == ["long-web"]
    ds = open_tokens(tmp_path / "out")
    tok = ds.tokenizer()
    stream = np.asarray(ds.train("long-web"))
    docs = np.split(stream, np.flatnonzero(stream == ds.eos_id)[:-1] + 1)
    assert all(len(tok.decode(d[:-1])) >= 150 for d in docs)


def keep_pages_with_even_numbers(text: str) -> bool:
    return int(text.split()[1].rstrip(".")) % 2 == 0


def test_a_callable_filter_by_import_path(tmp_path):
    recipes = make_corpus(tmp_path, extra="""
[recipes.even]
weights = { web = 1 }
filters = [{ kind = "callable", path = "test_data_build:keep_pages_with_even_numbers" }]
""")
    build(recipes, tmp_path / "out", only=["even"], allow_code=True)
    ds = open_tokens(tmp_path / "out")
    stream = np.asarray(ds.train("even"))
    docs = [ds.tokenizer().decode(d) for d in np.split(
        stream, np.flatnonzero(stream == ds.eos_id) + 1)[:-1]]
    assert docs and all(keep_pages_with_even_numbers(d) for d in docs)


def test_train_stream_indexing_matches_a_plain_array(built):
    _, _, result = built
    stream = open_tokens(result.directory).train("mix")
    whole = np.asarray(stream)
    for i in (0, 4999, 5000, len(whole) - 1, -1, -len(whole)):
        assert stream[i] == whole[i]
    assert np.array_equal(stream[-7:], whole[-7:]) and np.array_equal(stream[::9], whole[::9])
    assert len(stream[len(whole):]) == 0
    with pytest.raises(IndexError):
        stream[len(whole)]


def test_unknown_slice_names_say_what_exists(built):
    _, _, result = built
    ds = open_tokens(result.directory)
    with pytest.raises(InputError, match='no recipe "nope"; choose one of mix, web-only, budget'):
        ds.train("nope")
    with pytest.raises(InputError, match='no source "nope"; choose one of notes, web, table'):
        ds.bytes_per_token("val/nope")


@pytest.mark.parametrize("mode, expected", [
    ("file", [("one\r\ntwo\n\nthree four\n", "f.txt")]),
    ("line", [("one", "f.txt:line 1"), ("two", "f.txt:line 2"), ("three four", "f.txt:line 4")]),
    ("paragraph", [("one\r\ntwo", "f.txt:line 1"), ("three four", "f.txt:line 4")]),
])
def test_text_files_are_cut_into_documents_by_file_line_or_paragraph(tmp_path, mode, expected):
    (tmp_path / "f.txt").write_bytes(b"one\r\ntwo\n\nthree four\n")  # CRLF kept inside
    spec = SourceSpec(paths=["f.txt"], documents=mode)
    docs = [(d.text, d.origin.replace(str(tmp_path) + "/", ""))
            for d in SourceReader("s", spec, str(tmp_path))]
    assert docs == expected


def test_gzipped_json_lines_are_read(tmp_path):
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write('{"text": "first"}\n\n{"text": "second"}\n')
    reader = SourceReader("a", SourceSpec(paths=["a.jsonl.gz"]), str(tmp_path))
    assert [(d.text, d.origin.rsplit(":", 1)[1]) for d in reader] == [
        ("first", "line 1"), ("second", "line 3")]
