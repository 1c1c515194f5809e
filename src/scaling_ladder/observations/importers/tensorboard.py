"""TensorBoard event files -> observations (see the package docstring for the mapping).

Every directory under ``logdir`` holding ``events.out.tfevents.*`` files is one
run, named by its path relative to ``logdir``; scalars (``simple_value`` or TF2 scalar tensors)
are read unsampled, at the steps they were logged::

    logs/125m/events.out.tfevents.*   logs/350m/events.out.tfevents.*

    --map train=loss/train,val/c4=loss/val_c4,tokens=progress/tokens

Hyperparameters of the hparams plugin (``SummaryWriter.add_hparams``, TensorFlow's
``hp.hparams``) are the run's config (:mod:`.meta`: N with ``--params-from config``, tokens per
step, seed, lr, recipe). ``add_hparams`` writes its own subfolder (``logs/125m/<time>/``) with
only its ``hparam/*`` metrics: a folder with hparams and none of the mapped tags gives its
hparams to the run folder above it and is no run of its own.

>>> obs = read_tensorboard("logs", mapping="train=loss/train", params=124_000_000,
...                        tokens_per_step=524_288)                     # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..table import Observations
from .common import MissingExtraError, check_args, default_mapping, finish, kind_of, listing
from .meta import Meta, with_meta


def read_tensorboard(logdir: str | Path, *, mapping: Mapping[str, str] | str | None = None,
                     params=None, params_from: str | None = None, same_size: bool = False,
                     experiment: str | None = None, recipe=None, tokens_per_step=None,
                     seed=None, lr=None, kind: str | Mapping[str, str] = "loss") -> Observations:
    """Read TensorBoard event files (one run per directory) as observations.

    Needs the ``tb`` extra. Arguments as for :func:`.wandb.read_wandb`; the mapping names tags.
    Scalars are read without sampling (``size_guidance`` 0), so every logged step is kept.
    """
    accumulator, tensor_util = _tensorboard()
    logdir = Path(logdir)
    meta = Meta.from_args(params=params, params_from=params_from, same_size=same_size,
                          tokens_per_step=tokens_per_step, seed=seed, lr=lr, recipe=recipe)
    loaded = {}
    for run_dir in _event_dirs(logdir):
        for events in sorted(run_dir.glob("events.out.tfevents.*")):
            _check_complete(events)
        acc = accumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        loaded[run_dir] = (_scalars(acc, tensor_util), _hparams(acc))
    if mapping is None:
        mapping = default_mapping([t for s, _ in loaded.values() for t in s
                                   if not t.startswith("hparam/")], str(logdir))
    mapping, metrics = check_args(mapping, str(logdir), kind=kind, meta=meta)
    configs = {d: dict(hp) for d, (_, hp) in loaded.items()}
    runs = []
    for run_dir, (scalars, hparams) in loaded.items():
        parent = next((p for p in run_dir.parents if p in loaded), None)
        if hparams and parent is not None and not any(t in scalars for t in metrics.values()):
            configs[parent] = {**hparams, **configs[parent]}  # an add_hparams subfolder
        else:
            runs.append(run_dir)
    parts, names = [], []
    for run_dir in runs:
        name = run_dir.relative_to(logdir).as_posix() if run_dir != logdir else logdir.name
        names.append(name)
        m = meta.of(name, configs[run_dir], str(run_dir), mapping)
        raw = _tb_run(loaded[run_dir][0], run_dir, name, mapping, metrics, m.get("params"),
                      m.get("tokens_per_step"), kind)
        parts.append((run_dir, with_meta(raw, m)))
    meta.check_shared(str(logdir), names)
    frames, totals = [], Counter()
    for run_dir, raw in parts:
        obs = finish(raw, str(run_dir), "step", experiment or logdir.name)
        frames.append(obs.frame)
        totals.update(dict(obs.set_aside))
    return Observations(pd.concat(frames, ignore_index=True), tuple(totals.items()),
                        (str(logdir),))


def _hparams(acc) -> dict:
    """The run's hyperparameters from the hparams plugin (``session_start_info``), or {}."""
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:
        return {}
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = {}
    for blob in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(blob)
        if data.WhichOneof("data") == "session_start_info":
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                out[name] = getattr(value, kind) if kind else None
    return out


