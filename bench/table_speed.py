"""``ladder fit`` on a million rows: time and peak memory, against reading the file with pandas.

The table: 1,000 runs (10 sizes x 10 token budgets x 10 seeds) x 1,000 checkpoints of one
validation loss that follows a Chinchilla law with noise, as a CSV (about 110 MB). Each
command runs in a fresh process, so its peak RSS is its own:

* baseline: ``pandas.read_csv`` of the file (the floor any reader pays);
* ``ladder fit FILE --bootstrap 0 --checkpoints all`` (reading, validating, selecting, fitting,
  1M points) and ``--checkpoints final`` (1,000 points);
* the same ``all`` fit split in one process: importing the package, reading + validating +
  selecting the table (``cli.common.load``), and the ``LawFit`` call, so the share of the table
  and of the estimator are each in view;
* the first-error path: the same file with a bad last row (a negative loss), which is read
  fast, fails a check, and is read again as text to name the line.

Goals (issue 16): <= 10 s and <= 1 GB for the fit of 1M valid rows.

    python bench/table_speed.py [--rows 1000000] [--keep FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

GOAL_S, GOAL_GB = 10.0, 1.0


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    runs = 1000
    per = rows // runs
    sizes = np.geomspace(2e7, 1e9, 10)
    ratios = np.geomspace(5, 80, 10)
    n = np.repeat(np.repeat(sizes, 100), per)
    ratio = np.tile(np.repeat(ratios, 10), 10).repeat(per)
    seed_ = np.tile(np.arange(10), 100).repeat(per)
    step = np.tile(np.arange(1, per + 1), runs)
    d = n * ratio * (0.1 + 0.9 * step / per)  # checkpoints from 10% of the run
    loss = (1.9 + 450 / n**0.33 + 1800 / d**0.31) * np.exp(rng.normal(0, 0.004, len(n)))
    run = np.char.add("r", np.arange(runs).astype(str)).repeat(per)
    pd.DataFrame({"experiment": "bench", "recipe": "base", "run": run, "params": n.astype(int),
                  "tokens": d, "seed": seed_, "final": step == per, "metric": "val/loss",
                  "kind": "loss", "value": loss}).to_csv(path, index=False)


def measure(code: str) -> tuple[float, float]:
    """Seconds and peak RSS (GB) of ``python -c code`` in a fresh process."""
    probe = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK', resource."
             "getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); ")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe + code], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK")]
    if done.returncode or not peak:
        raise SystemExit(f"failed: {code}\n{done.stderr}")
    return seconds, int(peak[-1].split()[1]) / 1e6  # ru_maxrss is in KB on Linux


SPLIT = """
import time
t0 = time.perf_counter()
from scaling_ladder.cli.common import load
from scaling_ladder.laws.forms import make_law
t1 = time.perf_counter()
obs = load([{path!r}], None, None, None, None, None, "all")
t2 = time.perf_counter()
make_law("chinchilla").fit(obs, bootstrap=0)
t3 = time.perf_counter()
print("SPLIT", t1 - t0, t2 - t1, t3 - t2)
"""

BAD = """
from scaling_ladder.errors import InputError
from scaling_ladder.observations import read_observations
try:
    read_observations({path!r})
except InputError as exc:
    print("ERROR", exc)
"""


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed: {code}\n{done.stderr}")
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the table here and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "million.csv"
        if not path.exists():
            write_table(path, args.rows)
        mb = os.path.getsize(path) / 1e6
        print(f"{args.rows:,} rows, {mb:.0f} MB CSV; each command in a fresh process")
        base = measure(f"import pandas as pd; pd.read_csv({str(path)!r})")
        cli = "from scaling_ladder.cli import main; import sys; sys.argv = {argv!r}; main()"
        fits = {}
        for which in ("final", "all"):
            argv = ["ladder", "fit", str(path), "--bootstrap", "0", "--checkpoints", which,
                    "--json", str(Path(tmp) / f"fit-{which}.json")]
            fits[which] = measure(cli.format(argv=argv))
        print(f"  baseline pandas.read_csv          {base[0]:6.2f} s  peak {base[1]:.2f} GB")
        for which, (s, gb) in fits.items():
            ok = "met" if s <= GOAL_S and gb <= GOAL_GB else "MISSED"
            print(f"  ladder fit --checkpoints {which:<6}  {s:6.2f} s  peak {gb:.2f} GB  "
                  f"({s / base[0]:.2f}x the read's time; goal <= {GOAL_S:g} s, "
                  f"<= {GOAL_GB:g} GB: {ok})")
        line = next(x for x in run(SPLIT.format(path=str(path))).splitlines()
                    if x.startswith("SPLIT"))
        imp, table, law = map(float, line.split()[1:])
        print(f"  in one process (--checkpoints all): import {imp:.2f} s, read + validate + "
              f"select {table:.2f} s ({table / base[0]:.2f}x the read's time), "
              f"LawFit {law:.2f} s")
        bad = Path(tmp) / "bad.csv"
        with open(path, "rb") as src, open(bad, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.write(b"bench,base,r999,1000000000,5e10,0,True,val/loss,loss,-3.5\n")
        s, gb = measure(BAD.format(path=str(bad)))
        message = next(x for x in run(BAD.format(path=str(bad))).splitlines()
                       if x.startswith("ERROR"))
        print(f"  a bad last row                    {s:6.2f} s  peak {gb:.2f} GB  "
              f"({s / base[0]:.2f}x the read's time)\n    {message[6:]}")


if __name__ == "__main__":
    main()
