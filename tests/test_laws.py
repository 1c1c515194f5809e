"""Contract tests run over every law (like scikit-learn's test_common)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder.laws.forms import LAWS, make_law
from scaling_ladder.laws.objective import build_problem

rng = np.random.default_rng(0)
N = np.geomspace(2e7, 2e9, 12)
D = np.geomspace(1e9, 1e11, 12)
INPUTS = {"params": N, "tokens": D, "flops": 6 * N * D, "unique_tokens": D / 4,
          "loss": np.linspace(2.0, 4.0, 12)}
TRUTH = {
    "chinchilla": {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37},
    "overtrain": {"E": 1.8, "A": 150.0, "B": 250.0, "alpha": 0.27},
    # Kaplan et al. (2020), eq. 1.5: N_c 6.4e13, D_c 1.8e13, alpha_N 0.076, alpha_D 0.095
    "kaplan": {"A": 6.4e13 ** 0.8, "B": 1.8e13, "a": 0.076 / 0.095, "alpha_D": 0.095},
    "data-constrained": {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37,
                         "R_star": 15.4},
    "power-N": {"E": 1.5, "A": 50.0, "alpha": 0.2},
    "power-D": {"E": 1.5, "A": 50.0, "alpha": 0.2},
    "power-C": {"E": 1.5, "A": 500.0, "alpha": 0.1},
    "sigmoid": {"a": 0.5, "b": 0.25, "k": 4.0, "L0": 3.0},
    "exp-error": {"eps": 0.8, "k": 6.0, "gamma": 1.0},
}


def inputs_of(law):
    return {k: INPUTS[k] for k in law.inputs}


@pytest.fixture(params=sorted(LAWS))
def law(request):
    return make_law(request.param)


def test_every_law_has_truth_values():
    assert set(TRUTH) == set(LAWS)


def test_docstring_cites_a_paper(law):
    doc = type(law).__doc__
    assert "arXiv:" in doc and any(str(y) in doc for y in range(2019, 2026))
    assert law.formula and law.citation


def test_predict_broadcasts_and_is_finite(law):
    y = law(TRUTH[law.name], **inputs_of(law))
    assert y.shape == (12,) and np.all(np.isfinite(y))
    scalar = law(TRUTH[law.name], **{k: v[3] for k, v in inputs_of(law).items()})
    assert scalar.shape == () and scalar == pytest.approx(y[3])


def test_log_basis_gradient_matches_finite_differences(law):
    x = inputs_of(law)
    theta = np.array([TRUTH[law.name][k] for k in law.exponents])
    g = law.log_basis_grad(theta[None, :], x)
    for q in range(len(theta)):
        h = np.zeros_like(theta)
        h[q] = 1e-6 * max(1.0, abs(theta[q]))
        fd = (law.log_basis(theta + h, x) - law.log_basis(theta - h, x)) / (2 * h[q])
        np.testing.assert_allclose(g[:, :, q], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_objective_gradient_matches_finite_differences(law, loss):
    y = law(TRUTH[law.name], **inputs_of(law)) * np.exp(rng.normal(0, 0.02, 12))
    if law.kind != "loss":
        y = np.clip(y, 0.01, 0.99)
    value = 1 - y if law.kind == "error" else y
    frame = pd.DataFrame({**inputs_of(law), "value": value, "run": np.arange(12) % 4,
                          "recipe": np.where(np.arange(12) < 6, "a", "b")})
    shared = law.exponents[:1]
    prob, _ = build_problem(law, frame, loss, 0.05, "log" if law.kind == "loss" else "linear",
                       None, "recipe", shared)
    xv = _layout(prob, law)
    f, g = prob.value_and_grad(xv, prob.w)
    fd = np.zeros_like(xv)
    for i in range(len(xv)):
        h = np.zeros_like(xv)
        h[i] = 1e-6
        fd[i] = (prob.value_and_grad(xv + h, prob.w)[0] -
                 prob.value_and_grad(xv - h, prob.w)[0]) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-8)


def _layout(prob, law):
    """A free vector near the truth in the problem's (grouped) layout."""
    z = law.to_internal(np.array([TRUTH[law.name][k] for k in law.param_names]))
    xv = np.zeros(prob.n_free)
    for gi in range(len(prob.groups)):
        for j, idx in enumerate(prob.index[gi]):
            if idx >= 0:
                xv[idx] = z[j] * (1 + 0.03 * gi) + 0.01 * j
    return xv


def test_to_dict_round_trips(law):
    fixed = {law.param_names[0]: TRUTH[law.name][law.param_names[0]]}
    original = make_law(law.name, fixed=fixed)
    back = sl.laws.law_from_dict(original.to_dict())
    assert back == original and back.name == law.name


def test_fixed_values_are_checked():
    with pytest.raises(ValueError, match="has parameters E, A, B, alpha, beta. Got gamma"):
        sl.ChinchillaLaw(fixed={"gamma": 1.0})
    with pytest.raises(ValueError, match="fixed value of 'alpha' must lie in"):
        sl.ChinchillaLaw(fixed={"alpha": -1.0})
    with pytest.raises(ValueError, match="takes inputs params, tokens. Got params"):
        sl.ChinchillaLaw()(TRUTH["chinchilla"], params=1e9)


def test_data_constrained_matches_chinchilla_without_repetition():
    p = TRUTH["data-constrained"]
    base = sl.ChinchillaLaw()({k: p[k] for k in ("E", "A", "B", "alpha", "beta")},
                              params=N, tokens=D)
    same = sl.DataConstrainedLaw()(p, params=N, tokens=D, unique_tokens=D * 2)
    np.testing.assert_allclose(same, base)
    # 4 epochs of U: R = 3 repetitions, D' = U + U R* (1 - exp(-3/R*)) (Muennighoff eq. 5)
    d_eff = sl.DataConstrainedLaw.effective_tokens(4e9, 1e9, 15.4)
    assert d_eff == pytest.approx(1e9 + 1e9 * 15.4 * (1 - np.exp(-3 / 15.4)))


def test_sigmoid_falls_from_a_plus_b_to_b():
    law, p = sl.SigmoidLaw(), TRUTH["sigmoid"]
    assert law(p, loss=0.0) == pytest.approx(0.75, abs=1e-5)
    assert law(p, loss=3.0) == pytest.approx(0.5)
    assert law(p, loss=20.0) == pytest.approx(0.25, abs=1e-5)


def test_kaplan_fit_recovers_the_published_law():
    law = sl.KaplanLaw()
    truth = TRUTH["kaplan"]
    rng = np.random.default_rng(0)
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, 5).round(), np.geomspace(2e8, 2e10, 6))
    rows = pd.DataFrame({"run": [f"r{i}" for i in range(n.size)], "params": n.ravel(),
                         "tokens": d.ravel(), "metric": "val/x"})
    rows["value"] = law(truth, params=rows["params"], tokens=rows["tokens"]) * np.exp(
        rng.normal(0, 0.002, len(rows)))
    fit = law.fit(sl.from_frame(rows))
    paper = sl.KaplanLaw.paper_params(fit.params)
    assert paper["alpha_N"] == pytest.approx(0.076, rel=0.05)
    assert paper["alpha_D"] == pytest.approx(0.095, rel=0.05)
    assert np.log10(paper["N_c"]) == pytest.approx(np.log10(6.4e13), abs=0.3)
    assert not fit.notes
