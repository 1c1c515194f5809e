"""Observations: the one tidy table every number lives in (read, validated, selected).

:mod:`.table` holds the table and its checks, :mod:`.io` its file formats (CSV, Parquet, JSON
Lines), :mod:`.importers` turns runs logged elsewhere into it, :mod:`.datasets` ships real public
ladders in its format.
"""

from . import datasets
from .table import (
    Observations,
    checkpoint_mask,
    from_frame,
    read_observations,
    validate,
    write_observations,
)

__all__ = ["checkpoint_mask", "datasets", "from_frame", "Observations", "read_observations",
           "validate", "write_observations"]
