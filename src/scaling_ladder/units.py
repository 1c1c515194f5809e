"""Units of a loss: nats per token and bits per UTF-8 byte, and the one conversion between them.

Per-token loss cannot compare two tokenizers: a token of a BPE vocabulary carries several
bytes, so its loss per token is higher for the same model quality. Bits per byte can: it is
the loss per unit of text, whatever cuts the text into tokens (Gao et al. 2020, "The Pile",
arXiv:2101.00027, sec. 4: bits per UTF-8 byte)::

    bits/byte = (nats/token) / (ln 2 * bytes/token)

where bytes/token is the evaluated slice's UTF-8 bytes over its tokens (EOS included, so a
loss averaged over every token of the slice converts exactly).

The data budget D has a unit too: tokens (the default) or UTF-8 bytes of training text,
``tokens x train_bytes_per_token`` (:func:`tokens_to_bytes`), for laws in bits/byte compared
across tokenizers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NATS_PER_TOKEN = "nats/token"
BITS_PER_BYTE = "bits/byte"
# the unit of the data budget D a law is fitted in: training tokens, or UTF-8 bytes of them
TOKENS, BYTES = "tokens", "bytes"
DATA_UNITS = (TOKENS, BYTES)
# how a unit may be written in the ``unit`` column -> its name
UNIT_NAMES = {"nats/token": NATS_PER_TOKEN, "nats": NATS_PER_TOKEN, "nat/token": NATS_PER_TOKEN,
              "bpb": BITS_PER_BYTE, "bits/byte": BITS_PER_BYTE, "bit/byte": BITS_PER_BYTE}


def bits_per_byte(loss_nats_per_token, bytes_per_token):
    """Loss in bits per UTF-8 byte: ``loss / (ln 2 * bytes_per_token)`` (module docstring)."""
    return np.asarray(loss_nats_per_token) / math.log(2) / np.asarray(bytes_per_token)


def in_bits_per_byte(frame: pd.DataFrame) -> np.ndarray:
    """Every row's value in bits/byte where it is known (NaN where not, and for non-losses):
    a ``unit`` of bits/byte as given, else from ``bytes_per_token``, else the trainer's own
    ``bits_per_byte`` column."""
    value = frame["value"].to_numpy(dtype=float)
    out = np.full(len(frame), np.nan)
    if "bits_per_byte" in frame:  # the trainer's own column
        out = pd.to_numeric(frame["bits_per_byte"], errors="coerce").to_numpy(dtype=float)
    if "bytes_per_token" in frame:
        bpt = frame["bytes_per_token"].to_numpy(dtype=float)
        out = np.where(np.isfinite(bpt), bits_per_byte(value, np.where(bpt > 0, bpt, 1)), out)
    if "unit" in frame:
        out = np.where((frame["unit"] == BITS_PER_BYTE).to_numpy(), value, out)
    return np.where((frame["kind"] == "loss").to_numpy(), out, np.nan)


def loss_unit(frame: pd.DataFrame) -> str:
    """The one unit of a table's losses: nats/token (the default) or bits/byte; a
    ``ValueError`` when its rows mix the two (a law fits one unit)."""
    if "unit" not in frame:
        return NATS_PER_TOKEN
    units = set(frame.loc[(frame["kind"] == "loss").to_numpy(), "unit"].dropna())
    if len(units) > 1:
        raise ValueError("the losses mix nats/token and bits/byte rows")
    return units.pop() if units else NATS_PER_TOKEN


def to_bits_per_byte(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with every loss in bits/byte (``unit`` set), or a ``ValueError`` naming the
    runs whose losses cannot be converted (no ``bytes_per_token``, unit or trainer column)."""
    bpb = in_bits_per_byte(frame)
    loss = (frame["kind"] == "loss").to_numpy()
    lacking = loss & np.isnan(bpb)
    if lacking.any():
        runs = sorted(frame.loc[lacking, "run"].astype(str).unique())
        raise ValueError(f"no bits/byte for {len(runs)} run(s) ({', '.join(runs[:4])}"
                         f"{', …' if len(runs) > 4 else ''}): give bytes_per_token (the "
                         "evaluated slice's UTF-8 bytes per token) or losses in unit bpb")
    out = frame.copy()
    out["value"] = np.where(loss, bpb, frame["value"].to_numpy(dtype=float))
    out["unit"] = np.where(loss, BITS_PER_BYTE, None)
    return out


def tokens_to_bytes(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with the data budget D in UTF-8 bytes of training text: ``tokens`` (and
    ``unique_tokens``, where given) times ``train_bytes_per_token``, the training stream's
    bytes per token (not the evaluated slice's ``bytes_per_token``).

    A token of a larger vocabulary carries more text, so D in tokens does not compare
    tokenizers; D in bytes does, as bits/byte does for the loss (Tao et al. 2024, "Scaling
    Laws with Vocabulary", arXiv:2407.13623, count training data in characters for this
    reason). FLOPs are left as they are: they count tokens processed, not bytes.

    Raises
    ------
    ValueError naming the runs (the first few) whose rows lack ``train_bytes_per_token``, and
    the fix: nothing is dropped quietly.
    """
    if "train_bytes_per_token" in frame:
        bpt = pd.to_numeric(frame["train_bytes_per_token"], errors="coerce").to_numpy(float)
    else:
        bpt = np.full(len(frame), np.nan)
    lacking = ~(np.isfinite(bpt) & (bpt > 0))
    if lacking.any():
        runs = list(dict.fromkeys(frame.loc[lacking, "run"].astype(str)))
        raise ValueError(f"no train_bytes_per_token for {len(runs)} run(s) "
                         f"({', '.join(runs[:4])}{', …' if len(runs) > 4 else ''}), so their "
                         "data budget in bytes is unknown; give train_bytes_per_token (the "
                         "training stream's UTF-8 bytes per token), or fit with D in tokens "
                         "(--data tokens)")
    out = frame.copy()
    for col in ("tokens", "unique_tokens"):
        if col in out:
            out[col] = out[col].to_numpy(dtype=float) * bpt
    return out
