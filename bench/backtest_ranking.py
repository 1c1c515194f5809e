"""Does a multi-scale fit beat the naive ranking? A backtest on every multi-recipe ladder we have.

DataDecide's question (Magnusson et al. 2025, arXiv:2504.11393): ranking recipes at one proxy
scale gets most decisions at the target right at a few percent of its compute; a scaling-law
fit earns its place only by doing better at equal proxy compute. For each ladder the runs above
a cut are hidden and predicted from the proxies below it, with 2 proxy sizes and with 3 or
more, by the joint fit of ``compare`` and by the baselines of
:mod:`scaling_ladder.compare.baselines` (:func:`scaling_ladder.backtest`). Scored by pairwise
decision accuracy against the observed order; each method is charged the proxy compute of the
runs it uses (sum of 6ND per recipe, as a fraction of one target run).

Ladders:

* **overtrain** (Gadre et al. 2024): c4, redpajama, refinedweb; proxies <= 411M -> 1.44B at
  20 tokens/param (the one multiplier all recipes have there); 8 ``val/*`` losses and
  ``ds/average``. 2 sizes = {154M, 411M}, 3+ = {10.6M, 78.9M, 154M, 411M}. The fit sees every
  proxy run (token multipliers 5-640, as compare would), and once more only the runs at
  <= 20 tokens/param (``tool <=20``): a fit at a compute near the single-scale rankings'.
  The 6.89B runs use another learning rate and batch: reported apart.
* **regmix** (Liu et al. 2025): 256 mixtures at 1M and 60M only: one proxy size, so only
  single-scale ranking (1M -> 60M) is scored, on 13 Pile slices and their mean.
* **datablations** (Muennighoff et al. 2023): {c4, oscar} x epochs at 2.8B, 4.2B, 8.7B:
  proxies 2.8B and 4.2B -> 8.7B, so 2 sizes only.
* **demo**: ``ladder demo --out DIR`` (3 recipes x 3 sizes); the largest size is the target.

    python bench/backtest_ranking.py [--demo DIR/ladder/observations.jsonl] [--md FILE]

With ``--md`` the tables are written to FILE too; a section of FILE between
``<!-- reading -->`` and ``<!-- /reading -->`` (the reading of the table) is kept.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import scaling_ladder as sl
from scaling_ladder.compare.scales import fmt_count

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
METHODS = ["default", "tool", "tool <=20", "naive", "mean_rank", "log_n_trend", "blend 0.25",
           "blend 0.5", "blend 0.75", "single@tool compute"]
BLENDS = ("blend 0.25", "blend 0.5", "blend 0.75")

# README of the shared datasets: RegMix decision accuracy, 1M against 60M, per metric
REGMIX_REFERENCE = {
    "val/pile_arxiv": 0.970, "val/pile_dm_mathematics": 0.962, "val/pile_freelaw": 0.984,
    "val/pile_github": 0.965, "val/pile_gutenberg_pg_19": 0.971, "val/pile_hackernews": 0.968,
    "val/pile_pile_cc": 0.969, "val/pile_pubmed_abstracts": 0.982,
    "val/pile_pubmed_central": 0.970, "val/pile_stackexchange": 0.981,
    "val/pile_ubuntu_irc": 0.946, "val/pile_uspto_backgrounds": 0.973,
    "val/pile_wikipedia_en": 0.981}


class Out:
    """Print to stdout and collect the same text for the Markdown file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


def md_table(df: pd.DataFrame, floats: str = "{:.3f}") -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "-" if not np.isfinite(v) else floats.format(v)
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def summarize(t: pd.DataFrame, c: pd.DataFrame, methods) -> dict[str, tuple[float, float]]:
    out = {}
    for m in methods:
        if m not in t:
            continue
        acc = t[m].to_numpy(float)
        comp = c.loc[c["method"] == m, "compute_fraction"].to_numpy(float)
        acc, comp = acc[np.isfinite(acc)], comp[np.isfinite(comp)]
        out[m] = (acc.mean() if len(acc) else np.nan, comp.mean() if len(comp) else np.nan)
    return out


