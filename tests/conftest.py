"""Shared fixtures: the real public datasets beside the repository, and generated ladders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling_ladder as sl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared/datasets``; the tests that need it are skipped, saying so, without it."""
    if not (SHARED / "chinchilla.csv").exists():
        pytest.skip(f"the shared datasets are not at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def chinchilla() -> sl.Observations:
    """The 240 Chinchilla points Besiroglu et al. (2024) fit (5 outliers set aside)."""
    return sl.datasets.load("chinchilla").select(where="besiroglu_outlier == False")


def make_ladder(truth: dict[str, float], *, sizes=(2e7, 5e7, 1e8, 2e8, 4e8), ratios=(5, 20, 80),
                checkpoints: int = 8, noise: float = 0.005, run_noise: float = 0.0,
                seed: int = 0, recipe: str = "default") -> pd.DataFrame:
    """Observations of a ladder drawn from a Chinchilla law with multiplicative noise.

    Every run (size x tokens-per-parameter ratio) has ``checkpoints`` log-spaced checkpoints;
    ``noise`` is per point, ``run_noise`` a per-run offset (seed-to-seed variation).
    """
    rng = np.random.default_rng(seed)
    law = sl.ChinchillaLaw()
    rows = []
    for n in sizes:
        for k in ratios:
            offset = rng.normal(0, run_noise)
            tokens = np.geomspace(k * n / 8, k * n, checkpoints)
            loss = law(truth, params=n, tokens=tokens)
            loss = loss * np.exp(offset + rng.normal(0, noise, size=len(tokens)))
            for i, (d, v) in enumerate(zip(tokens, loss, strict=True)):
                rows.append({"experiment": "sim", "recipe": recipe, "run": f"{recipe}-{n:g}-{k}",
                             "params": int(n), "tokens": d, "metric": "val/x", "value": v,
                             "final": i == len(tokens) - 1})
    return pd.DataFrame(rows)
