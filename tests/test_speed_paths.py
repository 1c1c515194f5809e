"""The faster paths of issue 16 give the results of the plain ones: --jobs, large tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl
from scaling_ladder.laws import fit as fitmod
from scaling_ladder.laws.fit import jobs

TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def test_bootstrap_draws_do_not_depend_on_the_number_of_processes(chinchilla):
    law = sl.ChinchillaLaw()
    with jobs(1):
        one = law.fit(chinchilla, bootstrap=120, seed=3)
    with jobs(2):
        two = law.fit(chinchilla, bootstrap=120, seed=3)
    assert np.array_equal(one.draws, two.draws)
    assert one.params == two.params


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_jobs_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="--jobs"):
        with jobs(bad):
            pass


def test_jobs_is_restored_after_its_block():
    before = fitmod.workers()
    with jobs(1):
        assert fitmod.workers() == 1
    assert fitmod.workers() == before


def large_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    runs = 400
    run = rng.integers(0, runs, n)
    params = np.exp(rng.uniform(np.log(1e7), np.log(1e10), runs))[run]
    tokens = params * np.exp(rng.uniform(np.log(2), np.log(100), n))
    value = sl.ChinchillaLaw()(TRUTH, params=params, tokens=tokens) * np.exp(
        rng.normal(0, 0.01, n))
    return pd.DataFrame({"run": run.astype(str), "params": params, "tokens": tokens,
                         "value": value})


def test_a_large_table_lands_on_the_optimum_of_every_point(monkeypatch):
    """Above ROUGH_POINTS the fit goes to the subsample's optimum, then on to every point's,
    with L-BFGS-B only when Gauss-Newton stops short: the optimum of the plain path."""
    frame = large_table(fitmod.ROUGH_POINTS + 2_000)
    fast = sl.ChinchillaLaw().fit(frame)
    monkeypatch.setattr(fitmod, "ROUGH_POINTS", 10 ** 9)  # every start on every point
    plain = sl.ChinchillaLaw().fit(frame)
    assert fast.objective_value == pytest.approx(plain.objective_value, rel=1e-12)
    for k, v in plain.params.items():
        assert fast.params[k] == pytest.approx(v, rel=1e-6), k
