"""The compare and simulate verbs: JSON contract, rich tables, exit status, one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from test_compare import data_effect, recipe_ladder

runner = CliRunner()
QUICK = ["--bootstrap", 30, "--slice-bootstrap", 5, "--gate-bootstrap", 0]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "ladder.csv"
    recipe_ladder({"base": {}, "new": data_effect(1.5), "same": {}}, seeds=2).to_csv(
        path, index=False)
    return path


def test_compare_json_contract(ladder_csv):
    res = run("compare", ladder_csv, "--baseline", "base", "--target-params", 4e9,
              "--target-tokens", 8e10, *QUICK, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # nothing but JSON on stdout
    assert set(out) >= {"decision", "reasons", "recipes", "decision_accuracy", "rank_stability",
                        "regressions"}
    assert out["decision"] == "go" and out["reasons"][0].startswith("new: go")
    assert set(out["recipes"]) == {"new", "same"}
    for r in out["recipes"].values():
        assert set(r) >= {"p_beats_baseline", "predicted_delta", "ci95", "compute_multiplier"}
    new = out["recipes"]["new"]
    assert new["p_beats_baseline"] >= 0.9 and new["ci95"][1] < 0 < 1 - new["compute_multiplier"]
    assert out["recipes"]["same"]["decision"] != "go"
    assert out["target"]["params"] == 4e9 and out["metric"] == "val/x"


def test_compare_writes_the_json_file_and_prints_tables(ladder_csv, tmp_path):
    target = tmp_path / "out" / "compare.json"
    res = run("compare", ladder_csv, "--baseline", "base", *QUICK, "--json", target)
    assert res.exit_code == 0, res.output
    assert json.loads(target.read_text())["baseline"] == "base"
    for text in ("recipes against base on val/x (nats/token, matched by tokens)",
                 "val/x per scale (nats/token)", "Rank stability",
                 "compute multiplier", "new: go"):
        assert text in res.stdout
    assert "no target given" in res.stdout


def test_compare_reads_a_rule_file(ladder_csv, tmp_path):
    rule = tmp_path / "rule.toml"
    rule.write_text("[rule]\nmin_effect_to_noise = 1e6\n")
    res = run("compare", ladder_csv, "--baseline", "base", "--rule", rule, *QUICK, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["recipes"]["new"]["decision"] == "inconclusive"
    assert out["rule"]["min_effect_to_noise"] == 1e6


def test_compare_on_overtrain_backs_its_decision_with_reasons():
    res = run("compare", "--example", "overtrain", "--baseline", "c4", "--where",
              "params < 2e8", "--bootstrap", 20, "--slice-bootstrap", 5, "--gate-bootstrap", 0,
              "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["metric"] == "val/c4" and out["decision"] == "no-go"
    assert set(out["recipes"]) == {"redpajama", "refinedweb"}
    assert all(r["predicted_delta"] > 0 for r in out["recipes"].values())  # c4 wins on C4
    assert out["downstream"]["metric"] == "ds/average"
    assert out["decision_accuracy"]["by_metric"]["val/c4"]["reference_scale"] == \
        "154M @ 98.4B tok"
    assert len(out["near_chance"]) > 0


@pytest.mark.parametrize(("case", "message"), [
    ("one recipe", 'one recipe only ("base"): compare needs at least two; add runs of another '
                   "recipe, or check --where"),
    ("no baseline", 'baseline "nope" is not a recipe in the data; choose one of base, new'),
    ("no overlap", 'no scale has runs of both the baseline "base" and another recipe on val/x'),
    ("missing baseline option", "Name the baseline recipe with --baseline."),
    ("bad rule", "is not valid TOML"),
    ("half target", "The target needs both target_params and target_tokens"),
])
def test_compare_bad_input_exits_2_with_one_line_and_writes_nothing(case, message, tmp_path):
    path = tmp_path / "runs.csv"
    two = recipe_ladder({"base": {}, "new": data_effect(1.2)})
    args = ["--baseline", "base"]
    if case == "one recipe":
        two = two[two["recipe"] == "base"]
    elif case == "no baseline":
        args = ["--baseline", "nope"]
    elif case == "no overlap":
        two = pd.concat([recipe_ladder({"base": {}}, sizes=(1e7, 2e7)),
                         recipe_ladder({"new": {}}, sizes=(1e9, 2e9))])
        args += ["--match", "params-tokens"]
    elif case == "missing baseline option":
        args = []
    elif case == "bad rule":
        (tmp_path / "rule.toml").write_text("p_go = = 1\n")
        args += ["--rule", tmp_path / "rule.toml"]
    else:
        args += ["--target-params", "1e9"]
    two.to_csv(path, index=False)
    target = tmp_path / "out.json"
    res = run("compare", path, *args, *QUICK, "--json", target)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: ") and "Traceback" not in res.output
    assert not target.exists() and res.stdout == ""


def test_simulate_json_and_tables():
    res = run("simulate", "--ladders", 3, "--bootstrap", 10, "--gain", 0.05,
              "--power-ladders", 1, "--sizes", "4", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"brier", "reliability", "false_go_rate", "nominal_false_go", "power"}
    assert out["n_ladders"] == 4 and len(out["reliability"]) == 10
    assert out["power"][0]["design"] == "4 sizes x 3 ratios x 1 seed(s)"
    res = run("simulate", "--ladders", 2, "--bootstrap", 10)
    assert res.exit_code == 0 and "Calibration of P(beats baseline)" in res.stdout
    bad = run("simulate", "--seeds", "0,1")
    assert bad.exit_code == 2 and "The --seeds option takes positive integers" in bad.stderr


@pytest.mark.parametrize("verb", ["compare", "simulate"])
def test_compare_and_simulate_have_help_with_an_example(verb):
    res = run(verb, "--help")
    assert res.exit_code == 0 and "Example" in res.stdout
