"""Recipe comparison: decision accuracy, per-scale deltas, the joint prediction, go / no-go."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import scaling_ladder as sl
from scaling_ladder import CompareOptions, Comparison, InputError, Rule
from scaling_ladder.compare.scales import final_values, per_scale_table, survival

TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}
SIZES = (2e7, 5e7, 1e8, 2e8, 4e8)
FAST = CompareOptions(bootstrap=40, slice_bootstrap=10, gate_bootstrap=0)
TARGET = {"target_params": 4e9, "target_tokens": 8e10}


def data_effect(m: float) -> dict[str, float]:
    """A recipe whose tokens are worth ``m`` baseline tokens: B -> B m^-beta."""
    return {"B": TRUTH["B"] * m ** -TRUTH["beta"]}


def recipe_ladder(effects: dict[str, dict], *, seeds: int = 1, sizes=SIZES, ratios=(10, 20, 40),
                  noise: float = 0.003, seed: int = 0, metric: str = "val/x",
                  checkpoints: int = 1) -> pd.DataFrame:
    """Runs of several recipes, each a Chinchilla law (TRUTH with overrides), seed noise on
    log-loss; ``checkpoints`` > 1 adds a learning curve with small checkpoint jitter."""
    rng = np.random.default_rng(seed)
    law = sl.ChinchillaLaw()
    rows = []
    for recipe, over in effects.items():
        p = {**TRUTH, **over}
        for n in sizes:
            for r in ratios:
                for s in range(seeds):
                    offset = rng.normal(0, noise)
                    tokens = (np.geomspace(r * n / 4, r * n, checkpoints) if checkpoints > 1
                              else np.array([r * n]))
                    for i, d in enumerate(tokens):
                        jitter = rng.normal(0, noise / 3) if checkpoints > 1 else 0.0
                        rows.append({"experiment": "sim", "recipe": recipe,
                                     "run": f"{recipe}-{n:g}-{r}-s{s}", "params": int(n),
                                     "tokens": d, "seed": s, "metric": metric,
                                     "value": float(law(p, params=n, tokens=d))
                                     * math.exp(offset + jitter),
                                     "final": i == len(tokens) - 1})
    return pd.DataFrame(rows)


def obs_of(frame: pd.DataFrame) -> sl.Observations:
    return sl.from_frame(frame, name="ladder.csv")


# ------------------------------------------------------------------ decision accuracy


# The datasets README, "Reference figures" of regmix.csv: 1M against 60M, n, acc, tau.
REGMIX = {
    "val/pile_arxiv": (256, 0.970, 0.941), "val/pile_dm_mathematics": (256, 0.962, 0.924),
    "val/pile_freelaw": (256, 0.984, 0.968), "val/pile_github": (256, 0.965, 0.929),
    "val/pile_gutenberg_pg_19": (256, 0.971, 0.943), "val/pile_hackernews": (256, 0.968, 0.936),
    "val/pile_pile_cc": (256, 0.969, 0.937), "val/pile_pubmed_abstracts": (256, 0.982, 0.964),
    "val/pile_pubmed_central": (256, 0.970, 0.940),
    "val/pile_stackexchange": (256, 0.981, 0.963), "val/pile_ubuntu_irc": (256, 0.946, 0.893),
    "val/pile_uspto_backgrounds": (256, 0.973, 0.946),
    "val/pile_wikipedia_en": (256, 0.981, 0.962),
}


@pytest.fixture(scope="module")
def regmix(shared):
    return sl.read_observations(shared / "regmix.csv").frame


def test_decision_accuracy_reproduces_regmix_reference(regmix):
    for metric, (n, acc, tau) in REGMIX.items():
        wide = regmix[regmix["metric"] == metric].pivot_table(
            index="recipe", columns="model", values="value")
        a = sl.rank_agreement(wide["1M"].to_dict(), wide["60M"].to_dict())
        assert (a.n, round(a.decision_accuracy, 3), round(a.kendall_tau, 3)) == (n, acc, tau), \
            metric
    # the two slices whose winner flips between 1M and 60M cost something to pick at 1M
    wide = regmix[regmix["metric"] == "val/pile_stackexchange"].pivot_table(
        index="recipe", columns="model", values="value")
    assert sl.rank_agreement(wide["1M"].to_dict(), wide["60M"].to_dict()).regret > 0


def test_decision_accuracy_counts_ties_as_half():
    assert sl.decision_accuracy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert sl.decision_accuracy([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == 0.0
    assert sl.decision_accuracy([1.0, 1.0], [1.0, 2.0]) == 0.5
    # mappings are matched by recipe name, NaNs and recipes missing on one side dropped
    assert sl.decision_accuracy({"a": 1.0, "b": 2.0, "c": np.nan}, {"b": 5.0, "a": 4.0}) == 1.0
    assert math.isnan(sl.decision_accuracy([1.0], [2.0]))
    with pytest.raises(ValueError, match="same length"):
        sl.decision_accuracy([1.0, 2.0], [1.0, 2.0, 3.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12, unique=True),
       st.randoms(use_true_random=False))
def test_decision_accuracy_is_one_plus_tau_over_two_without_ties(x, rnd):
    y = list(x)
    rnd.shuffle(y)
    tau = stats.kendalltau(x, y).statistic
    assert sl.decision_accuracy(x, y) == pytest.approx((1 + tau) / 2)


def test_rank_agreement_regret_is_the_cost_of_the_proxy_winner():
    proxy = {"a": 3.0, "b": 3.1, "c": 3.2}       # a looks best (lowest loss)
    target = {"a": 2.52, "b": 2.50, "c": 2.60}   # b is best at the target
    a = sl.rank_agreement(proxy, target)
    assert a.regret == pytest.approx(0.02) and a.n == 3
    acc = sl.rank_agreement({"a": 0.6, "b": 0.5}, {"a": 0.7, "b": 0.8}, higher_is_better=True)
    assert acc.regret == pytest.approx(0.1) and acc.decision_accuracy == 0.0


# ------------------------------------------------------------------------- the backtest


# Overtrain (Gadre et al. 2024): runs <= 411M predict the recipe order at 1.44B and 6.89B
# (both at 20 tokens per parameter, the only scales every recipe has there). Decision
# accuracy over the 3 recipe pairs; "tool" = joint fit (two-step for ds/average), "naive" =
# the ranking at 412M @ 20 tokens/param, "proxy X" = the ranking at size X alone.
BACKTEST = """\
metric                 target              tool   naive  p10.6M p78.9M p154M  p412M
val/c4                 1.44B               0.667  1.000  1.000  1.000  1.000  1.000
val/c4                 6.89B               1.000  0.667  0.667  0.667  0.667  0.667
val/c4_de              1.44B               1.000  1.000  0.667  1.000  1.000  1.000
val/c4_de              6.89B               0.667  0.667  0.333  0.667  0.667  0.667
val/openlm             1.44B               1.000  1.000  1.000  1.000  1.000  1.000
val/openlm             6.89B               1.000  1.000  1.000  1.000  1.000  1.000
val/paloma_c4_en       1.44B               1.000  1.000  0.667  1.000  1.000  1.000
val/paloma_c4_en       6.89B               1.000  1.000  0.667  1.000  1.000  1.000
val/paloma_code        1.44B               1.000  1.000  1.000  1.000  1.000  1.000
val/paloma_code        6.89B               1.000  1.000  1.000  1.000  1.000  1.000
val/paloma_ptb         1.44B               1.000  1.000  0.667  1.000  1.000  1.000
val/paloma_ptb         6.89B               1.000  1.000  0.667  1.000  1.000  1.000
val/paloma_redpajama   1.44B               1.000  1.000  1.000  1.000  1.000  1.000
val/paloma_redpajama   6.89B               1.000  1.000  1.000  1.000  1.000  1.000
val/paloma_refinedweb  1.44B               1.000  1.000  1.000  0.667  1.000  1.000
val/paloma_refinedweb  6.89B               1.000  1.000  1.000  0.667  1.000  1.000
ds/average             1.44B               1.000  1.000  0.000  0.667  1.000  1.000
ds/average             6.89B               0.667  0.667  0.333  1.000  0.667  0.667
"""


@pytest.fixture(scope="module")
def backtest_result(shared):
    obs = sl.read_observations(shared / "overtrain.csv")
    return sl.backtest(obs, baseline="c4", proxy_max_params=5e8)


def test_backtest_on_overtrain_reproduces_the_table(backtest_result):
    t = backtest_result.table
    expected = [line.split() for line in BACKTEST.splitlines()[1:]]
    cols = ["tool", "naive", "proxy 10.6M", "proxy 78.9M", "proxy 154M", "proxy 412M"]
    got = [[r["metric"], r["target"].split()[0]] + [f"{r[c]:.3f}" for c in cols]
           for _, r in t.iterrows()]
    assert got == expected
    assert (t["n_recipes"] == 3).all()
    assert set(t["naive_scale"]) == {"412M @ 20 tokens/param"}


def test_backtest_default_beats_naive_and_every_single_proxy_on_average(backtest_result):
    mean = backtest_result.mean()
    assert mean["default"] == pytest.approx(0.963, abs=1e-3)
    assert mean["tool"] == pytest.approx(0.944, abs=1e-3)
    assert mean["naive"] == pytest.approx(0.944, abs=1e-3)
    assert mean["default"] > mean["naive"] >= max(v for k, v in mean.items()
                                                  if k.startswith("proxy "))
    orders = backtest_result.orders.set_index(["metric", "target"])
    assert orders.loc[("val/c4", "6.89B @ 138B tok"), "tool"] == "c4 > redpajama > refinedweb"
    assert orders.loc[("val/c4", "6.89B @ 138B tok"), "observed"] == \
        "c4 > redpajama > refinedweb"
    assert json.dumps(backtest_result.to_dict(), allow_nan=False)


# ------------------------------------------------------------------ per scale, survival


def test_noise_comes_from_seeds_then_checkpoints_then_residuals():
    effects = {"base": {}, "new": data_effect(1.3)}
    cases = [(recipe_ladder(effects, seeds=3), "seeds"),
             (recipe_ladder(effects, checkpoints=6), "checkpoints"),
             (recipe_ladder(effects), "residual")]
    for frame, source in cases:
        fin = final_values(obs_of(frame).frame, match="params-tokens")
        table = per_scale_table(fin, baseline="base")
        assert set(table["noise_source"]) == {source}
        assert (table["noise_sd"] > 0).all()
    # three seeds with sd 0.003 on log-loss (~0.01 nats at loss 3-4): the pooled estimate
    seeds = per_scale_table(final_values(obs_of(cases[0][0]).frame, match="params-tokens"),
                            baseline="base")
    ratio = seeds["noise_sd"] / seeds["value"]
    assert 0.0015 < ratio.median() < 0.006


@pytest.mark.parametrize(("seeds", "method"), [(4, "paired t interval over 4 seeds"),
                                               (12, "paired bootstrap over 12 seeds")])
def test_seeded_deltas_get_paired_cis_that_cover_the_truth(seeds, method):
    frame = recipe_ladder({"base": {}, "new": data_effect(1.3)}, seeds=seeds,
                          sizes=(5e7, 1e8, 2e8, 4e8), ratios=(10, 20, 40, 80, 160))
    table = per_scale_table(final_values(obs_of(frame).frame, match="params-tokens"),
                            baseline="base")
    rows = table[table["recipe"] == "new"]
    assert (rows["ci_method"] == method).all()
    law, truth = sl.ChinchillaLaw(), {**TRUTH, **data_effect(1.3)}
    true_delta = (law(truth, params=rows["params"], tokens=rows["tokens"])
                  - law(TRUTH, params=rows["params"], tokens=rows["tokens"]))
    inside = (rows["ci_lo"] <= true_delta) & (true_delta <= rows["ci_hi"])
    assert inside.mean() >= 0.8 and (rows["delta"] < 0).all()


def test_survival_says_whether_the_gain_grows_holds_fades_or_reverses():
    def table(gains):
        sizes = np.geomspace(1e7, 1e9, len(gains))
        return pd.DataFrame({"recipe": "new", "kind": "loss", "params": sizes,
                             "tokens": 20 * sizes, "flops": 120 * sizes**2,
                             "delta": -np.asarray(gains)})
    assert survival(table([0.01, 0.02, 0.03, 0.04, 0.05]), "new").trend == "grows"
    assert survival(table([0.05, 0.04, 0.03, 0.02, 0.011]), "new").trend == "fades"
    assert survival(table([0.04, 0.02, 0.0, -0.02, -0.04]), "new").trend == "reverses"
    assert survival(table([0.02, 0.03, 0.02, 0.03, 0.02]), "new").trend == "holds"
    assert survival(table([-0.01, -0.02, -0.03, -0.04, -0.05]), "new").trend == "deficit grows"
    s = survival(table([0.04, 0.02, 0.01, -0.01, -0.02]), "new", top_sizes=2)
    assert s.top_share_better == 0.0 and s.sign_consistency == pytest.approx(0.4)
    assert s.trend_per_decade > 0  # the delta rises (gets worse) by decade of N


# --------------------------------------------------------------------- the decision


@pytest.fixture(scope="module")
def clear_gain():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2)
    return sl.compare(obs_of(frame), baseline="base", options=FAST, **TARGET)


def test_a_clear_gain_is_a_go_with_the_true_gain_and_multiplier_in_its_ci(clear_gain):
    s = clear_gain.recipe_summary("new")
    assert clear_gain.decision == "go" and s["decision"] == "go"
    assert s["p_beats_baseline"] >= 0.9
    law, new = sl.ChinchillaLaw(), {**TRUTH, **data_effect(1.5)}
    true_delta = float(law(new, params=4e9, tokens=8e10) - law(TRUTH, params=4e9, tokens=8e10))
    assert s["ci95"][0] <= true_delta <= s["ci95"][1] and s["predicted_delta"] < 0
    # the true multiplier at 20 tokens/param: L_new(sqrt(k) N, sqrt(k) D) = L_base(N, D)
    goal = law(TRUTH, params=4e9, tokens=8e10)
    ks = np.geomspace(0.3, 1.0, 20001)
    k_true = ks[np.argmin(np.abs(law(new, params=4e9 * np.sqrt(ks), tokens=8e10 * np.sqrt(ks))
                                 - goal))]
    lo, hi = s["compute_multiplier_ci95"]
    assert lo <= k_true <= hi and s["compute_multiplier"] < 1
    assert s["survival"]["share_better"] == 1.0


def test_identical_recipes_are_never_a_go():
    for seed in range(3):
        frame = recipe_ladder({"base": {}, "same": {}}, seeds=1, seed=seed)
        res = sl.compare(obs_of(frame), baseline="base", options=FAST, **TARGET)
        assert res.decisions["same"].decision != "go", res.summary()


def test_a_clear_loss_is_a_no_go():
    frame = recipe_ladder({"base": {}, "worse": data_effect(0.6)}, seeds=2)
    res = sl.compare(obs_of(frame), baseline="base", options=FAST, **TARGET)
    d = res.decisions["worse"]
    assert d.decision == "no-go" and "P(gain > 0)" in d.headline
    assert res.recipe_summary("worse")["compute_multiplier"] > 1


def test_a_regression_on_another_slice_blocks_the_go():
    good = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2)
    slice_ = recipe_ladder({"base": {}, "new": {"E": 2.0}}, seeds=2, metric="val/code", seed=1)
    res = sl.compare(obs_of(pd.concat([good, slice_])), baseline="base", metric="val/x",
                     options=FAST, **TARGET)
    d = res.decisions["new"]
    assert d.decision == "no-go" and "val/code" in d.headline
    regs = res.regressions
    assert set(regs["metric"]) == {"val/code"} and regs["blocking"].all()
    assert set(regs["where"]) == {"at 400M @ 16B tok", "at the target"}


def test_thin_evidence_is_inconclusive_and_says_which_runs_would_settle_it():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.03)}, seeds=1, noise=0.004)
    res = sl.compare(obs_of(frame), baseline="base", options=FAST, **TARGET)
    d = res.decisions["new"]
    assert d.decision == "inconclusive"
    assert any(a.startswith("add seeds at 400M") for a in d.advice), d.advice
    assert res.decision == "inconclusive" and "add seeds" in res.reasons[0]


def test_stage_gates_replay_the_rule_with_the_runs_of_each_stage():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2)
    res = sl.compare(obs_of(frame), baseline="base",
                     options=CompareOptions(bootstrap=30, slice_bootstrap=0, gate_bootstrap=20),
                     **TARGET)
    assert [g["gate"] for g in res.gates] == ["small -> medium", "medium -> large",
                                              "large -> final"]
    small = res.gates[0]
    assert small["evidence"] == "runs up to N = 50M" and small["target"].startswith("N = 200M")
    assert small["recipes"]["new"]["decision"] == "go"
    assert small["recipes"]["new"]["observed_at"] == "200M @ 4B tok"
    assert small["recipes"]["new"]["agrees"] is True
    assert res.gates[-1]["recipes"]["new"]["decision"] == res.decisions["new"].decision


def test_compute_optimal_target_and_isoflop_matching():
    # the recipe was trained at other sizes than the baseline, at the same compute budgets
    base = recipe_ladder({"base": {}}, sizes=(2e7, 6e7, 2e8, 6e8), ratios=(10, 20, 40))
    better = {**TRUTH, **data_effect(1.5)}
    rows = []
    for c in sorted(set(6.0 * base["params"] * base["tokens"])):
        n = int(np.sqrt(c / (6 * 20)) * 1.3)
        rows.append({"experiment": "sim", "recipe": "new", "run": f"new-{c:g}", "params": n,
                     "tokens": c / (6 * n), "metric": "val/x", "final": True,
                     "value": float(sl.ChinchillaLaw()(better, params=n, tokens=c / (6 * n)))})
    frame = pd.concat([base, pd.DataFrame(rows)], ignore_index=True)
    res = sl.compare(obs_of(frame), baseline="base", target_flops=1e21, options=FAST)
    assert res.match == "flops" and any("IsoFLOP" in n for n in res.notes)
    assert res.target.path == "compute-optimal"
    assert res.multipliers["new"]["path"] == "compute-optimal"
    assert res.recipe_summary("new")["predicted_delta"] < 0
    assert res.per_scale["scale"].str.startswith("C=").all()


# ------------------------------------------------------------ downstream, protocols


def _with_tasks(frame: pd.DataFrame, lag: float = 0.0) -> pd.DataFrame:
    """Add two tasks whose accuracy follows the loss (sigmoid), one near chance."""
    fin = frame[frame["final"]]
    rows = []
    for r in fin.itertuples():
        shift = lag if r.recipe == "new" else 0.0
        acc = 0.25 + 0.6 / (1 + math.exp(4.0 * (r.value + shift - 3.4)))
        for task, value, chance in (("ds/easy", acc, 0.25), ("ds/hard", 0.251, 0.25)):
            rows.append({**r._asdict(), "metric": task, "value": value,
                         "random_baseline": chance, "kind": "accuracy"})
    out = pd.DataFrame(rows).drop(columns="Index")
    return pd.concat([frame.assign(kind="loss", random_baseline=np.nan), out],
                     ignore_index=True)


def test_near_chance_tasks_are_flagged_and_downstream_translation_is_judged():
    frame = _with_tasks(recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2))
    res = sl.compare(obs_of(frame), baseline="base", metric="val/x", options=FAST, **TARGET)
    assert res.near_chance == ("ds/hard",)
    assert "ds/hard" not in set(res.regressions["metric"])
    ds = res.downstream["recipes"]["new"]
    assert res.downstream["metric"] == "ds/average" and ds["verdict"] == "translates"
    assert ds["loss_gain"] > 0 and ds["accuracy_gain"] > 0

    lagging = _with_tasks(recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2),
                          lag=0.25)
    res = sl.compare(obs_of(lagging), baseline="base", metric="val/x", options=FAST, **TARGET)
    ds = res.downstream["recipes"]["new"]
    assert ds["verdict"] in ("lags", "does not translate") and ds["l0_shift"] < 0


def test_rank_flips_between_protocols_are_reported():
    fixed = recipe_ladder({"a": {}, "b": data_effect(1.3)}).assign(protocol="fixed-lr")
    reduced = recipe_ladder({"a": data_effect(1.3), "b": {}}, seed=3).assign(
        protocol="reduced-lr", run=lambda f: f["run"] + "-reduced")
    both = obs_of(pd.concat([fixed, reduced], ignore_index=True))
    res = sl.compare(both, baseline="a", options=FAST, **TARGET)
    assert res.protocols["protocols"] == ["fixed-lr", "reduced-lr"]
    flips = res.protocols["flips"]
    assert len(flips) == 15  # every scale: a and b swap
    assert flips[0].startswith("rank flip between fixed-lr and reduced-lr proxies at ")
    assert all(a["kendall_tau"] == -1 for a in res.protocols["agreement"])
    assert any(n.startswith("the decision uses protocol") for n in res.notes)
    chosen = sl.compare(both, baseline="a", options=CompareOptions(
        bootstrap=20, slice_bootstrap=0, gate_bootstrap=0, protocol="reduced-lr"), **TARGET)
    assert chosen.decisions["b"].decision == "no-go"
    with pytest.raises(InputError, match='no runs under protocol "tuned"'):
        sl.compare(both, baseline="a", options=CompareOptions(protocol="tuned"), **TARGET)


def test_protocols_come_from_learning_rates_only_when_one_scale_has_several():
    from scaling_ladder.compare.prepare import protocol_labels

    one = recipe_ladder({"a": {}, "b": {}}).assign(lr=3e-3)
    one.loc[one["params"] == 4e8, "lr"] = 3e-4  # another lr per size: not a protocol
    assert protocol_labels(obs_of(one).frame) is None
    two = pd.concat([one, one.assign(lr=one["lr"] / 10, run=one["run"] + "-low")])
    labels = protocol_labels(obs_of(two).frame)
    assert set(labels) == {"lr=0.003", "lr=0.0003", "lr=3e-05"}


# --------------------------------------------------------------- rule, inputs, result


def test_rule_reads_toml_and_rejects_bad_settings(tmp_path):
    path = tmp_path / "rule.toml"
    path.write_text("[rule]\np_go = 0.95\nsign_top_sizes = 3\nmax_regression_loss = 0.02\n")
    rule = Rule.from_toml(path)
    assert (rule.p_go, rule.sign_top_sizes, rule.max_regression_loss) == (0.95, 3, 0.02)
    assert Rule.from_dict(rule.to_dict()) == rule
    (tmp_path / "flat.toml").write_text("min_effect_to_noise = 3\n")
    assert Rule.from_toml(tmp_path / "flat.toml").min_effect_to_noise == 3
    for text, message in (("p_go = 1.5\n", "'p_go' rule setting must be in [0, 1]"),
                          ("p_gogo = 0.9\n", "Unknown rule setting 'p_gogo'"),
                          ("p_go = 0.05\n", "p_no_go < p_go"),
                          ("sign_top_sizes = 1.5\n", "'sign_top_sizes' rule setting must be "
                                                     "an int"),
                          ("p_go = \n", "is not valid TOML")):
        path.write_text(text)
        with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")
                           .replace("(", r"\(")):
            Rule.from_toml(path)
    with pytest.raises(ValueError, match="must be >= 0"):
        Rule(min_gain=-1)


def test_a_stricter_rule_turns_a_go_into_inconclusive(clear_gain):
    frame = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2)
    strict = Rule(min_effect_to_noise=1000.0)
    res = sl.compare(obs_of(frame), baseline="base", rule=strict, options=FAST, **TARGET)
    assert clear_gain.decisions["new"].decision == "go"
    assert res.decisions["new"].decision == "inconclusive"
    assert dict(res.decisions["new"].checks)["effect"] is False


@pytest.mark.parametrize(("case", "message"), [
    ("one recipe", 'one recipe only ("base"): compare needs at least two'),
    ("no baseline", 'baseline "bsae" is not a recipe in the data; choose one of base, new '
                    '(did you mean "base"?)'),
    ("unknown metric", 'no rows with metric "val/nope"'),
    ("no overlap", 'no scale has runs of both the baseline "base" and another recipe'),
])
def test_bad_input_raises_one_clear_input_error(case, message):
    two = recipe_ladder({"base": {}, "new": data_effect(1.2)})
    kw: dict = {"baseline": "base", "options": FAST}
    if case == "one recipe":
        frame = two[two["recipe"] == "base"]
    elif case == "no baseline":
        frame, kw["baseline"] = two, "bsae"
    elif case == "unknown metric":
        frame, kw["metric"] = two, "val/nope"
    else:
        frame = pd.concat([recipe_ladder({"base": {}}, sizes=(1e7, 2e7)),
                           recipe_ladder({"new": {}}, sizes=(1e9, 2e9))])
        kw["options"] = CompareOptions(match="params-tokens", bootstrap=0)
    with pytest.raises(InputError) as exc:
        sl.compare(obs_of(frame), **kw)
    assert message in str(exc.value) and str(exc.value).startswith("ladder.csv")
    assert "\n" not in str(exc.value)


def test_missing_metrics_and_unmatched_recipes_degrade_with_notes():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.4), "far": {}}, seeds=1)
    frame = frame[~((frame["recipe"] == "far") & (frame["params"] < 3e8))]
    frame.loc[frame["recipe"] == "far", "tokens"] *= 3.3  # no (N, D) in common with base
    extra = recipe_ladder({"base": {}, "new": {}}, metric="val/y")  # "far" lacks val/y
    res = sl.compare(obs_of(pd.concat([frame, extra])), baseline="base", options=FAST, **TARGET)
    assert res.decisions["far"].decision == "inconclusive"
    assert "far cannot be judged" in res.decisions["far"].reasons[0]
    assert any("missing for some recipes" in n and "far" in n for n in res.notes)
    assert res.decisions["new"].decision in ("go", "inconclusive")


def test_kaplan_law_compares_without_the_variants_that_share_e():
    frame = recipe_ladder({"base": {}, "better": data_effect(2.0)})
    res = sl.compare(obs_of(frame), baseline="base", options=replace(FAST, law="kaplan"),
                     **TARGET)
    joint = res.to_dict()["joint_fit"]
    assert joint["law"] == "kaplan" and joint["variant"] in ("shared-exponents", "all-free")
    assert res.decisions["better"].decision in ("go", "inconclusive")
    assert res.to_dict()["recipes"]["better"]["p_beats_baseline"] > 0.9


def test_options_are_checked_up_front():
    for kw, message in (({"law": "sigmoid"}, "'law' option of compare must be one of"),
                        ({"bootstrap": -1}, "'bootstrap' option of compare must be an int"),
                        ({"match": "size"}, "'match' option of compare must be auto"),
                        ({"variants": ("shared-A",)}, "'variants' option takes"),
                        ({"fit_checkpoints": "first"}, "'checkpoints' option must be")):
        with pytest.raises(ValueError, match=message):
            CompareOptions(**kw)
    assert CompareOptions(fit_checkpoints="drop-first:0.1").fit_checkpoints == "drop-first:0.1"
    frame = recipe_ladder({"base": {}, "new": {}})
    with pytest.raises(ValueError, match="needs both target_params and target_tokens"):
        sl.compare(obs_of(frame), baseline="base", target_params=1e9, options=FAST)
    with pytest.raises(ValueError, match="not both"):
        sl.compare(obs_of(frame), baseline="base", target_flops=1e21, target_params=1e9,
                   target_tokens=2e10, options=FAST)


def test_result_is_plain_json_with_the_contract_keys_and_progress(clear_gain):
    d = clear_gain.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["decision"] == "go"
    assert set(d) >= {"decision", "reasons", "recipes", "decision_accuracy", "rank_stability",
                      "regressions", "per_scale", "target", "joint_fit", "gates", "rule"}
    assert set(d["recipes"]) == {"new"}
    assert set(d["recipes"]["new"]) >= {"p_beats_baseline", "predicted_delta", "ci95",
                                        "compute_multiplier"}
    assert d["joint_fit"]["variant"] in ("shared-exponents", "shared-E-exponents", "shared-E",
                                         "all-free")
    assert len(d["joint_fit"]["held_out_are"]) == 4
    assert "[[Decision]] go" in clear_gain.summary()
    seen = []
    frame = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=1)
    sl.compare(obs_of(frame), baseline="base", options=FAST,
               progress=lambda done, total: seen.append((done, total)), **TARGET)
    assert seen and seen[-1][0] == seen[-1][1] and all(
        a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


# ------------------------------------------------- the default order and its fallbacks


def _order_at(frame: pd.DataFrame, metric: str, n: float, ratio: float) -> tuple[str, ...]:
    f = frame[(frame["metric"] == metric) & frame["final"]
              & np.isclose(frame["params"], n, rtol=0.02)
              & np.isclose(frame["tokens"] / frame["params"], ratio, rtol=0.1)]
    return tuple(f.groupby("recipe")["value"].mean().sort_values().index)


def test_overtrain_up_to_411m_orders_the_three_recipes_as_they_are_at_1_4b():
    frame = sl.datasets.load("overtrain").frame
    truth = _order_at(frame, "val/c4", 1.44e9, 20)
    small = frame[frame["params"] <= 5e8]
    res = sl.compare(small, baseline="c4", metric="val/c4", target_params=1.44e9,
                     target_tokens=2.88e10,
                     options=CompareOptions(bootstrap=20, slice_bootstrap=0, gate_bootstrap=0))
    # 3.5x beyond the largest proxy: the order and every decision rest on the ranking there
    assert res.ranking.order == truth == ("c4", "refinedweb", "redpajama")
    assert res.ranking.basis == "ranking at 412M @ 8.23B tok"
    for r in ("redpajama", "refinedweb"):
        s = res.recipe_summary(r)
        assert s["basis"] == "ranking at 412M @ 8.23B tok" and s["decision"] == "no-go"
        assert any("3.5x the largest proxy's N" in x for x in s["reasons"])
    back = Comparison.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.ranking == res.ranking and back.backtest == res.backtest
    assert "[[Order at the target]] c4 > refinedweb > redpajama" in res.summary()


def test_two_sizes_decide_on_the_ranking_and_say_the_fit_cannot_be_checked():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2)
    two = frame[frame["params"].isin(sorted(frame["params"].unique())[-2:])]
    res = sl.compare(obs_of(two), baseline="base", options=FAST, **TARGET)
    s = res.recipe_summary("new")
    assert s["basis"] == res.ranking.basis == "ranking at 400M @ 8B tok"
    assert any("cannot be checked on this ladder: with 2 model size(s)" in x
               for x in s["reasons"])
    assert s["decision"] == "go" and s["p_beats_baseline"] >= 0.9  # clear on the ladder