def merge_restricted(bt: sl.Backtest, short: sl.Backtest | None) -> tuple[pd.DataFrame,
                                                                           pd.DataFrame]:
    """The backtest's table and compute with the restricted fit's tool column beside them."""
    t, c = bt.table.copy(), bt.compute.copy()
    if short is not None:
        key = ["metric", "target"]
        t = t.merge(short.table[key + ["tool"]].rename(columns={"tool": "tool <=20"}), on=key,
                    how="left")
        sc = short.compute[short.compute["method"] == "tool"].assign(method="tool <=20")
        c = pd.concat([c, sc], ignore_index=True)
    cols = ["metric", "target", "n_recipes"] + [m for m in METHODS if m in t] + \
        [x for x in t.columns if x.startswith("proxy ")] + ["naive_scale"]
    return t[cols], c


def ladder_table(out: Out, t: pd.DataFrame, c: pd.DataFrame) -> None:
    """One ladder: the per-(metric, target) table, then mean accuracy and compute."""
    methods = [m for m in t.columns if m in METHODS or m.startswith("proxy ")]
    s = summarize(t, c, methods)
    mean = {"metric": "**mean**", "target": "", "n_recipes": "",
            **{m: s[m][0] for m in methods}, "naive_scale": ""}
    comp = {"metric": "**compute**", "target": "", "n_recipes": "",
            **{m: s[m][1] for m in methods}, "naive_scale": ""}
    shown = pd.concat([t, pd.DataFrame([mean, comp])], ignore_index=True)
    shown = shown.drop(columns=[m for m in methods if shown[m].isna().all()])
    out(md_table(shown))
    out()


def run_pair(out, name, obs, *, sizes2, sizes3, restricted: bool, **kw):
    """Backtests with 2 and with 3+ proxy sizes (and the <=20 tokens/param fit)."""
    res = {}
    for label, sizes in (("2 sizes", sizes2), ("3+ sizes", sizes3)):
        if sizes is None:
            continue
        t0 = time.perf_counter()
        bt = sl.backtest(obs, proxy_sizes=sizes, **kw)
        short = sl.backtest(obs, proxy_sizes=sizes, fit_max_ratio=20, blend_weights=(),
                            **kw) if restricted else None
        res[label] = (bt, short, time.perf_counter() - t0)
        sz = ", ".join(fmt_count(s) for s in bt.proxy_sizes)
        out(f"{name}, {label} ({sz}): {res[label][2]:.0f} s\n")
    return res


def overtrain(out: Out, summary: dict) -> None:
    path = SHARED / "overtrain.csv"
    obs = sl.read_observations(path) if path.exists() else sl.datasets.load("overtrain")
    f = obs.frame[obs.frame["final"].to_numpy(bool)]
    big = f[f["params"] > 5e8].groupby(["params", "tokens"])["recipe"].nunique()
    targets = [k for k, n in big.items() if n == f["recipe"].nunique()]  # 1.44B and 6.89B @ 20
    out("## overtrain (Gadre et al. 2024): proxies <= 411M -> 1.44B\n")
    out("Targets: every token multiplier all three recipes have at 1.44B (only 20 "
        "tokens/param). `tool` fits every proxy run (multipliers 5-640, as compare does); "
        "`tool <=20` only the runs at <= 20 tokens/param. The 6.89B runs (lr 3e-4, 4M-token "
        "batches, against 3e-3 and 0.5-1M for all others) are scored apart below.\n")
    t0 = time.perf_counter()
    res = run_pair(out, "overtrain", obs, sizes2=[1.54e8, 4.12e8],
                   sizes3=[1.06e7, 7.89e7, 1.54e8, 4.12e8], restricted=True, baseline="c4",
                   proxy_max_params=5e8, targets=targets)
    for label, (bt, short, _) in res.items():
        t, c = merge_restricted(bt, short)
        for tgt, part in t.groupby("target", sort=False):
            cpart = c[c["target"] == tgt]
            where = "1.44B" if tgt.startswith("1.44B") else "6.89B (other optimiser settings)"
            sz = ", ".join(fmt_count(s) for s in bt.proxy_sizes)
            out(f"### overtrain -> {where}, {label} ({sz})\n")
            ladder_table(out, part.reset_index(drop=True), cpart)
            key = "overtrain" if tgt.startswith("1.44B") else "overtrain 6.9B"
            summary.setdefault(key, {})[label] = summarize(part, cpart, METHODS)
    out(f"overtrain: {time.perf_counter() - t0:.0f} s in all\n")


