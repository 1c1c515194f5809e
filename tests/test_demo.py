"""End to end: the README's first command, ``ladder demo``, on a fresh folder."""

from __future__ import annotations

import json

import pytest
from scipy.stats import spearmanr

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import scaling_ladder as sl  # noqa: E402
from scaling_ladder.cli import app  # noqa: E402
from test_consistency import check_one_number_per_quantity  # noqa: E402


@pytest.mark.slow
@pytest.mark.filterwarnings("error::RuntimeWarning")  # fits and comparisons warn of nothing
def test_demo_trains_compares_and_reports(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["decision"] in ("go", "no-go", "inconclusive")
    assert set(out["recipes"]) == {"code-heavy", "prose-heavy"}
    html = (tmp_path / "report.html").read_text()
    assert "Decision" in html and "<script>alert" not in html
    # one number per quantity: the report's sections print the comparison's numbers
    cmp = json.loads((tmp_path / "comparison.json").read_text())
    report = json.loads((tmp_path / "report.json").read_text())
    assert cmp["decision"] == out["decision"]
    assert check_one_number_per_quantity(report, cmp) >= 10
    obs = sl.read_observations(out["observations"])
    assert obs.set_aside == () and obs.n_runs == 45  # 15 runs, 2 cooldown branches each
    final = obs.select(metric="val/mean", checkpoints="final").frame
    full = final[final["tokens"] == final["tokens"].max()]
    for _, runs in full.groupby("recipe"):  # bigger is better at the full token budget
        loss = runs.sort_values("params")["value"].to_numpy()
        assert loss[-1] < loss[0] - 0.3
        assert spearmanr(runs["params"], runs["value"]).statistic < -0.89  # at most one swap
    for recipe in ("balanced", "code-heavy", "prose-heavy"):  # the demo's law fits cleanly
        fit = sl.KaplanLaw().fit(obs.select(recipe=recipe, metric="val/mean", checkpoints="auto"))
        assert fit.n_points == 15 and not fit.notes, (recipe, fit.notes)
    # a second run resumes: nothing is trained, compared or reported again
    written = (tmp_path / "comparison.json").stat().st_mtime_ns
    again = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json", "-"])
    assert again.exit_code == 0 and json.loads(again.stdout)["recipes"] == out["recipes"]
    assert (tmp_path / "comparison.json").stat().st_mtime_ns == written
