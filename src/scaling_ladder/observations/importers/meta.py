"""Per-run metadata: N, tokens per step, seed, learning rate and recipe for each run, from the
flags (``--params N`` for every run, ``--params RUN=N`` for runs whose name matches ``RUN``, a
glob) or from the run's config (:mod:`.config`); never one guess for all runs.

A value given for one run wins over one from the config, which wins over a bare value; N comes
from the config only with ``--params-from config`` (or ``config-nonembed``). One bare
``--params`` shared by several runs is an error naming them unless ``same_size`` says so.
"""

from __future__ import annotations

import fnmatch
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import InputError
from .common import listing
from .config import count_params, meta_from, params_from, tokens_per_step_from

PARAMS_FROM = ("config", "config-nonembed")


@dataclass(frozen=True)
class RunValues:
    """One flag's values: ``bare`` for every run, ``pairs`` of (glob on run names, value)."""

    flag: str
    bare: object = None
    pairs: tuple[tuple[str, object], ...] = ()

    def of(self, run: str) -> tuple[object, str]:
        """The value for ``run`` and where it came from: "run", "bare" or "" (none)."""
        for pattern, value in self.pairs:
            if run == pattern or fnmatch.fnmatchcase(run, pattern):
                return value, "run"
        return (self.bare, "bare") if self.bare is not None else (None, "")

    @property
    def given(self) -> bool:
        return self.bare is not None or bool(self.pairs)


def per_run(flag: str, values, cast=float) -> RunValues:
    """``--flag`` values as a :class:`RunValues`: None, a value, ``{"RUN": value}``, or a list
    of ``"VALUE"`` / ``"RUN=VALUE"`` strings as typed on the command line."""
    if isinstance(values, RunValues):
        return values
    if values is None:
        return RunValues(flag)
    if isinstance(values, Mapping):
        return RunValues(flag, None, tuple((str(k), _cast(flag, v, cast, str(k)))
                                        for k, v in values.items()))
    if not isinstance(values, list | tuple):
        return RunValues(flag, _cast(flag, values, cast, None))
    bare, pairs = None, []
    for text in values:
        run, sep, value = str(text).rpartition("=")
        if not sep:
            if bare is not None:
                raise ValueError(f"{flag} is given twice without a run name; give one bare "
                                 f"value, or one per run as {flag} RUN=VALUE")
            bare = _cast(flag, value, cast, None)
        elif not run.strip() or not value.strip():
            raise ValueError(f'{flag} "{text}" is not RUN=VALUE; write e.g. '
                             f"{flag} 'gpt-125m*=1.2e8'")
        else:
            pairs.append((run.strip(), _cast(flag, value, cast, run.strip())))
    return RunValues(flag, bare, tuple(pairs))


def _cast(flag: str, value, cast, run: str | None):
    if cast is str:
        text = str(value).strip()
        if not text:
            raise ValueError(f"{flag} is empty; give a name")
        return text
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value).strip().replace("_", ""))
        except ValueError:
            raise ValueError(f'{flag} "{value}"{f" (run {run})" if run else ""} is not a '
                             f"number; write e.g. {flag} 1.2e8") from None
    if not number > 0 and flag != "--seed":
        raise ValueError(f"{flag} must be a positive number. Got {value!r}.")
    return number


