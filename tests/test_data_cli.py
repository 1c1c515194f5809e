"""ladder data build / check: JSON contracts, tables, and bad input -> exit 2 with one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app

runner = CliRunner()
SOURCES = """
[build]
val_fraction = 0.3
[sources.a]
paths = ["a.jsonl"]
[sources.b]
paths = ["b/"]
"""
RECIPE = """
[recipes.r]
weights = { a = 1, b = 1 }
"""


def run(*args):
    return runner.invoke(app, ["data", *[str(a) for a in args]])


def corpus(tmp_path, recipe: str = RECIPE, sources: str = SOURCES):
    with open(tmp_path / "a.jsonl", "w") as fh:
        for i in range(40):
            fh.write(json.dumps({"text": f"document {i} of source a, with some words"}) + "\n")
    (tmp_path / "b").mkdir(exist_ok=True)
    for i in range(20):
        (tmp_path / "b" / f"{i}.txt").write_text(f"file {i} of source b\nsecond line\n")
    path = tmp_path / "recipes.toml"
    path.write_text(sources + recipe)
    return path


def error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_build_and_check_json_contracts(tmp_path):
    res = run("build", corpus(tmp_path), "--out", tmp_path / "out", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # nothing but JSON on stdout
    assert out["tokenizer"]["kind"] == "byte" and out["dtype"] == "uint16"
    assert set(out["sources"]) == {"a", "b"} and set(out["recipes"]) == {"r"}
    assert out["written"] > 0 and out["reused"] == 0
    res = run("check", tmp_path / "out", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [s["source"] for s in out["sources"]] == ["a", "b"]
    assert {(c["recipe"], c["slice"]) for c in out["contamination"]} == {("r", "val/a"),
                                                                          ("r", "val/b")}
    assert all(s["roundtrip_failures"] == 0 for s in out["sources"])
    for s in out["sources"]:  # a byte tokenizer: every token one byte, a share of 257 ids used
        assert s["byte_token_share"] == 1.0 and 0 < s["vocab_used"] < 1


def test_tables_without_json_and_json_to_a_file(tmp_path):
    res = run("build", corpus(tmp_path), "--out", tmp_path / "out", "--json",
              tmp_path / "build.json")
    assert res.exit_code == 0, res.output
    assert "Recipes (train streams)" in res.stdout
    assert json.loads((tmp_path / "build.json").read_text())["recipes"]["r"]["tokens"] > 0
    res = run("check", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "Smoke checks" in res.stdout and "Contamination" in res.stdout
    assert "Tokenizer: byte" in res.stdout and "1-byte tokens" in res.stdout


def test_help_has_an_example():
    for verb in ("build", "check"):
        res = run(verb, "--help")
        assert res.exit_code == 0 and "Example: ladder data " + verb in res.stdout


@pytest.mark.parametrize("recipe, expected", [
    ("[recipes.r]\nweights = { a = 0, b = 0 }\n",
     'line 9: the weights of recipe "r" do not sum to a positive number; give at least one '
     "source a positive weight"),
    ("[recipes.r]\nweights = { a = 1, c = 1 }\n",
     'line 9: recipe "r" names unknown source "c"; choose one of a, b'),
    ("[recipes.r]\nweights = { a = 1, bb = 1 }\n",
     'line 9: recipe "r" names unknown source "bb"; choose one of a, b (did you mean "b"?)'),
    ("[recipes.r]\nweights = { a = -1, b = 2 }\n",
     'line 9: recipe "r" gives source "a" weight -1.0; weights must be finite numbers >= 0'),
    ("[recipes.r]\nweights = { a = 1 }\nfilters = [{ kind = \"dedup\" }]\n",
     "line 10: recipes.r.filters: input tag 'dedup' found using 'kind' does not match any of "
     "the expected tags"),
])
def test_bad_recipes_exit_2_with_the_line(tmp_path, recipe, expected):
    res = run("build", corpus(tmp_path, recipe), "--out", tmp_path / "out")
    assert res.exit_code == 2
    line = error_line(res)
    assert line.startswith(f"error: {tmp_path / 'recipes.toml'}, ")
    assert expected in line
    assert not (tmp_path / "out").exists()  # nothing written


def test_missing_source_file_exits_2_naming_it(tmp_path):
    path = corpus(tmp_path, sources=SOURCES.replace("a.jsonl", "missing.jsonl"))
    res = run("build", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert error_line(res) == (f'error: {tmp_path / "missing.jsonl"}: no such file or folder '
                               '(source "a"); check the path; relative paths start at the '
                               "recipe file's folder")


def test_missing_recipe_file_exits_2(tmp_path):
    res = run("build", tmp_path / "nope.toml", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert error_line(res).startswith(f"error: {tmp_path / 'nope.toml'}: no such file;")


def test_undecodable_bytes_exit_2_with_line_and_column(tmp_path):
    path = corpus(tmp_path)
    (tmp_path / "b" / "7.txt").write_bytes(b"good line\nbad \xff byte\n")
    res = run("build", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert error_line(res) == (
        f"error: {tmp_path / 'b' / '7.txt'}, line 2: byte 0xff at column 5 is not UTF-8; fix "
        'or remove it, or set on_bad = "skip" in [sources.b] to set such documents aside '
        "(ladder data check lists them)")


def test_bad_json_line_exits_2(tmp_path):
    path = corpus(tmp_path)
    with open(tmp_path / "a.jsonl", "a") as fh:
        fh.write('{"text": "unterminated\n')
    res = run("build", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert f"{tmp_path / 'a.jsonl'}, line 41: not valid JSON" in error_line(res)


def test_missing_text_field_exits_2(tmp_path):
    path = corpus(tmp_path, sources=SOURCES.replace('["a.jsonl"]', '["a.jsonl"]\nfield = "body"'))
    res = run("build", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert f'{tmp_path / "a.jsonl"}, line 1, column "body": no field "body"' in error_line(res)


def test_empty_source_exits_2(tmp_path):
    path = corpus(tmp_path)
    (tmp_path / "a.jsonl").write_text('{"text": ""}\n{"text": "   "}\n')
    res = run("build", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert error_line(res) == (f'error: {tmp_path / "a.jsonl"}: source "a" has no usable '
                               "document (set aside: empty 2); point the source at files "
                               "holding text")


def test_skipped_bad_documents_are_counted_and_listed_by_check(tmp_path):
    path = corpus(tmp_path, sources=SOURCES.replace('["b/"]', '["b/"]\non_bad = "skip"'))
    (tmp_path / "b" / "7.txt").write_bytes(b"bad \xff byte\n")
    (tmp_path / "b" / "8.txt").write_bytes(b"binary\x00data")
    (tmp_path / "b" / "9.txt").write_text("")
    res = run("build", path, "--out", tmp_path / "out", "--json", "-")
    assert res.exit_code == 0, res.output
    aside = json.loads(res.stdout)["sources"]["b"]["set_aside"]
    assert aside == {"undecodable": 1, "binary": 1, "empty": 1}
    res = run("check", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "Documents set aside at build time" in res.stdout
    assert "7.txt" in res.stdout and "NUL" in res.stdout


def test_bad_arguments_exit_2(tmp_path):
    path = corpus(tmp_path)
    res = run("build", path, "--out", tmp_path / "out", "--vocab", "100", "--tokenizer", "bpe")
    assert res.exit_code == 2
    assert "The 'vocab' argument of build is invalid" in error_line(res)
    res = run("build", path, "--out", tmp_path / "out", "--recipe", "nope")
    assert res.exit_code == 2 and 'no recipe "nope"; choose one of r' in error_line(res)
    res = run("check", tmp_path / "out", "--eval", "no-equals")
    assert res.exit_code == 2 and "--eval option takes NAME=PATH" in error_line(res)


def test_check_of_a_folder_that_was_not_built_exits_2(tmp_path):
    res = run("check", tmp_path)
    assert res.exit_code == 2
    assert error_line(res).startswith(f"error: {tmp_path / 'manifest.json'}: no such file;")


@pytest.mark.slow
def test_build_the_default_corpus_into_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    res = run("build", "--default", "--out", tmp_path / "out", "--recipe", "balanced",
              "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["sources"]) == {"stdlib-code", "stdlib-prose", "grammar-simple",
                                   "grammar-rich"}
    assert (tmp_path / "cache" / "scaling-ladder" / "default-data" / "recipes.toml").exists()
    res = run("build", "--default", corpus(tmp_path), "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert error_line(res) == ("error: Give a recipe file or --default, not both and not "
                               "neither.")


def test_several_tokenizers_build_side_by_side_with_recipes_named_by_tokenizer(tmp_path):
    """A tokenizer experiment: one folder per tokenizer, each arm its own recipe, and the same
    text under both (more bytes per token with BPE)."""
    res = run("build", corpus(tmp_path), "--out", tmp_path / "out", "--tokenizer", "byte",
              "--tokenizer", "bpe:300", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["tokenizers"]
    assert set(out) == {"byte", "bpe-300"}
    assert set(out["byte"]["recipes"]) == {"r.byte"} and set(out["bpe-300"]["recipes"]) == {
        "r.bpe-300"}
    assert out["bpe-300"]["tokenizer"]["kind"] == "bpe"
    assert out["bpe-300"]["directory"] == str(tmp_path / "out" / "bpe-300")
    for src in ("a", "b"):
        byte, bpe = (out[k]["sources"][src]["val"]["bytes_per_token"] for k in ("byte", "bpe-300"))
        assert byte == pytest.approx(1.0, abs=0.05) and bpe > 1.2 * byte
    assert (tmp_path / "out" / "byte" / "manifest.json").exists()
    res = run("check", tmp_path / "out" / "bpe-300", "--json", "-")  # each folder stands alone
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("flags, expected", [
    (["--tokenizer", "byte", "--tokenizer", "byte"], "byte is given twice"),
    (["--tokenizer", "byte", "--tokenizer", "bpe:many"], "bpe:VOCAB"),
    (["--tokenizer", "bpe:12"], "vocab"),
])
def test_bad_tokenizer_lists_exit_2(tmp_path, flags, expected):
    res = run("build", corpus(tmp_path), "--out", tmp_path / "out", *flags)
    assert res.exit_code == 2, res.output
    assert expected in error_line(res)
