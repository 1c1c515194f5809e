"""What the importers share: the ``--map`` mapping, the checks up front, and the last step
that sets unusable rows aside (counted) and validates the rest into observations."""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...errors import InputError, LadderError
from ..table import Observations, validate

SPECIAL = ("step", "tokens", "params")
METRIC = re.compile(r"train|(val|ds)/\S+")
KINDS = ("loss", "perplexity", "accuracy")


class MissingExtraError(LadderError, ImportError):
    """An optional dependency (a package extra) is not installed."""


def parse_mapping(text: str) -> dict[str, str]:
    """``"step=_step,train=train/loss"`` -> ``{"step": "_step", "train": "train/loss"}``."""
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, source = (s.strip() for s in item.partition("="))
        if not sep or not key or not source or key in mapping:
            problem = f'"{key}" is mapped twice' if key in mapping else f'"{item}" is not key=name'
            raise InputError(None, f"--map {problem}",
                             fix="write e.g. --map train=train/loss,val/c4=eval/c4_loss")
        mapping[key] = source
    return mapping


def check_args(mapping, where, params=None, tokens_per_step=None, kind="loss", *, meta=None):
    """The mapping as a dict and its metric part; the options checked up front. With ``meta``
    (a :class:`.meta.Meta`), N and tokens per step are resolved per run instead."""
    mapping = parse_mapping(mapping) if isinstance(mapping, str) else dict(mapping)
    metrics = {k: v for k, v in mapping.items() if k not in SPECIAL}
    for key in metrics:
        if not METRIC.fullmatch(key):
            guess = closest(key, ["train", "val/", "ds/", *SPECIAL])
            raise InputError(where, f'mapping key "{key}" is not a metric name',
                             fix="use step, tokens, params, train, val/<slice> or ds/<task>"
                             + (f' (did you mean "{guess}"?)' if guess else ""))
    if not metrics:
        raise InputError(where, "the mapping names no metric",
                         fix="add e.g. --map train=train/loss")
    kinds = kind.values() if isinstance(kind, Mapping) else [kind]
    if any(k not in KINDS for k in kinds):
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}. Got {kind!r}.")
    if meta is not None:
        meta.check(mapping, where)
        return mapping, metrics
    for flag, value, other in (("--params", params, "params"),
                               ("--tokens-per-step", tokens_per_step, "tokens")):
        if value is not None and other in mapping:
            raise ValueError(f"Give {flag} or --map {other}=..., not both.")
        if value is not None and not (isinstance(value, numbers.Real) and value > 0):
            raise ValueError(f"{flag} must be a positive number. Got {value!r}.")
    if params is None and "params" not in mapping:
        raise InputError(where, "no parameter count",
                         fix="give --params N (the model's N) or --map params=<column or tag>")
    if tokens_per_step is None and "tokens" not in mapping:
        raise InputError(where, "no token counts",
                         fix="map tokens=<column or tag> or give --tokens-per-step "
                         "(batch size x sequence length)")
    return mapping, metrics


TOKENS = ("tokens", "tokens_seen", "train/tokens", "num_tokens", "tokens_processed")


def default_mapping(names, where: str | None = None) -> dict[str, str]:
    """The mapping used without ``--map``: every name that is a metric name already (``train``,
    ``val/<slice>``, ``ds/<task>``), ``train/loss`` (else ``loss``) as ``train``, and a tokens
    column (``tokens``, ``tokens_seen`` ...) as tokens."""
    names = list(dict.fromkeys(str(n) for n in names))
    mapping = {n: n for n in names if METRIC.fullmatch(n)}
    if "train" not in mapping:
        source = next((n for n in ("train/loss", "loss") if n in names), None)
        if source:
            mapping["train"] = source
    if not mapping:
        raise InputError(where, "no --map, and no column or tag is named like a metric "
                         "(train, train/loss, val/<slice>, ds/<task>)",
                         fix=f"give --map train=<name>,... with names from {listing(names)}")
    tokens = next((n for n in TOKENS if n in names), None)
    return {**({"tokens": tokens} if tokens else {}), **mapping}


def kind_of(metric: str, kind) -> str:
    """The row's kind; "" lets validate() infer it (ds/* -> accuracy, else loss)."""
    if isinstance(kind, Mapping):
        return kind.get(metric, "")
    return "" if metric.startswith("ds/") else kind


def finish(raw: pd.DataFrame, where: str, word: str, experiment: str, recipe=None
           ) -> Observations:
    """Set aside unusable rows (counted), then validate; ``word`` ("line", "row" or "step")
    says what the ``_line`` column counts."""
    if len(raw) == 0:
        raise InputError(where, "no values found for the mapped metrics",
                         fix="check the mapping names columns or tags that hold numbers")
    nonfinite = ~np.isfinite(raw["value"].to_numpy(float))
    at_zero = ~nonfinite & (raw["tokens"].to_numpy(float) == 0)
    aside = [(reason, int(bad.sum())) for reason, bad in (
        ("values NaN or infinite", nonfinite), ("checkpoints at 0 tokens", at_zero)) if bad.any()]
    raw = raw[~(nonfinite | at_zero)]
    raw = raw.assign(experiment=experiment, **({"recipe": recipe} if recipe else {}))
    raw = raw.dropna(axis=1, how="all")  # per-run columns (seed, lr) no run had
    lines = raw.pop("_line").to_numpy()
    try:
        frame, dropped = validate(raw.reset_index(drop=True), path=where, lines=lines,
                                  line_word="line" if word == "line" else "row")
    except InputError as err:
        if word != "step" or err.row is None:
            raise
        raise InputError(err.path, f"at step {err.row}, {err.problem}", column=err.column,
                         fix=err.fix, more=err.more) from None
    return Observations(frame, tuple(aside + dropped), (where,))


def closest(word: str, options) -> str | None:
    guess = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return guess[0] if guess else None


def listing(values, near: str | None = None, limit: int = 8) -> str:
    """Up to ``limit`` names, closest to ``near`` first."""
    values = [str(v) for v in values]
    if near is not None:
        values.sort(key=lambda v: -difflib.SequenceMatcher(None, near, v).ratio())
    head = ", ".join(values[:limit])
    return head + (f", … ({len(values)} in all)" if len(values) > limit else "")
