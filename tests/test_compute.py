"""FLOPs accounting, compute-optimal allocation and IsoFLOP profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder.laws.compute import flops_6nd, optimal_params, tokens_6nd

TRUTH = {"E": 1.82, "A": 478.0, "B": 2143.0, "alpha": 0.347, "beta": 0.367}


def test_flops_by_hand():
    assert sl.training_flops(1e9, 2e10) == 6 * 1e9 * 2e10
    # 12 layers, d_model 768, context 1024: 6 * 12 * 1024 * 768 = 56,623,104 extra per token
    c = sl.training_flops(124e6, 1e9, n_layers=12, d_model=768, seq_len=1024)
    assert c == (6 * 124e6 + 56_623_104) * 1e9
    with pytest.raises(ValueError, match="needs all of n_layers, d_model and seq_len"):
        sl.training_flops(1e6, 1e6, n_layers=2)


def test_flops_6nd_is_vectorised_and_tokens_6nd_inverts_it():
    n, d = np.array([1e8, 4e8, 7e10]), np.array([2e9, 8e9, 1.4e12])
    c = flops_6nd(n, d)
    np.testing.assert_array_equal(c, 6.0 * n * d)
    np.testing.assert_allclose(tokens_6nd(c, n), d, rtol=1e-15)
    assert flops_6nd(pd.Series([1e9]), pd.Series([2e10]))[0] == sl.training_flops(1e9, 2e10)
    assert float(flops_6nd(70e9, 1.4e12)) == pytest.approx(5.88e23)  # Chinchilla's budget


def test_given_flops_are_the_truth_and_6nd_fills_only_the_gaps(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run,params,tokens,flops,metric,value\n"
                    "a,100,1000,9e5,train,3.0\n"   # the trainer's count, with attention
                    "b,200,1000,,train,2.9\n")
    got = sl.read_observations(path).frame.set_index("run")["flops"]
    assert got["a"] == 9e5 and got["b"] == flops_6nd(200, 1000) == 1.2e6


def test_closed_form_matches_a_numerical_search():
    law = sl.ChinchillaLaw()
    for c in (1e20, 1e23, 1e25):
        closed = optimal_params(law, TRUTH, c)
        n = np.geomspace(closed / 3, closed * 3, 20001)
        numeric = n[np.argmin(law(TRUTH, params=n, tokens=c / (6 * n)))]
        assert closed == pytest.approx(numeric, rel=1e-3)
    # the general path (a law without the closed form) lands on the same point
    power = sl.DataConstrainedLaw()
    p = {**TRUTH, "R_star": 15.0}

    class NoRepeat:  # evaluate the data-constrained law with unlimited unique data
        inputs, param_names = ("params", "tokens"), tuple(p)

        def __call__(self, q, params, tokens):
            return power(q, params=params, tokens=tokens, unique_tokens=np.inf)

    assert optimal_params(NoRepeat(), p, 1e23) == pytest.approx(
        optimal_params(law, TRUTH, 1e23), rel=1e-4)


def test_optimal_allocation_has_intervals(chinchilla):
    fit = sl.ChinchillaLaw().fit(chinchilla, bootstrap=100)
    alloc = sl.optimal(fit, flops=1e23)
    assert alloc.params * alloc.tokens * 6 == pytest.approx(1e23)
    # Besiroglu et al. (2024): ~20 tokens per parameter at the optimum
    assert 15 < alloc.tokens_per_param < 25
    assert alloc.ci["params"].lo < alloc.params < alloc.ci["params"].hi
    assert set(alloc.to_dict()) >= {"params", "tokens", "ci95"}
    assert alloc.notes == ()  # N* = 30B, within 10x of the largest run (16B)
    assert any("extrapolation" in n for n in sl.optimal(fit, flops=1e26).notes)
    with pytest.raises(ValueError, match="'flops' argument of optimal must be > 0"):
        sl.optimal(fit, flops=-1)


def test_isoflop_recovers_the_allocation_exponent():
    # Hoffmann et al. (2022) approach 2 on profiles drawn from a known law: the minima follow
    # N* ~ C^(beta / (alpha + beta)).
    law, rows = sl.ChinchillaLaw(), []
    for c in np.geomspace(1e18, 1e21, 7):
        for n in np.geomspace(optimal_params(law, TRUTH, c) / 4, optimal_params(law, TRUTH, c)
                              * 4, 9):
            rows.append({"run": f"{c:g}-{n:g}", "params": int(n), "tokens": c / (6 * n),
                         "flops": c, "value": float(law(TRUTH, params=n, tokens=c / (6 * n))),
                         "final": True})
    result = sl.isoflop(pd.DataFrame(rows))
    expected = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    assert result.a == pytest.approx(expected, abs=0.01)
    assert result.a + result.b == pytest.approx(1.0)
    assert len(result.budgets) == 7


def test_isoflop_needs_several_budgets():
    frame = pd.DataFrame({"run": ["a", "b"], "params": [1, 2], "tokens": [1.0, 1.0],
                          "flops": [1e18, 1e18], "value": [3.0, 2.9], "final": [True, True]})
    with pytest.raises(sl.InputError, match="need at least 2"):
        sl.isoflop(frame)
