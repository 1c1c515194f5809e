"""``ladder import wandb`` speed: rows per second of reading a large W&B run history (CSV and
JSON Lines, as ``history.to_csv`` / ``to_json(orient="records", lines=True)`` write it),
against ``pandas.read_csv`` / ``pandas.read_json(lines=True)`` of the same file in the same
process (the floor any reader pays; it checks nothing and maps nothing).

The history: ``--steps`` logged steps of one run with ``_step``, ``_runtime``, ``tokens_seen``,
``train/loss`` (every step) and ``eval/c4_loss`` (every 10th step, else empty), so the import
makes about 1.1 observations a step.

    python bench/import_speed.py [--steps 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_ladder.observations.importers import read_wandb

MAP = "step=_step,tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss"


def history(steps: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    step = np.arange(1, steps + 1)
    loss = 2.0 + 5.0 / step ** 0.3 + rng.normal(0, 0.01, steps)
    val = np.where(step % 10 == 0, loss + 0.05, np.nan)
    return pd.DataFrame({"_step": step, "_runtime": step * 0.5, "tokens_seen": step * 524288,
                         "train/loss": loss, "eval/c4_loss": val})


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    args = parser.parse_args()
    table = history(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        csv, jsonl = Path(tmp) / "run.csv", Path(tmp) / "run.jsonl"
        table.to_csv(csv, index=False)
        table.to_json(jsonl, orient="records", lines=True)
        print(f"{args.steps:,} steps, {len(table.columns)} columns; best of 3")
        print(f"{'format':8} {'pandas s':>9} {'import s':>9} {'rows/s':>12} {'import/pandas':>14}")
        for name, path, floor in (("csv", csv, lambda p=csv: pd.read_csv(p)),
                                  ("jsonl", jsonl, lambda p=jsonl: pd.read_json(p, lines=True))):
            rows = len(read_wandb(path, mapping=MAP, params=1.2e8))
            base = best(floor)
            ours = best(lambda p=path: read_wandb(p, mapping=MAP, params=1.2e8))
            print(f"{name:8} {base:9.2f} {ours:9.2f} {rows / ours:12,.0f} "
                  f"{ours / base:13.1f}x")


if __name__ == "__main__":
    main()
