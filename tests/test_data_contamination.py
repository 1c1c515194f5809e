"""Contamination: a planted 13-gram is found and quoted; disjoint text reports zero."""

from __future__ import annotations

import json
import random

import pytest

from scaling_ladder.data import build, check

PLANTED = ("the quick brown fox jumps over the lazy dog while seven "
           "wizards quietly hex the jukebox")   # 16 words: four 13-grams


def words(rng: random.Random, prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{rng.randrange(10_000)}" for _ in range(n))


def make(tmp_path, *, plant_train: str | None, eval_text: str):
    """A train source of random 'tr*' words and a val-only eval set of 'ev*' words."""
    rng = random.Random(0)
    docs = [words(rng, "tr", 80) for _ in range(60)]
    if plant_train:
        docs[10] = docs[10] + ". " + plant_train + ". " + words(rng, "tr", 10)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    evals = [words(rng, "ev", 50) for _ in range(9)] + [eval_text]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in evals))
    (tmp_path / "r.toml").write_text("""
[build]
val_fraction = 0.2
[sources.web]
paths = ["train.jsonl"]
[recipes.all]
weights = { web = 1 }
[evals.qa]
paths = ["eval.jsonl"]
""")
    build(tmp_path / "r.toml", tmp_path / "out")
    return tmp_path / "out"


def pair(result, recipe, slice_):
    (hit,) = [c for c in result.contamination if c.recipe == recipe and c.slice == slice_]
    return hit


def test_a_planted_13gram_is_found_and_quoted(tmp_path):
    out = make(tmp_path, plant_train=PLANTED,
               eval_text="Question: " + PLANTED.upper() + "? Answer: ev1 ev2")
    hit = pair(check(out), "all", "eval/qa")
    assert hit.matched == 4  # 16 planted words hold 16 - 13 + 1 = 4 13-grams
    assert hit.contaminated_documents == 1 and hit.documents == 10
    assert hit.examples == (" ".join(PLANTED.upper().split()[:13]),)
    assert hit.rate == pytest.approx(4 / hit.ngrams)


def test_disjoint_text_reports_zero(tmp_path):
    rng = random.Random(5)
    out = make(tmp_path, plant_train=None, eval_text=words(rng, "ev", 40))
    result = check(out)
    for c in result.contamination:
        assert c.matched == 0 and c.contaminated_documents == 0 and c.examples == ()
        assert c.ngrams > 0
    assert {c.slice for c in result.contamination} == {"val/web", "eval/qa"}


def test_twelve_shared_words_are_not_a_13gram_match(tmp_path):
    twelve = " ".join(PLANTED.split()[:12])
    out = make(tmp_path, plant_train=twelve, eval_text="x " + twelve + " y")
    assert pair(check(out), "all", "eval/qa").matched == 0


def test_eval_sets_can_be_named_at_check_time(tmp_path):
    out = make(tmp_path, plant_train=PLANTED, eval_text="nothing shared here")
    (tmp_path / "extra.txt").write_text("prefix " + PLANTED + " suffix")
    result = check(out, evals={"extra": tmp_path / "extra.txt"}, ngram=13)
    assert pair(result, "all", "eval/extra").matched == 4
    assert pair(result, "all", "eval/qa").matched == 0


def test_a_shorter_ngram_finds_more(tmp_path):
    out = make(tmp_path, plant_train=PLANTED, eval_text=PLANTED)
    assert pair(check(out, ngram=8), "all", "eval/qa").matched == 9


def test_bad_check_arguments_are_value_errors(tmp_path):
    out = make(tmp_path, plant_train=None, eval_text="a b c")
    with pytest.raises(ValueError, match="The 'ngram' argument of check must be an int >= 1"):
        check(out, ngram=0)
    with pytest.raises(ValueError, match="'near_threshold' argument of check must be in"):
        check(out, near_threshold=1.5)
