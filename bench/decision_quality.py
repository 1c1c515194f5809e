"""Decision quality of ``ladder compare``: a backtest on real data and simulated ladders.

1. **Backtest** (DataDecide's protocol, Magnusson et al. 2025, arXiv:2504.11393) on the
   over-training suite of Gadre et al. (2024): runs up to 411M predict the recipe order at
   1.44B and 6.89B on every validation set and the downstream average; pairwise decision
   accuracy of the tool's joint fit, of the naive ranking at the largest proxy, and of each
   proxy size alone.
2. **Calibration** of P(recipe beats baseline) on simulated ladders with known truth: Brier
   score, reliability table, expected calibration error; the false-go rate on zero-effect
   ladders against its nominal 1 - p_go; right-sign go/no-go calls; CI coverage.
   Trap ladders: the recipe is better at small N with a worse asymptote, the gain reverses
   at a crossing size beyond the proxies; P(beats) there should stay <= 0.5.
3. **Power**: P(go) by true gain at the target and ladder design (seeds x sizes).
4. **Time** of one full ``compare`` on overtrain.csv (all 104 runs, 54 metrics).

    python bench/decision_quality.py [--ladders 300] [--bootstrap 100] [--workers 2]
                                     [--traps 1e9,2e9] [--n-traps 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import scaling_ladder as sl
from scaling_ladder.evaluate.simulate import design_with

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def backtest() -> None:
    obs = sl.read_observations(SHARED / "overtrain.csv")
    t0 = time.perf_counter()
    bt = sl.backtest(obs, baseline="c4", proxy_max_params=5e8)
    print(f"## Backtest: overtrain, runs <= 411M -> 1.44B and 6.89B "
          f"({time.perf_counter() - t0:.1f} s)\n")
    print(bt.summary())
    print("\nnaive = ranking at " + ", ".join(sorted(set(bt.table["naive_scale"]))))
    print("\npredicted orders where the tool and the truth differ:")
    o = bt.orders
    print(o[o["tool"] != o["observed"]].to_string(index=False))


def simulation(args) -> None:
    design = sl.LadderDesign(seed_noise=args.noise)
    t0 = time.perf_counter()
    crossings = [float(c) for c in args.traps.split(",") if c]
    sim = sl.simulate(n_ladders=args.ladders, bootstrap=args.bootstrap, seed=args.seed,
                      workers=args.workers, design=design, crossings=crossings,
                      n_traps=args.n_traps)
    print(f"\n## Calibration: {args.ladders} simulated ladders ({design.label}, seed noise "
          f"{args.noise:g} on log-loss, target N = 4B, D = 80B; true gains: 40% zero, "
          f"else N(0, 0.03) nats; {time.perf_counter() - t0:.0f} s)\n")
    print(sim.summary())
    gains = [float(g) for g in args.gains.split(",")]
    designs = [design_with(design, seeds=s, n_sizes=k) for s in (1, 3) for k in (3, 5)]
    t0 = time.perf_counter()
    power = sl.simulate(n_ladders=1, gains=gains, designs=designs, n_power=args.power_ladders,
                        bootstrap=args.bootstrap, seed=args.seed + 1, workers=args.workers)
    print(f"\n## Power: P(go) per true gain at the target (nats), {args.power_ladders} ladders "
          f"per cell ({time.perf_counter() - t0:.0f} s)\n")
    table = power.power.pivot_table(index="design", columns="true_gain", values="p_go")
    print(table.to_string(float_format="%.2f"))


def timing() -> None:
    obs = sl.read_observations(SHARED / "overtrain.csv")
    t0 = time.perf_counter()
    res = sl.compare(obs, baseline="c4", target_params=6.9e9, target_tokens=1.38e11)
    print(f"\n## Time: compare on overtrain.csv (104 runs, 54 metrics, default options): "
          f"{time.perf_counter() - t0:.1f} s; decision {res.decision}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ladders", type=int, default=300)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--noise", type=float, default=0.003)
    ap.add_argument("--gains", default="0.005,0.01,0.02")
    ap.add_argument("--power-ladders", type=int, default=30)
    ap.add_argument("--traps", default="1e9,2e9",
                    help="crossing sizes N of the trap ladders (gain reverses there)")
    ap.add_argument("--n-traps", type=int, default=10, help="trap ladders per crossing")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma list of backtest,simulation,timing")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    skip = set(args.skip.split(","))
    if "backtest" not in skip:
        backtest()
    if "simulation" not in skip:
        simulation(args)
    if "timing" not in skip:
        timing()


if __name__ == "__main__":
    main()
