"""A recipe's callable filter is code the file names: it runs only with --allow-code or when an
installed package registers it (issue 15: no code from data)."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.data import FilterChain, build
from scaling_ladder.data import filters as filters_module
from scaling_ladder.data.recipes import CallableFilter
from scaling_ladder.errors import InputError

runner = CliRunner()


def keep_even(text: str) -> bool:
    return int(text.split()[1]) % 2 == 0


def corpus(tmp_path, filter_path: str, marker=None):
    """One JSON Lines source; each document is a shell command touching ``marker`` when given."""
    with open(tmp_path / "docs.jsonl", "w") as fh:
        for i in range(30):
            text = f"touch {marker}" if marker else f"doc {i} with a few words"
            fh.write(json.dumps({"text": text}) + "\n")
    path = tmp_path / "recipes.toml"
    path.write_text(f"""[build]
val_fraction = 0.3
[sources.docs]
paths = ["docs.jsonl"]

[recipes.r]
weights = {{ docs = 1 }}
filters = [{{ kind = "callable", path = "{filter_path}" }}]
""")
    return path


def test_os_system_in_a_recipe_runs_nothing_without_allow_code(tmp_path):
    marker = tmp_path / "pwned"
    recipes = corpus(tmp_path, "os:system", marker)
    with pytest.raises(InputError) as exc:
        build(recipes, tmp_path / "out")
    text = str(exc.value)
    assert text.startswith(f'{recipes}, line 8: recipe "r" has a callable filter "os:system"')
    assert "--allow-code" in text and "scaling_ladder.filters" in text
    res = runner.invoke(app, ["data", "build", str(recipes), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"error: {recipes}, line 8: ") and "--allow-code" in res.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()  # nothing ran or was written


def test_allow_code_runs_it_and_says_so_on_one_line(tmp_path):
    recipes = corpus(tmp_path, "test_data_code:keep_even")
    res = runner.invoke(app, ["data", "build", str(recipes), "--out", str(tmp_path / "out"),
                              "--allow-code", "--json", "-"])
    assert res.exit_code == 0, res.output
    assert res.stderr == (f"running code named by {recipes}: test_data_code:keep_even "
                          "(--allow-code)\n")
    removed = json.loads(res.stdout)["recipes"]["r"]["sources"]["docs"]["removed_by_filters"]
    assert removed["callable(test_data_code:keep_even)"] > 0


def test_a_registered_filter_runs_without_allow_code(tmp_path, monkeypatch):
    ep = EntryPoint(name="even", value="test_data_code:keep_even", group="scaling_ladder.filters")
    monkeypatch.setattr(filters_module, "entry_points",
                        lambda group: [ep] if group == "scaling_ladder.filters" else [])
    recipes = corpus(tmp_path, "test_data_code:keep_even")
    res = runner.invoke(app, ["data", "build", str(recipes), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "test_data_code:keep_even (registered filter)" in res.stderr
    with pytest.raises(InputError, match='callable filter "os:system"'):
        FilterChain([CallableFilter(kind="callable", path="os:system")])
