"""``ladder predict``: a saved fit, or a chain of two, at new points with its intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from scaling_ladder.cli import app
from scaling_ladder.laws.predict import predict

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A Chinchilla fit with bootstrap draws, saved as ladder fit --json writes it."""
    tmp = tmp_path_factory.mktemp("predict")
    res = run("fit", "--example", "chinchilla", "--where", "besiroglu_outlier == False",
              "--bootstrap", 60, "--json", tmp / "fit.json")
    assert res.exit_code == 0, res.output
    return tmp


def test_predict_matches_the_library_to_six_digits(saved):
    res = run("predict", "--fit", saved / "fit.json", "--params", 7e10, "--tokens", 1.4e12,
              "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["law"] == "chinchilla" and out["then"] is None
    (row,) = out["predictions"]
    want = sl.LawFit.read(saved / "fit.json").predict_interval(params=7e10, tokens=1.4e12)
    assert row["params"] == 7e10 and row["tokens"] == 1.4e12
    assert row["mean"] == pytest.approx(float(want.mean), rel=1e-6)
    assert row["ci"] == pytest.approx([float(want.ci[0]), float(want.ci[1])], rel=1e-6)
    assert row["pi"] == pytest.approx([float(want.pi[0]), float(want.pi[1])], rel=1e-6)
    assert row["ci"][0] < row["mean"] < row["ci"][1]
    assert row["pi"][0] <= row["ci"][0] and row["ci"][1] <= row["pi"][1]


def test_predict_many_points_from_a_file(saved):
    points = saved / "points.csv"
    points.write_text("params,tokens\n1e9,2e10\n7e10,1.4e12\n")
    res = run("predict", "--fit", saved / "fit.json", "--points", points, "--json", "-")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["predictions"]
    assert [r["params"] for r in rows] == [1e9, 7e10]
    assert rows[0]["mean"] > rows[1]["mean"]  # a larger model, a lower loss
    table = run("predict", "--fit", saved / "fit.json", "--points", points)
    assert table.exit_code == 0 and "70B" in table.stdout


def test_a_chain_pairs_the_draws_of_both_steps():
    """Loss law then sigmoid: the accuracy falls as loss rises, and its CI holds the mean."""
    rng = np.random.default_rng(0)
    loss_fit = sl.LawFit(law=sl.ChinchillaLaw(), params={"E": 1.8, "A": 400.0, "B": 2000.0,
                                                          "alpha": 0.34, "beta": 0.36},
                         ci={}, objective="", objective_value=0.0, n_points=10, n_runs=10,
                         draws=np.array([[1.8 + d, 400.0, 2000.0, 0.34, 0.36]
                                         for d in rng.normal(0, 0.02, 50)]),
                         residuals=rng.normal(0, 0.01, 40))
    task = sl.SigmoidLaw()
    task_fit = sl.LawFit(law=task, params={"a": 0.7, "b": 0.25, "k": 3.0, "L0": 2.5}, ci={},
                         objective="", objective_value=0.0, n_points=10, n_runs=10,
                         draws=np.array([[0.7, 0.25, 3.0 + d, 2.5] for d in
                                         rng.normal(0, 0.1, 50)]),
                         residuals=rng.normal(0, 0.01, 40), space="linear")
    table = predict(loss_fit, {"params": [1e9, 1e11], "tokens": [2e10, 2e12]}, then=task_fit)
    assert (np.diff(table["loss"]) < 0).all() and (np.diff(table["mean"]) > 0).all()
    assert ((table["ci_lo"] < table["mean"]) & (table["mean"] < table["ci_hi"])).all()
    assert ((table["pi_lo"] <= table["ci_lo"]) & (table["ci_hi"] <= table["pi_hi"])).all()
    direct = task_fit.predict(loss=loss_fit.predict(params=1e9, tokens=2e10))
    assert table["mean"][0] == pytest.approx(float(direct))


def test_intervals_print_as_numbers():
    assert repr(sl.Interval(np.float64(0.317), np.float64(0.372))) == "Interval(0.317, 0.372)"
    pred = sl.Prediction(np.float64(2.0), (np.float64(1.9), np.float64(2.1)), None)
    assert repr(pred) == "Prediction(2, ci=[1.9, 2.1], level=0.95)"


def test_to_frame_lists_the_parameters(saved):
    frame = sl.LawFit.read(saved / "fit.json").to_frame()
    assert list(frame.index) == ["E", "A", "B", "alpha", "beta"]
    assert (frame["lo"] <= frame["value"]).all() and (frame["value"] <= frame["hi"]).all()
    assert "<table" in sl.LawFit.read(saved / "fit.json")._repr_html_()


@pytest.mark.parametrize(("args", "names"), [
    (["--fit", "{tmp}/nope.json", "--params", "1e9", "--tokens", "1e10"], "nope.json"),
    (["--fit", "{tmp}/old.json", "--params", "1e9", "--tokens", "1e10"], "version"),
    (["--fit", "{tmp}/fit.json", "--then", "{tmp}/fit.json", "--params", "1e9", "--tokens",
      "1e10"], "loss to accuracy"),
    (["--fit", "{tmp}/fit.json", "--params", "0", "--tokens", "1e10"], "--params"),
    (["--fit", "{tmp}/fit.json", "--params", "-1e9", "--tokens", "1e10"], "--params"),
    (["--fit", "{tmp}/fit.json", "--params", "1e9"], "--tokens"),
    (["--fit", "{tmp}/fit.json", "--flops", "1e20"], "--flops"),
    (["--fit", "{tmp}/fit.json", "--points", "{tmp}/bad-points.csv"], "bad-points.csv"),
    (["--fit", "{tmp}/fit.json", "--points", "{tmp}/bad-points.csv", "--params", "1"],
     "--points"),
])
def test_bad_input_is_exit_2_naming_the_fix(saved, args, names):
    data = json.loads((saved / "fit.json").read_text())
    (saved / "old.json").write_text(json.dumps({**data, "version": 99}))
    (saved / "bad-points.csv").write_text("params,tokens\n1e9,-5\n")
    res = run("predict", *[a.replace("{tmp}", str(saved)) for a in args])
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and names in res.stderr, res.stderr
