"""The input side of a comparison: accuracy decision metrics, scales matched by tokens,
regressions under false-discovery control, and the ranking the data show."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

import scaling_ladder as sl
from scaling_ladder import CompareOptions, InputError
from scaling_ladder.cli import app
from scaling_ladder.compare.prepare import SLICE_AVERAGE, check_inputs, prepare
from scaling_ladder.compare.ranking import RankAtScale
from scaling_ladder.compare.regressions import regression_table, worse_p_value
from scaling_ladder.compare.scales import (
    final_values,
    observed_ranking,
    observed_rankings,
    per_scale_table,
    rank_stability,
    survival,
)
from test_compare import _with_tasks, data_effect, recipe_ladder

TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}
PREP = CompareOptions(match="params-tokens", bootstrap=0)


def obs_of(frame: pd.DataFrame) -> sl.Observations:
    return sl.from_frame(frame, name="ladder.csv")


def prep_of(frame: pd.DataFrame, metric: str | None = None, **kw):
    return prepare(obs_of(frame), baseline="base", metric=metric,
                   options=kw.pop("options", PREP), seed=0, **kw)


# ------------------------------------------------------------ 1. accuracy decision metrics


@pytest.fixture(scope="module")
def tasks():
    """Two recipes with seeds; "new" is better on the loss, so on the task's accuracy too."""
    return _with_tasks(recipe_ladder({"base": {}, "new": data_effect(1.5)}, seeds=2))


def test_an_accuracy_is_a_decision_metric_with_higher_better(tasks):
    prep = prep_of(tasks, "ds/easy")
    assert prep.kind == "accuracy" and prep.metric == "ds/easy" and not prep.missing
    prim = prep.table[prep.table["metric"] == "ds/easy"]
    new = prim[prim["recipe"] == "new"]
    assert (new["delta"] > 0).all() and new["noise_source"].eq("seeds").all()
    surv = survival(prim, "new")
    assert surv.share_better == 1.0 and surv.top_share_better == 1.0
    rs = rank_stability(prep.table, "ds/easy")
    assert all(r["decision_accuracy"] == 1.0 and r["regret"] == 0.0 for r in rs["scales"])
    assert prep.observed.order == ("new", "base") and prep.observed.gain("new") > 0


def test_an_accuracy_is_paired_with_the_loss_most_correlated_with_it(tasks):
    other = recipe_ladder({"base": {}, "new": {}}, seeds=2, metric="val/flat", seed=5)
    other["value"] = 3.0 + np.random.default_rng(1).normal(0, 0.01, len(other))
    prep = prep_of(pd.concat([tasks, other.assign(kind="loss")]), "ds/easy")
    assert prep.paired_loss == "val/x" and "Spearman rho -" in prep.paired_loss_how
    assert any("two-step prediction goes through val/x" in n for n in prep.notes)
    # the task's own loss, when given, is paired first
    own = tasks[tasks["metric"] == "val/x"].assign(metric="ds_loss/easy")
    prep = prep_of(pd.concat([tasks, own]), "ds/easy")
    assert prep.paired_loss == "ds_loss/easy" and "same task" in prep.paired_loss_how
    assert prep_of(tasks, "val/x").paired_loss is None  # a loss needs no pairing


def test_the_downstream_average_can_be_the_decision_metric(tasks):
    prep = prep_of(tasks, "ds/average")
    assert prep.kind == "accuracy"
    assert prep.observed.metric == "ds/average" and prep.observed.order[0] == "new"


def test_a_two_step_prediction_still_needs_a_loss(tasks):
    with pytest.raises(InputError, match='metric "ds/easy" is not a loss'):
        check_inputs(obs_of(tasks), "base", "ds/easy")  # the backtest's check
    frame, _, metric = check_inputs(obs_of(tasks), "base", "ds/easy",
                                    kinds=("loss", "accuracy"))
    assert metric == "ds/easy"