@dataclass
class Meta:
    """Resolves each run's metadata from the flags and its config (see the module docstring)."""

    params: RunValues = field(default_factory=lambda: RunValues("--params"))
    params_from: str | None = None
    same_size: bool = False
    tokens_per_step: RunValues = field(default_factory=lambda: RunValues("--tokens-per-step"))
    seed: RunValues = field(default_factory=lambda: RunValues("--seed"))
    lr: RunValues = field(default_factory=lambda: RunValues("--lr"))
    recipe: RunValues = field(default_factory=lambda: RunValues("--recipe"))
    shared: list[str] = field(default_factory=list)  # runs given the bare --params

    @classmethod
    def from_args(cls, *, params=None, params_from=None, same_size=False, tokens_per_step=None,
                  seed=None, lr=None, recipe=None) -> Meta:
        if params_from is not None and params_from not in PARAMS_FROM:
            raise ValueError(f"--params-from must be {' or '.join(PARAMS_FROM)}. "
                             f"Got {params_from!r}.")
        return cls(per_run("--params", params), params_from, same_size,
                   per_run("--tokens-per-step", tokens_per_step), per_run("--seed", seed),
                   per_run("--lr", lr), per_run("--recipe", recipe, str))

    def check(self, mapping: Mapping[str, str], where: str) -> None:
        """A flag and a mapped column for the same field are an error."""
        if "params" in mapping and (self.params.given or self.params_from):
            raise InputError(where, "N is given twice", fix="give --params (or --params-from) "
                             "or --map params=<column>, not both")
        if "tokens" in mapping and self.tokens_per_step.given:
            raise InputError(where, "tokens are given twice",
                             fix="give --tokens-per-step or --map tokens=<column>, not both")

    def of(self, run: str, config: Mapping | None, where: str, mapping: Mapping[str, str]
           ) -> dict:
        """``run``'s metadata: params (None when mapped), tokens_per_step (None when tokens
        are mapped), and seed, lr, recipe, params_total, params_nonembed where known."""
        config = config or {}
        out: dict = {}
        if "params" not in mapping:
            out["params"] = self._params(run, config, where, out)
        if "tokens" not in mapping:
            value, source = self.tokens_per_step.of(run)
            if source != "run":
                value = tokens_per_step_from(config) or value
            if value is None:
                raise InputError(where, f"no token counts for run {run}",
                                 fix="map tokens=<column or tag>, or give --tokens-per-step "
                                 "(batch size x sequence length), per run as "
                                 "--tokens-per-step RUN=X")
            out["tokens_per_step"] = value
        stated = meta_from(config)
        for name in ("seed", "lr", "recipe"):
            value, source = getattr(self, name).of(run)
            value = value if source == "run" else stated.get(name, value)
            if value is not None:
                out[name] = value
        out.update({k: stated[k] for k in ("tokenizer", "bytes_per_token",
                                           "train_bytes_per_token") if k in stated})
        return out

    def _params(self, run: str, config: Mapping, where: str, out: dict) -> float:
        value, source = self.params.of(run)
        if self.params_from and config:
            try:
                out.update(params_total=(c := count_params(config))["total"],
                           params_nonembed=c["nonembed"])
            except KeyError:
                pass
        if source != "run" and self.params_from:
            convention = "nonembed" if self.params_from.endswith("nonembed") else "total"
            counted = params_from(config, convention)
            if counted is None:
                raise InputError(where, f"run {run}'s config holds no parameter count and no "
                                 "architecture (n_layer, d_model, vocab_size) to count one",
                                 fix=f"give --params {run}=N")
            return counted
        if value is None:
            raise InputError(where, f"no parameter count for run {run}",
                             fix="give --params N (one run), --params RUN=N (each run) or "
                             "--params-from config, or map params=<column or tag>")
        if source == "bare":
            self.shared.append(run)
        return value

    def check_shared(self, where: str, runs=()) -> None:
        """Several runs given one bare ``--params`` (an error naming them, unless same_size),
        and a ``RUN=`` pattern that matches none of ``runs``."""
        for values in (self.params, self.tokens_per_step, self.seed, self.lr, self.recipe):
            for pattern, _ in values.pairs if runs else ():
                if not any(r == pattern or fnmatch.fnmatchcase(r, pattern) for r in runs):
                    raise InputError(where, f"{values.flag} {pattern}=... matches no run",
                                     fix=f"name one of {listing(runs, pattern)}")
        runs = list(dict.fromkeys(self.shared))
        if len(runs) > 1 and not self.same_size:
            names = ", ".join(runs[:6]) + (f", … ({len(runs)} in all)" if len(runs) > 6 else "")
            raise InputError(where, f"{len(runs)} runs ({names}) would all get the one "
                             "--params value", fix="give each run its size with --params "
                             "RUN=N (a glob is allowed) or --params-from config, or add "
                             "--same-size if they are the same size")


def with_meta(part: pd.DataFrame, m: dict) -> pd.DataFrame:
    """One run's rows with its recipe, seed, lr, batch_tokens, N counts, tokenizer and bytes
    per token of the evaluated slice and of the training stream (where its config states
    them) as columns."""
    extra = {"recipe": m.get("recipe", "default"), "seed": m.get("seed", np.nan),
             "lr": m.get("lr", np.nan), "batch_tokens": m.get("tokens_per_step", np.nan)}
    for key in ("params_total", "params_nonembed", "tokenizer", "bytes_per_token",
                "train_bytes_per_token"):
        if key in m:
            extra[key] = m[key]
    return part.assign(**extra)
