"""The estimator: published reference fits, recovery, invariance, coverage, options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scaling_ladder as sl
from conftest import make_ladder
from scaling_ladder import InputError

# Besiroglu et al. (2024), Table 1 / the datasets README: headline Huber-likelihood fit, its
# bootstrap 95% CI, and the plain Huber(1e-3)-on-log-L fit over Epoch's 4500-start grid.
BESIROGLU = {"A": 482.01, "B": 2085.43, "E": 1.8169, "alpha": 0.3478, "beta": 0.3658}
BESIROGLU_CI = {"A": (285.2, 743.6), "B": (1042, 5810), "E": (1.769, 1.871),
                "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
EPOCH_GRID = {"A": 477.84, "B": 2143.86, "E": 1.8172, "alpha": 0.34731, "beta": 0.36718}
TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}


@pytest.fixture(scope="module")
def chinchilla_fit(chinchilla):
    return sl.ChinchillaLaw().fit(chinchilla, bootstrap=1000, seed=0)


def test_reproduces_besiroglu_on_chinchilla(chinchilla_fit):
    p = chinchilla_fit.params
    for k in ("E", "alpha", "beta"):
        assert p[k] == pytest.approx(BESIROGLU[k], abs=0.005)
    for k in ("A", "B"):
        assert p[k] == pytest.approx(BESIROGLU[k], rel=0.05)
    for k, v in EPOCH_GRID.items():  # same estimator as Epoch's notebook: same optimum
        assert p[k] == pytest.approx(v, rel=2e-3)
    assert chinchilla_fit.n_points == 240 and chinchilla_fit.n_runs == 240
    assert chinchilla_fit.notes == ()


def test_optimum_is_no_worse_than_epochs_grid(chinchilla, chinchilla_fit):
    # The objective at Epoch's published grid optimum (their digits) bounds ours from above.
    law, frame = sl.ChinchillaLaw(), chinchilla.frame
    pred = law(EPOCH_GRID, params=frame["params"], tokens=frame["tokens"])
    r = np.log(pred) - np.log(frame["value"].to_numpy())
    delta = 1e-3
    theirs = np.sum(np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - delta / 2)))
    assert chinchilla_fit.objective_value <= theirs + 1e-9


def test_bootstrap_cis_are_close_to_besiroglu(chinchilla_fit):
    for k, (lo, hi) in BESIROGLU_CI.items():
        ci = chinchilla_fit.ci[k]
        tol = 0.15 if k in ("A", "B") else 0.02
        assert ci.lo == pytest.approx(lo, rel=tol) and ci.hi == pytest.approx(hi, rel=tol)
    assert chinchilla_fit.draws.shape == (1000, 5)


def test_reproduces_gadre_overtraining_extrapolation():
    # Gadre et al. (2024), scaling_explorer.ipynb: RedPajama val/c4, least squares on the loss
    # over five small runs; relative errors 0.7103% (1.4B, M=640) and 0.7320% (6.9B, M=20).
    frame = sl.datasets.load("overtrain").select(recipe="redpajama", metric="val/c4").frame
    m, n = frame["token_multiplier"], frame["params"]
    train = frame[((n < 5e8) & (m == 20)) | ((n < 2e7) & (m == 320))]
    assert len(train) == 5
    fit = sl.OvertrainLaw().fit(train, loss="mse", space="linear")
    for size, mult, published in ((1.4e9, 640, 0.7103), (6.9e9, 20, 0.7320)):
        row = frame[(np.isclose(n, size, rtol=0.05)) & (m == mult)].iloc[0]
        pred = fit.predict(params=row["params"], tokens=row["tokens"])
        assert 100 * abs(pred - row["value"]) / row["value"] == pytest.approx(published, abs=0.01)


@settings(max_examples=8, deadline=None)
@given(alpha=st.floats(0.2, 0.6), beta=st.floats(0.2, 0.6), e=st.floats(1.2, 2.5),
       seed=st.integers(0, 1000))
def test_recovers_known_parameters_from_learning_curves(alpha, beta, e, seed):
    # A and B chosen so that each term is worth ~1 nat in the middle of the ladder
    truth = {"E": e, "A": 1e8**alpha, "B": 2e9**beta, "alpha": alpha, "beta": beta}
    frame = make_ladder(truth, noise=0.002, seed=seed)
    fit = sl.ChinchillaLaw().fit(frame)
    # the estimator's optimum is at least as good as the truth's (the noise moves the optimum)
    r = np.log(sl.ChinchillaLaw()(truth, params=frame["params"], tokens=frame["tokens"])
               / frame["value"].to_numpy())
    huber = np.where(np.abs(r) <= 1e-3, 0.5 * r * r, 1e-3 * (np.abs(r) - 0.5e-3))
    assert fit.objective_value <= huber.sum() * (1 + 1e-6)
    # a flat N term (alpha near 0.2) trades E against A: E is identified to about 8% there
    assert fit.params["alpha"] == pytest.approx(alpha, abs=0.05)
    assert fit.params["beta"] == pytest.approx(beta, abs=0.05)
    assert fit.params["E"] == pytest.approx(e, rel=0.05 if alpha > 0.25 else 0.08)
    target = dict(params=7e10, tokens=1.4e12)
    assert fit.predict(**target) == pytest.approx(sl.ChinchillaLaw()(truth, **target), rel=0.02)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_row_order_does_not_change_the_fit(seed):
    frame = make_ladder(TRUTH, noise=0.01, seed=1)
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    a, b = sl.ChinchillaLaw().fit(frame), sl.ChinchillaLaw().fit(shuffled)
    assert b.objective_value == pytest.approx(a.objective_value, rel=1e-7)
    for k in a.params:
        assert b.params[k] == pytest.approx(a.params[k], rel=1e-4)


@pytest.mark.slow
def test_run_clustered_cis_cover_the_truth_at_about_their_level():
    # Seed-to-seed noise makes the checkpoints of a run move together: only resampling runs
    # gives honest intervals. 40 ladders, 95% intervals for alpha and for the prediction.
    hits, trials, target = {"alpha": 0, "pred": 0}, 40, dict(params=1e9, tokens=2e10)
    truth_pred = sl.ChinchillaLaw()(TRUTH, **target)
    for seed in range(trials):
        frame = make_ladder(TRUTH, noise=0.002, run_noise=0.01, checkpoints=5, seed=seed)
        fit = sl.ChinchillaLaw().fit(frame, bootstrap=100, seed=seed, n_starts=3)
        hits["alpha"] += TRUTH["alpha"] in fit.ci["alpha"]
        lo, hi = fit.predict_interval(**target).ci
        hits["pred"] += lo <= truth_pred <= hi
    for k, v in hits.items():
        assert 0.82 <= v / trials <= 1.0, (k, v)  # binomial sd at 40 trials: 0.034


def test_fixed_parameter_stays_fixed(chinchilla):
    fit = sl.ChinchillaLaw(fixed={"E": 1.69}).fit(chinchilla, bootstrap=20)
    assert fit.params["E"] == 1.69 and "E" not in fit.ci and "alpha" in fit.ci
    assert np.all(fit.draws[:, 0] == 1.69)
    assert fit.params["alpha"] != pytest.approx(EPOCH_GRID["alpha"], abs=1e-3)


def test_shared_exponents_across_recipes():
    a = make_ladder(TRUTH, noise=0.002, seed=1, recipe="base")
    b = make_ladder({**TRUTH, "E": 1.8, "A": 380.0}, noise=0.002, seed=2, recipe="better")
    fit = sl.ChinchillaLaw().fit(pd.concat([a, b]), by="recipe", shared=("alpha", "beta"),
                                 bootstrap=30)
    assert set(fit.params) == {"E[base]", "E[better]", "A[base]", "A[better]", "B[base]",
                               "B[better]", "alpha", "beta"}
    assert fit.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert fit.params["E[better]"] == pytest.approx(1.8, rel=0.03)
    gain = fit.predict(group="base", params=7e9, tokens=1.4e11) - fit.predict(
        group="better", params=7e9, tokens=1.4e11)
    assert gain > 0
    with pytest.raises(ValueError, match=r"give --group \(group= in Python\) one of base, better"):
        fit.predict(params=7e9, tokens=1.4e11)


def test_data_constrained_recovers_the_repetition_constant():
    rows = []
    for n in (3e8, 1e9, 3e9):
        for epochs in (1, 2, 4, 8, 16, 40):
            u = 2e10 / epochs
            for d in np.geomspace(2e9, 2e10, 6):
                rows.append({"run": f"{n:g}-{epochs}", "params": n, "tokens": d,
                             "unique_tokens": u, "value": 0.0})
    frame = pd.DataFrame(rows)
    truth = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31, "R_star": 15.4}
    frame["value"] = sl.DataConstrainedLaw()(truth, params=frame["params"],
                                             tokens=frame["tokens"],
                                             unique_tokens=frame["unique_tokens"])
    fit = sl.DataConstrainedLaw().fit(frame)
    assert fit.params["R_star"] == pytest.approx(15.4, rel=0.02)


def test_loss_to_accuracy_chain_carries_uncertainty():
    rng = np.random.default_rng(0)
    frame = make_ladder(TRUTH, noise=0.002, seed=3)
    sig = {"a": 0.5, "b": 0.25, "k": 1.5, "L0": 5.0}  # losses span 3.6-15
    acc = sl.SigmoidLaw()(sig, loss=frame["value"]) + rng.normal(0, 0.005, len(frame))
    both = pd.concat([frame, frame.assign(metric="ds/task", kind="accuracy", value=acc)])
    paired = sl.pair_metrics(both, loss_metric="val/x", metric="ds/task")
    task = sl.SigmoidLaw().fit(paired, bootstrap=50)
    assert task.params["L0"] == pytest.approx(5.0, abs=0.1)
    loss = sl.ChinchillaLaw().fit(frame, bootstrap=50)
    chained = sl.chain(loss, task)
    target = dict(params=3e8, tokens=1e9)
    truth = sl.SigmoidLaw()(sig, loss=sl.ChinchillaLaw()(TRUTH, **target))
    pred = chained.predict_interval(**target)
    assert pred.mean == pytest.approx(truth, abs=0.02)
    assert pred.ci[0] < pred.mean < pred.ci[1]


def test_exponential_error_law_fits_gadre_downstream_average():
    frame = sl.datasets.load("overtrain").select(recipe="redpajama").frame
    tasks = frame[frame["metric"].str.startswith("ds/")]
    mean_acc = tasks.groupby("run")["value"].mean().rename("value").reset_index()
    loss = frame[frame["metric"] == "val/c4"][["run", "value"]].rename(columns={"value": "loss"})
    table = mean_acc.merge(loss, on="run")
    fit = sl.ExponentialErrorLaw().fit(table)
    err = fit.predict(loss=table["loss"])
    assert np.mean(np.abs(err - (1 - table["value"]))) < 0.01  # error within a point
    assert 0.6 < fit.params["eps"] <= 1.0


def test_power_law_in_compute():
    c = np.geomspace(1e18, 1e22, 20)
    frame = pd.DataFrame({"run": np.arange(20), "flops": c,
                          "value": 1.7 + 900 * c ** -0.15})
    fit = sl.PowerLaw(variable="flops").fit(frame)
    assert fit.params["alpha"] == pytest.approx(0.15, rel=1e-3) and fit.law.name == "power-C"


def test_prediction_interval_is_wider_than_the_curve_interval(chinchilla_fit):
    pred = chinchilla_fit.predict_interval(params=7e10, tokens=1.4e12)
    assert pred.pi[0] < pred.ci[0] < pred.mean < pred.ci[1] < pred.pi[1]


def test_fit_round_trips_through_json(chinchilla_fit):
    back = sl.LawFit.from_dict(json.loads(json.dumps(chinchilla_fit.to_dict())))
    assert back.params == chinchilla_fit.params
    assert back.ci["alpha"] == chinchilla_fit.ci["alpha"]
    np.testing.assert_allclose(back.predict_interval(params=1e10, tokens=2e11).ci,
                               chinchilla_fit.predict_interval(params=1e10, tokens=2e11).ci)


def test_summary_names_law_objective_and_intervals(chinchilla_fit):
    text = chinchilla_fit.summary()
    assert "huber(delta=0.001, sum) on log-loss" in text and "1000 resamples of runs" in text
    assert "alpha = 0.34731" in text


def test_degenerate_fits_say_so():
    frame = make_ladder(TRUTH, sizes=(1e8, 2e8), ratios=(20,), checkpoints=1)
    fit = sl.ChinchillaLaw().fit(frame)
    assert any("2 points for 5 free parameters" in n for n in fit.notes)
    assert any("same tokens" not in n for n in fit.notes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bootstrap": -5}, "The 'bootstrap' argument of fit must be an int >= 0. Got -5."),
    ({"loss": "l1"}, "The 'loss' argument of fit must be 'huber' or 'mse'. Got 'l1'."),
    ({"shared": ("gamma",)}, "The 'shared' argument must name parameters of chinchilla"),
    ({"shared": ("alpha",)}, "The 'shared' argument needs 'by'"),
])
def test_bad_arguments_are_named(chinchilla, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sl.ChinchillaLaw().fit(chinchilla, **kwargs)


def test_several_metrics_need_a_choice():
    with pytest.raises(InputError, match="metrics .* a law fits one; choose one with --metric"):
        sl.ChinchillaLaw().fit(sl.datasets.load("overtrain").select(recipe="c4",
                                                                    where="kind == 'loss'"))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_percentile_interval_with_never_reached_draws():
    from scaling_ladder.laws.bootstrap import percentile_interval

    draws = np.r_[np.linspace(1.0, 2.0, 90), np.full(10, np.inf), np.nan]
    lo, hi = percentile_interval(draws, 0.9)
    assert 1.0 < lo < 1.1 and hi == np.inf  # the top 5% are never reached: unbounded
    lo, hi = percentile_interval(np.linspace(1.0, 2.0, 101), 0.9)
    assert (lo, hi) == pytest.approx((1.05, 1.95))  # linear interpolation as before


def test_a_coefficient_at_its_zero_bound_is_reported_as_zero():
    # a pure power law (no irreducible term): E can only approach 0, and is reported as 0
    truth = {"E": 0.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
    fit = sl.ChinchillaLaw().fit(make_ladder(truth, noise=0.002), bootstrap=20, seed=0)
    assert fit.params["E"] == 0.0 and fit.ci["E"].lo == 0.0
    assert any(n.startswith("E at its lower bound (0)") and "--law kaplan" in n
               for n in fit.notes)
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.03)
