"""Example data shipped with scaling-ladder (real public runs, in the observations format).

* ``chinchilla``: 245 final losses of Hoffmann et al. (2022), Figure 4, as digitised by
  Besiroglu et al. (2024) (arXiv:2404.10102); column ``besiroglu_outlier`` marks the 5 points
  they drop.
* ``overtrain``: the over-training suite of Gadre et al. (2024) (arXiv:2403.08540; MIT), 104
  runs of 6 sizes x token multipliers x 3 data recipes, 8 validation losses and 46 tasks.
"""

from __future__ import annotations

from importlib import resources

from ..table import Observations, read_observations

NAMES = ("chinchilla", "overtrain")


def path(name: str):
    """Path of a bundled dataset's CSV file."""
    if name not in NAMES:
        raise ValueError(f"The 'name' argument must be one of {', '.join(NAMES)}. Got {name!r}.")
    return resources.files(__name__) / f"{name}.csv"


def load(name: str) -> Observations:
    """Load a bundled dataset as validated :class:`Observations`."""
    with resources.as_file(path(name)) as p:
        return read_observations(p)
