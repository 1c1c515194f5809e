"""The one atomic writer and the one JSON cleaner (scaling_ladder.files)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling_ladder.files import json_text, open_atomic, plain, write_atomic, write_json


def test_write_atomic_writes_text_and_bytes_and_makes_folders(tmp_path):
    write_atomic(tmp_path / "a" / "b.txt", "héllo\n")
    write_atomic(tmp_path / "c.bin", b"\x00\x01")
    write_atomic(tmp_path / "d.bin", np.arange(3, dtype="<u2").data)
    assert (tmp_path / "a" / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert np.fromfile(tmp_path / "d.bin", "<u2").tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c.bin", "d.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs.csv"
    write_atomic(path, "old\n")
    with pytest.raises(RuntimeError), open_atomic(path) as fh:
        fh.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_open_atomic_rejects_append():
    with pytest.raises(ValueError, match="'mode' argument of open_atomic"), \
            open_atomic(Path("x"), "a"):
        pass


def test_plain_gives_json_values():
    frame = pd.DataFrame({"n": [1, 2], "v": [0.5, np.nan]})
    got = plain({1: (np.float32(0.25), np.int64(3), np.bool_(True)), "inf": np.inf,
                 "nan": float("nan"), "na": pd.NA, "arr": np.array([1.0, np.nan]),
                 "frame": frame, "path": Path("a/b")})
    assert got == {"1": [0.25, 3, True], "inf": None, "nan": None, "na": None,
                   "arr": [1.0, None], "frame": [{"n": 1, "v": 0.5}, {"n": 2, "v": None}],
                   "path": "a/b"}
    assert type(got["1"][1]) is int and type(got["1"][2]) is bool


def test_write_json_is_strict_json(tmp_path):
    path = write_json(tmp_path / "r.json", {"x": math.inf, "y": np.float64(1.5)})
    text = path.read_text()
    assert text.endswith("\n") and "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": 1.5}
    assert json_text([1, 2], indent=None) == "[1, 2]"
