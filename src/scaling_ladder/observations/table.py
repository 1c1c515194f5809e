"""The observations table: one row per (run, checkpoint, metric), read, validated, selected.

Every number scaling-ladder knows is a row of this table (see DESIGN.md). CSV, Parquet and
JSON Lines are read and written (the formats are :mod:`.io`'s); extra columns are kept; bad
input raises :class:`InputError` naming the file, line and column; rows set aside by a filter
are counted, never dropped quietly.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..units import NATS_PER_TOKEN, UNIT_NAMES
from .io import read_raw, read_typed, write_table
from .where import where_mask

REQUIRED = ("run", "params", "tokens", "metric", "value")
OPTIONAL = ("experiment", "recipe", "flops", "seed", "lr", "batch_tokens", "final", "kind",
            "tokenizer", "bytes_per_token", "train_bytes_per_token", "unit")
# optional; kept only when given
UNIT_COLUMNS = ("tokenizer", "bytes_per_token", "train_bytes_per_token", "unit")
COLUMNS = ("experiment", "recipe", "run", "params", "tokens", "flops", "seed", "lr",
           "batch_tokens", "final", "metric", "kind", "value")
KINDS = ("loss", "accuracy", "perplexity")
_KEY = ["experiment", "run", "tokens", "metric"]


@dataclass(frozen=True)
class Observations:
    """A validated observations table and the record of rows set aside on the way.

    ``frame`` has the DESIGN.md columns (plus any extra ones); ``set_aside`` lists
    ``(reason, count)`` for every filter or cleaning step that removed rows.
    """

    frame: pd.DataFrame
    set_aside: tuple[tuple[str, int], ...] = ()
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_runs(self) -> int:
        """Number of distinct (experiment, run) pairs."""
        return int(self.frame.groupby(["experiment", "run"], sort=False).ngroups)

    @property
    def metrics(self) -> list[str]:
        return sorted(self.frame["metric"].unique())

    def select(
        self,
        *,
        experiment: str | Sequence[str] | None = None,
        recipe: str | Sequence[str] | None = None,
        metric: str | Sequence[str] | None = None,
        where: str | None = None,
        checkpoints: str = "all",
    ) -> Observations:
        """Rows matching every filter; each filter's removed rows are counted in ``set_aside``.

        ``where`` is a condition over the columns, e.g. ``"params > 1e8 and recipe != 'c4'"``,
        in the small language of :mod:`.where` (never Python: no calls, no attributes).
        ``checkpoints`` is ``all``, ``final``, ``drop-first:F`` (drop each run's checkpoints
        before fraction F of its last token count; Choshen et al. 2024 recommend dropping early
        checkpoints), ``drop-first-tokens:T`` (drop checkpoints before T tokens), ``last:F``
        (keep checkpoints in the last fraction F of each run's tokens) or ``auto``: the final
        checkpoint of warmup-stable-decay runs (``schedule`` = ``wsd``: before its cooldown a
        checkpoint is not annealed, and cooldown branches are runs of their own; Hägele et al.
        2024, arXiv:2405.18392) and ``drop-first:0.1`` of every other run.
        """
        frame, aside = self.frame, list(self.set_aside)

        def keep(mask: pd.Series | np.ndarray, reason: str) -> None:
            nonlocal frame
            mask = np.asarray(mask, dtype=bool)
            if not mask.all():  # (every row kept: no copy of a million rows)
                aside.append((reason, int((~mask).sum())))
                frame = frame[mask]

        for col, want in (("experiment", experiment), ("recipe", recipe), ("metric", metric)):
            if want is not None:
                wanted = [want] if isinstance(want, str) else list(want)
                present = set(frame[col].unique())
                missing = [w for w in wanted if w not in present]
                if missing:
                    hint = _closest(missing[0], present)
                    raise InputError(
                        None, f'no rows with {col} "{missing[0]}"',
                        fix=f"choose one of {_listing(present)}" + hint)
                keep(frame[col].isin(wanted), f"{col} not {_listing(wanted)}")
        if where:
            keep(where_mask(frame, where), f"where {where}")
        keep(checkpoint_mask(frame, checkpoints), f"checkpoints {checkpoints}")
        return Observations(frame.reset_index(drop=True), tuple(aside), self.sources)

    def write(self, path: str | Path) -> None:
        """Write CSV, Parquet or JSON Lines, chosen by the file's suffix."""
        write_observations(self.frame, path)

    def summary_rows(self) -> list[tuple[str, str]]:
        f = self.frame
        return [
            ("rows", f"{len(f):,}"),
            ("runs", f"{self.n_runs:,}"),
            ("experiments", _listing(f["experiment"].unique())),
            ("recipes", _listing(f["recipe"].unique())),
            ("metrics", _listing(f["metric"].unique())),
        ] + [(f"set aside: {reason}", f"{n:,}") for reason, n in self.set_aside]


def checkpoint_mask(frame: pd.DataFrame, rule: str) -> np.ndarray:
    """Boolean mask of the rows a checkpoint-selection rule keeps (see ``select``)."""
    if rule == "all":
        return np.ones(len(frame), dtype=bool)
    if rule == "final":
        return frame["final"].to_numpy(dtype=bool)
    if rule == "auto":
        wsd = (frame["schedule"] == "wsd").to_numpy(dtype=bool) if "schedule" in frame else False
        return np.where(wsd, checkpoint_mask(frame, "final"),
                        checkpoint_mask(frame, "drop-first:0.1"))
    m = re.fullmatch(r"(drop-first|drop-first-tokens|last):([0-9.eE+-]+)", rule or "")
    try:
        x = float(m.group(2)) if m else math.nan
    except ValueError:
        x = math.nan
    if not m or not math.isfinite(x) or x < 0 or (m.group(1) != "drop-first-tokens" and x > 1):
        raise ValueError(
            "The 'checkpoints' option must be all, final, auto, drop-first:F, drop-first-tokens:T "
            f"or last:F with 0 <= F <= 1. Got {rule!r}.")
    kind = m.group(1)
    tokens = frame["tokens"].to_numpy(dtype=float)
    if kind == "drop-first-tokens":
        return tokens >= x
    last = frame.groupby(["experiment", "run", "metric"], sort=False)["tokens"].transform("max")
    last = last.to_numpy(dtype=float)
    if kind == "drop-first":
        return tokens >= x * last
    return tokens >= (1 - x) * last


# ----------------------------------------------------------------------------------- reading


def read_observations(paths: str | Path | Iterable[str | Path]) -> Observations:
    """Read and validate one or more observation files (CSV, Parquet, JSON Lines).

    Example
    -------
    >>> obs = read_observations("runs.csv")                     # doctest: +SKIP
    >>> obs.select(metric="val/c4", checkpoints="drop-first:0.1")  # doctest: +SKIP
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames, aside = [], []
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(None, "no observation file given", fix="name at least one file")
    for path in paths:
        frame, dropped = _read_one(path)
        frames.append(frame)
        aside += dropped
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        frame, dropped = _check_duplicates(frame, "+".join(map(str, paths)), None)
        aside += dropped
    return Observations(frame, tuple(aside), tuple(map(str, paths)))


def _read_one(path: Path) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """One file, validated: read fast (:func:`.io.read_typed`) when it is plain, and read as
    text when that gives up or the table fails a check, so an error quotes the cell as written
    and names its line."""
    typed = read_typed(path)
    if typed is not None:
        try:
            return validate(typed[0], path=str(path), lines=None, line_word=typed[1])
        except InputError:
            pass  # the text read below finds the same problem and names its line
    raw, lines, word = read_raw(path)
    return validate(raw, path=str(path), lines=lines, line_word=word)


def from_frame(frame: pd.DataFrame, *, name: str = "<table>") -> Observations:
    """Validate an in-memory table (e.g. built in a notebook) into :class:`Observations`."""
    raw = frame.reset_index(drop=True)
    lines = np.arange(1, len(raw) + 1)
    checked, aside = validate(raw, path=name, lines=lines, line_word="row")
    return Observations(checked, tuple(aside), (name,))


# -------------------------------------------------------------------------------- validation


def validate(
    raw: pd.DataFrame, *, path: str, lines: np.ndarray | None, line_word: str = "line"
) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Check every column of a raw table and return the typed table and rows set aside.

    ``raw`` holds text (a CSV read as text), Python values (JSON) or typed columns (Parquet,
    :func:`.io.read_typed`); a number column may be float or integer, NaN meaning empty. Every
    check is a vectorised mask over all rows, and the first row a mask marks is the one an
    error names (``lines[i]``; no line where ``lines`` is None)."""
    if len(raw) == 0:
        raise InputError(path, "has a header but no rows", fix="add rows or remove the file")
    raw = raw.rename(columns=lambda c: str(c).strip())
    _check_columns(raw, path, line_word)

    def fail(mask: np.ndarray, column: str, problem, fix: str) -> None:
        idx = np.flatnonzero(mask)
        if len(idx):
            i = idx[0]
            text = problem(raw[column].iloc[i]) if callable(problem) else problem
            at = {line_word: int(lines[i])} if lines is not None else {}
            raise InputError(path, text, column=column, fix=fix, more=len(idx) - 1, **at)

    out = pd.DataFrame(index=raw.index)
    for col in ("experiment", "recipe", "run", "metric"):
        default = {"experiment": Path(path).stem, "recipe": "default"}.get(col)
        s = _text(raw[col] if col in raw else pd.Series(default, index=raw.index, dtype=str))
        fail((s == "").to_numpy(), col, "is empty", f"give every row a {col} name")
        out[col] = s

    params = _numeric(raw, "params", fail)
    fail(params != np.round(params), "params", lambda v: f'"{v}" is not a whole number',
         "give the parameter count as an integer")
    fail(params <= 0, "params", lambda v: f"N = {v} is not positive",
         "give the model's parameter count (> 0)")
    out["params"] = params.astype(np.int64)
    tokens = _numeric(raw, "tokens", fail)
    fail(tokens <= 0, "tokens", lambda v: f"D = {v} is not positive",
         "give training tokens seen at the checkpoint (> 0) or remove the row")
    out["tokens"] = tokens
    # a given flops is the truth (the trainer's includes attention); 6ND only fills gaps.
    # Imported when called: the one formula lives with the laws, which import this module
    # (tests/test_layout.py lists this deferred import against the flow).
    from ..laws.compute import flops_6nd

    six_nd = flops_6nd(out["params"], tokens)
    if _present(raw, "flops"):
        flops = _numeric(raw, "flops", fail, optional=True)
        fail(flops <= 0, "flops", lambda v: f"C = {v} is not positive",
             "give training FLOPs (> 0) or leave the field empty for 6ND")
        out["flops"] = np.where(np.isnan(flops), six_nd, flops)
    else:
        out["flops"] = six_nd
    if _present(raw, "seed"):
        seed = _numeric(raw, "seed", fail, optional=True)
        fail(~np.isnan(seed) & (seed != np.round(seed)), "seed",
             lambda v: f'"{v}" is not a whole number', "give integer seeds")
        out["seed"] = pd.arrays.IntegerArray(
            np.where(np.isnan(seed), 0, seed).astype(np.int64), np.isnan(seed))
    else:
        out["seed"] = pd.arrays.IntegerArray(np.zeros(len(raw), dtype=np.int64),
                                             np.ones(len(raw), dtype=bool))
    for col in ("lr", "batch_tokens"):
        if _present(raw, col):
            x = _numeric(raw, col, fail, optional=True)
            fail(x <= 0, col, lambda v: f"{v} is not positive", "give a positive number")
            out[col] = x
        else:
            out[col] = np.nan

    value = _numeric(raw, "value", fail)
    kind = _text(raw["kind"]).str.lower() if "kind" in raw else None
    unset = (kind == "").to_numpy() if kind is not None else None
    if kind is None or unset.all():  # each row's by its metric: ds/* accuracy, else loss
        task = out["metric"].str.startswith("ds/").to_numpy()
        kind = pd.Series(np.where(task, "accuracy", "loss") if task.any() else "loss",
                         index=raw.index, dtype=str)
    elif unset.any():
        kind = kind.where(~unset, np.where(out["metric"].str.startswith("ds/"),
                                           "accuracy", "loss"))
    fail(~kind.isin(KINDS).to_numpy(), "kind", lambda v: f'"{v}" is not a kind',
         "use loss (nats/token), accuracy ([0, 1]) or perplexity")
    ppl = (kind == "perplexity").to_numpy()
    if ppl.any():
        fail(ppl & (value < 1), "value", lambda v: f"perplexity {v} is below 1",
             "give perplexity (>= 1) or set kind to loss")
        value = np.where(ppl, np.log(np.where(ppl, value, 1.0)), value)
        kind = kind.where(~ppl, "loss")
    acc = (kind == "accuracy").to_numpy()
    fail(acc & ((value < 0) | (value > 1)), "value",
         lambda v: f"accuracy {v} is outside [0, 1]",
         "give accuracy as a fraction (divide percentages by 100)")
    fail(~acc & (value <= 0), "value", lambda v: f"loss {v} is not positive",
         "give cross-entropy in nats/token (> 0)")
    out["kind"] = kind
    out["value"] = value
    units = _units(raw, out, fail)

    if _present(raw, "final"):
        out["final"] = _booleans(raw, "final", fail)
    extra = [c for c in raw.columns if c not in COLUMNS]
    for col in extra:
        out[col] = units[col] if col in units else _infer(raw[col])
    frame, aside = _check_duplicates(out, path, (lines, line_word) if lines is not None
                                     else None)
    if "final" not in frame:
        last = frame.groupby(["experiment", "run", "metric"], sort=False)["tokens"]
        frame["final"] = (frame["tokens"] == last.transform("max")).to_numpy()
    frame = frame[list(COLUMNS) + extra]
    return frame.reset_index(drop=True), aside


def _units(raw: pd.DataFrame, out: pd.DataFrame, fail) -> dict[str, pd.Series]:
    """The tokenizer columns, checked: ``tokenizer`` (text), ``bytes_per_token`` of the
    evaluated slice and ``train_bytes_per_token`` of the training stream (each > 0, may be
    empty) and ``unit`` of a loss (``nats/token``, the default, or ``bpb`` = bits/byte;
    :mod:`scaling_ladder.units`), written by its canonical name."""
    got: dict[str, pd.Series] = {}
    if "tokenizer" in raw:
        s = _text(raw["tokenizer"])
        got["tokenizer"] = s.where(s != "", None)
    for col, of in (("bytes_per_token", "the evaluated slice's"),
                    ("train_bytes_per_token", "the training stream's")):
        if col in raw:
            bpt = _numeric(raw, col, fail, optional=True)
            fail(bpt <= 0, col, lambda v: f"{v} bytes per token is not positive",
                 f"give {of} UTF-8 bytes over its tokens (> 0), or leave it empty")
            got[col] = pd.Series(bpt, index=raw.index)
    if "unit" in raw:
        text = _text(raw["unit"]).str.lower()
        fail(~(text.isin(list(UNIT_NAMES)) | (text == "")).to_numpy(), "unit",
             lambda v: f'"{v}" is not a unit', "use nats/token (the default) or bpb (bits/byte)")
        unit = text.map(UNIT_NAMES).where(text != "", NATS_PER_TOKEN)
        fail(((unit != NATS_PER_TOKEN) & (out["kind"] != "loss")).to_numpy(), "unit",
             lambda v: f'unit "{v}" on a row that is not a loss',
             "give bits/byte only for losses (kind loss), or clear the unit")
        if "kind" in raw:  # a perplexity is exp(nats/token): it has no bits/byte reading
            ppl = _text(raw["kind"]).str.lower() == "perplexity"
            fail((ppl & (unit != NATS_PER_TOKEN)).to_numpy(), "unit",
                 lambda v: f'unit "{v}" on a perplexity row',
                 "give the loss in bits/byte as kind loss, or the perplexity without a unit")
        got["unit"] = unit
    return got


def _check_columns(raw: pd.DataFrame, path: str, line_word: str) -> None:
    have = set(raw.columns)
    unknown = [c for c in raw.columns if c not in COLUMNS]
    for col in REQUIRED:
        if col not in have:
            guess = difflib.get_close_matches(col, unknown, n=1, cutoff=0.7)
            hint = (f'rename "{guess[0]}" to "{col}"' if guess
                    else f"add a {col} column (required: {', '.join(REQUIRED)})")
            raise InputError(path, f'column "{col}" is missing', column=col, fix=hint,
                             line=1 if line_word == "line" else None)
    # a known column is no misspelling of another (train_bytes_per_token of bytes_per_token)
    for col in (c for c in unknown if c not in OPTIONAL):
        guess = difflib.get_close_matches(col, [c for c in OPTIONAL if c not in have], n=1,
                                          cutoff=0.8)
        if guess:
            raise InputError(path, f'column "{col}" looks like a misspelling of "{guess[0]}"',
                             line=1 if line_word == "line" else None, column=col,
                             fix=f'rename it to "{guess[0]}"')


def _text(s: pd.Series) -> pd.Series:
    """A column as stripped text, a missing value as "" (what a CSV read as text holds); a
    string column stays in pandas' (pyarrow) strings, never a million Python objects."""
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").str.strip()
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _is_number_column(s: pd.Series) -> bool:
    """A plain float or integer column (Parquet, :func:`.io.read_typed`): NaN is empty."""
    return isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf"


def _present(raw: pd.DataFrame, col: str) -> bool:
    if col not in raw:
        return False
    s = raw[col]
    if _is_number_column(s):
        return bool(s.notna().any())
    text = s if isinstance(s.dtype, pd.StringDtype) else s.astype(str)
    return bool((text.str.strip() != "").any()) and bool(s.notna().any())


def _numeric(raw, col, fail, *, optional=False) -> np.ndarray:
    """A column as float64; empty is an error unless optional (then NaN)."""
    s = raw[col]
    if _is_number_column(s):  # parsed already: only empty (NaN) and infinite to check
        x = s.to_numpy(dtype=float)
        empty = np.isnan(x)
        if not optional:
            fail(empty, col, "is empty", "give a number in every row or remove the row")
        fail(np.isinf(x), col, lambda v: f'"{v}" is not a finite number',
             "give a finite number or remove the row")
        return x
    text = _text(s)
    empty = (text == "").to_numpy()
    if not optional:
        fail(empty, col, "is empty", "give a number in every row or remove the row")
    x = parse_numbers(text, empty)
    unparsed = np.isnan(x) & ~empty
    named_nan = np.zeros(len(x), dtype=bool)
    if unparsed.any():  # "nan", "null", ... are named missing values; other text is no number
        named_nan = text.str.lower().isin(["nan", "-nan", "na", "n/a", "null", "none"])
        named_nan = named_nan.to_numpy()
        fail(unparsed & ~named_nan, col, lambda v: f'"{v}" is not a number',
             "fix it or remove the row")
    fail(named_nan | np.isinf(x), col, lambda v: f'"{v}" is not a finite number',
         "give a finite number or remove the row")
    return x


def parse_numbers(text: pd.Series, empty: np.ndarray) -> np.ndarray:
    """Stripped text as float64, NaN where empty or not a number (as ``pd.to_numeric`` with
    ``errors="coerce"``). pyarrow's cast parses a million cells in a blink but fails the whole
    column on one bad cell; then pandas, cell by cell, marks which."""
    if isinstance(text.dtype, pd.StringDtype):
        try:
            cells = pa.array(text.where(~empty, None), type=pa.string(), from_pandas=True)
            return pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    x = pd.to_numeric(text.where(~empty, "nan"), errors="coerce").to_numpy(dtype=float)
    return np.where(empty, np.nan, x)


_TRUE, _FALSE = ("true", "1", "1.0", "yes"), ("false", "0", "0.0", "no")


def _booleans(raw: pd.DataFrame, col: str, fail) -> np.ndarray:
    if raw[col].dtype == bool:  # JSON true/false, Parquet
        return raw[col].to_numpy()
    text = _text(raw[col]).str.lower()
    fail(~text.isin(_TRUE + _FALSE).to_numpy(), col, lambda v: f'"{v}" is not true or false',
         "write True or False")
    return text.isin(_TRUE).to_numpy()


def _infer(s: pd.Series) -> pd.Series:
    """Type an extra column read as text: numbers, booleans, else text (empty = missing)."""
    if s.dtype != object and not pd.api.types.is_string_dtype(s):
        return s
    text = _text(s)
    empty = text == ""
    if empty.all():
        return pd.Series(np.nan, index=s.index)
    num = pd.to_numeric(text.where(~empty, "nan"), errors="coerce")
    if (num.notna() | empty).all() and not empty.all():
        return num
    low = text.str.lower()
    if (low.isin(["true", "false"]) | empty).all() and not empty.all():
        out = low.map({"true": True, "false": False})
        return out.astype(bool) if not empty.any() else out.astype("boolean")
    return text.where(~empty, None)


def _check_duplicates(frame, path, where) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Duplicate (experiment, run, tokens, metric) keys: same value set aside, else an error."""
    dup = frame.duplicated(_KEY, keep=False).to_numpy()
    if not dup.any():
        return frame, []
    sub = frame[dup]
    spread = sub.groupby(_KEY, sort=False)["value"].transform(lambda v: v.max() - v.min())
    bad = sub[spread.to_numpy() > 0]
    if len(bad):
        first = bad.iloc[0]
        same = bad[(bad[_KEY] == first[_KEY]).all(axis=1)]
        pos = [frame.index.get_loc(i) for i in same.index[:2]]
        if where is not None:
            lines, word = where
            at = f"{word}s {lines[pos[0]]} and {lines[pos[1]]}"
        else:
            at = "two files"
        n_keys = bad.groupby(_KEY, sort=False).ngroups
        raise InputError(
            path,
            f'{at} give run "{first["run"]}", metric "{first["metric"]}", tokens '
            f'{first["tokens"]:g} two different values ({same["value"].iloc[0]:g} and '
            f'{same["value"].iloc[1]:g})', column="value", more=n_keys - 1,
            fix="keep one row per checkpoint, or give the runs different names")
    keep = ~frame.duplicated(_KEY, keep="first").to_numpy()
    return frame[keep], [("exact duplicate rows", int((~keep).sum()))]


# ----------------------------------------------------------------------------------- writing


def write_observations(frame: pd.DataFrame | Observations, path: str | Path) -> None:
    """Write a table as CSV, Parquet or JSON Lines, chosen by the suffix of ``path``, atomically
    (:func:`scaling_ladder.files.open_atomic`)."""
    write_table(frame.frame if isinstance(frame, Observations) else frame, path)


def _listing(values, limit: int = 6) -> str:
    values = [str(v) for v in values]
    head = ", ".join(values[:limit])
    return head + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _closest(word: str, options) -> str:
    guess = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    return f' (did you mean "{guess[0]}"?)' if guess else ""
