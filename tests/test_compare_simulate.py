"""Simulated ladders with a known answer: the rule's calibration and false-go rate."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import scaling_ladder as sl
from scaling_ladder.evaluate.simulate import TRUTH, design_with, reliability_table


def test_simulated_ladder_has_the_requested_true_gain_at_the_target():
    design = sl.LadderDesign(seeds=2, seed_noise=0.0)
    frame = sl.simulate_ladder(design, gain=0.02, seed=1)
    assert set(frame["recipe"]) == {"baseline", "recipe"}
    assert len(frame) == 2 * 5 * 3 * 2 and frame["run"].is_unique
    law, m = sl.ChinchillaLaw(), design.data_multiplier(0.02)
    better = {**TRUTH, "B": TRUTH["B"] * m ** -TRUTH["beta"]}
    gain = (law(TRUTH, params=4e9, tokens=8e10) - law(better, params=4e9, tokens=8e10))
    assert gain == pytest.approx(0.02, rel=1e-9)
    noisy = sl.simulate_ladder(sl.LadderDesign(seed_noise=0.01), gain=0.0, seed=1)
    clean = sl.simulate_ladder(sl.LadderDesign(seed_noise=0.0), gain=0.0, seed=1)
    ratio = np.log(noisy["value"] / clean["value"])
    assert 0.005 < ratio.std() < 0.02
    with pytest.raises(ValueError, match="exceeds the whole data term"):
        design.data_multiplier(5.0)


def test_design_variants_and_validation():
    d = design_with(sl.LadderDesign(), seeds=3, n_sizes=3)
    assert d.seeds == 3 and d.sizes == pytest.approx((2e7, np.sqrt(2e7 * 4e8), 4e8))
    assert d.label == "3 sizes x 3 ratios x 3 seed(s)"
    with pytest.raises(ValueError, match="'seeds' of a ladder design must be an int >= 1"):
        sl.LadderDesign(seeds=0)
    with pytest.raises(ValueError, match="'n_ladders' argument of simulate"):
        sl.simulate(n_ladders=0)


def test_brier_and_reliability_table_on_known_forecasts():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.55])
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    t = reliability_table(p, y, bins=10)
    assert list(t["n"]) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert t.loc[9, "observed"] == 1.0 and t.loc[0, "observed"] == 0.0
    assert np.isnan(t.loc[3, "mean_p"])


@pytest.mark.slow
def test_simulation_is_calibrated_and_rarely_says_go_without_an_effect():
    # 24 ladders (10 without an effect) of 5 sizes x 3 ratios, one seed, noise 0.3% of the
    # loss: P(beats) must do much better than a coin and no zero-effect ladder may be a go.
    sim = sl.simulate(n_ladders=24, null_share=0.4, effect_sd=0.03, bootstrap=30, seed=3,
                      design=sl.LadderDesign(seed_noise=0.003))
    assert len(sim.records) == 24
    assert sim.brier < 0.1, sim.summary()
    rel = sim.reliability.dropna()
    ece = (np.abs(rel["mean_p"] - rel["observed"]) * rel["n"]).sum() / rel["n"].sum()
    assert sim.calibration_error == pytest.approx(ece) and ece < 0.2
    assert sim.false_go_rate <= sim.nominal_false_go
    assert sim.decision_accuracy >= 0.9 and sim.ci_coverage >= 0.8
    assert json.dumps(sim.to_dict(), allow_nan=False)
    assert "[[Calibration]] Brier score" in sim.summary()


def test_power_table_counts_decisions_per_gain_and_design():
    sim = sl.simulate(n_ladders=1, gains=(0.05,), n_power=2, bootstrap=10, seed=0,
                      designs=[sl.LadderDesign(seeds=1)])
    p = sim.power
    assert list(p.columns) == ["design", "true_gain", "n", "p_go", "p_no_go", "p_inconclusive"]
    assert len(p) == 1 and p["n"].iloc[0] == 2
    assert p[["p_go", "p_no_go", "p_inconclusive"]].sum(axis=1).iloc[0] == pytest.approx(1.0)


TRAP = sl.LadderDesign(sizes=(2e7, 5e7, 1e8, 2.5e8, 6e8), seeds=3, target_params=7e9,
                       target_tokens=1.4e11)


def test_trap_ladder_crosses_between_the_proxies_and_the_target():
    from scaling_ladder.evaluate.simulate import trap_ladder

    frame, gain = trap_ladder(replace(TRAP, seed_noise=0.0), crossing=1e9, delta_e=0.05)
    means = frame.groupby(["params", "recipe"])["value"].mean().unstack()
    proxy_gain = means["baseline"] - means["recipe"]
    assert (proxy_gain > 0).all() and proxy_gain.is_monotonic_decreasing
    assert gain == pytest.approx(-0.05 + 0.05 * (1e9 / 7e9) ** TRUTH["alpha"], rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_trap_keeps_the_reversal_probable_and_is_no_go(seed):
    """The recipe wins on every proxy, by less and less; it loses at the target. The variants
    of the joint fit that allow a reversal keep their weight, so P(beats) stays <= 1/2."""
    from scaling_ladder.evaluate.simulate import trap_ladder

    frame, gain = trap_ladder(TRAP, crossing=1e9, seed=seed)
    assert gain < 0
    res = sl.compare(sl.from_frame(frame), baseline="baseline", target_params=7e9,
                     target_tokens=1.4e11, seed=seed,
                     options=sl.CompareOptions(bootstrap=60, slice_bootstrap=0,
                                               gate_bootstrap=0))
    s = res.recipe_summary("recipe")
    assert s["p_beats_baseline"] <= 0.5
    assert s["decision"] != "go"
    assert sum(res.joint.weights.values()) == pytest.approx(1.0)


def test_real_gain_is_go_and_noise_is_not():
    design = sl.LadderDesign(seeds=3)
    opts = sl.CompareOptions(bootstrap=60, slice_bootstrap=0, gate_bootstrap=0)
    kw = dict(baseline="baseline", target_params=design.target_params,
              target_tokens=design.target_tokens, options=opts)
    real = sl.compare(sl.from_frame(sl.simulate_ladder(design, gain=0.05, seed=3)), **kw)
    assert real.recipe_summary("recipe")["decision"] == "go"
    noise = sl.compare(sl.from_frame(sl.simulate_ladder(design, gain=0.0, seed=3)), **kw)
    assert noise.recipe_summary("recipe")["decision"] != "go"
