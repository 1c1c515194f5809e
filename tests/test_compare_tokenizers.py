"""Recipes that differ in tokenizer are compared in bits/byte, never in nats/token (issue 17)."""

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
from scaling_ladder.compare.tokenizers import common_units
from scaling_ladder.errors import InputError

runner = CliRunner()
QUICK = ["--bootstrap", "30", "--slice-bootstrap", "5", "--gate-bootstrap", "0"]
# the same law shape in bits/byte; the BPE recipe's data term is 1.5x as effective
BPB = {"E": 0.9, "A": 200.0, "B": 800.0, "alpha": 0.33, "beta": 0.31}
BPE = {**BPB, "B": BPB["B"] * 1.5 ** -BPB["beta"]}


def tokenizer_ladder() -> pd.DataFrame:
    """A byte-level recipe (1 byte/token) and a BPE-like one (4 bytes/token), 5 sizes x 3 token
    ratios, drawn in bits/byte and written in nats/token: BPE is better in bits/byte and worse
    in nats/token at every scale."""
    parts = []
    for recipe, truth, tok, bpt, seed in (("byte", BPB, "byte-256", 1.0, 1),
                                          ("bpe", BPE, "bpe-4096", 4.0, 2)):
        f = make_ladder(truth, recipe=recipe, seed=seed)
        f["value"] = f["value"] * math.log(2) * bpt  # bits/byte -> nats/token
        parts.append(f.assign(tokenizer=tok, bytes_per_token=bpt))
    return pd.concat(parts, ignore_index=True)


def _finals(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["final"]].pivot_table(index=["params", "tokens"], columns="recipe",
                                             values="value")


def test_the_ladder_rankings_disagree():
    f = tokenizer_ladder()
    nats = _finals(f)
    bpb = _finals(f.assign(value=f["value"] / math.log(2) / f["bytes_per_token"]))
    assert (nats["bpe"] > nats["byte"]).all() and (bpb["bpe"] < bpb["byte"]).all()