def regmix(out: Out, summary: dict) -> None:
    path = SHARED / "regmix.csv"
    out("## regmix (Liu et al. 2025): 256 mixtures, 1M -> 60M\n")
    if not path.exists():
        out(f"skipped: {path} not found\n")
        return
    t0 = time.perf_counter()
    obs = sl.read_observations(path)
    fr = obs.frame
    val = fr[fr["metric"].str.startswith("val/pile_")]
    mean = val.groupby(["experiment", "recipe", "run", "tokens"], as_index=False).agg(
        value=("value", "mean"), n=("value", "size"))
    first = val.drop_duplicates(["experiment", "recipe", "run", "tokens"]).drop(
        columns=["value", "metric"])
    mean = mean[mean["n"] == val["metric"].nunique()].drop(columns="n").merge(
        first, on=["experiment", "recipe", "run", "tokens"])
    mean["metric"] = "val/mean"
    frame = pd.concat([fr, mean[fr.columns]], ignore_index=True)
    bt = sl.backtest(frame, baseline="mix001", proxy_max_params=1e8, n_starts=1)
    dt = time.perf_counter() - t0
    out(f"One proxy size (the 1M model, 27.1M parameters with embeddings) below one target "
        f"(the 60M model, 136M): no fit, no trend, no mean rank over two sizes can be made; only "
        f"the single-scale ranking is scored (naive = the 1M ranking). {dt:.0f} s.\n")
    t = bt.table.copy()
    t["README"] = t["metric"].map(REGMIX_REFERENCE)
    t["reproduced"] = [("yes" if abs(a - r) < 5e-4 else f"NO ({a:.4f})") if np.isfinite(r)
                       else "" for a, r in zip(t["naive"], t["README"].astype(float),
                                               strict=True)]
    comp = bt.compute[bt.compute["method"] == "naive"]["compute_fraction"].mean()
    out(md_table(t[["metric", "target", "n_recipes", "naive", "README", "reproduced"]]))
    out(f"\nnaive compute fraction: {comp:.3f} (one 1M run per mixture over one 60M run)\n")
    summary.setdefault("regmix", {})["1 size"] = summarize(bt.table, bt.compute, METHODS)


