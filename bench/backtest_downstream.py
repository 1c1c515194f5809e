"""Which step-2 options predict task accuracy best? A backtest that holds out the largest sizes.

The two-step prediction (Bhagia et al. 2024, arXiv:2412.04403) of :mod:`scaling_ladder.laws.
twostep`, scored against two simple baselines measured in the same run:

* **largest proxy**: the accuracy of the largest proxy run at the same tokens per parameter
  as the held-out run (else the largest proxy's mean);
* **log-compute line**: accuracy linear in log10 FLOPs, least squares over the proxies' final
  checkpoints (the straight line most ladder plots draw).

Ladders:

* **overtrain** (Gadre et al. 2024; one checkpoint per run): per recipe (c4, redpajama,
  refinedweb), proxies <= 411M -> the 1.44B runs, and proxies <= 1.44B -> the 6.89B run (which
  used another learning rate and batch). Step 1 is Chinchilla on the loss metric most
  correlated with the task; 46 tasks. Rows: every option of step 2 (law, anchor, floor).
* **olmo** (Groeneveld et al. 2024; learning curves): step 2 alone, fitted on OLMo-1B's
  checkpoints and scored on the 7B models' late checkpoints at their observed loss (the transfer
  step 2 must make from a small model to a large one): OLMo-7B and OLMo-7B-Twin-2T, the 4 tasks
  they share with OLMo-1B (whose losses are on the v3-small subsets of the same validation
  sets); options: checkpoints, moving average, anchor, floor.

Scored by the mean absolute error in accuracy points over tasks: all tasks, and the tasks the
proxies do not call unpredictable before any fit (near chance at the largest proxy, or not
rising with compute): the same tasks for every method.

    python bench/backtest_downstream.py [--only overtrain|olmo] [--md bench/backtest_downstream.md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import scaling_ladder as sl
from scaling_ladder.laws.downstream import paired_loss
from scaling_ladder.laws.twostep import (
    TaskOptions,
    _verdict,
    fit_step_two,
)
from scaling_ladder.observations.table import checkpoint_mask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OVERTRAIN_OPTIONS = [TaskOptions(law=law, anchor=anchor, floor=floor, checkpoints="final")
                     for law, anchor, floor in itertools.product(
                         ("sigmoid", "exp-error"), (True, False),
                         ("free", "baseline", "above-baseline"))]
OLMO_OPTIONS = [TaskOptions(anchor=anchor, floor=floor, smooth=smooth, checkpoints=ck)
                for ck, smooth, anchor, floor in itertools.product(
                    ("all", "last:0.5"), (1, 5), (True, False), ("free", "baseline"))]


def label(o: TaskOptions) -> str:
    return (f"{o.law}, {'anchor' if o.anchor else 'no anchor'}, floor {o.floor}"
            + (f", {o.checkpoints}, smooth {o.smooth}" if o.checkpoints != "final" else ""))


def accuracy(fit, loss) -> np.ndarray:
    pred = np.asarray(fit.predict(loss=np.asarray(loss, dtype=float)), dtype=float)
    return 1 - pred if fit.law.kind == "error" else pred


# ------------------------------------------------------------------------------ overtrain

def overtrain_rows(cut: float, held_size: float) -> list[dict]:
    frame = sl.datasets.load("overtrain").frame
    out = []
    for recipe in sorted(frame["recipe"].unique()):
        rows = frame[frame["recipe"] == recipe]
        below = rows[rows["params"] <= cut]
        held = rows[np.isclose(rows["params"], held_size, rtol=0.05)]
        step1: dict[str, sl.LawFit] = {}
        for task in sorted(m for m in rows["metric"].unique() if m.startswith("ds/")):
            metric, _ = paired_loss(below, task, (recipe,), points="all")
            if metric and metric not in step1:
                step1[metric] = sl.ChinchillaLaw().fit(below[below["metric"] == metric])
            truth = held[held["metric"] == task]
            n, d = truth["params"].to_numpy(float), truth["tokens"].to_numpy(float)
            pred_loss = step1[metric].predict(params=n, tokens=d) if metric else None
            predictable = not _verdict(below, task)
            base = {"ladder": f"overtrain -> {held_size:.3g}", "recipe": recipe, "task": task}
            out.append({**base, "method": "largest proxy", "predictable": predictable,
                        "error": _largest_proxy_error(below, truth, task)})
            out.append({**base, "method": "log-compute line", "predictable": predictable,
                        "error": _line_error(below, truth, task)})
            for o in OVERTRAIN_OPTIONS:
                try:
                    if metric is None:  # no loss falls as the task rises: no two-step guess
                        raise ValueError(task)
                    f2 = fit_step_two(below, loss_metric=metric, metric=task, options=o,
                                      bootstrap=0)
                    err = float(np.mean(np.abs(accuracy(f2, pred_loss) - truth["value"])))
                except (sl.InputError, ValueError):
                    err = np.nan
                out.append({**base, "method": label(o), "predictable": predictable,
                            "error": err})
    return out


def _largest_proxy_error(below, truth, task) -> float:
    fin = below[(below["metric"] == task) & below["final"]]
    top = fin[fin["params"] == fin["params"].max()]
    errs = []
    for _, t in truth.iterrows():
        ratio = top["tokens"] / top["params"]
        same = top[np.isclose(ratio, t["tokens"] / t["params"], rtol=0.1)]
        guess = (same if len(same) else top)["value"].mean()
        errs.append(abs(guess - t["value"]))
    return float(np.mean(errs))


def _line_error(below, truth, task) -> float:
    fin = below[(below["metric"] == task) & below["final"]]
    slope, icpt = np.polyfit(np.log10(fin["flops"]), fin["value"], 1)
    guess = icpt + slope * np.log10(truth["flops"].to_numpy(float))
    return float(np.mean(np.abs(guess - truth["value"].to_numpy(float))))


# ----------------------------------------------------------------------------------- olmo

def olmo_rows() -> list[dict]:
    frame = sl.read_observations(SHARED / "olmo.csv").frame
    small, large = frame[frame["run"] == "OLMo-1B"], frame[frame["run"] != "OLMo-1B"]
    # OLMo-1B logged the v3-small subsets of the validation sets the 7B models logged whole:
    # the same domains, sampled; a loss of one stands for the other
    small = small[~small["metric"].str.startswith("val/v2-small-")]
    small = small.assign(metric=small["metric"].str.replace("val/v3-small-", "val/"))
    out = []
    for task in sorted(m for m in frame["metric"].unique() if m.startswith("ds/")):
        if task not in set(large["metric"]) or task not in set(small["metric"]):
            continue
        both = small[small["metric"].isin(set(large["metric"]))]  # losses both models log
        metric, _ = paired_loss(both, task, ("default",), points="all")
        if metric is None:
            continue
        truth = sl.pair_metrics(large, loss_metric=metric, metric=task)
        truth = truth[checkpoint_mask(truth, "last:0.5")]
        if truth.empty:
            continue
        base = {"ladder": "olmo 1B -> 7B, 7B-Twin (step 2)", "recipe": "default",
                "task": task}
        fin = small[small["metric"] == task].sort_values("tokens")
        out.append({**base, "method": "largest proxy", "predictable": True,
                    "error": float(np.mean(np.abs(fin["value"].tail(20).mean()
                                                  - truth["value"])))})
        for o in OLMO_OPTIONS:
            f2 = fit_step_two(small, loss_metric=metric, metric=task, options=o, bootstrap=0)
            err = float(np.mean(np.abs(accuracy(f2, truth["loss"]) - truth["value"])))
            out.append({**base, "method": label(o), "predictable": True, "error": err})
    return out


def table(rows: list[dict]) -> pd.DataFrame:
    """MAE per method over the tasks every method of the ladder scored (a task with no loss
    falling as it rises has no two-step guess, so it leaves every method's mean)."""
    df = pd.DataFrame(rows)
    df["error"] *= 100
    scored = df.groupby(["ladder", "recipe", "task"])["error"].transform(
        lambda e: e.notna().all())
    df = df[scored.to_numpy(dtype=bool)]
    allt = df.groupby(["ladder", "method"])["error"].mean().rename("MAE all tasks")
    pred = (df[df["predictable"]].groupby(["ladder", "method"])["error"]
            .agg(["mean", "size"]).rename(columns={"mean": "MAE predictable", "size": "n"}))
    return pd.concat([allt, pred], axis=1).sort_values(["ladder", "MAE all tasks"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--md", type=Path, help="Also write the tables to this Markdown file.")
    ap.add_argument("--only", choices=("overtrain", "olmo"), help="One ladder only.")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = []
    if args.only != "olmo":
        rows += overtrain_rows(4.2e8, 1.44e9) + overtrain_rows(1.5e9, 6.89e9)
    if args.only != "overtrain":
        rows += olmo_rows()
    result = table(rows)
    with pd.option_context("display.width", 160, "display.max_rows", 200,
                           "display.float_format", "{:.2f}".format):
        text = result.to_string()
    print(text)
    for ladder, part in result.groupby(level=0):
        best = part["MAE all tasks"].idxmin()[1]
        naive = part.loc[(ladder, "largest proxy"), "MAE all tasks"]
        print(f"{ladder}: best {best!r} {part['MAE all tasks'].min():.2f} points vs largest "
              f"proxy {naive:.2f} (ratio {part['MAE all tasks'].min() / naive:.2f})")
    print(f"{time.time() - t0:.0f} s", file=sys.stderr)
    if args.md:
        args.md.write_text("# Two-step task prediction: backtest of the step-2 options\n\n"
                           "`python bench/backtest_downstream.py --md bench/backtest_downstream"
                           ".md`; mean absolute error in accuracy points.\n\n```\n" + text
                           + "\n```\n")


if __name__ == "__main__":
    main()
