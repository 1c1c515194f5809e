"""``ladder check``: a run against the band of its ladder's fit, on the OLMo learning curves
(with their real spikes) and on generated ladders for the batch and IsoFLOP signals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from conftest import make_ladder
from scaling_ladder.cli import app
from scaling_ladder.monitor.monitor import Band, check_run, follow, read_growing

RUN, METRIC = "OLMo-1B", "val/v3-small-c4_en-validation"
TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}


@pytest.fixture(scope="module")
def olmo(shared) -> pd.DataFrame:
    return sl.read_observations(shared / "olmo.csv").frame


@pytest.fixture(scope="module")
def curve(olmo) -> pd.DataFrame:
    """OLMo-1B's C4 validation loss: 735 checkpoints to 3.1T tokens."""
    return olmo[(olmo["run"] == RUN) & (olmo["metric"] == METRIC)].sort_values("tokens")


def _learning_curve_fit(rows: pd.DataFrame, start: float = 0.1, end: float = 1.0):
    """The band's law: L(D) = E + A/D^alpha fitted to a run's checkpoints between fractions
    ``start`` and ``end`` of its tokens (every 6th, for speed)."""
    top = rows["tokens"].max()
    sub = rows[(rows["tokens"] >= start * top) & (rows["tokens"] <= end * top)].iloc[::6]
    return sl.PowerLaw(variable="tokens").fit(sub)


@pytest.fixture(scope="module")
def fit(curve):
    """The ladder's law for this run: fitted to the clean curve after its first 10%."""
    return _learning_curve_fit(curve)


def _drifted(curve: pd.DataFrame, sigma: float, start: float = 0.6, to: float = 6.0):
    """A copy whose loss drifts up from ``start`` of its tokens, linearly in log tokens, to
    ``to`` sigma at the end: it is 3 sigma off the band from ``cross`` on."""
    d = curve.copy()
    t0, t1 = start * d["tokens"].max(), d["tokens"].max()
    ramp = np.clip(np.log(d["tokens"] / t0) / np.log(t1 / t0), 0, None)
    d["value"] = d["value"] * np.exp(to * sigma * ramp)
    cross = float(d["tokens"][to * ramp >= 3].min())
    return d, cross


def test_clean_olmo_run_is_on_band(curve, fit):
    res = check_run(curve, fit)
    assert res.verdict == "on band" and res.passed
    assert not [f for f in res.flags if f.severity == "fail"]
    assert not [f for f in res.flags if f.kind == "spike"]
    scored = res.checkpoints.dropna(subset=["z"])
    assert len(scored) > 600 and scored["z"].abs().max() < 3
    assert "warm-up" in res.notes[0]  # the first 10% is outside the band's domain


def test_run_drifting_3_sigma_off_the_band_is_flagged(curve, fit):
    sigma = Band.of(fit).sigma_residual
    drifted, cross = _drifted(curve, sigma)
    res = check_run(drifted, fit)
    assert res.verdict == "off band" and not res.passed
    off = [f for f in res.flags if f.kind == "off band" and f.severity == "fail"]
    assert len(off) == 1 and "to the last checkpoint" in off[0].message
    assert off[0].tokens >= cross  # no alarm before the drift reached 3 sigma
    assert res.checkpoints["z"].iloc[-5:].median() > 3


def test_injected_spike_is_flagged_and_recovers(curve, fit):
    spiked = curve.copy()
    i = len(spiked) // 2
    spiked.iloc[i:i + 2, spiked.columns.get_loc("value")] *= 1.10
    res = check_run(spiked, fit)
    spikes = [f for f in res.flags if f.kind == "spike"]
    assert len(spikes) == 1 and spikes[0].severity == "warn"
    assert spikes[0].tokens == spiked["tokens"].iloc[i]
    assert "+10.0%" in spikes[0].message and "recovered by" in spikes[0].message
    assert res.verdict == "on band"  # it recovered: the run is back on its band


def test_unrecovered_spike_at_the_last_checkpoint_fails(curve, fit):
    spiked = curve.copy()
    spiked.iloc[-1, spiked.columns.get_loc("value")] *= 1.10
    res = check_run(spiked, fit)
    assert res.verdict == "off band"
    assert [f.severity for f in res.flags if f.kind == "spike"] == ["fail"]


