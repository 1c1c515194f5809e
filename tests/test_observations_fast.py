"""The fast read (pyarrow, numbers parsed while reading) against the text read it stands in for.

``read_observations`` reads a plain CSV or JSON Lines file with :func:`io.read_typed` and
validates the typed table; anything it is unsure of, and any table that fails a check, is
read again as text (:func:`io.read_raw`). These tests hold the two to the same answer: the
same frame (values, dtypes, column order) and the same rows set aside for every valid file,
and for a bad file the error of the text read, naming its line.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder import InputError
from scaling_ladder.observations.io import read_csv_text, read_raw, read_typed
from scaling_ladder.observations.table import validate

HEADER = "experiment,recipe,run,params,tokens,metric,kind,value"
ROWS = ["e,r,a,100,1000,val/x,loss,3.5", "e,r,a,100,2000,val/x,loss,3.25",
        "e,r,b,200,1000,val/x,loss,3.125", "e,r,b,200,2000,val/x,loss,3.0625"]


def both(path):
    """The validated table and rows set aside by the fast read and by the text read."""
    typed = read_typed(path)
    assert typed is not None, "the fast read gave up on a plain file"
    fast = validate(typed[0], path=str(path), lines=None, line_word=typed[1])
    raw, lines, word = read_raw(path)
    slow = validate(raw, path=str(path), lines=lines, line_word=word)
    return fast, slow


def same(path):
    (fast, fast_aside), (slow, slow_aside) = both(path)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast_aside == slow_aside
    pd.testing.assert_frame_equal(sl.read_observations(path).frame, slow)


CSV = {
    "plain": "\n".join([HEADER, *ROWS]) + "\n",
    "no kind, no experiment, ds/ task": "run,params,tokens,metric,value\n"
        "a,100,1000,train,3.0\na,100,2000,train,2.5\na,100,2000,ds/x,0.4\n",
    "spaces around cells and names": " run , params ,tokens,metric, value \n"
        " a ,  100 , 1e3 , train ,  3.0\na,100, 2000.0 ,train,2.5 \n",
    "quoted cells": 'run,params,tokens,metric,value\n"a ""b""",100,"1000",train,"3.0"\n'
        '"a, c",100,2000,train,2.5\n',
    "blank lines and CRLF": "run,params,tokens,metric,value\r\na,100,1000,train,3\r\n\r\n"
        "a,100,2000,train,2.5\r\n",
    "byte order mark": "\ufeffrun,params,tokens,metric,value\na,100,1000,train,3\n",
    "numbers as written": "run,params,tokens,metric,value,flops,seed,lr,batch_tokens\n"
        "a,1E+08,1e9,train,0.1,,0,3e-4,\n"
        "a,100000000.0,.2e10,train,+2.5,6e17,,,524288\n",
    "final as words": "run,params,tokens,metric,value,final\n"
        "a,100,1000,train,3,no\na,100,2000,train,2.5,YES\nb,100,2000,train,2.5,1.0\n",
    "kinds and perplexity": HEADER + "\ne,r,a,100,1000,val/x,,3\ne,r,a,100,1000,ds/y,,0.5\n"
        "e,r,a,100,2000,val/p,Perplexity,20\ne,r,a,100,3000,ds/z,accuracy,1\n",
    "units": HEADER + ",tokenizer,bytes_per_token,unit\n"
        "e,r,a,100,1000,val/x,loss,1.2,gpt2,4.1,bpb\ne,r,a,100,2000,val/x,loss,1.1, ,,\n",
    "training bytes per token": HEADER + ",train_bytes_per_token\n"
        "e,r,a,100,1000,val/x,loss,1.2,3.9\ne,r,a,100,2000,val/x,loss,1.1,\n",
    "extra columns": HEADER + ",flag,note,score,gap,empty,mixed\n"
        "e,r,a,100,1000,val/x,loss,3,True,x,1,,,1\n"
        "e,r,b,200,1000,val/x,loss,2.9,false,,2.5,7,,two\n",
    "identical duplicates": "\n".join([HEADER, *ROWS, ROWS[1], ROWS[2]]) + "\n",
    "unicode names": "run,params,tokens,metric,value\nläufer-β,100,1000,val/ü,3\n",
}


@pytest.mark.parametrize("text", CSV.values(), ids=CSV.keys())
def test_fast_csv_read_equals_text_read(tmp_path, text):
    path = tmp_path / "runs.csv"
    path.write_text(text, encoding="utf-8", newline="")
    same(path)