def datablations(out: Out, summary: dict) -> None:
    path = SHARED / "datablations.csv"
    out("## datablations (Muennighoff et al. 2023): 2.8B, 4.2B -> 8.7B\n")
    if not path.exists():
        out(f"skipped: {path} not found\n")
        return
    obs = sl.read_observations(path)
    fr = obs.frame
    out("Recipes are the number of epochs over a fixed unique-token budget; each dataset's "
        "recipes are scored on its own validation loss. Every recipe has 3 sizes, so with the "
        "largest as target only 2 proxy sizes remain: no 3+ row. oscar_3ep and oscar_4ep lack "
        "the 2.8B run (a duplicate in the source) and are left out. The runs are cosine with "
        "one token budget per size, so the fit sees their checkpoints after the first 10% "
        "(compare's `auto` rule): mid-schedule points, the only variation in D there is. "
        "Below each table, the tool's accuracy when the same fit sees only k checkpoints "
        "per run (log-spaced over the last 90% of tokens): how much the fit's ordering "
        "depends on which points it sees.\n")
    for data, base in (("c4", "c4_1ep"), ("oscar", "oscar_1ep")):
        t0 = time.perf_counter()
        part = fr[(fr["dataset"] == data) & ~fr["recipe"].isin(["oscar_3ep", "oscar_4ep"])]
        bt = sl.backtest(part, baseline=base, proxy_max_params=5e9,
                         metrics=[f"val/{data}"], decision_metric=f"val/{data}")
        dt = time.perf_counter() - t0
        n = part["recipe"].nunique()
        out(f"### datablations {data} ({n} recipes), 2 sizes: {dt:.0f} s\n")
        t, c = merge_restricted(bt, None)
        ladder_table(out, t, c)
        summary.setdefault(f"datablations {data}", {})["2 sizes"] = summarize(t, c, METHODS)
        sens = []
        for k in (10, 20, 40):
            tk = sl.backtest(thin(part, k), baseline=base, proxy_max_params=5e9,
                             metrics=[f"val/{data}"], decision_metric=f"val/{data}",
                             blend_weights=())
            sens.append(f"{k}: {tk.table['tool'].iloc[0]:.3f}")
        out(f"tool with k checkpoints per run: {'; '.join(sens)} (all: "
            f"{bt.table['tool'].iloc[0]:.3f}); naive {bt.table['naive'].iloc[0]:.3f}. "
            f"{time.perf_counter() - t0:.0f} s with these.\n")


