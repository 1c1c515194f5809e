"""Recipes that differ in tokenizer are compared in bits/byte, never in nats/token.

A BPE token carries several bytes, so its loss per token is higher than a byte-level model's
at the same quality of prediction; per-token losses of two tokenizers rank them by their
bytes per token. :func:`common_units` turns every loss of such a comparison into bits/byte
(:mod:`scaling_ladder.units`) from the ``unit`` column (already bits/byte), the
``bytes_per_token`` column or the trainer's ``bits_per_byte`` column, and refuses (an
:class:`InputError` naming the recipes and their tokenizers) when the decision metric cannot
be converted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..units import BITS_PER_BYTE, NATS_PER_TOKEN, in_bits_per_byte

NOT_GIVEN = "no tokenizer given"


def tokenizers(frame: pd.DataFrame) -> dict[str, str]:
    """Each recipe's tokenizer(s) as text (``NOT_GIVEN`` when its rows name none)."""
    out = {}
    for r, g in frame.groupby("recipe", sort=True):
        names = sorted(g["tokenizer"].dropna().astype(str).unique()) if "tokenizer" in g else []
        out[str(r)] = "+".join(names) or NOT_GIVEN
    return out


def common_units(frame: pd.DataFrame, metric: str, *, where: str | None
                 ) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows with every loss in one unit, that unit (of ``metric``) and notes.

    When the recipes name different tokenizers, or a loss mixes units, losses are converted
    to bits/byte: ``metric`` must convert on every row (else an InputError naming the recipes
    and their tokenizers and the fix), another loss that does not is set aside with a note.
    """
    toks = tokenizers(frame)
    differ = len(set(toks.values())) > 1 and set(toks.values()) != {NOT_GIVEN}
    unit = frame["unit"] if "unit" in frame else pd.Series(NATS_PER_TOKEN, index=frame.index)
    loss = (frame["kind"] == "loss").to_numpy()
    mixed = frame[loss].assign(u=unit[loss]).groupby("metric")["u"].nunique()
    kinds = frame.loc[frame["metric"] == metric, "kind"]
    # a metric made later (the downstream average) has no rows yet: ds/ is an accuracy
    kind = str(kinds.iloc[0]) if len(kinds) else (
        "accuracy" if metric.startswith("ds/") else "loss")
    if not differ and not (mixed > 1).any():
        on = set(unit[(frame["metric"] == metric).to_numpy()])
        return frame, (kind if kind != "loss" else
                       BITS_PER_BYTE if on == {BITS_PER_BYTE} else NATS_PER_TOKEN), []
    bpb = in_bits_per_byte(frame)
    known = pd.Series(~np.isnan(bpb) | ~loss, index=frame.index)
    why = (f"the recipes differ in tokenizer ({_names(toks)})" if differ
           else "a loss mixes nats/token and bits/byte rows")
    prim = (frame["metric"] == metric).to_numpy()
    if kind == "loss" and not known[prim].all():
        lacking = sorted(frame.loc[prim & ~known.to_numpy(), "recipe"].astype(str).unique())
        raise InputError(
            where, f"{why} and {metric} is not in bits/byte for {', '.join(lacking)}: "
            "nats/token cannot compare tokenizers", column="bytes_per_token",
            fix="give bytes_per_token (the evaluated slice's UTF-8 bytes per token) or the "
                "loss in bits/byte (unit bpb) on every row of those recipes")
    full = known.groupby(frame["metric"]).transform("all").to_numpy()
    dropped = sorted(frame.loc[loss & ~full, "metric"].astype(str).unique())
    out = frame[~loss | full].copy()
    keep = (~loss | full)
    out["value"] = np.where(loss[keep], bpb[keep], out["value"].to_numpy(dtype=float))
    out["unit"] = np.where(loss[keep], BITS_PER_BYTE, None)
    notes = [f"{why}: every loss is compared in bits/byte = nats/token / (ln 2 * bytes/token), "
             "never in nats/token (Gao et al. 2020)"]
    if dropped:
        notes.append(f"{len(dropped)} loss metric(s) set aside: not in bits/byte on every row "
                     f"({', '.join(dropped[:3])}{', …' if len(dropped) > 3 else ''})")
    return out, (BITS_PER_BYTE if kind == "loss" else kind), notes


def matched_note(frame: pd.DataFrame, match: str) -> str | None:
    """What a comparison across tokenizers matched: a token (or FLOPs) budget is a different
    byte budget per tokenizer. None when the recipes share a tokenizer."""
    toks = tokenizers(frame)
    if len(set(toks.values())) < 2 or set(toks.values()) == {NOT_GIVEN}:
        return None
    what = "tokens (N, D)" if match == "params-tokens" else "FLOPs"
    bpt = ""
    if "bytes_per_token" in frame and frame["bytes_per_token"].notna().any():
        per = frame.groupby("recipe")["bytes_per_token"].median().dropna()
        bpt = " (median bytes/token: " + ", ".join(f"{r} {v:.3g}" for r, v in per.items()) + ")"
    return (f"scales matched by {what}, not bytes: the same token budget is a different "
            f"amount of text per tokenizer{bpt}")


def unit_ranking(frame: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """The trap made visible: each recipe's ``metric`` in nats/token and in bits/byte, ranked
    both ways, at the largest (N, D) every recipe was trained at (final checkpoints, seeds
    averaged). ``frame`` holds the losses as written (before :func:`common_units`). None when
    the recipes share a tokenizer, or no scale is shared, or a unit is unknown.

    Columns: recipe, tokenizer, params, tokens, nats_per_token, bits_per_byte,
    rank_per_token, rank_per_byte (1 = lowest loss); rows in bits/byte order.
    """
    toks = tokenizers(frame)
    if len(set(toks.values())) < 2 or NOT_GIVEN in toks.values():
        return None
    rows = frame[(frame["metric"] == metric) & (frame["kind"] == "loss")
                 & frame["final"].astype(bool)]
    if "cooldown_of" in rows:  # a WSD run's branches end earlier: the run's own end only
        rows = rows[rows["cooldown_of"].isna()]
    unit = rows["unit"] if "unit" in rows else pd.Series(NATS_PER_TOKEN, index=rows.index)
    bpb = in_bits_per_byte(rows)
    if "bytes_per_token" in rows:
        per_token = rows["bytes_per_token"].to_numpy(dtype=float) * np.log(2) * bpb
    else:
        per_token = np.full(len(rows), np.nan)
    nats = np.where((unit == BITS_PER_BYTE).to_numpy(), per_token, rows["value"].to_numpy())
    rows = rows.assign(nats_per_token=nats, bits_per_byte=bpb)
    cells = rows.groupby(["params", "tokens"])["recipe"].nunique()
    shared = cells[cells == len(toks)]
    if shared.empty:
        return None
    params, tokens = max(shared.index, key=lambda c: (c[0] * c[1], c[0]))
    at = rows[(rows["params"] == params) & (rows["tokens"] == tokens)]
    out = at.groupby("recipe", sort=True)[["nats_per_token", "bits_per_byte"]].mean()
    if out.isna().any().any():
        return None
    out["rank_per_token"] = out["nats_per_token"].rank(method="min").astype(int)
    out["rank_per_byte"] = out["bits_per_byte"].rank(method="min").astype(int)
    out = out.reset_index().assign(tokenizer=lambda d: d["recipe"].map(toks),
                                   params=float(params), tokens=float(tokens))
    return out.sort_values(["rank_per_byte", "recipe"])[
        ["recipe", "tokenizer", "params", "tokens", "nats_per_token", "bits_per_byte",
         "rank_per_token", "rank_per_byte"]].reset_index(drop=True)


def _names(toks: dict[str, str]) -> str:
    return ", ".join(f"{r}: {t}" for r, t in toks.items())
