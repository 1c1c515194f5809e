"""The ladder command: JSON contracts, exit status, one-line errors, help with examples."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.observations import datasets as sl_datasets

runner = CliRunner()
CHINCHILLA = ["--example", "chinchilla", "--where", "besiroglu_outlier == False"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fit_json_contract(tmp_path):
    res = run("fit", *CHINCHILLA, "--bootstrap", 50, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # nothing but JSON on stdout
    assert out["law"] == "chinchilla"
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(out["ci95"]) == {"E", "A", "B", "alpha", "beta"}
    assert out["n_points"] == 240 and out["n_runs"] == 240
    assert out["objective"] == "huber(delta=0.001, sum) on log-loss"
    assert out["params"]["alpha"] == pytest.approx(0.3473, abs=1e-3)


def test_fit_then_optimal_from_the_json_file(tmp_path):
    fit_json = tmp_path / "fit.json"
    assert run("fit", *CHINCHILLA, "--bootstrap", 40, "--json", fit_json).exit_code == 0
    res = run("optimal", "--fit", fit_json, "--flops", "1e23", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"params", "tokens", "ci95"}
    assert out["ci95"]["params"][0] < out["params"] < out["ci95"]["params"][1]
    table = run("optimal", "--fit", fit_json, "--flops", "1e23")
    assert "N* (params)" in table.stdout and "tokens per parameter" in table.stdout


def test_holdout_json_contract():
    res = run("holdout", "--example", "overtrain", "--recipe", "redpajama", "--metric",
              "val/c4", "--checkpoints", "final", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"are", "baseline_are", "n_fit_points", "n_target_points"}
    assert out["are"] == pytest.approx(0.0117, abs=1e-4)


def test_rich_tables_without_json():
    res = run("fit", *CHINCHILLA, "--bootstrap", 0, "--fix", "E=1.69")
    assert res.exit_code == 0, res.output
    assert "alpha" in res.stdout and "fixed" in res.stdout and "set aside" in res.stdout


def test_grouped_fit_table_names_each_group():
    res = run("fit", "--example", "overtrain", "--metric", "val/c4", "--checkpoints", "final",
              "--by", "recipe", "--shared", "E,alpha,beta", "--bootstrap", 0)
    assert res.exit_code == 0, res.output
    assert "A[redpajama]" in res.stdout and "B[c4]" in res.stdout  # not eaten as markup


def test_missing_file_exits_2_with_one_line(tmp_path):
    out = tmp_path / "fit.json"
    res = run("fit", tmp_path / "nope.csv", "--json", out)
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'nope.csv'}: file not found; check the path\n"
    assert not out.exists()


def test_bad_row_exits_2_naming_line_and_column(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run,params,tokens,metric,value\na,100,1e9,train,3.0\nb,100,2e9x,train,2\n")
    out = tmp_path / "fit.json"
    res = run("fit", path, "--json", out)
    assert res.exit_code == 2
    assert res.stderr.strip() == (f'error: {path}, line 3, column "tokens": "2e9x" is not a '
                                  "number; fix it or remove the row")
    assert not out.exists() and res.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["fit", "--example", "overtrain", "--recipe", "c4"], "a law fits one; choose one with"),
    (["fit", "--example", "chinchilla", "--law", "hyper"], "The 'law' argument must be one of"),
    (["fit", "--example", "chinchilla", "--fix", "E"], "The --fix option takes NAME=VALUE"),
    (["fit"], "Give observation files"),
    (["fit", "--example", "chinchilla", "--where", "nonsense >"], "cannot be evaluated"),
    (["fit", "--example", "chinchilla", "--checkpoints", "first"], "'checkpoints' option"),
    (["optimal", "--fit", "missing.json", "--flops", "1e23"], "missing.json: file not found"),
])
def test_bad_usage_exits_2(args, message):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output


def _broken(*args, **kwargs):
    raise RuntimeError("boom")


def test_an_unexpected_error_exits_3_with_one_line_and_no_traceback(monkeypatch):
    monkeypatch.setattr("scaling_ladder.cli.fit.isoflop_analysis", _broken)
    res = run("isoflop", "--example", "chinchilla")
    assert res.exit_code == 3, res.output
    assert res.stderr.startswith("internal error: RuntimeError: boom. This is a bug in "
                                 "scaling-ladder; please report it at https://")
    assert res.stderr.count("\n") == 1 and "--debug" in res.stderr
    assert "Traceback" not in res.output and res.stdout == ""


@pytest.mark.parametrize(("args", "env"), [(["--debug"], {}),
                                           ([], {"SCALING_LADDER_DEBUG": "1"})])
def test_debug_shows_the_traceback_of_an_internal_error(monkeypatch, args, env):
    monkeypatch.setattr("scaling_ladder.cli.fit.isoflop_analysis", _broken)
    res = runner.invoke(app, [*args, "isoflop", "--example", "chinchilla"], env=env)
    assert res.exit_code == 3, res.output
    assert "Traceback (most recent call last)" in res.stderr and "_broken" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("internal error: RuntimeError: boom")


def test_bad_input_is_not_an_internal_error_even_with_debug(monkeypatch):
    res = run("--debug", "optimal", "--fit", "missing.json", "--flops", "1e23")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output


def test_isoflop_verb(tmp_path):
    rows = ["run,params,tokens,flops,metric,value"]
    for c in (1e18, 1e19, 1e20):
        for n in (1e7, 3e7, 1e8, 3e8, 1e9):
            d = c / (6 * n)
            loss = 1.8 + 400 / n**0.34 + 2000 / d**0.37
            rows.append(f"{c:g}-{n:g},{int(n)},{d},{c},train,{loss}")
    path = tmp_path / "iso.csv"
    path.write_text("\n".join(rows) + "\n")
    res = run("isoflop", path, "--json", "-")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["budgets"]) == 3


def test_import_wandb_writes_observations(tmp_path):
    src = tmp_path / "history.csv"
    src.write_text("_step,tokens_seen,train/loss\n100,1e8,4.0\n200,2e8,3.5\n")
    res = run("import", "wandb", src, "--map", "tokens=tokens_seen,train=train/loss",
              "--params", "1.2e8", "-o", tmp_path / "runs.csv", "--json", "-")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 2
    assert run("fit", tmp_path / "runs.csv", "--law", "power-D", "--bootstrap", 0).exit_code in (
        0, 2)


@pytest.mark.parametrize("verb", [["fit"], ["holdout"], ["optimal"], ["isoflop"],
                                  ["import", "wandb"], ["import", "tensorboard"]])
def test_every_verb_has_help_with_an_example(verb):
    res = run(*verb, "--help")
    assert res.exit_code == 0 and "Example" in res.stdout


def test_version_and_completion():
    res = run("--version")
    assert res.exit_code == 0 and res.stdout.startswith("scaling-ladder ")
    assert "--install-completion" in run("--help").stdout


@pytest.mark.parametrize("name", sl_datasets.NAMES)
def test_every_bundled_dataset_loads(name):
    """All the public ladders of shared/datasets ship with the package (``--example``)."""
    obs = sl_datasets.load(name)
    assert obs.n_runs > 1 and len(obs) > 100
    assert name in run("fit", "--help").stdout


def test_out_is_o_on_every_verb_that_writes():
    for verb in (["plan"], ["train"], ["demo"], ["report"], ["data", "build"],
                 ["import", "wandb"]):
        assert re.search(r"--out\s+-o\b", run(*verb, "--help").stdout), verb


def test_python_dash_m_runs_the_ladder_command():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "scaling_ladder.cli", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Usage: python -m scaling_ladder.cli" in res.stdout