@pytest.mark.parametrize("text", CSV.values(), ids=CSV.keys())
def test_csv_text_read_by_pyarrow_equals_pandas(tmp_path, text):
    path = tmp_path / "runs.csv"
    path.write_text(text, encoding="utf-8", newline="")
    want = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    pd.testing.assert_frame_equal(read_csv_text(path), want)


@pytest.mark.parametrize("text", [
    'run,params\na,"1\n',                   # a quote left open at the end
    'run,params\n"a,1\nb,2\n',              # ... or before other lines
    'run,params\n"a\nb",1\n',              # a line break inside a quoted cell
    'run,params,\na,1,\n',                   # a nameless column ("Unnamed: 2" in pandas)
    'run,params,run\na,1,b\n',               # a repeated name ("run.1" in pandas)
    'run,params\na,1,2\n',                   # a long row
])
def test_csv_text_read_by_pyarrow_gives_up_where_pandas_would_differ(tmp_path, text):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    assert read_csv_text(path) is None and read_typed(path) is None


def records():
    return [{"run": "a", "params": 100, "tokens": 1000, "metric": "train", "value": 3,
             "final": False},
            {"tokens": 2000.0, "run": "a", "params": 100, "metric": "train", "value": 2.5,
             "final": True, "note": "x", "score": 1.5},
            {"run": "b", "params": 1e2, "tokens": 2000, "metric": "ds/x", "value": 0.5,
             "final": False, "seed": 3, "score": 2, "note": None}]


JSONL = {
    "records": "\n".join(json.dumps(r) for r in records()) + "\n",
    "blank lines": "\n\n".join(json.dumps(r) for r in records()),
}