def thin(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per run, the final checkpoint and those nearest k log-spaced token counts over the
    last 90% of its tokens (what compare's ``auto`` rule fits of a cosine run)."""
    keep = np.zeros(len(frame), dtype=bool)
    tokens = np.log(frame["tokens"].to_numpy(float))
    final = frame["final"].to_numpy(bool)
    for idx in frame.groupby(["run", "metric"], sort=False).indices.values():
        t = tokens[idx]
        grid = np.linspace(max(t.min(), t.max() + np.log(0.1)), t.max(), k)
        near = np.abs(t[:, None] - grid[None, :]).argmin(axis=0)
        keep[idx[near]] = True
        keep[idx[final[idx]]] = True
    return frame[keep]


def demo(out: Out, summary: dict, path: str | None) -> None:
    out("## demo ladder (`ladder demo`): the smaller sizes -> the largest\n")
    if not path:
        out("skipped: no --demo file given (run `ladder demo --out DIR`, then pass "
            "--demo DIR/ladder/observations.jsonl)\n")
        return
    obs = sl.read_observations(path)
    fr = obs.frame[obs.frame["metric"] != "train"]  # each recipe trains on its own data
    sizes = sorted(fr["params"].unique())
    cut = float(np.sqrt(sizes[-1] * sizes[-2]))
    out(f"{fr['recipe'].nunique()} recipes x {len(sizes)} sizes "
        f"({', '.join(fmt_count(s) for s in sizes)} parameters), WSD runs with cooldown "
        f"branches (three annealed (N, D) points per run). Target: every scale of the largest "
        f"size; Kaplan's law, as the demo's compare. Training loss left out (each recipe "
        f"trains on its own data).\n")
    t0 = time.perf_counter()
    # with 3 sizes, 2 proxies are all the ladder has: one backtest, not two alike
    res = run_pair(out, "demo", fr, sizes2=sizes[-3:-1],
                   sizes3=sizes[:-1] if len(sizes) > 3 else None, restricted=False,
                   baseline="balanced", proxy_max_params=cut, law=sl.KaplanLaw(),
                   decision_metric="val/mean")
    for label, (bt, _, _) in res.items():
        t, c = merge_restricted(bt, None)
        out(f"### demo, {label} ({', '.join(fmt_count(s) for s in bt.proxy_sizes)})\n")
        ladder_table(out, t, c)
        summary.setdefault("demo", {})[label] = summarize(t, c, METHODS)
    out(f"demo: {time.perf_counter() - t0:.0f} s in all\n")


READING = ("<!-- reading -->", "<!-- /reading -->")  # kept when --md rewrites the file
POOLED = {"2 sizes": ("overtrain", "datablations c4", "datablations oscar", "demo"),
          "3+ sizes": ("overtrain", "demo")}


def summary_table(summary: dict) -> pd.DataFrame:
    cols = {}
    for label, ladders in POOLED.items():
        have = [summary[x][label] for x in ladders if label in summary.get(x, {})]
        if not have:
            continue
        cols[f"mean of ladders, {label}"] = {
            m: f"{np.mean([h[m][0] for h in have]):.3f}"
            for m in METHODS if all(m in h and np.isfinite(h[m][0]) for h in have)}
    for ladder, by_sizes in summary.items():
        for label, s in by_sizes.items():
            cols[f"{ladder}, {label}"] = {
                m: (f"{a:.3f} ({c:.3g})" if np.isfinite(a) else "-") for m, (a, c) in s.items()}
    table = pd.DataFrame(cols).reindex(METHODS).fillna("-")
    table.insert(0, "method", table.index)
    return table.reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", help="observations file of `ladder demo` (skipped without)")
    ap.add_argument("--md", help="also write the tables to this Markdown file")
    ap.add_argument("--skip", default="", help="comma list of overtrain,regmix,datablations,demo")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    out = Out()
    summary: dict = {}
    t0 = time.perf_counter()
    body = Out()
    for name, fn in (("overtrain", overtrain), ("regmix", regmix),
                     ("datablations", datablations)):
        if name not in skip:
            fn(body, summary)
    if "demo" not in skip:
        demo(body, summary, args.demo)
    total = time.perf_counter() - t0
    out("# Backtest: does the multi-scale fit beat the naive ranking?\n")
    cmd = "python bench/backtest_ranking.py " + " ".join(sys.argv[1:])
    out(f"Produced by `{cmd.strip()}` on {datetime.date.today().isoformat()} "
        f"({total:.0f} s on 2 CPU cores)"
        + (", the demo file written by `ladder demo --out DIR` beforehand" if args.demo
           else "") + ".\n")
    out("Mean pairwise decision accuracy (DataDecide, Magnusson et al. 2025) over every "
        "(metric, target) of each ladder; in brackets the proxy compute each method is "
        "charged: 6ND of the runs it uses per recipe, as a fraction of one target run. "
        "default: the order compare reports (the fit's where compare's decision rests on it: "
        "its own leave-largest-out backtest passes, nothing is flagged and the target is >= "
        "10x the largest proxy's N; else the ranking at the largest proxy); "
        "tool: the joint fit of compare (point predictions, the mixture of sharing variants); "
        "tool <=20: the same fit on the "
        "runs at <= 20 tokens/param only; naive: ranking at the largest proxy; mean_rank: "
        "mean rank over the two largest proxies; log_n_trend: per recipe a line in log N; "
        "blend w: w x fitted delta + (1 - w) x observed delta at the largest proxy; "
        "single@tool compute: the ranking at the one proxy scale with the most compute "
        "within the tool's. The `mean of ladders` columns average the ladders' means "
        "(2 sizes: overtrain -> 1.44B, datablations c4 and oscar, demo; 3+ sizes: overtrain "
        "-> 1.44B, demo), leaving out regmix (one size) and the 6.89B target (other "
        "optimiser settings).\n")
    out(md_table(summary_table(summary)))
    out()
    if args.md and Path(args.md).exists():  # keep the hand-written reading of the table
        text = Path(args.md).read_text()
        start, end = text.find(READING[0]), text.find(READING[1])
        if 0 <= start < end:
            out.lines.append(text[start:end + len(READING[1])] + "\n")
    for line in body.lines:
        out.lines.append(line)
    if args.md:
        Path(args.md).write_text("\n".join(out.lines) + "\n")


if __name__ == "__main__":
    main()
