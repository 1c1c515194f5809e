"""Importers: runs trained elsewhere (W&B CSV exports, TensorBoard events) -> observations.

A *mapping* names, for each observation field, the source's column (W&B) or tag (TensorBoard);
on the command line it is ``--map key=name,key=name`` (:func:`parse_mapping`). Keys:

- ``step``: the step column (W&B only; default ``_step``, else ``Step``);
- ``tokens``: tokens seen at each step; without it, tokens = step x ``tokens_per_step``
  (batch size x sequence length); one of the two is required;
- ``params``: the parameter count, constant over a run; without it, the ``params`` argument;
- any other key is a metric, ``train``, ``val/<slice>`` or ``ds/<task>``. ``kind`` (loss,
  perplexity, accuracy) applies to ``train`` and ``val/*``; ``ds/*`` are accuracies unless
  ``kind`` is a dict naming them.

An empty cell (W&B logs metrics at different steps) is no measurement and gives no row; NaN or
infinite values and checkpoints at 0 tokens are set aside and counted; anything else unreadable
raises :class:`InputError` naming the file, line, column and the fix.

:mod:`.wandb` reads W&B CSV exports, :mod:`.tensorboard` TensorBoard event files (the ``tb``
extra); :mod:`.common` holds what they share.

>>> obs = read_tensorboard("logs", mapping="train=loss/train", params=124_000_000,
...                        tokens_per_step=524_288)                     # doctest: +SKIP
"""

from .common import MissingExtraError, parse_mapping
from .tensorboard import read_tensorboard
from .wandb import read_wandb_csv

__all__ = ["MissingExtraError", "parse_mapping", "read_tensorboard", "read_wandb_csv"]
