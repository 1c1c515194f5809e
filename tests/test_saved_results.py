"""Fitted parameters and decisions on the bundled data stay what they were, to the printed digits.

``tests/data/saved_results.json`` holds the results of these fits and of a comparison, saved
by ``python tests/test_saved_results.py``: run it again only when a change of results is
meant, and say why in the commit. A faster estimator must land on the same optima.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import scaling_ladder as sl
from scaling_ladder.compare.joint import VARIANTS, shared_of

SAVED = Path(__file__).parent / "data" / "saved_results.json"
DIGITS = 1e-5  # parameters print with 6 significant digits (LawFit.summary)


def fits() -> dict[str, dict[str, float]]:
    """Point fits (no bootstrap) on the bundled data: Chinchilla, and the over-training
    suite's three recipes under every sharing variant of compare's joint fit."""
    law = sl.ChinchillaLaw()
    out = {"chinchilla": law.fit(sl.datasets.load("chinchilla").select(
        where="besiroglu_outlier == False")).params}
    c4 = sl.datasets.load("overtrain").select(metric="val/c4")
    for variant in VARIANTS:
        out[f"overtrain val/c4 {variant}"] = sl.fit(law, c4, by="recipe",
                                                    shared=shared_of(law, variant)).params
    return out


def decisions() -> dict:
    """compare on the over-training suite with the CLI's defaults: the decision, each
    recipe's and what it rests on, and the order at the target."""
    res = sl.compare(sl.datasets.load("overtrain"), baseline="c4", metric="val/c4",
                     target_params=6.9e9, target_tokens=1.38e11)
    out = {"decision": res.decision, "order": " > ".join(res.ranking.order),
           "order_basis": res.ranking.basis}
    for r in res.recipes:
        if r != "c4":
            s = res.recipe_summary(r)
            out[r] = {"decision": s["decision"], "basis": s["basis"]}
    return out


def test_point_fits_on_the_bundled_data_are_the_saved_ones():
    saved = json.loads(SAVED.read_text())["fits"]
    got = fits()
    assert set(got) == set(saved)
    for name, params in saved.items():
        for k, v in params.items():
            assert got[name][k] == pytest.approx(v, rel=DIGITS, abs=1e-9), (name, k)


@pytest.mark.slow
def test_decisions_on_the_bundled_data_are_the_saved_ones():
    assert decisions() == json.loads(SAVED.read_text())["decisions"]


if __name__ == "__main__":
    SAVED.parent.mkdir(exist_ok=True)
    SAVED.write_text(json.dumps({"fits": fits(), "decisions": decisions()}, indent=1) + "\n")
    sys.stdout.write(f"wrote {SAVED}\n")
