"""Units of a loss: nats per token and bits per UTF-8 byte, and the one conversion between them.

Per-token loss cannot compare two tokenizers: a token of a BPE vocabulary carries several
bytes, so its loss per token is higher for the same model quality. Bits per byte can: it is
the loss per unit of text, whatever cuts the text into tokens (Gao et al. 2020, "The Pile",
arXiv:2101.00027, sec. 4: bits per UTF-8 byte)::

    bits/byte = (nats/token) / (ln 2 * bytes/token)

where bytes/token is the evaluated slice's UTF-8 bytes over its tokens (EOS included, so a
loss averaged over every token of the slice converts exactly).
"""

from __future__ import annotations

import math

import numpy as np

NATS_PER_TOKEN = "nats/token"
BITS_PER_BYTE = "bits/byte"
# how a unit may be written in the ``unit`` column -> its name
UNIT_NAMES = {"nats/token": NATS_PER_TOKEN, "nats": NATS_PER_TOKEN, "nat/token": NATS_PER_TOKEN,
              "bpb": BITS_PER_BYTE, "bits/byte": BITS_PER_BYTE, "bit/byte": BITS_PER_BYTE}


def bits_per_byte(loss_nats_per_token, bytes_per_token):
    """Loss in bits per UTF-8 byte: ``loss / (ln 2 * bytes_per_token)`` (module docstring)."""
    return np.asarray(loss_nats_per_token) / math.log(2) / np.asarray(bytes_per_token)
