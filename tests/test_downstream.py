"""Task predictions: the two-step ladder per task, its verdicts, and the published numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from scaling_ladder.cli import app
from scaling_ladder.laws.twostep import (
    TaskOptions,
    downstream,
    fit_step_two,
    step_two_rows,
    task_law,
)

runner = CliRunner()
SEVENTEEN = ("bigbench_operators pubmed_qa_labeled hellaswag_zeroshot boolq arc_easy coqa "
             "bigbench_dyck_languages lambada_openai bigbench_novel_concepts winograd "
             "bigbench_cs_algorithms commonsense_qa bigbench_qa_wikidata hellaswag copa squad "
             "piqa").split()
TARGET = ["--target-params", "6.9e9", "--target-tokens", "1.38e11"]


def test_reproduces_gadre_17_task_error_predictions():
    """Gadre et al. (2024), scaling_explorer.ipynb: RedPajama, val/c4 loss law on five small
    runs, then Err(L) = eps - k exp(-gamma L) on the average top-1 error of 17 tasks with the
    1.4B M=20 run added; relative errors 3.6365% (1.4B, M=640) and 0.0464% (6.9B, M=20)."""
    f = sl.datasets.load("overtrain").select(recipe="redpajama").frame
    tasks = f[f["metric"].isin([f"ds/{t}" for t in SEVENTEEN])]
    assert tasks["metric"].nunique() == 17
    error = 1 - tasks.groupby("run")["value"].mean()
    d = f[f["metric"] == "val/c4"].set_index("run").assign(error=error).reset_index()
    m, n = d["token_multiplier"], d["params"]
    small = ((n < 5e8) & (m == 20)) | ((n < 2e7) & (m == 320))
    loss_fit = sl.OvertrainLaw().fit(d[small], loss="mse", space="linear")
    step2 = d[small | (np.isclose(n, 1.44e9, rtol=0.05) & (m == 20))]
    step2 = step2.assign(loss=step2["value"], value=1 - step2["error"], kind="accuracy")
    task_fit = sl.ExponentialErrorLaw().fit(step2, loss="mse", space="linear")
    for size, mult, published in ((1.4e9, 640, 3.6365), (6.9e9, 20, 0.0464)):
        row = d[np.isclose(n, size, rtol=0.05) & (m == mult)].iloc[0]
        pred = sl.chain(loss_fit, task_fit).predict(params=row["params"], tokens=row["tokens"])
        assert 100 * abs(pred - row["error"]) / row["error"] == pytest.approx(published,
                                                                              abs=1e-3)


@pytest.fixture(scope="module")
def redpajama():
    return sl.datasets.load("overtrain").select(recipe="redpajama")


def test_every_task_predicted_or_told_why_not(redpajama):
    res = downstream(redpajama, target=(6.9e9, 1.38e11), bootstrap=20,
                     tasks=["ds/hellaswag", "ds/piqa", "ds/boolq"])
    by = {t.task: t for t in res.tasks}
    for name in ("ds/hellaswag", "ds/piqa"):
        t = by[name]
        assert t.predictable and not t.reasons
        assert t.ci[0] <= t.mean <= t.ci[1] and 0.25 < t.mean < 1
        assert t.holdout["error"] < 0.08 and t.holdout["runs"] == 1
        assert t.loss_metric.startswith("val/") and "correlated" in t.loss_metric_reason
    boolq = by["ds/boolq"]  # below its random baseline (0.5) at 6.9B: chance
    assert not boolq.predictable and boolq.mean is None
    assert boolq.reasons[0].startswith("near chance")
    assert res.to_dict()["predictable"] == 2


def test_step_two_options_change_the_fit(redpajama):
    frame = redpajama.frame
    free = fit_step_two(frame, loss_metric="val/c4", metric="ds/hellaswag",
                        options=TaskOptions(floor="free", checkpoints="final"), bootstrap=0)
    floored = fit_step_two(frame, loss_metric="val/c4", metric="ds/hellaswag",
                           options=TaskOptions(floor="baseline", checkpoints="final"),
                           bootstrap=0)
    assert floored.params["b"] == pytest.approx(0.25)  # hellaswag's random baseline
    assert free.params["b"] != pytest.approx(0.25)
    with pytest.raises(ValueError, match="floor"):
        TaskOptions(floor="zero")


def test_cli_downstream_json_contract():
    res = runner.invoke(app, ["downstream", "--example", "overtrain", "--recipe", "redpajama",
                              *TARGET, "--task", "ds/piqa", "--task", "ds/boolq",
                              "--bootstrap", "10", "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["target"] == {"params": 6.9e9, "tokens": 1.38e11} and out["of"] == 2
    piqa, boolq = out["tasks"]
    assert set(piqa["prediction"]) == {"loss", "mean", "ci", "pi"}
    assert boolq["prediction"] is None and boolq["reasons"]
    table = runner.invoke(app, ["downstream", "--example", "overtrain", "--recipe",
                                "redpajama", *TARGET, "--task", "ds/boolq", "--bootstrap",
                                "0"])
    assert table.exit_code == 0 and "near chance" in table.stdout


@pytest.mark.parametrize(("args", "names"), [
    (["--task", "ds/nope"], "ds/nope"),
    (["--task", "ds/piqa", "--loss-metric", "task_loss/{task}"], "task_loss/piqa"),
    (["--task", "ds/piqa", "--floor", "zero"], "floor"),
    (["--task", "ds/piqa", "--task-law", "chinchilla"], "sigmoid"),
])
def test_cli_downstream_bad_input(args, names):
    res = runner.invoke(app, ["downstream", "--example", "overtrain", "--recipe", "redpajama",
                              *TARGET, "--bootstrap", "0", *args])
    assert res.exit_code == 2, res.output
    assert names in res.stderr and res.stderr.count("\n") == 1


def test_cli_fit_of_step_two_matches_the_library(tmp_path, redpajama):
    res = runner.invoke(app, ["fit", "--example", "overtrain", "--recipe", "redpajama",
                              "--law", "sigmoid", "--metric", "ds/piqa", "--loss-metric",
                              "val/c4", "--bootstrap", "0", "--json", "-"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["params"]
    options = TaskOptions()  # the defaults of step 2: ladder downstream's too
    rows = step_two_rows(redpajama.frame, loss_metric="val/c4", metric="ds/piqa",
                         options=options)
    want = task_law(options, 0.5).fit(rows).params
    assert got == pytest.approx(want, rel=1e-6)
    floored = runner.invoke(app, ["fit", "--example", "overtrain", "--recipe", "redpajama",
                                  "--law", "sigmoid", "--metric", "ds/piqa", "--loss-metric",
                                  "val/c4", "--floor", "baseline", "--no-anchor", "--bootstrap",
                                  "0", "--json", "-"])
    assert json.loads(floored.stdout)["params"]["b"] == pytest.approx(0.5)
    wrong = runner.invoke(app, ["fit", "--example", "overtrain", "--floor", "baseline"])
    assert wrong.exit_code == 2 and "loss-to-accuracy" in wrong.stderr


def test_a_task_no_loss_falls_with_is_unpredictable_not_an_error(redpajama):
    res = downstream(redpajama, target=(6.9e9, 1.38e11), bootstrap=0, holdout=False,
                     tasks=["ds/agi_eval_lsat_lr", "ds/piqa"])
    lsat, piqa = res.tasks
    assert not lsat.predictable and lsat.reasons[0].startswith("no loss: no val/ loss falls")
    assert lsat.mean is None and lsat.step1 is None
    assert piqa.predictable and "Spearman rho" in piqa.loss_metric_reason
