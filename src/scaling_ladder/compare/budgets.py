"""Scales matched by tokens: a run trained past the baseline's token budget, cut at it.

A comparison matches recipes at a model size and a token budget. A run of another recipe that
went on past the baseline's budget at its size would leave that recipe with no scale shared with
the baseline; it is compared at the budget instead, at its checkpoint there, when that checkpoint
stands for a run trained to that budget. A checkpoint of a constant learning rate does; a cosine
run's mid-schedule checkpoint does not (its learning rate has not decayed, DESIGN.md
"Checkpoints a law sees"), nor a WSD run's stable-phase one, whose cooldown branches, runs of
their own, already end at their budgets (Hägele et al. 2024, arXiv:2405.18392).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .scales import fmt_count


def cut_to_budgets(frame: pd.DataFrame, *, baseline: str, tolerance: float
                   ) -> tuple[pd.DataFrame, tuple[dict[str, Any], ...], list[str]]:
    """Runs trained past the baseline's token budget at their size, cut at that budget.

    A run of another recipe whose size N matches a baseline run's (within ``tolerance``
    decades), whose final point matches none of the baseline's token budgets D at N but lies
    past some of them, is compared at the largest such D (when its recipe has no run of its own
    there): at its checkpoint at D, or the last one before D, within ``tolerance``. Only a
    checkpoint that stands for a run trained to D counts: any checkpoint of a constant
    learning rate (or of a run whose schedule is not given, said in the notes), but not a
    cosine run's mid-schedule checkpoint nor a WSD run's stable-phase one (its cooldown
    branches, runs of their own, already end at their budgets; Hägele et al. 2024).

    Returns the frame to match scales on (a cut run ends at its cut, marked final there; the
    laws still see every checkpoint), one record per run considered (experiment, run, recipe,
    params, budget, end, cut_at, cut, why) and notes saying what was cut and why.
    """
    fin = frame[frame["final"].to_numpy(dtype=bool)]
    ends = fin.groupby(["experiment", "run"], sort=False).agg(
        recipe=("recipe", "first"), params=("params", "first"), end=("tokens", "max"))
    if ends.empty:
        return frame, (), []
    logn = np.log10(ends["params"].to_numpy(float))
    logd = np.log10(ends["end"].to_numpy(float))
    rec = ends["recipe"].astype(str).to_numpy()
    is_base = rec == baseline
    records = []
    for i in np.flatnonzero(~is_base):
        same_n = np.abs(logn - logn[i]) <= tolerance
        budgets = logd[is_base & same_n]
        if not len(budgets) or (np.abs(budgets - logd[i]) <= tolerance).any():
            continue  # no baseline at this size, or already matched
        passed = budgets[budgets < logd[i]]
        if not len(passed):
            continue  # the run ends before every baseline budget: nothing to cut
        budget = passed.max()
        if (np.abs(logd[(rec == rec[i]) & same_n] - budget) <= tolerance).any():
            continue  # the recipe has a run of its own at that budget
        experiment, run = ends.index[i]
        rows = frame[(frame["experiment"] == experiment) & (frame["run"] == run)]
        records.append(_cut_one(rows, experiment, run, rec[i], float(ends["params"].iloc[i]),
                                10 ** budget, float(ends["end"].iloc[i]), tolerance))
    if not records:
        return frame, (), []
    out, keep = frame.copy(), np.ones(len(frame), dtype=bool)
    final = out["final"].to_numpy(dtype=bool).copy()
    tokens = out["tokens"].to_numpy(float)
    for r in (r for r in records if r["cut"]):
        in_run = ((out["experiment"] == r["experiment"]) & (out["run"] == r["run"])).to_numpy()
        keep &= ~(in_run & (tokens > r["cut_at"] * (1 + 1e-9)))
        sub = out[in_run & keep]
        last = sub.groupby("metric", sort=False)["tokens"].transform("max").to_numpy(float)
        at_budget = np.abs(np.log10(last) - np.log10(r["budget"])) <= tolerance
        final[in_run] = False
        final[np.flatnonzero(in_run & keep)] = (sub["tokens"].to_numpy(float) == last) & at_budget
    out["final"] = final
    return out[keep], tuple(records), _cut_notes(records, baseline)


def _cut_one(rows: pd.DataFrame, experiment, run, recipe: str, params: float, budget: float,
             end: float, tolerance: float) -> dict[str, Any]:
    """Where one run is cut at ``budget`` tokens, or why it is not."""
    record = {"experiment": experiment, "run": run, "recipe": recipe, "params": params,
              "budget": budget, "end": end, "cut_at": None, "cut": False, "why": ""}
    schedule = None
    if "schedule" in rows and rows["schedule"].notna().any():
        schedule = str(rows["schedule"].dropna().iloc[0]).strip().lower()
    if schedule == "cosine":
        return {**record, "why": "a cosine run's checkpoint there is mid-schedule, not a run "
                                 "trained to that budget"}
    if schedule == "wsd":
        return {**record, "why": "a WSD run's stable-phase checkpoint is not annealed (a "
                                 "cooldown branch ending at that budget would be)"}
    if schedule not in (None, "constant"):
        return {**record, "why": f"a checkpoint before the end of its {schedule} schedule is "
                                 "not a run trained to that budget"}
    toks = np.unique(rows["tokens"].to_numpy(float))
    near = toks[np.abs(np.log10(toks) - np.log10(budget)) <= tolerance]
    if not len(near):
        return {**record, "why": "it has no checkpoint there (only its final point)"
                if len(toks) == 1 else f"it has no checkpoint within {tolerance:g} decades of "
                "that budget"}
    before = near[near <= budget * (1 + 1e-9)]
    cut_at = float(before.max() if len(before) else near.min())
    return {**record, "cut_at": cut_at, "cut": True,
            "why": "schedule not given: its checkpoint is taken to stand for a run trained to "
                   "that budget (mark cosine runs with a schedule column)" if schedule is None
            else "constant learning rate: its checkpoint stands for a run trained to that "
                 "budget"}


def _cut_notes(records: list[dict[str, Any]], baseline: str) -> list[str]:
    """One note per recipe and outcome: how many runs were cut (or not), why, one example."""
    notes = []
    groups: dict[tuple[str, bool, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["recipe"], r["cut"], r["why"]), []).append(r)
    for (recipe, cut, why), rs in groups.items():
        e = rs[0]
        if cut:
            notes.append(
                f"cut at the common budget: {len(rs)} run(s) of {recipe} trained past "
                f"{baseline}'s token budget are compared at their checkpoint at it, not at "
                f"their final point (e.g. {e['run']} at {fmt_count(e['cut_at'])} of "
                f"{fmt_count(e['end'])} tokens); {why}")
        else:
            notes.append(
                f"not cut: {len(rs)} run(s) of {recipe} go past {baseline}'s token budget "
                f"(e.g. {e['run']} ends at {fmt_count(e['end'])} tokens, {baseline}'s budget "
                f"at its size is {fmt_count(e['budget'])}), but {why}; train {recipe} to "
                f"{baseline}'s budgets to compare them there")
    return notes