def test_compare_decides_on_an_accuracy_of_the_overtrain_suite(tmp_path):
    out = tmp_path / "hellaswag.json"
    res = CliRunner().invoke(app, ["compare", "--example", "overtrain", "--baseline", "c4",
                                   "--metric", "ds/hellaswag", "--bootstrap", "0",
                                   "--slice-bootstrap", "0", "--gate-bootstrap", "0",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["kind"] == "accuracy" and d["metric"] == "ds/hellaswag"
    assert d["rank_stability"]["reference_scale"] == "6.89B @ 138B tok"
    # predicted in two steps through the loss paired with it; decided on the data's ranking
    # at the target itself (the largest scale trained, 6.89B)
    rows = [p for p in d["predictions"] if p["metric"] == "ds/hellaswag"]
    assert len(rows) == 3 and all(p["method"].startswith("two-step: ") for p in rows)
    assert any("two-step prediction goes through" in n for n in d["notes"])
    for r in d["recipes"].values():
        assert r["survival"]["n_scales"] > 10
        assert r["basis"] == "ranking at 6.89B @ 138B tok"
    assert d["ranking_at_target"]["basis"] == "ranking at 6.89B @ 138B tok"


# --------------------------------------------------------------- 2. scales matched by tokens


def continued(schedule: str | None = None, *, budgets=(0.25, 0.5, 0.985, 1.015, 1.5, 2.0),
              seeds: int = 2) -> pd.DataFrame:
    """``base`` and ``peer`` trained to 20 N; ``long`` (better data) to 40 N, with checkpoints
    on the way (fractions of 20 N in ``budgets``) and a ``schedule`` column when given."""
    law = sl.ChinchillaLaw()
    rng = np.random.default_rng(0)
    rows = []
    for recipe, fractions, over in (("base", (0.25, 0.5, 0.75, 1.0), {}),
                                    ("peer", (0.25, 0.5, 0.75, 1.0), data_effect(1.1)),
                                    ("long", budgets, data_effect(1.5))):
        for n in (2e7, 5e7, 1e8, 2e8):
            for s in range(seeds):
                for i, f in enumerate(fractions):
                    d = f * 20 * n
                    rows.append({"experiment": "sim", "recipe": recipe,
                                 "run": f"{recipe}-{n:g}-s{s}", "params": int(n), "tokens": d,
                                 "seed": s, "metric": "val/x",
                                 "value": float(law({**TRUTH, **over}, params=n, tokens=d))
                                 * np.exp(rng.normal(0, 0.002)),
                                 "final": i == len(fractions) - 1})
    frame = pd.DataFrame(rows)
    return frame if schedule is None else frame.assign(schedule=schedule)


def test_a_run_continued_past_the_baseline_budget_is_cut_at_it():
    frame = continued()
    prep = prep_of(frame)
    assert not prep.missing  # before: "long cannot be judged"
    cut = [n for n in prep.notes if n.startswith("cut at the common budget")]
    assert len(cut) == 1 and "8 run(s) of long" in cut[0] and "schedule not given" in cut[0]
    # the checkpoint at the budget, or the last one before it within the tolerance
    assert [c["cut_at"] / (20 * c["params"]) for c in prep.cuts] == pytest.approx([0.985] * 8)
    long = prep.table[(prep.table["recipe"] == "long") & (prep.table["metric"] == "val/x")]
    at = frame[(frame["recipe"] == "long") & np.isclose(frame["tokens"], 0.985 * 20
                                                        * frame["params"])]
    assert len(long) == 4 and (long["delta"] < 0).all()
    assert sorted(long["value"]) == pytest.approx(sorted(
        at.groupby("params")["value"].mean()))
    assert len(prep.frame) == len(frame)  # the laws still see every checkpoint


def test_a_constant_learning_rate_run_is_cut_and_a_cosine_one_is_not():
    assert not prep_of(continued("constant")).missing
    prep = prep_of(continued("cosine"))
    assert "cannot be judged" in prep.missing["long"]
    note = next(n for n in prep.notes if n.startswith("not cut"))
    assert "cosine run's checkpoint there is mid-schedule" in note
    assert not any(c["cut"] for c in prep.cuts)


def test_a_wsd_run_is_matched_by_its_cooldown_branch_not_its_stable_checkpoint():
    frame = continued("wsd", budgets=(0.5, 1.0, 2.0), seeds=1)
    stable = (frame["recipe"] == "long") & (frame["tokens"] == 20 * frame["params"])
    frame.loc[stable, "value"] += 0.3  # not annealed: far above the annealed loss
    prep = prep_of(frame)
    assert "cannot be judged" in prep.missing["long"]
    assert any("stable-phase checkpoint is not annealed" in n for n in prep.notes)
    branch = frame[stable].assign(run=lambda f: f["run"] + "-cd0.5", final=True,
                                  value=lambda f: f["value"] - 0.3, cooldown=0.5)
    prep = prep_of(pd.concat([frame, branch], ignore_index=True))
    assert not prep.missing and not prep.cuts
    t = prep.table
    long = t[(t["recipe"] == "long") & np.isclose(t["tokens"], 20 * t["params"])]
    assert long.sort_values("params")["value"].to_numpy() == pytest.approx(
        branch.sort_values("params")["value"].to_numpy())


# ------------------------------------------------------------ 3. regressions and multiplicity


def noise_slices(rng, *, n: int = 22, se: float = 0.006, df: int = 20,
                 worse: dict[str, float] | None = None) -> pd.DataFrame:
    """A per-scale table of one recipe against the baseline at one scale: ``n`` loss slices
    whose true delta is 0 (or ``worse[slice]``), measured with standard error ``se``."""
    worse = worse or {}
    half = stats.t.ppf(0.975, df) * se
    rows = []
    for i in range(n):
        metric = f"val/s{i:02d}"
        delta = worse.get(metric, 0.0) + se * rng.standard_t(df)
        rows.append({"metric": metric, "kind": "loss", "scale": "400M @ 8B tok",
                     "params": 4e8, "tokens": 8e9, "flops": 1.92e19, "recipe": "mix",
                     "delta": delta, "ci_lo": delta - half, "ci_hi": delta + half,
                     "se": se, "se_df": float(df), "noise_df": df})
    return pd.DataFrame(rows)


def regressions_of(table: pd.DataFrame) -> pd.DataFrame:
    return regression_table(table, pd.DataFrame(columns=["metric", "recipe", "kind", "delta",
                                                         "delta_lo", "delta_hi"]),
                            baseline="base", primary="val/x", near=set(), max_loss=0.01,
                            max_accuracy=0.01)


def test_pure_noise_slices_rarely_block_and_a_true_regression_still_does():
    rng = np.random.default_rng(12)
    clean = [not regressions_of(noise_slices(rng))["blocking"].any() for _ in range(200)]
    assert np.mean(clean) >= 0.9  # a per-slice rule: about 1 - 0.98^22 = 1/3 of seeds block
    for _ in range(50):
        regs = regressions_of(noise_slices(rng, worse={"val/s07": 0.05}))
        assert list(regs.loc[regs["blocking"], "metric"]) == ["val/s07"]
        row = regs[regs["metric"] == "val/s07"].iloc[0]
        assert row["p_value"] <= row["q_value"] <= 0.05


def test_an_aggregate_regression_blocks_alone_and_p_values_follow_the_formula():
    rng = np.random.default_rng(3)
    table = noise_slices(rng, worse={f"val/s{i:02d}": 0.012 for i in range(22)})
    avg = table.iloc[[0]].assign(metric=SLICE_AVERAGE, delta=0.03, ci_lo=0.027, ci_hi=0.033,
                                 se=0.0015)
    regs = regressions_of(pd.concat([table, avg], ignore_index=True))
    row = regs[regs["metric"] == SLICE_AVERAGE].iloc[0]
    assert row["blocking"] and row["q_value"] == row["p_value"]
    assert row["p_value"] == pytest.approx(stats.t.sf((0.03 - 0.01) / 0.0015, 20))
    # worse means lower for an accuracy: the same formula with the sign turned
    assert worse_p_value(-0.05, 0.01, np.inf, kind="accuracy", threshold=0.01) == \
        pytest.approx(stats.norm.sf(4.0))
    assert worse_p_value(0.05, 0.01, np.inf, kind="accuracy", threshold=0.01) > 0.99



def test_a_lopsided_interval_at_the_target_gets_a_p_value_that_agrees_with_it():
    # a percentile CI from -0.06 to 1.05 around 0.91: the half width (0.28) would make a
    # 0.91-nat worsening 3.2 standard errors from the threshold, though the CI reaches zero
    pred = pd.DataFrame([{"metric": "val/a", "recipe": "mix", "kind": "loss", "delta": 0.91,
                          "delta_lo": -0.06, "delta_hi": 1.05}])
    regs = regression_table(noise_slices(np.random.default_rng(0)).iloc[:0], pred,
                            baseline="base", primary="val/x", near=set(), max_loss=0.01,
                            max_accuracy=0.01)
    se = (0.91 + 0.06) / stats.norm.ppf(0.975)  # the distance to the not-worse bound
    assert regs["p_value"].iloc[0] == pytest.approx(stats.norm.sf((0.91 - 0.01) / se))
    assert regs["p_value"].iloc[0] > 0.025  # one-sided: the 95% CI's lower bound is below 0


def test_a_wsd_runs_annealed_end_is_not_counted_as_checkpoint_noise():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.2)}, checkpoints=6)
    fin = final_values(obs_of(frame).frame, match="params-tokens")
    noise = per_scale_table(fin, baseline="base")["noise_sd"]
    # the same runs under WSD: the decay drops the final loss well below the stable trend
    wsd = frame.assign(schedule="wsd")
    wsd.loc[wsd["final"].astype(bool), "value"] -= 0.2
    fin = final_values(obs_of(wsd).frame, match="params-tokens")
    table = per_scale_table(fin, baseline="base")
    assert (table["noise_source"] == "checkpoints").all()
    assert table["noise_sd"].to_numpy() == pytest.approx(noise.to_numpy(), rel=0.35)
    assert table["noise_sd"].max() < 0.05


