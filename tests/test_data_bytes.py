"""Laws fitted with the data budget D in bytes: tokens x train_bytes_per_token (issue 17)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from conftest import make_ladder
from scaling_ladder.cli import app
from scaling_ladder.errors import InputError
from scaling_ladder.observations.importers.config import meta_from
from scaling_ladder.observations.importers.meta import with_meta
from scaling_ladder.units import tokens_to_bytes

runner = CliRunner()
# one law in bits/byte with D in bytes of text, shared by both tokenizers
TRUTH = {"E": 0.9, "A": 200.0, "B": 800.0, "alpha": 0.33, "beta": 0.31}
TRAIN_BPT = {"byte": 1.5, "bpe": 4.0}  # the training stream's UTF-8 bytes per token


def bytes_ladder() -> pd.DataFrame:
    """Two tokenizers' ladders drawn from TRUTH at D in bytes, written with D in tokens (bytes
    over each tokenizer's train_bytes_per_token) and losses in bits/byte."""
    parts = []
    for seed, (recipe, bpt) in enumerate(TRAIN_BPT.items(), start=1):
        f = make_ladder(TRUTH, recipe=recipe, seed=seed)
        parts.append(f.assign(tokens=f["tokens"] / bpt, train_bytes_per_token=bpt, unit="bpb",
                              tokenizer=recipe))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("bytes") / "tok.csv"
    bytes_ladder().to_csv(path, index=False)
    return path


def fit_json(path, *extra) -> dict:
    res = runner.invoke(app, ["fit", str(path), "--bootstrap", "0", *extra, "--json", "-"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_the_conversion_multiplies_tokens_by_the_training_streams_bytes_per_token():
    f = bytes_ladder().assign(unique_tokens=lambda d: d["tokens"] / 2)
    out = tokens_to_bytes(f)
    want = f["tokens"] * f["train_bytes_per_token"]
    assert np.allclose(out["tokens"], want) and np.allclose(out["unique_tokens"], want / 2)
    assert np.array_equal(out["value"], f["value"])  # the loss is another column's business
    assert np.array_equal(f["tokens"], bytes_ladder()["tokens"])  # the input is untouched


def test_fit_with_d_in_bytes_says_so_and_fits_d_in_bytes(table):
    f = bytes_ladder()
    got = fit_json(table, "--data", "bytes")
    assert got["data"] == "bytes" and got["unit"] == "bits/byte"
    d = f["tokens"] * f["train_bytes_per_token"]
    assert got["ranges"]["tokens"] == pytest.approx([d.min(), d.max()])
    for k, v in TRUTH.items():  # one law in bytes fits both tokenizers: the truth comes back
        assert got["params"][k] == pytest.approx(v, rel=0.1), k
    per_token = fit_json(table)
    assert per_token["data"] == "tokens"  # the default, said too
    assert per_token["ranges"]["tokens"] == pytest.approx([f["tokens"].min(), f["tokens"].max()])
    assert got["rmse"] < per_token["rmse"] / 2  # in tokens the two tokenizers disagree


def test_a_bytes_fit_predicts_at_d_in_bytes_and_optimal_refuses_it(table, tmp_path):
    saved = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", str(table), "--bootstrap", "20", "--data", "bytes",
                              "--json", str(saved)])
    assert res.exit_code == 0, res.output
    fitted = sl.LawFit.read(saved)
    assert fitted.data == "bytes" and "D in bytes" in fitted.summary()
    pred = runner.invoke(app, ["predict", "--fit", str(saved), "--params", "1e9", "--tokens",
                               "4e10", "--json", "-"])
    assert pred.exit_code == 0, pred.output
    out = json.loads(pred.stdout)
    assert out["data"] == "bytes"
    truth = float(sl.ChinchillaLaw()(TRUTH, params=1e9, tokens=4e10))
    assert out["predictions"][0]["mean"] == pytest.approx(truth, rel=0.02)
    table_out = runner.invoke(app, ["predict", "--fit", str(saved), "--params", "1e9",
                                    "--tokens", "4e10"])
    assert "tokens (bytes)" in table_out.stdout
    res = runner.invoke(app, ["optimal", "--fit", str(saved), "--flops", "1e21", "--json",
                              str(tmp_path / "opt.json")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"error: {saved}: the fit takes D in bytes, but C = 6ND "
                                 "counts tokens")
    assert "ladder fit --data tokens" in res.stderr
    assert not (tmp_path / "opt.json").exists()


def test_the_cli_line_says_d_in_bytes_only_for_a_bytes_fit(table):
    res = runner.invoke(app, ["fit", str(table), "--bootstrap", "0", "--data", "bytes"])
    assert res.exit_code == 0, res.output
    assert "values in bits/byte; D in bytes;" in res.stdout
    res = runner.invoke(app, ["fit", str(table), "--bootstrap", "0"])
    assert "values in bits/byte; 240 points" in res.stdout  # as before for D in tokens


def test_runs_without_train_bytes_per_token_exit_2_naming_them(tmp_path):
    f = bytes_ladder()
    f.loc[f["recipe"] == "bpe", "train_bytes_per_token"] = np.nan
    path = tmp_path / "partial.csv"
    f.to_csv(path, index=False)
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", str(path), "--bootstrap", "0", "--data", "bytes", "--json",
                              str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f'error: {path}, column "train_bytes_per_token": no '
                                 "train_bytes_per_token for 15 run(s) (bpe-2e+07-5, "
                                 "bpe-2e+07-20, bpe-2e+07-80, bpe-5e+07-5, …)")
    assert "or fit with D in tokens (--data tokens)" in res.stderr
    assert not out.exists()
    bare = tmp_path / "bare.csv"
    f.drop(columns="train_bytes_per_token").to_csv(bare, index=False)
    res = runner.invoke(app, ["fit", str(bare), "--bootstrap", "0", "--data", "bytes"])
    assert res.exit_code == 2 and "no train_bytes_per_token for 30 run(s)" in res.stderr
    with pytest.raises(InputError, match="byte-2e"):  # the library says the same
        sl.ChinchillaLaw().fit(sl.from_frame(f.drop(columns="train_bytes_per_token")),
                               data="bytes")


