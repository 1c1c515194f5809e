"""One check for every name that becomes a path (recipes, stages, runs, experiments), and the
plan's other inputs a path or a run depends on (issue 15: no code, no paths from data)."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.data import ByteTokenizer
from scaling_ladder.data.recipes import parse_recipes
from scaling_ladder.data.tokenfiles import FORMAT, VERSION
from scaling_ladder.errors import InputError
from scaling_ladder.names import check_name
from scaling_ladder.plan.plan import dumps_toml, load_plan, make_plan

runner = CliRunner()
QUICK = ["--max-params", "5e5", "--tokens", "2e5"]


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", ".hidden", "", "val",
                                  "manifest.json", "a b", "x" * 201, "tab\there"])
def test_names_that_are_not_plain_file_names_are_input_errors(name):
    with pytest.raises(InputError) as exc:
        check_name("run", name, path="plan.toml", line=7)
    text = str(exc.value)
    assert text.startswith("plan.toml, line 7: run name ") and "\n" not in text
    assert "letters, digits" in text


@pytest.mark.parametrize("name", ["c4", "web-clean", "d64-l4.s0", "A_1", "7b"])
def test_plain_names_pass(name):
    assert check_name("recipe", name) == name


def test_recipe_files_use_the_same_check():
    raw = {"sources": {"web": {"paths": ["w"]}}, "recipes": {"up/x": {"weights": {"web": 1}}}}
    text = '[sources.web]\npaths = ["w"]\n[recipes."up/x"]\nweights = { web = 1 }\n'
    with pytest.raises(InputError, match='^r.toml, line 3: recipe name "up/x" cannot be a file'):
        parse_recipes(raw, text=text, path="r.toml")


@pytest.mark.parametrize(("args", "message"), [
    (["--recipes", "a,../../evil"], 'recipe name "../../evil" cannot be a file name'),
    (["--recipes", "a", "--set", 'experiment="../../evil"'],
     'experiment name "../../evil" cannot be a file name'),
    (["--recipes", "a", "--set", 'stages=[{ name = "../x" }]'],
     'stage name "../x" cannot be a file name'),
    (["--recipes", "a", "--multipliers", "-20"],
     "token_multipliers: -20 tokens per parameter is not a finite number > 0"),
    (["--recipes", "a", "--multipliers", "20,inf"],
     "token_multipliers: inf tokens per parameter is not a finite number > 0"),
    (["--recipes", "a", "--multipliers", "20,0"],
     "token_multipliers: 0 tokens per parameter is not a finite number > 0"),
])
def test_plan_with_a_bad_name_or_multiplier_exits_2_and_writes_nothing(tmp_path, args,
                                                                         message):
    out = tmp_path / "plan.toml"
    res = runner.invoke(app, ["plan", *args, *QUICK[:2], "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert "; " in res.stderr.split(message)[1]  # then the fix
    assert list(tmp_path.iterdir()) == []


def _token_dir(root):
    """The manifest of a token folder (nothing else is read to plan)."""
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({
        "format": FORMAT, "version": VERSION, "dtype": "uint16",
        "tokenizer": ByteTokenizer().spec(), "sources": {}, "recipes": {"alpha": {},
                                                                         "balanced": {}}}))
    return root


def test_plan_recipes_the_data_lacks_exit_2_with_a_did_you_mean(tmp_path):
    data = _token_dir(tmp_path / "tokens")
    out = tmp_path / "plan.toml"
    res = runner.invoke(app, ["plan", "--data", str(data), "--recipes", "alpha,balancd",
                              *QUICK, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert 'recipe "balancd" is not in the token data' in res.stderr
    assert 'did you mean "balanced"?' in res.stderr and res.stderr.count("\n") == 1
    assert not out.exists()
    ok = runner.invoke(app, ["plan", "--data", str(data), *QUICK, "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert {r.recipe for r in load_plan(out).runs} == {"alpha", "balanced"}


def _hand_edited_plan(tmp_path, **run):
    plan = make_plan({"recipes": ["alpha"], "sizes": {"names": ["d16-l2"]}, "tokens": 2e4,
                      "seq_len": 32, "seeds": {"smallest": 1}, "experiment": "t"})
    raw = tomllib.loads(plan.to_toml())
    raw["runs"][0].update(run)
    path = tmp_path / "plan.toml"
    path.write_text(dumps_toml(raw))
    return path


@pytest.mark.parametrize(("run", "message"), [
    ({"name": "../../../escaped-run"}, 'run name "../../../escaped-run" cannot be a file name'),
    ({"recipe": "../alpha"}, 'recipe name "../alpha" cannot be a file name'),
    ({"stage": "/abs"}, 'stage name "/abs" cannot be a file name'),
])
def test_a_hand_edited_plan_with_a_path_in_a_name_is_an_input_error(tmp_path, run, message):
    path = _hand_edited_plan(tmp_path, **run)
    with pytest.raises(InputError, match=message) as exc:
        load_plan(path)
    assert str(exc.value).startswith(f"{path}, line ")
    res = runner.invoke(app, ["plan", str(path)])
    assert res.exit_code == 2 and message in res.stderr


def test_train_of_a_hand_edited_plan_with_a_dotdot_run_exits_2_and_writes_nothing(tmp_path):
    pytest.importorskip("torch", reason="ladder train needs the train extra")
    data = _token_dir(tmp_path / "work" / "tokens")
    path = _hand_edited_plan(tmp_path / "work", name="../../../escaped-run")
    out = tmp_path / "work" / "a" / "b" / "out"
    before = sorted(p for p in tmp_path.rglob("*"))
    res = runner.invoke(app, ["train", str(path), "--data", str(data), "--out", str(out),
                              "--device", "cpu", "--quiet"])
    assert res.exit_code == 2, res.output
    assert 'run name "../../../escaped-run" cannot be a file name' in res.stderr
    assert res.stderr.count("\n") == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing inside --out or outside
