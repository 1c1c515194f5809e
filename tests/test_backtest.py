"""The ranking baselines (compare/baselines.py) and the backtest that scores them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder.compare import baselines as bl
from scaling_ladder.compare.ranking import decision_accuracy
from scaling_ladder.errors import InputError


def crossing_table() -> pd.DataFrame:
    """Two recipes that cross between the largest proxy (1e7) and the target (1e8).

    At 20 tokens/param: a is better at 1e6 and 1e7, but b improves faster per decade of N
    (a: 3.0 -> 2.8, b: 3.2 -> 2.82), so lines in log N give a = 2.6, b = 2.44 at 1e8.
    The over-trained 1e7 runs (80 tokens/param, more compute) favour b: a ratio-matched naive
    ranking must not use them.
    """
    rows = [("a", 1e6, 2e7, 3.0), ("b", 1e6, 2e7, 3.2),
            ("a", 1e7, 2e8, 2.8), ("b", 1e7, 2e8, 2.82),
            ("a", 1e7, 8e8, 2.7), ("b", 1e7, 8e8, 2.65)]
    return pd.DataFrame(rows, columns=["recipe", "params", "tokens", "value"])


def test_naive_ranks_at_the_largest_proxy_at_the_targets_ratio_and_gets_the_crossing_wrong():
    t = crossing_table()
    assert bl.naive(t, 1e8, 2e9) == {"a": 2.8, "b": 2.82}
    truth = {"a": 2.55, "b": 2.45}
    assert decision_accuracy(bl.naive(t, 1e8, 2e9), truth) == 0.0
    # no proxy trained at 5 tokens/param: the largest-compute scale of the largest size
    assert bl.naive(t, 1e8, 5e8) == {"a": 2.7, "b": 2.65}
    assert bl.ranking_scales(t, 1e8, 2e9, k=2) == [(1e7, 2e8), (1e6, 2e7)]
    assert bl.naive(t.iloc[:0], 1e8, 2e9) == {}


def test_log_n_trend_extrapolates_each_recipes_line_and_gets_the_crossing_right():
    t = crossing_table()
    pred = bl.log_n_trend(t, 1e8, 2e9)
    assert pred["a"] == pytest.approx(2.6) and pred["b"] == pytest.approx(2.44)
    assert decision_accuracy(pred, {"a": 2.55, "b": 2.45}) == 1.0
    # the points are the ratio-matched ones, not the over-trained runs
    pts = bl.trend_points(t, 20.0)
    assert sorted(pts["tokens"]) == [2e7, 2e7, 2e8, 2e8]
    # a recipe with one size cannot have a line
    one = pd.concat([t, pd.DataFrame([("c", 1e7, 2e8, 2.9)], columns=t.columns)])
    assert math.isnan(bl.log_n_trend(one, 1e8, 2e9)["c"])


def test_mean_rank_averages_the_ranks_at_the_two_largest_scales():
    rows = [("a", 1e6, 2e7, 3.0), ("b", 1e6, 2e7, 3.1), ("c", 1e6, 2e7, 3.2),
            ("a", 1e7, 2e8, 2.9), ("b", 1e7, 2e8, 2.7), ("c", 1e7, 2e8, 2.8),
            ("a", 1e5, 2e6, 9.0), ("b", 1e5, 2e6, 1.0), ("c", 1e5, 2e6, 5.0)]
    t = pd.DataFrame(rows, columns=["recipe", "params", "tokens", "value"])
    # ranks (1 = lowest value): at 1e7 a3 b1 c2, at 1e6 a1 b2 c3; 1e5 is not used
    assert bl.mean_rank(t, 1e8, 2e9) == {"a": 2.0, "b": 1.5, "c": 2.5}
    assert bl.mean_rank(t, 1e8, 2e9, k=1) == {"a": 3.0, "b": 1.0, "c": 2.0}


def test_blend_shrinks_the_fitted_delta_toward_the_observed_one():
    fit = {"base": 2.0, "x": 1.9, "y": 2.05}        # fitted: x better by 0.1, y worse by 0.05
    obs = {"base": 3.0, "x": 3.02, "y": 2.96}       # observed: x worse by 0.02, y better by 0.04
    half = bl.blend(fit, obs, 0.5, baseline="base")
    assert half == pytest.approx({"base": 2.0, "x": 2.0 - 0.04, "y": 2.0 + 0.005})
    assert bl.blend(fit, obs, 1.0, baseline="base") == pytest.approx(fit)
    zero = bl.blend(fit, obs, 0.0, baseline="base")
    assert zero == pytest.approx({r: v - 1.0 for r, v in obs.items()})
    # the order does not depend on the baseline
    other = bl.blend(fit, obs, 0.25, baseline="y")
    ref = bl.blend(fit, obs, 0.25, baseline="base")
    assert sorted(other, key=other.get) == sorted(ref, key=ref.get)
    assert bl.blend(fit, {"x": 1.0, "base": np.nan}, 0.5) == {"x": 1.9}
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        bl.blend(fit, obs, 1.5)


def test_scale_table_averages_seeds_per_recipe_and_scale():
    finals = pd.DataFrame({
        "metric": ["m"] * 4 + ["other"], "recipe": ["a", "a", "b", "b", "a"],
        "params": [1e6, 1.01e6, 1e6, 1e6, 1e6], "tokens": [2e7] * 5,
        "scale_params": [1e6] * 5, "scale_tokens": [2e7] * 5,
        "value": [3.0, 3.2, 2.9, 2.9, 9.0]})
    t = bl.scale_table(finals, "m")
    assert t[["recipe", "params", "tokens"]].values.tolist() == [["a", 1e6, 2e7], ["b", 1e6, 2e7]]
    assert t["value"].tolist() == pytest.approx([3.1, 2.9])
    assert t["n_runs"].tolist() == [2, 2]


# ---------------------------------------------------------------- the backtest on overtrain


@pytest.fixture(scope="module")
def overtrain_two_sizes():
    obs = sl.datasets.load("overtrain")
    target = (1439795200.0, 28795904000.0)
    bt = sl.backtest(obs, baseline="c4", proxy_max_params=5e8, metrics=["val/c4"],
                     targets=[target], proxy_sizes=2, n_starts=1)
    return obs.frame, target, bt


def test_backtest_naive_and_mean_rank_match_a_hand_computation(overtrain_two_sizes):
    frame, (n, d), bt = overtrain_two_sizes
    c4 = frame[(frame["metric"] == "val/c4") & frame["final"]]
    ratio = (c4["tokens"] / c4["params"]).round()

    def at(size):
        rows = c4[np.isclose(c4["params"], size, rtol=0.01) & (ratio == 20)]
        return dict(zip(rows["recipe"], rows["value"], strict=True))

    observed, p411, p154 = at(n), at(4.116e8), at(1.537e8)
    pairs = [("c4", "redpajama"), ("c4", "refinedweb"), ("redpajama", "refinedweb")]
    by_hand = np.mean([np.sign(p411[a] - p411[b]) == np.sign(observed[a] - observed[b])
                       for a, b in pairs])
    row = bt.table.iloc[0]
    assert bt.proxy_sizes == pytest.approx((1.537e8, 4.116e8), rel=0.01)
    assert row["naive"] == pytest.approx(by_hand)
    assert row["naive_scale"] == "412M @ 20 tokens/param"
    assert row["proxy 412M"] == row["naive"] and "proxy 78.9M" not in bt.table
    ranks = {r: np.mean([sorted(p, key=p.get).index(r) + 1 for p in (p411, p154)])
             for r in observed}
    assert row["mean_rank"] == pytest.approx(decision_accuracy(ranks, observed))
    # compute: the three 412M @ 20 tokens/param runs over three 1.44B target runs
    comp = bt.compute.set_index("method")["compute_fraction"]
    assert comp["naive"] == pytest.approx((4.116e8 * 20 * 4.116e8) / (n * d), rel=0.01)
    assert comp["tool"] > comp["mean_rank"] > comp["naive"]
    assert set(bt.methods) >= {"tool", "naive", "mean_rank", "log_n_trend", "blend 0.25",
                               "blend 0.5", "blend 0.75", "single@tool compute"}


def test_backtest_blend_weights_span_naive_and_tool(overtrain_two_sizes):
    _, _, bt = overtrain_two_sizes
    row = bt.table.iloc[0]
    for w in (0.25, 0.5, 0.75):
        assert 0.0 <= row[f"blend {w:g}"] <= 1.0
    orders = bt.orders.iloc[0]
    assert orders["observed"].count(" > ") == 2
    assert set(orders["tool"].split(" > ")) == {"c4", "redpajama", "refinedweb"}
    mean, comp = bt.mean(), bt.mean_compute()
    assert set(mean) == set(bt.methods) and set(comp) == set(bt.methods)
    d = bt.to_dict()
    assert d["proxy_sizes"] == list(bt.proxy_sizes) and "mean_compute" in d


def test_backtest_proxy_sizes_are_checked():
    obs = sl.datasets.load("overtrain")
    with pytest.raises(ValueError, match="5 largest"):
        sl.backtest(obs, baseline="c4", proxy_max_params=5e8, proxy_sizes=5,
                    metrics=["val/c4"])
    with pytest.raises(InputError, match="no proxy size"):
        sl.backtest(obs, baseline="c4", proxy_max_params=5e8, proxy_sizes=[3e8],
                    metrics=["val/c4"])
