"""Recipes side by side at matched scales: values, seed noise, deltas with CIs, trends.

A *scale* is a cell of matched model size and training tokens (or of matched FLOPs, for
IsoFLOP designs, where each recipe's best model at the budget stands for it). At every scale and
for every metric this module gives each recipe's value (mean over seeds, final checkpoints), the
run-to-run noise, and the delta ``recipe - baseline`` with a CI and its effect-to-noise ratio.

Noise, in order of preference: the spread across seeds (pooled over recipes); else the spread of
each run's last checkpoints around their trend (Signal and Noise, Heineman et al. 2025,
arXiv:2508.13144, use the last checkpoints' standard deviation); else the residual scatter of the
per-scale values around an additive model (scale + recipe + recipe x log N), which counts
genuine recipe-by-scale wiggles as noise and so errs on the wide side. The source is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..format import count as fmt_count
from .ranking import RankAtScale, decision_accuracy, rank_agreement

MIN_BOOTSTRAP_SEEDS = 10  # below this a percentile bootstrap undercovers: use t intervals
_LAST_CHECKPOINTS = 5


def _clusters(logv: np.ndarray, tol: float) -> np.ndarray:
    """Cluster ids of sorted-gap clustering: a new cluster where neighbours differ by > tol."""
    order = np.argsort(logv, kind="stable")
    ids = np.empty(len(logv), dtype=int)
    ids[order] = np.concatenate([[0], np.cumsum(np.diff(logv[order]) > tol)]) if len(logv) else []
    return ids


def final_values(frame: pd.DataFrame, *, match: str, tolerance: float = 0.01,
                 primary: str | None = None) -> pd.DataFrame:
    """One row per (metric, run): the final value, its scale, and the run's checkpoint noise.

    ``match`` is ``params-tokens`` (cells of N and D within ``tolerance`` dex) or ``flops``
    (cells of C; per recipe only the (N, D) with the best ``primary`` value is kept).
    """
    fin = frame[frame["final"].to_numpy(dtype=bool)].copy()
    fin["ckpt_sd"] = _checkpoint_noise(frame).reindex(
        pd.MultiIndex.from_frame(fin[["metric", "run"]])).to_numpy()
    if match == "params-tokens":
        pc = _clusters(np.log10(fin["params"].to_numpy(float)), tolerance)
        tc = _clusters(np.log10(fin["tokens"].to_numpy(float)), tolerance)
        fin["_key"] = pc * 100_000 + tc
    else:
        fin["_key"] = _clusters(np.log10(fin["flops"].to_numpy(float)), tolerance)
    rep = fin.groupby("_key").agg(scale_params=("params", "median"),
                                  scale_tokens=("tokens", "median"),
                                  scale_flops=("flops", "median"))
    fin = fin.join(rep, on="_key")
    if match == "flops":
        fin = _best_cell_per_budget(fin, primary)
    labels = {k: (f"{fmt_count(r.scale_params)} @ {fmt_count(r.scale_tokens)} tok"
                  if match == "params-tokens" else f"C={r.scale_flops:.3g}")
              for k, r in rep.iterrows()}
    if len(set(labels.values())) < len(labels):  # rounding collided: show more digits
        labels = {k: (f"{r.scale_params:.5g} @ {r.scale_tokens:.5g} tok"
                      if match == "params-tokens" else f"C={r.scale_flops:.6g}")
                  for k, r in rep.iterrows()}
    fin["scale"] = fin["_key"].map(labels)
    return fin.drop(columns="_key").reset_index(drop=True)


def _best_cell_per_budget(fin: pd.DataFrame, primary: str | None) -> pd.DataFrame:
    """IsoFLOP matching: per (recipe, budget) keep the model size with the best primary value."""
    ref = fin[fin["metric"] == primary] if primary is not None else fin
    cell = ref.groupby(["recipe", "_key", "params", "tokens"], as_index=False)["value"].mean()
    better_low = (ref["kind"] != "accuracy").all()
    cell = cell.sort_values("value", ascending=better_low)
    best = cell.drop_duplicates(["recipe", "_key"])[["recipe", "_key", "params", "tokens"]]
    return fin.merge(best, on=["recipe", "_key", "params", "tokens"], how="inner")


def _checkpoint_noise(frame: pd.DataFrame) -> pd.Series:
    """Per (metric, run): sd of the last checkpoints around a line in log tokens (ddof 2).

    A WSD run's final checkpoint is left out: its learning-rate decay drops the loss below the
    stable phase's trend by design (Hägele et al. 2024, arXiv:2405.18392), a step the line
    would count as noise; the trend is that of the stable checkpoints before it.
    """
    if "schedule" in frame:
        annealed = (frame["schedule"] == "wsd").to_numpy(bool) & frame["final"].to_numpy(bool)
        frame = frame[~annealed]
    f = frame[["metric", "run", "tokens", "value"]].sort_values(["metric", "run", "tokens"])
    f = f.groupby(["metric", "run"], sort=False).tail(_LAST_CHECKPOINTS)
    f = f.assign(x=np.log(f["tokens"].to_numpy(float)))
    g = f.groupby(["metric", "run"], sort=False)
    dx = f["x"].to_numpy() - g["x"].transform("mean").to_numpy()
    dy = f["value"].to_numpy(float) - g["value"].transform("mean").to_numpy()
    f = f.assign(sxy=dx * dy, sxx=dx * dx, syy=dy * dy)
    agg = f.groupby(["metric", "run"], sort=False).agg(
        sxy=("sxy", "sum"), sxx=("sxx", "sum"), syy=("syy", "sum"), n=("sxy", "size"))
    with np.errstate(divide="ignore", invalid="ignore"):
        rss = agg["syy"] - np.where(agg["sxx"] > 0, agg["sxy"] ** 2 / agg["sxx"], 0.0)
        sd = np.sqrt(np.maximum(rss, 0.0) / (agg["n"] - 2))
    return sd.where(agg["n"] >= _LAST_CHECKPOINTS)


def _residual_noise(cells: pd.DataFrame, baseline: str) -> tuple[float, int]:
    """Residual sd (and df) of per-scale values around scale + recipe + recipe x log N
    (or scale + recipe when the interaction leaves fewer than 2 degrees of freedom)."""
    if cells["recipe"].nunique() < 2:
        return float("nan"), 0
    scales = pd.get_dummies(cells["scale"]).to_numpy(float)
    others = [r for r in cells["recipe"].unique() if r != baseline]
    col = cells["recipe"].map({r: j for j, r in enumerate(others)}).to_numpy(float)
    rows = np.flatnonzero(np.isfinite(col))  # the baseline's rows have no column
    rec = np.zeros((len(cells), len(others)))
    rec[rows, col[rows].astype(int)] = 1.0  # one column per other recipe
    logn = np.log10(cells["params"].to_numpy(float))
    y = cells["value"].to_numpy(float)
    # with many recipes and few scales the interaction eats every degree of freedom: then
    # the additive model alone (scale + recipe)
    for x in (np.concatenate([scales, rec, rec * (logn - logn.mean())[:, None]], axis=1),
              np.concatenate([scales, rec], axis=1)):
        coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
        df = len(y) - int(rank)
        if df >= 2:
            return float(np.sqrt(np.sum((y - x @ coef) ** 2) / df)), df
    return float("nan"), df


def _pooled(sds: np.ndarray, dfs: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(sds) & (dfs > 0)
    df = int(dfs[ok].sum())
    if df == 0:
        return float("nan"), 0
    return float(np.sqrt(np.sum(dfs[ok] * sds[ok] ** 2) / df)), df


def per_scale_table(finals: pd.DataFrame, *, baseline: str, level: float = 0.95,
                    seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """Every recipe's value per (metric, scale), the noise, and the delta against ``baseline``.

    Columns: metric, kind, scale, params, tokens, flops, recipe, n_runs, value, seed_sd,
    noise_sd, noise_df, noise_source (seeds | checkpoints | residual | none), delta, ci_lo,
    ci_hi, ci_method, se and se_df (the standard error of the delta and its degrees of
    freedom: those of the t interval, or of the analytic t counterpart of a bootstrap
    interval; one-sided tests on the delta use them), effect_to_noise (|delta| / noise_sd),
    random_baseline, and snr: the spread of the recipes at the scale (max - min) over the
    noise, the signal-to-noise ratio of Heineman et al. (2025) that says how far a ranking at
    this scale can be trusted.
    """
    from scipy import stats  # imported when used: scipy.stats is a second to import
    keys = ["metric", "scale", "recipe"]
    ck = finals["ckpt_sd"].to_numpy(float)
    f = finals.assign(_ck2=np.where(np.isfinite(ck), ck * ck, 0.0), _ckn=np.isfinite(ck) * 1)
    agg = {"kind": ("kind", "first"), "params": ("scale_params", "first"),
           "tokens": ("scale_tokens", "first"), "flops": ("scale_flops", "first"),
           "n_runs": ("value", "size"), "value": ("value", "mean"), "seed_sd": ("value", "std"),
           "_ck2": ("_ck2", "sum"), "_ckn": ("_ckn", "sum")}
    if "random_baseline" in f:
        agg["random_baseline"] = ("random_baseline", "mean")
    cells = f.groupby(keys, sort=False).agg(**agg).reset_index()
    if "random_baseline" not in cells:
        cells["random_baseline"] = np.nan
    cells = _noise(cells, baseline)
    base = cells.loc[cells["recipe"] == baseline, ["metric", "scale", "value", "n_runs"]]
    cells = cells.merge(base.rename(columns={"value": "_vb", "n_runs": "_nb"}),
                        on=["metric", "scale"], how="left")
    is_base = (cells["recipe"] == baseline).to_numpy()
    delta = np.where(is_base, np.nan, cells["value"] - cells["_vb"])
    alpha = (1 - level) / 2
    df = cells["noise_df"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = (cells["noise_sd"].to_numpy(float)
              * np.sqrt(1 / cells["n_runs"] + 1 / cells["_nb"]).to_numpy(float))
        half = stats.t.ppf(1 - alpha, np.maximum(df, 1)) * se
    ok = np.isfinite(half) & (df > 0) & np.isfinite(delta)
    cells["delta"] = delta
    cells["ci_lo"] = np.where(ok, delta - half, np.nan)
    cells["ci_hi"] = np.where(ok, delta + half, np.nan)
    cells["se"] = np.where(ok, se, np.nan)
    cells["se_df"] = np.where(ok, df, np.nan)
    method = ("t interval, " + cells["noise_source"] + " noise (df "
              + cells["noise_df"].astype(int).astype(str) + ")")
    cells["ci_method"] = np.where(ok, method, np.where(np.isfinite(delta), "no noise estimate",
                                                       ""))
    seeded = np.isfinite(delta) & (cells["n_runs"] >= 2).to_numpy() & (
        cells["_nb"] >= 2).to_numpy()
    if seeded.any():
        _seed_deltas(cells, finals, baseline, np.flatnonzero(seeded), alpha,
                     np.random.default_rng(seed), n_boot)
    g = cells.groupby(["metric", "scale"], sort=False)
    # max - min, not transform(np.ptp): that is a Python call per cell (0.4 s of 54 metrics)
    spread = g["value"].transform("max") - g["value"].transform("min")
    with np.errstate(divide="ignore", invalid="ignore"):
        cells["effect_to_noise"] = np.abs(cells["delta"]) / cells["noise_sd"]
        cells["snr"] = np.where(g["recipe"].transform("size") > 1,
                                spread / cells["noise_sd"], np.nan)
    return cells.drop(columns=["_ck2", "_ckn", "_vb", "_nb"])


def _noise(cells: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Noise per (metric, scale): pooled seed sd, else checkpoint sd, else residual sd."""
    dfs = (cells["n_runs"] - 1).to_numpy(float)
    sv = dfs * np.nan_to_num(cells["seed_sd"].to_numpy(float)) ** 2
    g = cells.assign(_df=dfs, _sv=sv).groupby(["metric", "scale"], sort=False)
    seed_df, seed_var = g["_df"].transform("sum").to_numpy(), g["_sv"].transform("sum").to_numpy()
    ck_n, ck_var = g["_ckn"].transform("sum").to_numpy(), g["_ck2"].transform("sum").to_numpy()
    resid = {m: _residual_noise(mc, baseline) for m, mc in cells.groupby("metric", sort=False)}
    r_sd = cells["metric"].map(lambda m: resid[m][0]).to_numpy(float)
    r_df = cells["metric"].map(lambda m: resid[m][1]).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        use_seed, use_ck = seed_df > 0, (seed_df == 0) & (ck_n > 0)
        use_res = ~use_seed & ~use_ck & np.isfinite(r_sd)
        sd = np.select([use_seed, use_ck, use_res],
                       [np.sqrt(seed_var / seed_df), np.sqrt(ck_var / ck_n), r_sd], np.nan)
    cells["noise_sd"] = sd
    cells["noise_df"] = np.select([use_seed, use_ck, use_res],
                                  [seed_df, ck_n * (_LAST_CHECKPOINTS - 2), r_df], 0).astype(int)
    cells["noise_source"] = np.select([use_seed, use_ck, use_res],
                                      ["seeds", "checkpoints", "residual"], "none")
    return cells