def test_real_spikes_of_olmo_twin_are_flagged(olmo):
    twin = olmo[(olmo["run"] == "OLMo-7B-Twin-2T") & (olmo["metric"] == "val/c4_en-validation")]
    res = check_run(twin, _learning_curve_fit(twin.sort_values("tokens")))
    at = [f.tokens for f in res.flags if f.kind == "spike"]
    # README: rises of up to 26% at single checkpoints, e.g. near 535B tokens, then recovers
    assert any(abs(t - 5.35e11) < 1e10 for t in at)
    assert all(f.severity == "warn" for f in res.flags if f.kind == "spike")
    assert res.verdict == "on band"


def test_band_from_early_checkpoints_passes_the_decaying_run(curve):
    early = _learning_curve_fit(curve, 0.1, 0.5)  # the run's own first half
    res = check_run(curve, early)
    below = [f for f in res.flags if f.kind == "below band"]
    assert res.verdict == "on band" and below and below[0].severity == "warn"
    assert check_run(curve, early, two_sided=True).verdict == "off band"


def _batch_ladder(worse: float) -> pd.DataFrame:
    """Two runs of one size: batch 0.5M and 4M tokens, the larger ``worse`` relatively."""
    a = make_ladder(TRUTH, sizes=(1e8,), ratios=(20,), noise=0.0, checkpoints=8)
    b = a.assign(run="big-batch", value=a["value"] * (1 + worse), batch_tokens=4.0 * 2 ** 20)
    return pd.concat([a.assign(batch_tokens=2.0 ** 19), b], ignore_index=True).assign(
        flops=lambda f: 6 * f["params"] * f["tokens"])


@pytest.mark.parametrize(("worse", "flagged"), [(0.03, True), (0.0, False)])
def test_larger_batch_worse_at_equal_flops_is_flagged(worse, flagged):
    frame = _batch_ladder(worse)
    fit = sl.ChinchillaLaw(fixed={"alpha": 0.33}).fit(make_ladder(TRUTH, seed=4))
    res = check_run(frame, fit, run="big-batch")
    batch = [f for f in res.flags if f.kind == "batch"]
    assert bool(batch) is flagged
    if flagged:
        assert "larger batch did worse at equal FLOPs" in batch[0].message
        assert "+3.0%" in batch[0].message and batch[0].severity == "warn"


def test_erratic_isoflop_valley_is_flagged():
    rows = []  # three budgets, five sizes each; the largest budget's valley sits at a smaller N
    for k, (c, best) in enumerate(((1e17, 8.0), (1e18, 8.5), (1e19, 7.7))):
        for logn in np.linspace(7.3, 9.0, 5):
            n = 10 ** logn
            rows.append({"experiment": "sim", "recipe": "default", "run": f"c{k}-{n:.3g}",
                         "params": int(n), "tokens": c / (6 * n), "metric": "val/x",
                         "value": 3.5 - 0.3 * k + 0.1 * (logn - best) ** 2, "final": True})
    ladder = pd.DataFrame(rows)
    fit = sl.ChinchillaLaw().fit(make_ladder(TRUTH))
    res = check_run(ladder, fit, run="c1-2e+07")
    iso = [f for f in res.flags if f.kind == "isoflop"]
    assert iso and all("erratic valley" in f.message for f in iso)
    assert any("C = 1e+19" in f.message and "smaller than" in f.message for f in iso)


def test_fit_by_recipe_uses_the_runs_group():
    a = make_ladder(TRUTH, seed=1, recipe="base")
    b = make_ladder({**TRUTH, "E": 1.8}, seed=2, recipe="other")
    fit = sl.ChinchillaLaw().fit(pd.concat([a, b]), by="recipe", shared=("alpha", "beta"))
    run = a[a["run"] == a["run"].iloc[-1]]
    assert check_run(run, fit).verdict == "on band"  # its own recipe's band
    assert check_run(run, fit, group="other").verdict == "off band"  # 1.9 against 1.8: worse
    other = b[b["run"] == b["run"].iloc[-1]]
    better = check_run(other, fit, group="base")  # better than the band: reported, passes
    assert better.verdict == "on band" and better.flags[0].kind == "below band"


def test_several_runs_or_metrics_need_a_choice(olmo, fit):
    with pytest.raises(sl.InputError, match="holds 3 runs"):
        check_run(olmo, fit)
    with pytest.raises(sl.InputError, match="metrics"):
        check_run(olmo[olmo["run"] == RUN], fit)
    with pytest.raises(ValueError, match="'window'"):
        check_run(olmo, fit, run=RUN, metric=METRIC, window=0)


