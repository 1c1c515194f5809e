"""--where: its own condition language, never Python (issue 15: no code from data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from scaling_ladder.cli import app
from scaling_ladder.errors import InputError
from scaling_ladder.observations.where import where_mask

runner = CliRunner()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    f = sl.datasets.load("chinchilla").frame.copy()
    f["val/c4"] = np.linspace(2.0, 4.0, len(f))
    f["recipe"] = np.where(np.arange(len(f)) % 3 == 0, "c4", "web")
    return f


@pytest.mark.parametrize("condition", [
    "besiroglu_outlier == False",
    "params > 1e8",
    "(params > 1e8) & (tokens < 1e10)",
    "params > 1e8 & tokens < 1e10",  # & binds like and, as in pandas
    "params > 1e8 and tokens < 1e10 or value > 3",
    "1e8 < params <= 1e9",
    "recipe in ['c4', 'x']",
    "recipe not in ['c4']",
    "recipe == ['c4']",
    "recipe != 'c4' and not besiroglu_outlier",
    "~(params > 1e8) | (value < 3)",
    "not (params > 1e8) or recipe == \"c4\"",
    "`val/c4` > 3 and value < `val/c4`",
    "tokens / params >= 20",
    "-value < -3",
    "params * 2 + 1 > tokens - 1e9",
    "seed == 0",
    "True",
])
def test_allowed_forms_agree_with_pandas_eval(frame, condition):
    got = where_mask(frame, condition)
    want = frame.eval(condition)
    want = (np.full(len(frame), bool(want)) if np.isscalar(want)
            else want.to_numpy(dtype=bool, na_value=False))
    assert got.dtype == bool and np.array_equal(got, want)


def test_select_keeps_the_rows_and_counts_the_rest():
    obs = sl.datasets.load("chinchilla")
    kept = obs.select(where="besiroglu_outlier == False")
    assert len(kept) == int((~obs.frame["besiroglu_outlier"]).sum())
    assert ("where besiroglu_outlier == False", len(obs) - len(kept)) in kept.set_aside


def _error(frame, condition) -> str:
    with pytest.raises(InputError) as exc:
        where_mask(frame, condition)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f'--where "{condition}": ')
    return text


@pytest.mark.parametrize(("condition", "problem", "column", "shown"), [
    ("params > 1e8 and foo(1)", "a call is not allowed", 18, "foo(1)"),
    ("params.max() > 1", "a call is not allowed", 1, "params.max()"),
    ("params.size > 1", "an attribute is not allowed", 1, "params.size"),
    ("params[0] > 1", "a subscript is not allowed", 1, "params[0]"),
    ("(lambda: 1)() == 1", "a call is not allowed", 1, "(lambda: 1)()"),
    ("value > 1 and (lambda: True)", "a lambda is not allowed", 16, "lambda: True"),
    ("params > @limit", "@ (a Python variable) is not allowed", 10, "@"),
    ("`val/c4` > 2 and parms > 1", '"parms" is not a column', 18, "parms"),
    ("params ** 2 > 1", "this operator is not allowed", 1, "params ** 2"),
    ("nonsense >", "cannot be evaluated: invalid syntax", 11, None),
    ("`val/c4 > 2", "backtick-quoted column name is not closed", 1, "`"),
    ("recipe > 5", "cannot be evaluated", 1, "recipe > 5"),
    ("params", "is not a true/false condition", 1, "params"),
])
def test_errors_quote_the_condition_and_point_at_the_offending_text(frame, condition, problem,
                                                                      column, shown):
    text = _error(frame, condition)
    assert problem in text
    if shown is None:
        assert f"at column {column} (the end)" in text
    else:
        assert f'at column {column} ("{shown}")' in text
        assert condition[column - 1:].startswith(shown.split()[0])


def test_unknown_columns_get_a_did_you_mean(frame):
    text = _error(frame, "parms > 1e8")
    assert 'did you mean "params"?' in text and "the columns are experiment," in text


def test_errors_list_the_allowed_forms(frame):
    assert "allowed: column names" in _error(frame, "params > 1e8 and foo(1)")


def test_the_pandas_eval_exploits_run_nothing(tmp_path, monkeypatch):
    """pandas' eval let --where run a shell command (``@pd...os.system``) or write a file
    (``@Path(...).touch()``); neither runs now, from the CLI or the library."""
    monkeypatch.chdir(tmp_path)
    shell = tmp_path / "pwned-by-shell"
    touched = tmp_path / "pwned-by-touch"
    exploits = [f"(params > 0) & (@pd.io.common.os.system('touch {shell}') == 0)",
                f"(params > 0) & (@Path('{touched}').touch() == None)",
                f"(params > 0) & (pd.io.common.os.system('touch {shell}') == 0)",
                f"Path('{touched}').touch() == None"]
    for condition in exploits:
        res = runner.invoke(app, ["fit", "--example", "chinchilla", "--where", condition,
                                  "--bootstrap", "0"])
        assert res.exit_code == 2, res.output
        assert res.stderr.count("\n") == 1 and "is not allowed" in res.stderr
        with pytest.raises(InputError, match="is not allowed"):
            sl.datasets.load("chinchilla").select(where=condition)
    assert not shell.exists() and not touched.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