@pytest.mark.parametrize("args, message", [
    (["--data", "characters"], "The --data option takes tokens or bytes. Got 'characters'."),
    (["--data", "bytes", "--law", "power-C"], "D in bytes is for a law that reads tokens; the "
                                              "power-C law reads flops."),
])
def test_bad_data_options_exit_2(table, args, message):
    res = runner.invoke(app, ["fit", str(table), "--bootstrap", "0", *args])
    assert res.exit_code == 2 and message in res.stderr


def test_the_data_unit_round_trips_and_old_fits_read_as_tokens(table):
    obs = sl.read_observations(table)
    fitted = sl.ChinchillaLaw().fit(obs, data="bytes")
    d = fitted.to_dict()
    assert sl.LawFit.from_dict(d).data == "bytes"
    del d["data"]  # a fit written before D's unit was recorded
    assert sl.LawFit.from_dict(d).data == "tokens"
    with pytest.raises(ValueError, match="'data' argument of fit must be 'tokens' or 'bytes'"):
        sl.LawFit.from_dict({**d, "data": "words"})


def test_check_converts_the_runs_d_to_bytes_for_a_bytes_fit(table):
    f = bytes_ladder()
    obs = sl.read_observations(table)
    fitted = sl.ChinchillaLaw().fit(obs.select(recipe="byte"), data="bytes", bootstrap=20)
    run = f[f["run"] == "bpe-1e+08-20"]  # the other tokenizer: on the band only in bytes
    result = sl.check_run(run, fitted)
    assert result.verdict == "on band"
    assert np.allclose(result.checkpoints["tokens"], np.sort(run["tokens"]))  # listed by tokens
    assert any("D converted to bytes" in n for n in result.notes)
    with pytest.raises(InputError, match="no train_bytes_per_token for 1 run"):
        sl.check_run(run.drop(columns="train_bytes_per_token"), fitted)


@pytest.mark.parametrize("extra, message", [
    ([4.0, 0], 'line 3, column "train_bytes_per_token": 0.0 bytes per token is not positive; '
               "give the training stream's UTF-8 bytes over its tokens"),
    ([4.0, "four"], 'line 3, column "train_bytes_per_token": "four" is not'),
])
def test_bad_train_bytes_per_token_names_file_line_and_column(tmp_path, extra, message):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"run": ["a", "b"], "params": [10**6] * 2, "tokens": [1e8] * 2,
                  "metric": ["val/x"] * 2, "value": [3.0, 1.0],
                  "train_bytes_per_token": extra}).to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        sl.read_observations(path)
    assert str(err.value).startswith(f"{path}, {message}")


def test_importers_keep_train_bytes_per_token_where_the_config_states_it():
    config = {"data": {"train_bytes_per_token": 3.9}, "tokenizer": {"name": "bpe-32k",
                                                                    "bytes_per_token": 4.2}}
    stated = meta_from(config)
    assert stated["train_bytes_per_token"] == 3.9 and stated["bytes_per_token"] == 4.2
    assert meta_from({"train_bytes_per_token": 2.5})["train_bytes_per_token"] == 2.5
    assert "train_bytes_per_token" not in meta_from({"bytes_per_token": 4.2})
    rows = with_meta(pd.DataFrame({"value": [1.0]}), stated)
    assert rows["train_bytes_per_token"].tolist() == [3.9]
    assert math.isclose(rows["bytes_per_token"].iloc[0], 4.2)


def test_report_refuses_a_bytes_fit_and_writes_nothing(table, tmp_path):
    saved = tmp_path / "fit.json"
    fitted = sl.ChinchillaLaw().fit(sl.read_observations(table).select(recipe="byte"),
                                    data="bytes")
    saved.write_text(json.dumps(fitted.to_dict()))
    page = tmp_path / "report.html"
    res = runner.invoke(app, ["report", str(table), "--recipe", "byte", "--fit", str(saved),
                              "-o", str(page)])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {saved}: the fit takes D in "
                                                        "bytes, but the report plots")
    assert "ladder fit --data tokens" in res.stderr and not page.exists()