def test_result_to_dict_is_json(curve, fit):
    d = json.loads(json.dumps(check_run(curve, fit).to_dict(), allow_nan=True))
    assert d["verdict"] == "on band" and d["passed"] is True
    assert set(d["checkpoints"]) == {"tokens", "flops", "value", "predicted", "lo", "hi", "z"}
    assert "1.4826 MAD" in d["band"]


# ------------------------------------------------------------------------------- follow


def test_read_growing_ignores_a_half_written_line(tmp_path, curve):
    path = tmp_path / "run.csv"
    text = curve.head(20).to_csv(index=False)
    path.write_text(text + "olmo,default,OLMo-1B,11767")
    assert len(read_growing(path)) == 20


def test_follow_stops_when_the_run_goes_off_band(tmp_path, curve, fit):
    sigma = Band.of(fit).sigma_residual
    drifted, _ = _drifted(curve, sigma)
    path = tmp_path / "run.csv"
    chunks = np.array_split(np.arange(len(drifted)), 8)
    path.write_text(drifted.iloc[chunks[0]].to_csv(index=False))
    written = [1]
    seen = []

    def grow(_seconds: float) -> None:  # the job appends a chunk between looks
        if written[0] < len(chunks):
            with path.open("a") as fh:
                fh.write(drifted.iloc[chunks[written[0]]].to_csv(index=False, header=False))
            written[0] += 1

    res = follow(path, fit, interval=1.0, idle=3.0, sleep=grow, on_check=seen.append)
    assert res.verdict == "off band" and seen[-1] is res
    assert all(r.passed for r in seen[:-1]) and len(seen) >= 6


def test_follow_returns_the_last_check_when_the_file_stops_growing(tmp_path, curve, fit):
    path = tmp_path / "run.csv"
    path.write_text(curve.to_csv(index=False))
    res = follow(path, fit, interval=1.0, idle=2.0, sleep=lambda s: None)
    assert res.verdict == "on band"


# ----------------------------------------------------------------------------------- CLI

runner = CliRunner()


@pytest.fixture
def files(tmp_path, curve, fit):
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(json.dumps(fit.to_dict()))
    clean = tmp_path / "clean.csv"
    curve.to_csv(clean, index=False)
    drifted = tmp_path / "drifted.csv"
    _drifted(curve, Band.of(fit).sigma_residual)[0].to_csv(drifted, index=False)
    return fit_path, clean, drifted


def test_cli_check_exits_0_on_band_and_1_off_band(files):
    fit_path, clean, drifted = files
    res = runner.invoke(app, ["check", str(clean), "--against", str(fit_path)])
    assert res.exit_code == 0, res.output
    assert "ON BAND" in res.stdout and "band:" in res.stdout
    res = runner.invoke(app, ["check", str(drifted), "--against", str(fit_path)])
    assert res.exit_code == 1 and "OFF BAND" in res.stdout and "fail · off band" in res.stdout


def test_cli_check_json_is_the_only_stdout(files):
    fit_path, _, drifted = files
    res = runner.invoke(app, ["check", str(drifted), "--against", str(fit_path), "--json", "-"])
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert payload["verdict"] == "off band" and payload["passed"] is False


def test_cli_check_bad_input_exits_2_with_one_line(files, tmp_path):
    fit_path, clean, _ = files
    res = runner.invoke(app, ["check", str(clean), "--against", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "file not found" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"law": "chinchilla"}')
    res = runner.invoke(app, ["check", str(clean), "--against", str(bad)])
    assert res.exit_code == 2 and "is not a fit written by ladder fit --json" in res.stderr
    res = runner.invoke(app, ["check", str(clean), "--against", str(fit_path), "--run", "x"])
    assert res.exit_code == 2 and 'no run "x"' in res.stderr


def test_cli_check_help_has_an_example():
    res = runner.invoke(app, ["check", "--help"])
    assert res.exit_code == 0 and "Example:" in res.stdout and "--against" in res.stdout


def test_cli_check_follow_stops_when_the_file_stops_growing(files):
    fit_path, clean, _ = files
    res = runner.invoke(app, ["check", str(clean), "--against", str(fit_path), "--follow",
                              "--interval", "0.01", "--idle", "0.03"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("ON BAND") == 1 and res.stdout.count("┏") == 1  # one table