def test_the_per_scale_table_gives_the_standard_error_of_each_delta():
    frame = recipe_ladder({"base": {}, "new": data_effect(1.2)}, seeds=3)
    fin = final_values(obs_of(frame).frame, match="params-tokens")
    table = per_scale_table(fin, baseline="base")
    new = table[table["recipe"] == "new"]
    half = stats.t.ppf(0.975, new["se_df"]) * new["se"]
    assert (new["ci_hi"] - new["ci_lo"]).to_numpy() == pytest.approx(2 * half.to_numpy())
    assert (new["se_df"] == 2).all()  # paired t over 3 seeds


def test_slices_of_a_real_mixture_ladder_get_an_aggregate_and_p_values():
    frames = [recipe_ladder({"base": {}, "mix": {}}, seeds=2, metric=f"val/s{i}", seed=i)
              for i in range(6)]
    prep = prep_of(pd.concat(frames, ignore_index=True), "val/s0")
    assert SLICE_AVERAGE in set(prep.table["metric"])
    assert SLICE_AVERAGE not in set(prep.frame["metric"])  # the laws do not fit it
    assert any(n.startswith(f"{SLICE_AVERAGE} = mean loss over the 5 val/ slices")
               for n in prep.notes)


# --------------------------------------------------------- 4. the ranking the data show


def test_the_observed_ranking_is_taken_at_the_largest_scale_holding_every_recipe():
    frame = recipe_ladder({"base": {}, "good": data_effect(2.0), "bad": data_effect(0.7)},
                          seeds=2)
    frame = frame[~((frame["recipe"] == "bad") & (frame["params"] == 4e8))]
    prep = prep_of(frame)
    top = observed_ranking(prep.table, "val/x", baseline="base")
    assert isinstance(top, RankAtScale)
    assert top.scale == "200M @ 8B tok" and top.params == 2e8 and top.tokens == 8e9
    assert top.order == ("good", "base", "bad") and top.missing == ()
    assert top.deltas["base"] == 0 and top.deltas["good"] < 0 < top.deltas["bad"]
    assert top.noise > 0 and top.noise_source == "seeds"
    two = observed_rankings(prep.table, "val/x", baseline="base", n=2)
    assert [r.scale for r in two] == ["200M @ 8B tok", "200M @ 4B tok"]
    d = top.to_dict()
    assert json.loads(json.dumps(d)) == d and d["order"] == ["good", "base", "bad"]
    assert "the data rank good > base > bad on val/x" in d["summary"]
    assert prep.observed == top