@pytest.mark.parametrize("text", JSONL.values(), ids=JSONL.keys())
def test_fast_jsonl_read_equals_text_read(tmp_path, text):
    path = tmp_path / "runs.jsonl"
    path.write_text(text)
    same(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.parametrize("name", ["chinchilla", "overtrain", "olmo"])
def test_fast_read_of_written_datasets_equals_text_read(tmp_path, name, suffix):
    path = tmp_path / f"{name}{suffix}"
    sl.datasets.load(name).write(path)
    same(path)


def test_fast_read_of_shared_datasets_equals_text_read(shared):
    for path in sorted(shared.glob("*.csv")):
        same(path)


@pytest.mark.parametrize("text", [
    "run,params,tokens,metric,value\na,100,1000,train,nan\n",       # nan written out
    "run,params,tokens,metric,value\na,100,1000,train,1e400\n",     # overflows to inf
    "run,params,tokens,metric,value\na,100, ,train,3\n",            # blank number cell
    "run,params,tokens,metric,value\na,100,1000,train\n",           # a short row
    "run,params,tokens,metric,value,\na,100,1000,train,3,\n",       # a nameless column
    "run,params,tokens,metric,value,value\na,100,1000,train,3,4\n",  # a name twice
    "run,params,tokens,metric,value\n",                              # no rows
])
def test_fast_read_gives_up_on_what_only_the_text_read_can_word(tmp_path, text):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    assert read_typed(path) is None


@pytest.mark.parametrize("text", [
    '{"run": "a", "params": 100, "tokens": 1000, "metric": "train", "value": NaN}\n',
    '{"run": 5, "params": 100, "tokens": 1000, "metric": "train", "value": 3}\n',
    '{"run": "a", "params": "100", "tokens": 1000, "metric": "train", "value": 3}\n',
    '{"run": "a", "params": 100, "tokens": 1000, "metric": "train", "value": 3, "x": [1]}\n',
    '{"run": "a", "run": "b", "params": 100, "tokens": 1000, "metric": "train", "value": 3}\n',
    '{"run": "a", "params": 100, "tokens": 1000, "metric": "train", "value": 3}\n[1, 2]\n',
])
def test_fast_jsonl_read_gives_up_on_what_only_the_text_read_can_word(tmp_path, text):
    path = tmp_path / "runs.jsonl"
    path.write_text(text)
    assert read_typed(path) is None


BAD = [  # read fast, then failing a check: the error is the text read's, with the line
    ("N <= 0", HEADER + "\ne,r,a,100,1000,train,loss,3\ne,r,b,-5e0,1000,train,loss,3\n",
     'runs.csv, line 3, column "params": N = -5e0 is not positive'),
    ("not whole", HEADER + "\n\ne,r,a,100.5,1000,train,loss,3\n",
     'runs.csv, line 2, column "params": "100.5" is not a whole number'),
    ("accuracy in percent", HEADER + "\ne,r,a,10,5,ds/x,accuracy,45.0\n",
     'runs.csv, line 2, column "value": accuracy 45.0 is outside [0, 1]'),
    ("conflicting duplicate", HEADER + "\ne,r,a,10,5,train,loss,3\ne,r,a,10,5e0,train,loss,4\n",
     'runs.csv, column "value": lines 2 and 3 give run "a", metric "train", tokens 5 two '
     "different values (3 and 4)"),
    ("empty run", HEADER + "\ne,r, ,10,5,train,loss,3\n",
     'runs.csv, line 2, column "run": is empty'),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_errors_of_a_fast_read_table_quote_the_text_and_name_the_line(tmp_path, case, text,
                                                                       message):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    assert read_typed(path) is not None
    with pytest.raises(InputError) as info:
        sl.read_observations(path)
    assert str(info.value).startswith(str(tmp_path / message))


def test_number_columns_of_parquet_are_checked_without_text(tmp_path):
    frame = pd.DataFrame({"run": ["a", "b"], "params": [100, 200], "tokens": [1e3, np.nan],
                          "metric": ["train"] * 2, "value": [3.0, 2.0]})
    frame.to_parquet(tmp_path / "runs.parquet")
    with pytest.raises(InputError, match=r'runs.parquet, row 2, column "tokens": is empty'):
        sl.read_observations(tmp_path / "runs.parquet")
    frame["tokens"] = [1e3, np.inf]
    frame.to_parquet(tmp_path / "runs.parquet")
    with pytest.raises(InputError, match=r'row 2, column "tokens": "inf" is not a finite'):
        sl.read_observations(tmp_path / "runs.parquet")


# ------------------------------------------------------------- W&B JSON Lines histories

def _wandb_both(path, monkeypatch, **options):
    from scaling_ladder.observations.importers import wandb

    assert wandb._typed_jsonl(path) is not None, "the fast read gave up on a plain history"
    fast = wandb.read_wandb(path, **options)
    with monkeypatch.context() as m:
        m.setattr(wandb, "_typed_jsonl", lambda path: None)
        slow = wandb.read_wandb(path, **options)
    return fast, slow


HISTORIES = {
    "pandas": "\n".join(json.dumps(r) for r in [
        {"_step": 100, "_runtime": 5.5, "tokens_seen": 1e6, "train/loss": 3.5,
         "eval/c4_loss": None},
        {"_step": 200, "_runtime": 11.0, "tokens_seen": 2e6, "train/loss": None,
         "eval/c4_loss": 3.4},
        {"_step": 300, "_runtime": 16.5, "tokens_seen": 3e6, "train/loss": 3.0,
         "eval/c4_loss": 3.1}]) + "\n",
    "NaN logged, nested and true/false values, keys missing": "\n".join([
        '{"_step": 1, "tokens_seen": 10, "train/loss": NaN, "media": {"_type": "image"}}',
        '{"_step": 2, "tokens_seen": 20, "train/loss": 3.25, "ok": true}',
        '{"_step": 3, "tokens_seen": 30, "train/loss": Infinity, "eval/c4_loss": 3.0}',
        '{"_step": 4, "tokens_seen": 40, "train/loss": 3.0, "note": "warm"}']) + "\n",
}


@pytest.mark.parametrize("text", HISTORIES.values(), ids=HISTORIES.keys())
def test_fast_wandb_jsonl_read_equals_text_read(tmp_path, monkeypatch, text):
    path = tmp_path / "run-a.jsonl"
    path.write_text(text)
    fast, slow = _wandb_both(path, monkeypatch, params=1e8,
                             mapping="tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss")
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.set_aside == slow.set_aside and fast.sources == slow.sources


@pytest.mark.parametrize(("text", "message"), [
    ('{"_step": 1, "loss": 3.0}\n\n{"loss": 2.5}\n',
     'run-a.jsonl, line 3, column "_step": is empty where "loss" has a value'),
    ('{"_step": 1, "loss": 3.0}\n{"_step": Infinity, "loss": 2.5}\n',
     'run-a.jsonl, line 2, column "_step": "inf" is not a finite number'),
    ('{"_step": 1, "loss": 3.0}\n\n{"_step": 2, "loss": -2.5}\n',
     'run-a.jsonl, line 3, column "value": loss -2.5 is not positive'),
])
def test_errors_of_a_fast_read_history_name_the_line(tmp_path, text, message):
    from scaling_ladder.observations.importers import read_wandb

    path = tmp_path / "run-a.jsonl"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_wandb(path, mapping="train=loss", params=1e8, tokens_per_step=10)
    assert str(info.value).startswith(str(tmp_path / message))
