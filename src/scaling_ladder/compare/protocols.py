"""Rankings under each optimisation protocol, and where they disagree.

Proxies trained with one fixed configuration can rank recipes differently from the tuned
target; proxies at a reduced learning rate track it much better (fixed-LR proxies correlate
< 0.75 with tuned targets, reduced-LR ones > 0.95: arXiv:2512.24503). When the observations
hold runs under several protocols (a ``protocol`` column, or several learning rates for one
recipe at one scale), this module ranks the recipes under each and lists every flip.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from .ranking import rank_agreement
from .scales import final_values


def compare_protocols(frame: pd.DataFrame, labels: pd.Series, *, metric: str, match: str,
                      tolerance: float, primary: str) -> dict[str, Any]:
    """Per protocol the ranking at every scale; per pair of protocols tau and the flips."""
    rows = frame[frame["metric"] == metric].assign(protocol=labels[frame["metric"] == metric])
    fin = final_values(rows, match=match, tolerance=tolerance, primary=metric)
    fin = fin.assign(protocol=_protocol_of(fin, rows))
    cells = fin.groupby(["protocol", "scale", "recipe"], as_index=False).agg(
        value=("value", "mean"), flops=("scale_flops", "first"))
    higher = bool((rows["kind"] == "accuracy").all())
    rankings: dict[str, dict[str, list[str]]] = {}
    for (p, scale), g in cells.sort_values("flops").groupby(["protocol", "scale"], sort=False):
        if len(g) >= 2:
            order = g.sort_values("value", ascending=not higher)["recipe"].tolist()
            rankings.setdefault(p, {})[scale] = order
    agreement, notes = [], []
    protocols = sorted(cells["protocol"].unique())
    for a, b in itertools.combinations(protocols, 2):
        for scale in rankings.get(a, {}):
            if scale not in rankings.get(b, {}):
                continue
            va = cells[(cells["protocol"] == a) & (cells["scale"] == scale)].set_index(
                "recipe")["value"].to_dict()
            vb = cells[(cells["protocol"] == b) & (cells["scale"] == scale)].set_index(
                "recipe")["value"].to_dict()
            common = sorted(set(va) & set(vb))
            if len(common) < 2:
                continue
            ag = rank_agreement(va, vb, higher_is_better=higher)
            flips = [[x, y] for x, y in itertools.combinations(common, 2)
                     if np.sign(va[x] - va[y]) * np.sign(vb[x] - vb[y]) < 0]
            agreement.append({"a": a, "b": b, "scale": scale, **ag.to_dict(), "flips": flips})
            for x, y in flips:
                notes.append(f"rank flip between {a} and {b} proxies at {scale}: {x} vs {y}")
    return {"metric": metric, "protocols": protocols, "primary": primary,
            "rankings": rankings, "agreement": agreement, "flips": notes,
            "reference": "fixed-LR proxies correlate < 0.75 with tuned targets, reduced-LR "
                         "ones > 0.95 (arXiv:2512.24503)"}


def _protocol_of(fin: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Protocol of each final row (looked up by run)."""
    by_run = rows.drop_duplicates("run").set_index("run")["protocol"]
    return fin["run"].map(by_run).to_numpy()