def _seed_deltas(cells, finals, baseline, rows, alpha, rng, n_boot) -> None:
    """CIs of deltas measured over seeds: paired by seed id when both arms have the same
    seeds (a percentile bootstrap over the pairs from 10 seeds, the paired t interval below),
    else a percentile bootstrap over each arm's seeds from 10 seeds each (else the pooled t
    interval already in place). Small-sample percentile intervals are too narrow (Efron &
    Tibshirani 1993, ch. 13), hence the t intervals below 10 seeds. ``se``/``se_df`` are the
    t statistics' own (paired: sd of the differences over sqrt(n), n - 1 df; unpaired: Welch)."""
    from scipy import stats  # imported when used: scipy.stats is a second to import
    runs = {k: (v["value"].to_numpy(float), v["seed"].to_numpy())
            for k, v in finals.groupby(["metric", "scale", "recipe"], sort=False)}
    for i in rows:
        m, sc, r = cells.at[i, "metric"], cells.at[i, "scale"], cells.at[i, "recipe"]
        vr, sr = runs[(m, sc, r)]
        vb, sb = runs[(m, sc, baseline)]
        pr = {s: v for s, v in zip(sr, vr, strict=True) if not pd.isna(s)}
        pb = {s: v for s, v in zip(sb, vb, strict=True) if not pd.isna(s)}
        if len(pr) == len(vr) and len(pb) == len(vb) and set(pr) == set(pb):
            d = np.array([pr[s] - pb[s] for s in pr])
            se, se_df = d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1.0
            if len(d) >= MIN_BOOTSTRAP_SEEDS:
                means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
                lo, hi = np.quantile(means, [alpha, 1 - alpha])
                method = f"paired bootstrap over {len(d)} seeds"
            else:
                half = stats.t.ppf(1 - alpha, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                lo, hi = d.mean() - half, d.mean() + half
                method = f"paired t interval over {len(d)} seeds"
        elif len(vr) >= MIN_BOOTSTRAP_SEEDS and len(vb) >= MIN_BOOTSTRAP_SEEDS:
            means = (vr[rng.integers(0, len(vr), size=(n_boot, len(vr)))].mean(axis=1)
                     - vb[rng.integers(0, len(vb), size=(n_boot, len(vb)))].mean(axis=1))
            lo, hi = np.quantile(means, [alpha, 1 - alpha])
            method = "bootstrap over seeds (unpaired)"
            se, se_df = _welch(vr, vb)
        else:
            continue
        cells.loc[i, ["ci_lo", "ci_hi", "ci_method", "se", "se_df"]] = [
            float(lo), float(hi), method, float(se), float(se_df)]


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Standard error of mean(a) - mean(b) and its Welch-Satterthwaite degrees of freedom."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se2 > 0 else np.nan
    return float(np.sqrt(se2)), float(df)


def better_sign(kind: str) -> float:
    """+1 when higher is better (accuracy), -1 when lower is better (loss)."""
    return 1.0 if kind == "accuracy" else -1.0


# ------------------------------------------------------------------------- across scales


@dataclass(frozen=True)
class Survival:
    """Does a recipe's gain survive scaling? Sign consistency, trend with log N, top sizes.

    ``trend_per_decade`` is the slope of the delta (metric units, ``recipe - baseline``) per
    decade of N, holding tokens-per-parameter fixed when it varies; ``trend`` says it in words
    for the *gain* (grows, holds, fades, reverses, deficit grows, deficit shrinks).
    """

    n_scales: int
    share_better: float
    sign_consistency: float
    top_sizes: tuple[float, ...]
    top_share_better: float
    trend_per_decade: float
    trend_ci: tuple[float, float]
    trend: str

    def to_dict(self) -> dict[str, Any]:
        return {"n_scales": self.n_scales, "share_better": self.share_better,
                "sign_consistency": self.sign_consistency, "top_sizes": list(self.top_sizes),
                "top_share_better": self.top_share_better,
                "trend_per_decade": self.trend_per_decade, "trend_ci95": list(self.trend_ci),
                "trend": self.trend}


def recipe_rows(table: pd.DataFrame, baseline: str) -> dict[str, pd.DataFrame]:
    """Each recipe's rows of ``table`` with the baseline's, in the table's order: all that
    :func:`survival` and the per-recipe evidence read, split once (a filter of the whole
    table per recipe is quadratic in recipes: 4 s of 256 recipes' comparison)."""
    at = {r: np.asarray(p) for r, p in table.groupby("recipe", sort=False,
                                                      observed=True).indices.items()}
    base = at.get(baseline, np.empty(0, dtype=int))
    return {r: table.iloc[np.sort(np.concatenate([p, base])) if r != baseline else p]
            for r, p in at.items()} | {baseline: table.iloc[base]}


def survival(table: pd.DataFrame, recipe: str, *, top_sizes: int = 2,
             level: float = 0.95) -> Survival:
    """Sign consistency, top-size sign share and trend of ``recipe``'s delta (one metric)."""
    rows = table[(table["recipe"] == recipe) & table["delta"].notna()].sort_values("flops")
    nan = float("nan")
    if rows.empty:
        return Survival(0, nan, nan, (), nan, nan, (nan, nan), "no shared scales")
    s = better_sign(rows["kind"].iloc[0])
    gain = s * rows["delta"].to_numpy(float)
    largest = rows.sort_values(["flops", "params"]).iloc[-1]
    ref_sign = np.sign(s * largest["delta"])
    sizes = np.sort(rows["params"].unique())[::-1][:top_sizes]
    top = rows["params"].isin(sizes).to_numpy()
    slope, ci, label = _trend(rows, gain, level)
    return Survival(
        n_scales=len(rows), share_better=float(np.mean(gain > 0)),
        sign_consistency=float(np.mean(np.sign(gain) == ref_sign)) if ref_sign else nan,
        top_sizes=tuple(float(v) for v in sizes), top_share_better=float(np.mean(gain[top] > 0)),
        trend_per_decade=s * slope, trend_ci=(s * ci[0], s * ci[1]) if s > 0 else
        (s * ci[1], s * ci[0]), trend=label)


def _trend(rows: pd.DataFrame, gain: np.ndarray, level: float):
    """OLS slope of the gain on log10 N (+ log10 D/N when it varies), its CI and a word."""
    from scipy import stats  # imported when used: scipy.stats is a second to import
    nan = float("nan")
    x1 = np.log10(rows["params"].to_numpy(float))
    x2 = np.log10(rows["tokens"].to_numpy(float) / rows["params"].to_numpy(float))
    if np.ptp(x1) < 1e-9:
        return nan, (nan, nan), "one size only"
    cols = [np.ones_like(x1), x1]
    if np.ptp(x2) > 1e-6 and len(x1) > 4:
        cols.append(x2 - x2.mean())
    x = np.stack(cols, axis=1)
    coef, _, rank, _ = np.linalg.lstsq(x, gain, rcond=None)
    df = len(gain) - rank
    b = float(coef[1])
    if df < 1:
        return b, (nan, nan), "too few scales for a trend"
    s2 = np.sum((gain - x @ coef) ** 2) / df
    se = float(np.sqrt(s2 * np.linalg.pinv(x.T @ x)[1, 1]))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    lo, hi = b - half, b + half
    g_small, g_large = coef[0] + b * x1.min(), coef[0] + b * x1.max()
    if lo <= 0 <= hi:
        label = "holds"
    elif g_small > 0 and g_large > 0:
        label = "grows" if b > 0 else "fades"
    elif g_small < 0 and g_large < 0:
        label = "deficit shrinks" if b > 0 else "deficit grows"
    else:
        label = "reverses"
    return b, (lo, hi), label


def reference_scale(t: pd.DataFrame) -> str:
    """The largest-compute scale holding the most recipes (one metric's rows)."""
    # what t.groupby("scale").agg(n=size, flops=first).sort_values(["n", "flops"]).index[-1]
    # says, in arrays: that costs 35 ms a call, and compare calls it once per metric and more
    scales, first, n = np.unique(t["scale"].to_numpy(), return_index=True, return_counts=True)
    flops = t["flops"].to_numpy()[first]
    return scales[np.lexsort((flops, n))[-1]]


def proxy_accuracy(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per metric: decision accuracy of every scale against its reference scale (the largest
    compute holding the most recipes), as in :func:`rank_stability` but for all metrics."""
    out = {}
    # one pivot for every metric (a pivot per metric was 40 ms each); a recipe a metric lacks
    # is NaN there, which decision_accuracy leaves out as the per-metric pivot did
    wide_all = table.pivot_table(index=["metric", "scale"], columns="recipe", values="value")
    values = wide_all.to_numpy(float)  # rows found by position: a .loc per cell was 3 ms
    row = {key: i for i, key in enumerate(wide_all.index)}
    for metric, t in table.groupby("metric", sort=True):
        ref = reference_scale(t)
        ref_vals = values[row[(metric, ref)]]
        accs = {}
        scales, first = np.unique(t["scale"].to_numpy(), return_index=True)
        in_order = scales[np.argsort(first)]  # as they come, then by compute
        flops = t["flops"].to_numpy(float)[np.sort(first)]
        for scale in in_order[np.argsort(flops, kind="stable")]:
            if scale != ref:
                acc = decision_accuracy(values[row[(metric, scale)]], ref_vals)
                if np.isfinite(acc):
                    accs[scale] = acc
        out[metric] = {"reference_scale": ref, "scales": accs,
                       "mean": float(np.mean(list(accs.values()))) if accs else None}
    return out


def rank_stability(table: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Kendall tau-b, Spearman rho and decision accuracy of every scale against the largest.

    The reference is the largest-compute scale holding the most recipes (DataDecide's target
    is the largest scale; Magnusson et al. 2025); ``compute_fraction`` is each proxy's compute
    over the reference's (6ND over 6ND), the compute axis of DataDecide.
    """
    t = table[table["metric"] == metric]
    if t.empty:
        return {"metric": metric, "reference_scale": None, "scales": []}
    ref = reference_scale(t)
    ref_values = t[t["scale"] == ref].set_index("recipe")["value"].to_dict()
    ref_flops = float(t.loc[t["scale"] == ref, "flops"].iloc[0])
    higher = t["kind"].iloc[0] == "accuracy"
    rows = []
    for scale, sc in t.sort_values("flops").groupby("scale", sort=False):
        if scale == ref:
            continue
        a = rank_agreement(sc.set_index("recipe")["value"].to_dict(), ref_values,
                           higher_is_better=higher)
        rows.append({"scale": scale, "params": float(sc["params"].iloc[0]),
                     "tokens": float(sc["tokens"].iloc[0]),
                     "compute_fraction": float(sc["flops"].iloc[0]) / ref_flops,
                     "snr": float(sc["snr"].iloc[0]), "n_recipes": a.n,
                     "decision_accuracy": a.decision_accuracy, "kendall_tau": a.kendall_tau,
                     "spearman_rho": a.spearman_rho, "regret": a.regret})
    return {"metric": metric, "reference_scale": ref, "scales": rows}


def observed_rankings(table: pd.DataFrame, metric: str, *, baseline: str,
                      n: int = 1) -> tuple[RankAtScale, ...]:
    """The ranking the data show at the ``n`` largest scales holding every recipe, largest first.

    Scales are those of ``table`` (a per-scale table) for ``metric`` that hold the baseline;
    when none holds every recipe, those holding the most (the rest listed as ``missing``).
    Largest = most compute, then most parameters. No law is involved: this is what a comparison
    can say in words when a prediction at the target cannot be trusted (DESIGN.md: a prediction
    never silently contradicts the data) or the metric is not a loss.
    """
    t = table[table["metric"] == metric]
    if t.empty or n < 1:
        return ()
    recipes = sorted(t["recipe"].astype(str).unique())
    info = t.groupby("scale", sort=False).agg(
        n=("recipe", "nunique"), flops=("flops", "first"), params=("params", "first"),
        has_base=("recipe", lambda r: baseline in set(r)))
    info = info[info["has_base"].astype(bool) & (info["n"] >= 2)]
    if info.empty:
        return ()
    info = info[info["n"] == info["n"].max()].sort_values(["flops", "params"], ascending=False)
    return tuple(_rank_at(t[t["scale"] == scale], baseline, recipes)
                 for scale in info.index[:n])


def observed_ranking(table: pd.DataFrame, metric: str, *, baseline: str,
                     loss_units: str = "nats") -> RankAtScale | None:
    """The ranking the data show at the largest scale holding every recipe (or the most);
    None when no scale holds the baseline and another recipe. See :func:`observed_rankings`."""
    found = observed_rankings(table, metric, baseline=baseline, n=1)
    return replace(found[0], loss_units=loss_units) if found else None


def _rank_at(cell: pd.DataFrame, baseline: str, recipes: list[str]) -> RankAtScale:
    """One scale's rows of one metric as a :class:`RankAtScale` (best first, ties by name)."""
    kind = str(cell["kind"].iloc[0])
    s = better_sign(kind)
    ranked = cell.assign(_key=-s * cell["value"].to_numpy(float)).sort_values(
        ["_key", "recipe"])
    first = cell.iloc[0]
    base = cell[cell["recipe"] == baseline].iloc[0]
    return RankAtScale(
        metric=str(first["metric"]), kind=kind, baseline=baseline, scale=str(first["scale"]),
        params=float(first["params"]), tokens=float(first["tokens"]),
        flops=float(first["flops"]), order=tuple(ranked["recipe"].astype(str)),
        values={str(r.recipe): float(r.value) for r in cell.itertuples()},
        deltas={str(r.recipe): 0.0 if r.recipe == baseline else float(r.delta)
                for r in cell.itertuples()},
        ci={str(r.recipe): (float(r.ci_lo), float(r.ci_hi)) for r in cell.itertuples()
            if r.recipe != baseline},
        noise=float(base["noise_sd"]), noise_source=str(base["noise_source"]),
        missing=tuple(r for r in recipes if r not in set(cell["recipe"])))
