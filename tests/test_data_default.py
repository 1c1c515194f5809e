"""The bundled default corpus: made locally, deterministic, distinct sources, ready recipes."""

from __future__ import annotations

import json
import random

import pytest

from scaling_ladder.data import build, check, default_recipes, load_recipes, open_tokens
from scaling_ladder.data.default import SIMPLE, SOURCES, _rich_grammar, _sentence


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("default")
    return root, default_recipes(root, scale=0.03)


def read(path):
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def test_default_recipes_name_four_sources_and_at_least_three_recipes(small):
    _, recipes = small
    cfg = load_recipes(recipes)
    assert tuple(cfg.sources) == SOURCES
    assert len(cfg.recipes) >= 3 and {"balanced", "code-heavy", "prose-heavy"} <= set(
        cfg.recipes)
    assert "PSF" in recipes.read_text()


def test_sources_are_about_the_requested_size_and_disjoint(small):
    root, _ = small
    docs = {s: read(root / "sources" / f"{s}.jsonl") for s in SOURCES}
    for s, texts in docs.items():
        size = sum(len(t.encode()) for t in texts)
        assert 0.02e6 < size < 0.1e6, s
    assert not set(docs["stdlib-code"]) & set(docs["stdlib-prose"])
    assert any("def " in t for t in docs["stdlib-code"])
    assert not any(t.lstrip().startswith(("def ", "class ")) for t in docs["stdlib-prose"])


def test_the_corpus_is_cached_and_deterministic(small, tmp_path):
    root, _ = small
    before = (root / "sources" / "grammar-rich.jsonl").stat().st_mtime_ns
    default_recipes(root, scale=0.03)
    assert (root / "sources" / "grammar-rich.jsonl").stat().st_mtime_ns == before
    default_recipes(tmp_path, scale=0.03)
    for s in SOURCES:
        assert (tmp_path / "sources" / f"{s}.jsonl").read_bytes() == (
            root / "sources" / f"{s}.jsonl").read_bytes()


def test_grammars_are_seeded_and_of_graded_complexity():
    rich = _rich_grammar(0)
    a = [_sentence(rich.sample(random.Random(1))) for _ in range(3)]
    b = [_sentence(rich.sample(random.Random(1))) for _ in range(3)]
    assert a == b
    simple_words = {w for _ in range(300) for w in SIMPLE.sample(random.Random(_))}
    rich_words = {w for _ in range(300) for w in rich.sample(random.Random(_))}
    assert len(rich_words) > 5 * len(simple_words)


def test_default_corpus_builds_and_checks(small, tmp_path):
    _, recipes = small
    result = build(recipes, tmp_path / "out")
    ds = open_tokens(tmp_path / "out")
    assert set(ds.recipes) == set(load_recipes(recipes).recipes)
    assert set(ds.sources) == set(SOURCES)
    report = check(tmp_path / "out")
    by = {s.source: s for s in report.sources}
    # the simple grammar compresses better and repeats its n-grams more than the rich one
    assert by["grammar-simple"].gzip_ratio < by["grammar-rich"].gzip_ratio
    assert by["grammar-simple"].distinct_4 < by["grammar-rich"].distinct_4
    assert all(s.roundtrip_failures == 0 for s in report.sources)
    assert result.manifest["recipes"]["code-heavy"]["weights"]["stdlib-code"] == 0.6


@pytest.mark.slow
def test_full_size_default_corpus_with_bpe(tmp_path):
    recipes = default_recipes(tmp_path)
    result = build(recipes, tmp_path / "out", tokenizer="bpe", vocab=4096)
    sizes = {s: e["train"]["bytes"] + e["val"]["bytes"]
             for s, e in result.manifest["sources"].items()}
    assert 4e6 < sum(sizes.values()) < 7e6
    assert all(e["val"]["bytes_per_token"] > 2 for e in result.manifest["sources"].values())
    report = check(tmp_path / "out")
    assert all(s.roundtrip_failures == 0 for s in report.sources)
