"""Units of a loss in the observations table: tokenizer, bytes_per_token, unit (issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder.data import bits_per_byte as data_bits_per_byte
from scaling_ladder.errors import InputError
from scaling_ladder.units import bits_per_byte


def _rows(**extra) -> pd.DataFrame:
    base = {"run": ["a", "b"], "params": [10**6, 10**6], "tokens": [1e8, 1e8],
            "metric": ["val/x", "val/x"], "value": [3.0, 1.0]}
    return pd.DataFrame({**base, **extra})


def _write(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_conversion_is_the_definition_and_lives_in_one_place():
    # 2.1 nats/token at 4 bytes/token = 2.1 / ln 2 / 4 bits per byte
    assert bits_per_byte(2.1, 4.0) == pytest.approx(2.1 / math.log(2) / 4)
    assert bits_per_byte(math.log(2), 1.0) == pytest.approx(1.0)
    assert data_bits_per_byte is bits_per_byte  # the data package re-exports it


def test_tables_without_the_new_columns_are_unchanged():
    obs = sl.from_frame(_rows())
    assert not {"tokenizer", "bytes_per_token", "unit"} & set(obs.frame.columns)


def test_the_new_columns_are_typed_and_units_named():
    obs = sl.from_frame(_rows(tokenizer=["bpe-4096", " byte-256 "], bytes_per_token=[4.0, ""],
                              unit=["", "BPB"]))
    f = obs.frame
    assert list(f["tokenizer"]) == ["bpe-4096", "byte-256"]
    assert f["bytes_per_token"].iloc[0] == 4.0 and np.isnan(f["bytes_per_token"].iloc[1])
    assert list(f["unit"]) == ["nats/token", "bits/byte"]


@pytest.mark.parametrize("extra, message", [
    ({"bytes_per_token": [4.0, 0]}, 'line 3, column "bytes_per_token": 0.0 bytes per token is '
                                    "not positive"),
    ({"bytes_per_token": [4.0, "four"]}, 'line 3, column "bytes_per_token": "four" is not'),
    ({"unit": ["bpb", "bits/word"]}, 'line 3, column "unit": "bits/word" is not a unit'),
    ({"unit": ["bpb", "bpb"], "kind": ["loss", "accuracy"], "value": [1.0, 0.5]},
     'line 3, column "unit": unit "bpb" on a row that is not a loss'),
    ({"unit": ["", "bpb"], "kind": ["loss", "perplexity"], "value": [1.0, 12.0]},
     'line 3, column "unit": unit "bpb" on a perplexity row'),
])
def test_bad_units_name_file_line_and_column(tmp_path, extra, message):
    path = _write(tmp_path, _rows(**extra))
    with pytest.raises(InputError) as err:
        sl.read_observations(path)
    assert str(err.value).startswith(f"{path}, {message}")
    assert "\n" not in str(err.value)
