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

:mod:`.wandb` reads W&B CSV and JSON exports and, through :mod:`.wandb_runs`, local run folders
(the ``wandb`` extra); :mod:`.tensorboard` TensorBoard event files and hparams (the ``tb``
extra); :mod:`.common` holds what they share, :mod:`.meta` each run's N, tokens per step, seed,
lr and recipe (flags ``RUN=VALUE`` or its config), :mod:`.config` what a config says
(:func:`.config.count_params`). :mod:`.hf` reads Hugging Face Trainer folders (N counted with
the ``hf`` extra), :mod:`.lm_eval` lm-evaluation-harness results as ``ds/<task>`` rows joined
to the runs they evaluate, :mod:`.mlflow_runs` MLflow tracking folders (the ``mlflow`` extra).

>>> obs = read_tensorboard("logs", mapping="train=loss/train", params=124_000_000,
...                        tokens_per_step=524_288)                     # doctest: +SKIP
"""

from .common import MissingExtraError, parse_mapping
from .config import count_params
from .hf import read_hf
from .lm_eval import read_lm_eval
from .mlflow_runs import read_mlflow
from .tensorboard import read_tensorboard
from .wandb import read_wandb, read_wandb_csv

__all__ = ["MissingExtraError", "count_params", "parse_mapping", "read_hf", "read_lm_eval",
           "read_mlflow", "read_tensorboard", "read_wandb", "read_wandb_csv"]
