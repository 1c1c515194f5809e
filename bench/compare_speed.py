"""Time of ``ladder compare`` as the ladder grows: 5, 26, 100, 256 recipes (synthetic ladders).

Each synthetic ladder is shaped like a data-mixture study: R recipes x 3 proxy sizes
(20M, 60M, 150M, 20 tokens per parameter), learning curves of 8 checkpoints per run, one seed,
4 validation slices plus their weighted mean ``val/pile_weighted`` (the decision metric). Every
recipe's loss follows its own Chinchilla law (E, A, B drawn around the baseline's) with log-normal
noise, so the fits are real fits. A second shape is RegMix's: R recipes x 2 sizes, final
checkpoints only.

The baseline of the same run is the cost per recipe of the smallest ladder (5 recipes): a
compare that scales linearly in recipes x sizes takes ``R / 5`` times as long; the ratio printed
is measured time / that linear extrapolation (<= 1: at least linear). Goals (issue 16): 20
recipes in <= 15 s and 26 in <= 20 s (``--recipes 5 20 26``), 256 recipes x 2 sizes in <= 60 s.
A second baseline of the same run is the smallest ladder compared in one process
(``--jobs 1``): its ratio to the same ladder on every core is what the processes buy on this
machine at its present load.

    python bench/compare_speed.py [--recipes 5 26 100 256] [--bootstrap 100] [--jobs N]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

import scaling_ladder as sl
from scaling_ladder import CompareOptions, compare
from scaling_ladder.laws.fit import jobs
from scaling_ladder.laws.forms import ChinchillaLaw

SLICES = {"val/pile_cc": 0.4, "val/github": 0.2, "val/arxiv": 0.2, "val/wiki": 0.2}
GOALS = {("curves", 20): 15.0, ("curves", 26): 20.0, ("regmix", 256): 60.0}


def ladder(recipes: int, *, sizes=(2e7, 6e7, 1.5e8), checkpoints: int = 8,
           seed: int = 0) -> pd.DataFrame:
    """R recipes x sizes x learning curves x slices (+ the weighted mean), Chinchilla-shaped."""
    rng = np.random.default_rng(seed)
    law, rows = ChinchillaLaw(), []
    base = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}
    for r in range(recipes):
        name = "baseline" if r == 0 else f"mix{r:03d}"
        per_slice = {s: {**base, "E": base["E"] * rng.uniform(0.85, 1.15),
                         "A": base["A"] * rng.uniform(0.9, 1.1),
                         "B": base["B"] * rng.uniform(0.8, 1.2)} for s in SLICES}
        for n in sizes:
            run = f"{name}-{n:g}"
            final_tokens = 20 * n
            for k in range(1, checkpoints + 1):
                d = final_tokens * k / checkpoints
                noise = rng.normal(0, 0.004)
                vals = {s: float(law(p, params=n, tokens=d))
                        * math.exp(noise + rng.normal(0, 0.002)) for s, p in per_slice.items()}
                vals["val/pile_weighted"] = sum(SLICES[s] * v for s, v in vals.items())
                for metric, v in vals.items():
                    rows.append((name, run, int(n), d, k == checkpoints, metric, v))
    f = pd.DataFrame(rows, columns=["recipe", "run", "params", "tokens", "final", "metric",
                                    "value"])
    f["experiment"], f["kind"], f["seed"] = "bench", "loss", 0
    return f


def regmix_ladder(recipes: int, seed: int = 0) -> pd.DataFrame:
    """RegMix's shape: R recipes x 2 sizes, final checkpoints only."""
    return ladder(recipes, sizes=(1e6 * 5, 6e7), checkpoints=1, seed=seed)


def timed(frame: pd.DataFrame, bootstrap: int) -> tuple[float, object]:
    obs = sl.from_frame(frame)
    t0 = time.perf_counter()
    c = compare(obs, baseline="baseline", metric="val/pile_weighted", target_params=7e9,
                target_tokens=1.4e11, options=CompareOptions(bootstrap=bootstrap))
    return time.perf_counter() - t0, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", type=int, nargs="+", default=[5, 26, 100, 256])
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--shapes", nargs="+", default=["curves", "regmix"])
    ap.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args()
    for shape in args.shapes:
        make = ladder if shape == "curves" else regmix_ladder
        print(f"{shape}: {'3 sizes x 8 checkpoints' if shape == 'curves' else '2 sizes, final'}"
              f" x 5 slices, bootstrap {args.bootstrap}")
        smallest = make(min(args.recipes))
        with jobs(1):
            t1, _ = timed(smallest, args.bootstrap)
        per = None
        for r in sorted(args.recipes):
            frame = smallest if r == min(args.recipes) else make(r)
            with jobs(args.jobs):
                t, c = timed(frame, args.bootstrap)
            if per is None:
                per = t / r
                print(f"  baseline: {r} recipes in one process {t1:.2f} s; on "
                      f"{args.jobs or 'every'} core(s) {t:.2f} s = {t / t1:.2f}x")
            goal = GOALS.get((shape, r))
            verdict = ("" if goal is None else
                       f" goal <= {goal:g} s: {'met' if t <= goal else 'MISSED'}")
            print(f"  {r:4d} recipes {len(frame):7,d} rows  {t:7.2f} s  "
                  f"{t / r:6.3f} s/recipe  vs linear {t / (per * r):5.2f}x{verdict}",
                  flush=True)


if __name__ == "__main__":
    main()