def test_compare_decides_in_bits_per_byte_and_says_so(tmp_path):
    path = tmp_path / "tok.csv"
    tokenizer_ladder().to_csv(path, index=False)
    res = runner.invoke(app, ["compare", str(path), "--baseline", "byte", *QUICK, "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["units"] == "bits/byte" and out["matched"] == "tokens"
    assert out["recipes"]["bpe"]["decision"] == "go"  # in nats/token it would look worse
    assert out["recipes"]["bpe"]["predicted_delta"] < 0
    assert any("compared in bits/byte" in n and "byte: byte-256" in n for n in out["notes"])
    assert any("matched by tokens (N, D), not bytes" in n for n in out["notes"])
    said = " ".join(out["reasons"] + out["recipes"]["bpe"]["reasons"]
                    + [r for g in out["gates"] for v in g["recipes"].values()
                       for r in v["reasons"]])
    assert "bits/byte" in said and "nats" not in said  # gains are said in their unit
    ranks = {r["recipe"]: (r["rank_per_byte"], r["rank_per_token"]) for r in out["per_token"]}
    assert ranks == {"bpe": (1, 2), "byte": (2, 1)}  # the trap, beside the decision
    assert sl.Comparison.from_dict(out).per_token["recipe"].tolist() == ["bpe", "byte"]
    table = runner.invoke(app, ["compare", str(path), "--baseline", "byte", *QUICK])
    assert table.exit_code == 0, table.output
    assert "val/x per scale (bits/byte)" in table.stdout


def test_without_bytes_per_token_compare_exits_2_naming_both_tokenizers(tmp_path):
    path = tmp_path / "tok.csv"
    tokenizer_ladder().drop(columns="bytes_per_token").to_csv(path, index=False)
    res = runner.invoke(app, ["compare", str(path), "--baseline", "byte", *QUICK])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert "\n" not in err
    for text in (str(path), "byte: byte-256", "bpe: bpe-4096", "give bytes_per_token",
                 "bits/byte (unit bpb)"):
        assert text in err


def _valid(frame: pd.DataFrame) -> pd.DataFrame:
    return sl.from_frame(frame).frame


def test_one_tokenizer_stays_in_nats_per_token():
    f = _valid(tokenizer_ladder().assign(tokenizer="bpe-4096"))
    out, units, notes = common_units(f, "val/x", where=None)
    assert units == "nats/token" and notes == [] and out is f


@pytest.mark.parametrize("how", ["unit", "trainer"])
def test_bits_per_byte_values_and_the_trainers_column_convert(how):
    f = tokenizer_ladder()
    bpb = (f["value"] / math.log(2) / f["bytes_per_token"]).to_numpy()
    f = f.drop(columns="bytes_per_token")
    if how == "unit":  # the byte recipe's rows are given in bits/byte already
        byte = (f["recipe"] == "byte").to_numpy()
        f["value"] = np.where(byte, bpb, f["value"])
        f["unit"] = np.where(byte, "bits/byte", "nats/token")
        f.loc[~byte, "bits_per_byte"] = bpb[~byte]
    else:
        f["bits_per_byte"] = bpb
    out, units, _ = common_units(_valid(f), "val/x", where=None)
    assert units == "bits/byte" and np.allclose(out["value"], bpb)


def test_a_recipe_without_bits_per_byte_is_named():
    f = tokenizer_ladder()
    f.loc[f["recipe"] == "bpe", "bytes_per_token"] = np.nan
    with pytest.raises(InputError, match=r"val/x is not in bits/byte for bpe:"):
        common_units(_valid(f), "val/x", where="tok.csv")


def test_the_report_draws_and_tabulates_losses_in_bits_per_byte():
    from scaling_ladder.report import build_report

    obs = sl.from_frame(tokenizer_ladder())
    md = build_report(obs, metric="val/x", baseline="byte", bootstrap=5).markdown
    assert "Loss-based (bits/byte; lower is better)" in md
    assert "compared in bits/byte" in md
    assert "(nats/token" not in md  # no table or plot labelled in per-token loss


def test_unit_ranking_shows_both_orders_at_the_largest_shared_scale():
    from scaling_ladder.compare.tokenizers import unit_ranking

    f = sl.from_frame(tokenizer_ladder()).frame
    table = unit_ranking(f, "val/x")
    assert list(table["recipe"]) == ["bpe", "byte"]  # bits/byte order: BPE first
    assert list(table["rank_per_byte"]) == [1, 2] and list(table["rank_per_token"]) == [2, 1]
    top = f[f["final"]]
    assert table["params"].iloc[0] == top["params"].max()
    bpe = table.iloc[0]
    assert bpe["nats_per_token"] == pytest.approx(bpe["bits_per_byte"] * math.log(2) * 4.0)
    assert unit_ranking(f[f["recipe"] == "byte"], "val/x") is None  # one tokenizer


def test_the_reports_decision_shows_the_per_token_ranking_beside_it():
    from scaling_ladder.report import build_report

    obs = sl.from_frame(tokenizer_ladder())
    cmp = sl.compare(obs, baseline="byte", metric="val/x",
                     options=sl.CompareOptions(bootstrap=30, slice_bootstrap=5, gate_bootstrap=0))
    report = build_report(obs, metric="val/x", baseline="byte", compare=cmp, bootstrap=5)
    decision = next(s for s in report.sections if s.key == "decision")
    table = next(t for t in decision.tables if "rank per token" in t.columns)
    assert [r[0] for r in table.rows] == ["bpe", "byte"]
    assert "per token it would be byte > bpe, the wrong winner" in table.caption


def test_fit_says_its_unit_and_converts_with_units_bits_per_byte(tmp_path):
    path = tmp_path / "tok.csv"
    f = tokenizer_ladder()
    f.to_csv(path, index=False)
    common = ["fit", str(path), "--recipe", "bpe", "--bootstrap", "0", "--json", "-"]
    nats = json.loads(runner.invoke(app, common).stdout)
    bpb = json.loads(runner.invoke(app, [*common, "--units", "bits/byte"]).stdout)
    assert nats["unit"] == "nats/token" and bpb["unit"] == "bits/byte"
    assert bpb["params"]["E"] == pytest.approx(BPE["E"], rel=0.05)  # the law drawn in bits/byte
    assert sl.LawFit.from_dict(bpb).unit == "bits/byte"
    res = runner.invoke(app, [*common[:-2], "--units", "bits/byte"])
    assert "values in bits/byte" in res.stdout
    # a table mixing the two units in one fit, and a conversion with no bytes per token
    mixed = f.assign(unit=np.where(f["recipe"] == "byte", "bpb", "nats/token"))
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "mixed.csv"), "--bootstrap", "0"])
    assert res.exit_code == 2 and "mix nats/token and bits/byte" in res.stderr
    f.drop(columns="bytes_per_token").to_csv(tmp_path / "bare.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "bare.csv"), "--units", "bpb"])
    assert res.exit_code == 2 and "bare.csv" in res.stderr and "give bytes_per_token" in res.stderr


def test_check_reads_a_run_in_the_fits_unit():
    f = _valid(tokenizer_ladder())
    bpe = f[f["recipe"] == "bpe"]
    fit = sl.ChinchillaLaw().fit(sl.from_frame(tokenizer_ladder().pipe(
        lambda d: d[d["recipe"] == "bpe"]).assign(
        value=lambda d: d["value"] / math.log(2) / d["bytes_per_token"], unit="bpb")
        .drop(columns="bytes_per_token")))
    assert fit.unit == "bits/byte"
    run = bpe[bpe["run"] == bpe["run"].iloc[-1]]
    checked = sl.check_run(run, fit)
    assert checked.verdict == "on band"
    assert any("converted to bits/byte" in n for n in checked.notes)
    with pytest.raises(InputError, match="give bytes_per_token"):
        sl.check_run(run.drop(columns="bytes_per_token"), fit)
