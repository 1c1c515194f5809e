"""Example data shipped with scaling-ladder (real public runs, in the observations format).

* ``chinchilla``: 245 final losses of Hoffmann et al. (2022), Figure 4, as digitised by
  Besiroglu et al. (2024) (arXiv:2404.10102); column ``besiroglu_outlier`` marks the 5 points
  they drop.
* ``overtrain``: the over-training suite of Gadre et al. (2024) (arXiv:2403.08540; MIT), 104
  runs of 6 sizes x token multipliers x 3 data recipes, 8 validation losses and 46 tasks.
* ``opt``: OPT training trajectories (Xia et al. 2023, via IBM/ColPret, MIT).
* ``gpt3``: GPT-3 learning curves digitised from Brown et al. (2020) (IBM/ColPret, MIT).
* ``olmo``: OLMo-1B, -7B, -7B-Twin-2T learning curves with 37 losses and 10 tasks
  (Groeneveld et al. 2024, arXiv:2402.00838; Apache-2.0; via IBM/ColPret, MIT).
* ``datablations``: data-constrained runs of Muennighoff et al. (2023) (arXiv:2305.16264;
  Apache-2.0; via IBM/ColPret, MIT), with ``unique_tokens``.
* ``regmix``, ``regmix_single_size``: 256 Pile mixtures at 1M and 60M parameters, and at one
  size (Liu et al. 2025, RegMix; MIT).

The first two are CSV; the others ship as Parquet of the same text cells (zstd), read exactly
as the CSV files of the repository's ``shared/datasets`` would be.
"""

from __future__ import annotations

import difflib
from importlib import resources

from ..table import Observations, read_observations

NAMES = ("chinchilla", "overtrain", "opt", "gpt3", "olmo", "datablations", "regmix",
         "regmix_single_size")


def path(name: str):
    """Path of a bundled dataset's file (CSV, or Parquet for the larger ones)."""
    if name not in NAMES:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        raise ValueError(f"The 'name' argument must be one of {', '.join(NAMES)}. Got {name!r}"
                         + (f" (did you mean {close[0]!r}?)." if close else "."))
    folder = resources.files(__name__)
    csv = folder / f"{name}.csv"
    return csv if csv.is_file() else folder / f"{name}.parquet"


def load(name: str) -> Observations:
    """Load a bundled dataset as validated :class:`Observations`."""
    with resources.as_file(path(name)) as p:
        return read_observations(p)