def _tensorboard():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise MissingExtraError('reading TensorBoard event files needs tensorboard: '
                                'pip install "scaling-ladder[tb]"') from None
    return EventAccumulator, tensor_util


def _event_dirs(logdir: Path) -> list[Path]:
    if not logdir.is_dir():
        raise InputError(str(logdir), "directory not found",
                         fix="name the TensorBoard log directory")
    dirs = sorted({p.parent for p in logdir.rglob("events.out.tfevents.*") if p.is_file()})
    if not dirs:
        raise InputError(str(logdir), "holds no events.out.tfevents.* files",
                         fix="name the TensorBoard log directory")
    return dirs


def _check_complete(path: Path) -> None:
    """An event file is a sequence of TFRecords (length: 8 bytes, its CRC: 4, data, the data's
    CRC: 4); TensorBoard's reader stops quietly at a record cut short, so a file truncated by a
    copy or a full disk would lose its last steps without a word. Checks the framing."""
    size, start = path.stat().st_size, 0
    with open(path, "rb") as fh:
        while start < size:
            fh.seek(start)
            head = fh.read(8)
            end = start + 16 + int.from_bytes(head, "little") if len(head) == 8 else size + 1
            if end > size:
                raise InputError(str(path), f"is cut short: the record at byte {start:,} ends "
                                 f"past the file's end ({size:,} bytes)",
                                 fix="copy the file again, or import once its run has closed it")
            start = end


def _scalars(acc, tensor_util) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] for scalar summaries and one-number tensor summaries (TF2)."""
    tags = acc.Tags()
    out = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags.get("scalars", [])}
    for tag in tags.get("tensors", []):
        events = acc.Tensors(tag)
        arrays = [tensor_util.make_ndarray(e.tensor_proto) for e in events]
        if all(a.size == 1 and np.issubdtype(a.dtype, np.number) for a in arrays):
            pairs = zip(events, arrays, strict=True)
            out.setdefault(tag, [(e.step, float(a.reshape(()))) for e, a in pairs])
    return out


def _tb_run(scalars, run_dir: Path, name, mapping, metrics, params, tokens_per_step, kind):
    """One run's rows: one per logged (step, mapped tag)."""
    def get(key: str, tag: str) -> list[tuple[int, float]]:
        if tag in scalars:
            return scalars[tag]
        raise InputError(str(run_dir), f'no scalar tag "{tag}" (mapped to {key})',
                         fix=f"map {key}= one of this run's tags: {listing(scalars, tag)}")

    if "params" in mapping:
        values = {v for _, v in get("params", mapping["params"])}
        if len(values) != 1:
            raise InputError(str(run_dir), f'tag "{mapping["params"]}" changes within the run',
                             fix="log the parameter count once, or give --params instead")
        params = round(values.pop())  # scalars are float32: a count is rounded back
    tokens = dict(get("tokens", mapping["tokens"])) if "tokens" in mapping else None
    rows = []
    for metric, tag in metrics.items():
        for step, value in get(metric, tag):
            if tokens is not None and step not in tokens:
                raise InputError(str(run_dir), f'tag "{mapping["tokens"]}" has no value at '
                                 f'step {step}, where "{tag}" has one',
                                 fix="log tokens at every step, or give --tokens-per-step")
            seen = tokens[step] if tokens is not None else step * tokens_per_step
            rows.append((name, params, seen, metric, kind_of(metric, kind), value, step, step))
    return pd.DataFrame(rows, columns=["run", "params", "tokens", "metric", "kind", "value",
                                       "step", "_line"])
