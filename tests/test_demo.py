"""End to end: the README's first command, ``ladder demo``, on a fresh folder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import scaling_ladder as sl  # noqa: E402
from scaling_ladder.cli import app  # noqa: E402


@pytest.mark.slow
def test_demo_trains_compares_and_reports(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["decision"] in ("go", "no-go", "inconclusive")
    assert set(out["recipes"]) == {"code-heavy", "prose-heavy"}
    html = (tmp_path / "report.html").read_text()
    assert "Decision" in html and "<script>alert" not in html
    obs = sl.read_observations(out["observations"])
    assert obs.set_aside == () and obs.n_runs == 12
    final = obs.select(metric="val/mean", checkpoints="final").frame
    for _, runs in final.groupby("recipe"):  # bigger is better at equal tokens
        assert runs.sort_values("params")["value"].is_monotonic_decreasing
    # a second run resumes: nothing is trained again
    again = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json", "-"])
    assert again.exit_code == 0 and json.loads(again.stdout)["recipes"] == out["recipes"]
