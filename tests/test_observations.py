"""Reading, validating, selecting and writing the observations table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder import InputError

HEADER = "experiment,recipe,run,params,tokens,metric,kind,value"


def write(tmp_path, text: str, name: str = "runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_every_shared_family_without_loss(shared):
    manifest = json.loads((shared / "manifest.json").read_text())
    for entry in manifest.values():
        obs = sl.read_observations(shared / entry["file"])
        assert len(obs) == entry.get("rows", len(pd.read_csv(shared / entry["file"])))
        assert obs.n_runs == entry.get("runs", obs.n_runs)
        assert obs.set_aside == ()


def test_defaults_fill_flops_final_kind_and_recipe(tmp_path):
    path = write(tmp_path, "run,params,tokens,metric,value\n"
                 "a,100,1000,train,3.0\na,100,2000,train,2.5\na,100,2000,ds/x,0.4\n")
    f = sl.read_observations(path).frame
    assert f["flops"].tolist() == [6e5, 1.2e6, 1.2e6]
    assert f["final"].tolist() == [False, True, True]
    assert f["kind"].tolist() == ["loss", "loss", "accuracy"]
    assert set(f["recipe"]) == {"default"} and set(f["experiment"]) == {"runs"}


def test_perplexity_is_converted_to_nats(tmp_path):
    path = write(tmp_path, HEADER + "\ne,r,a,100,1000,val/x,perplexity,20.0\n")
    f = sl.read_observations(path).frame
    assert f["kind"].iloc[0] == "loss"
    assert f["value"].iloc[0] == pytest.approx(np.log(20.0))


def test_extra_columns_are_kept_and_typed(tmp_path):
    path = write(tmp_path, HEADER + ",flag,note\ne,r,a,100,1000,train,loss,3.0,True,x\n"
                 "e,r,b,200,1000,train,loss,2.9,False,\n")
    f = sl.read_observations(path).frame
    assert f["flag"].tolist() == [True, False]
    assert f["note"].iloc[0] == "x" and pd.isna(f["note"].iloc[1])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip_through_every_format(tmp_path, suffix):
    obs = sl.datasets.load("chinchilla")
    path = tmp_path / f"runs{suffix}"
    obs.write(path)
    back = sl.read_observations(path)
    pd.testing.assert_frame_equal(back.frame, obs.frame, check_dtype=False)


def test_identical_duplicates_are_set_aside_and_counted(tmp_path):
    path = write(tmp_path, HEADER + "\ne,r,a,100,1000,train,loss,3.0\n"
                 "e,r,a,100,1000,train,loss,3.0\n")
    obs = sl.read_observations(path)
    assert len(obs) == 1
    assert obs.set_aside == (("exact duplicate rows", 1),)


def test_select_counts_what_each_filter_sets_aside(chinchilla):
    obs = sl.datasets.load("overtrain").select(recipe="c4", metric="val/c4",
                                               where="params < 1e9")
    reasons = dict(obs.set_aside)
    assert len(obs) == 31  # 34 c4 runs have val/c4; 3 of them are >= 1e9
    assert reasons["recipe not c4"] == 3780 and reasons["metric not val/c4"] == 1802
    assert reasons["where params < 1e9"] == 3
    assert len(chinchilla) == 240 and dict(chinchilla.set_aside) == {
        "where besiroglu_outlier == False": 5}


def test_checkpoint_rules(tmp_path):
    rows = [f"e,r,a,100,{d},train,loss,{3 - d / 1e4}" for d in range(1000, 11000, 1000)]
    obs = sl.read_observations(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert len(obs.select(checkpoints="final")) == 1
    assert len(obs.select(checkpoints="all")) == 10
    assert obs.select(checkpoints="drop-first:0.25").frame["tokens"].min() == 3000
    assert obs.select(checkpoints="drop-first-tokens:5000").frame["tokens"].min() == 5000
    assert obs.select(checkpoints="last:0.3").frame["tokens"].min() == 7000
    assert obs.select(checkpoints="auto").frame["tokens"].min() == 1000  # = drop-first:0.1
    with pytest.raises(ValueError, match="'checkpoints' option"):
        obs.select(checkpoints="first:3")


def test_auto_checkpoints_keep_only_annealed_points_of_wsd_runs():
    # a WSD run's stable-phase checkpoints are not annealed; its cooldown branch is a run
    frame = pd.DataFrame({"experiment": "e", "recipe": "r", "params": 100.0,
                          "run": ["a"] * 4 + ["a-cd0.5"] + ["b"] * 4,
                          "schedule": ["wsd"] * 5 + ["cosine"] * 4,
                          "tokens": [1e3, 2e3, 3e3, 4e3, 2e3, 1e3, 2e3, 3e3, 4e3],
                          "final": [False, False, False, True, True, False, False, False, True],
                          "metric": "train", "kind": "loss", "value": 2.0})
    kept = sl.from_frame(frame).select(checkpoints="auto").frame
    assert sorted(kept.loc[kept["schedule"] == "wsd", "run"]) == ["a", "a-cd0.5"]
    assert (kept.loc[kept["run"] == "b", "tokens"] >= 400).sum() == 4  # cosine: drop-first:0.1


def test_unknown_selection_suggests_the_closest_value():
    with pytest.raises(InputError, match='no rows with metric "val/c5".*did you mean "val/c4"'):
        sl.datasets.load("overtrain").select(metric="val/c5")


BAD = [
    ("missing column", "run,params,metric,value\na,1,train,2\n",
     'runs.csv, line 1, column "tokens": column "tokens" is missing; add a tokens column'),
    ("misspelt column", "run,params,tokns,metric,value\na,1,2,train,2\n",
     'runs.csv, line 1, column "tokens": column "tokens" is missing; rename "tokns" to "tokens"'),
    ("misspelt optional", "run,params,tokens,metric,value,seeed\na,1,2,train,2,1\n",
     'runs.csv, line 1, column "seeed": column "seeed" looks like a misspelling of "seed"; '
     'rename it to "seed"'),
    ("not a number", HEADER + "\ne,r,a,100,1000,train,loss,3\ne,r,a,100,1.2e,train,loss,3\n",
     'runs.csv, line 3, column "tokens": "1.2e" is not a number; fix it or remove the row'),
    ("nan", HEADER + "\ne,r,a,100,1000,train,loss,nan\n",
     'runs.csv, line 2, column "value": "nan" is not a finite number'),
    ("inf", HEADER + "\ne,r,a,100,1000,train,loss,inf\n",
     'runs.csv, line 2, column "value": "inf" is not a finite number'),
    ("N <= 0", HEADER + "\ne,r,a,0,1000,train,loss,3\ne,r,b,-5,1000,train,loss,3\n",
     'runs.csv, line 2, column "params": N = 0 is not positive (and 1 more row like it)'),
    ("tokens <= 0", HEADER + "\ne,r,a,10,0,train,loss,3\n",
     'runs.csv, line 2, column "tokens": D = 0 is not positive'),
    ("conflicting duplicate", HEADER + "\ne,r,a,10,5,train,loss,3\ne,r,a,10,5,train,loss,4\n",
     'runs.csv, column "value": lines 2 and 3 give run "a", metric "train", tokens 5 two '
     "different values (3 and 4)"),
    ("empty file", "", "runs.csv: file is empty"),
    ("header only", HEADER + "\n", "runs.csv: has a header but no rows"),
    ("not a table", "just some words\nand more words\n", "runs.csv, line 1: is not a CSV table"),
    ("empty value", HEADER + "\ne,r,a,10,5,train,loss,\n",
     'runs.csv, line 2, column "value": is empty'),
    ("bad kind", HEADER + "\ne,r,a,10,5,train,nats,3\n",
     'runs.csv, line 2, column "kind": "nats" is not a kind'),
    ("accuracy in percent", HEADER + "\ne,r,a,10,5,ds/x,accuracy,45\n",
     'runs.csv, line 2, column "value": accuracy 45 is outside [0, 1]'),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_file_line_and_column(tmp_path, case, text, message):
    with pytest.raises(InputError) as info:
        sl.read_observations(write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / message))
    assert "\n" not in str(info.value)


def test_binary_file_is_not_a_table(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="is not a"):
        sl.read_observations(path)


def test_jsonl_errors_name_the_line(tmp_path):
    path = write(tmp_path, '{"run": "a", "params": 1, "tokens": 2, "metric": "train", '
                 '"value": 3}\n\n[1, 2]\n', "runs.jsonl")
    with pytest.raises(InputError, match=r"runs.jsonl, line 3: is not a JSON object"):
        sl.read_observations(path)


def test_parquet_errors_name_the_row(tmp_path):
    frame = pd.DataFrame({"run": ["a", "b"], "params": [1, -1], "tokens": [2.0, 2.0],
                          "metric": ["train"] * 2, "value": [3.0, 3.0]})
    frame.to_parquet(tmp_path / "runs.parquet")
    with pytest.raises(InputError, match=r'runs.parquet, row 2, column "params": N = -1'):
        sl.read_observations(tmp_path / "runs.parquet")


def test_from_frame_validates_in_memory_tables():
    frame = pd.DataFrame({"run": ["a"], "params": [10], "tokens": [5.0], "metric": ["train"],
                          "value": [0.0]})
    with pytest.raises(InputError, match=r'<table>, row 1, column "value": loss 0.0 is not'):
        sl.from_frame(frame)
