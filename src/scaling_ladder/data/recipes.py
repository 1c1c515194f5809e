"""Recipe files: named sources, named mixtures of them (weights + filters), and the tokenizer.

A recipe file is TOML validated by pydantic; every problem becomes one :class:`InputError`
line naming the file, the line of the offending table or key, and the fix::

    [build]                        # optional; these are the defaults
    seed = 0
    val_fraction = 0.05            # share of each source's documents held out (by hash)

    [tokenizer]                    # optional; kind = "byte" (default) or "bpe"
    kind = "bpe"
    vocab = 4096

    [sources.web]                  # files, directories or globs, relative to this file
    paths = ["web/*.jsonl"]
    field = "text"                 # JSON Lines field or Parquet column
    [sources.code]
    paths = ["code/"]              # text: one document per file (documents = "line" or
                                   # "paragraph" split files instead)
    [recipes.balanced]
    weights = { web = 1, code = 1 }
    [recipes.web-clean]
    weights = { web = 3, code = 1 }
    tokens = 2_000_000             # optional budget; default: all there is at these weights
    filters = [{ source = "web", kind = "near_dedup", threshold = 0.8 }]

    [evals.qa]                     # optional: eval sets checked for contamination
    paths = ["evals/qa.jsonl"]
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError
from ..names import check_name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Model):
    """Where a source's documents come from and how they are cut."""

    paths: list[str] = Field(min_length=1)
    format: Literal["auto", "text", "jsonl", "parquet"] = "auto"
    field: str = "text"
    documents: Literal["file", "line", "paragraph"] = "file"
    val_fraction: float | None = Field(default=None, gt=0, lt=1)
    on_bad: Literal["error", "skip"] = "error"

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class _Filter(_Model):
    source: str = "*"


class MinLength(_Filter):
    """Drop documents shorter than ``chars`` characters."""

    kind: Literal["min_length"]
    chars: int = Field(ge=1)


class MaxNonAlpha(_Filter):
    """Drop documents whose non-space characters are more than ``fraction`` non-letters."""

    kind: Literal["max_non_alpha"]
    fraction: float = Field(ge=0, le=1)


class ExactDedup(_Filter):
    """Keep the first copy of every byte-identical document."""

    kind: Literal["exact_dedup"]


class NearDedup(_Filter):
    """Drop documents whose estimated Jaccard similarity to a kept one is >= threshold."""

    kind: Literal["near_dedup"]
    threshold: float = Field(default=0.8, gt=0, le=1)
    shingle: int = Field(default=5, ge=1)
    num_perm: int = Field(default=128, ge=16, le=1024)


class CallableFilter(_Filter):
    """Keep documents for which ``module:function(text)`` returns true."""

    kind: Literal["callable"]
    path: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


FilterSpec = Annotated[MinLength | MaxNonAlpha | ExactDedup | NearDedup | CallableFilter,
                       Field(discriminator="kind")]


class RecipeSpec(_Model):
    weights: dict[str, float] = Field(min_length=1)
    tokens: int | None = Field(default=None, ge=1)
    filters: list[FilterSpec] = []


class TokenizerSpec(_Model):
    kind: Literal["byte", "bpe"] = "byte"
    vocab: int = Field(default=4096, ge=258, le=2**32)
    train_bytes: int = Field(default=20_000_000, ge=1)
    train_on: str | None = None


class BuildSpec(_Model):
    seed: int = 0
    val_fraction: float = Field(default=0.05, gt=0, lt=1)
    shard_tokens: int = Field(default=1 << 24, ge=1)
    source_shard_bytes: int = Field(default=1 << 26, ge=1)


class RecipeFile(_Model):
    """A whole recipe file; ``base`` is the directory relative paths start from."""

    build: BuildSpec = BuildSpec()
    tokenizer: TokenizerSpec = TokenizerSpec()
    sources: dict[str, SourceSpec] = Field(min_length=1)
    recipes: dict[str, RecipeSpec] = Field(min_length=1)
    evals: dict[str, SourceSpec] = {}
    path: str = "recipes.toml"
    base: str = "."

    def val_fraction(self, source: str) -> float:
        return self.sources[source].val_fraction or self.build.val_fraction

    def filters_for(self, recipe: str, source: str) -> tuple[FilterSpec, ...]:
        return tuple(f for f in self.recipes[recipe].filters if f.source in ("*", source))

    def weights(self, recipe: str) -> dict[str, float]:
        """The recipe's positive weights, normalised to sum to one, in file order."""
        w = {s: v for s, v in self.recipes[recipe].weights.items() if v > 0}
        total = sum(w.values())
        return {s: v / total for s, v in w.items()}


def load_recipes(path: str | Path) -> RecipeFile:
    """Read and validate a recipe file; any problem is an :class:`InputError` with its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "no such file", fix="give the path of a recipe "
                         "file (TOML); see ladder data build --help") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(str(path), f"is not valid TOML ({exc})",
                         line=int(m.group(1)) if m else None) from None
    return parse_recipes(raw, text=text, path=str(path), base=str(path.parent.resolve()))


def parse_recipes(raw: dict, *, text: str = "", path: str = "recipes.toml",
                  base: str = ".") -> RecipeFile:
    """Validate an already parsed recipe table (``text`` only serves to find line numbers)."""
    try:
        cfg = RecipeFile.model_validate({**raw, "path": path, "base": base})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = [str(x) for x in first["loc"] if not isinstance(x, int)]
        loc = [x for x in loc if x not in _UNION_TAGS]
        key = ".".join(loc)
        raise InputError(path, f"{key or 'the file'}: {first['msg'].lower()}",
                         line=locate(text, loc), more=len(errors) - 1,
                         fix="see the recipe format in ladder data build --help") from None
    _check_names(cfg, text)
    return cfg


_UNION_TAGS = {"min_length", "max_non_alpha", "exact_dedup", "near_dedup", "callable"}


def _check_names(cfg: RecipeFile, text: str) -> None:
    def fail(loc: list[str], problem: str, fix: str) -> None:
        raise InputError(cfg.path, problem, line=locate(text, loc), fix=fix)

    for table in ("sources", "recipes", "evals"):
        for name in getattr(cfg, table):
            check_name(table[:-1], name, path=cfg.path, line=locate(text, [table, name]))
    for name, recipe in cfg.recipes.items():
        loc = ["recipes", name, "weights"]
        for source, weight in recipe.weights.items():
            if source not in cfg.sources:
                fail(loc, f'recipe "{name}" names unknown source "{source}"',
                     f"choose one of {', '.join(cfg.sources)}" + _hint(source, cfg.sources))
            if not weight >= 0 or weight == float("inf"):
                fail(loc, f'recipe "{name}" gives source "{source}" weight {weight}',
                     "weights must be finite numbers >= 0")
        if not sum(recipe.weights.values()) > 0:
            fail(loc, f'the weights of recipe "{name}" do not sum to a positive number',
                 "give at least one source a positive weight")
        for f in recipe.filters:
            if f.source != "*" and recipe.weights.get(f.source, 0) <= 0:
                fail(["recipes", name, "filters"], f'a filter of recipe "{name}" names source '
                     f'"{f.source}", which the recipe does not use',
                     'name a source with a positive weight, or "*" for all')
    train_on = cfg.tokenizer.train_on
    if train_on is not None and train_on not in cfg.recipes:
        fail(["tokenizer", "train_on"], f'tokenizer.train_on names unknown recipe "{train_on}"',
             f"choose one of {', '.join(cfg.recipes)}" + _hint(train_on, cfg.recipes))


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def locate(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a dotted key in TOML ``text``: its key line, else its table."""
    if not text or not loc:
        return None
    best, best_line, current = None, None, None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\[?([^\]]+)\]\]?", stripped)
        if header:
            current = [p.strip().strip('"').strip("'") for p in header.group(1).split(".")]
            if current == loc[: len(current)] and len(current) > len(best or []):
                best, best_line = current, number
            continue
        if current is None:
            current = []
        key = re.match(r'^"?([^"=\s]+)"?\s*=', stripped)
        if key and current + [key.group(1)] == loc[: len(current) + 1]:
            if len(current) + 1 > len(best or []):
                best, best_line = current + [key.group(1)], number
    return best_line


# ------------------------------------------------------------------------------- mixing


def mixture_plan(tokens: dict[str, np.ndarray], weights: dict[str, float],
                 budget: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Which documents a recipe's train stream holds, in order: ``(source index, doc index)``.

    ``tokens[s]`` are the token counts of source s's usable documents (``-1`` marks one a
    filter removed). Source s gets ``budget * weight_s`` tokens; without a budget, the largest
    total every source can give at its weight without repeating a document. Documents are
    drawn whole, in a seeded random order, repeating (a new order each epoch) when a source
    has fewer tokens than its share; the sources are then interleaved at random.
    """
    names = list(weights)
    avail = {s: int(tokens[s][tokens[s] >= 0].sum()) for s in names}
    if budget is None:
        budget = int(min(avail[s] / weights[s] for s in names))
    rng = np.random.default_rng(seed)
    src, doc, stats = [], [], {}
    for i, s in enumerate(names):
        want = int(round(budget * weights[s]))
        usable = np.flatnonzero(tokens[s] >= 0)
        picked, got, epochs = [], 0, 0
        while got < want and len(usable) and avail[s] > 0:
            order = usable[rng.permutation(len(usable))]
            cum = got + np.cumsum(tokens[s][order])
            n = int(np.searchsorted(cum, want, side="left")) + 1
            picked.append(order[:n])
            got = int(cum[min(n, len(cum)) - 1])
            epochs += 1
        chosen = np.concatenate(picked) if picked else np.empty(0, np.int64)
        src.append(np.full(len(chosen), i, np.int64))
        doc.append(chosen)
        stats[s] = {"weight": weights[s], "target_tokens": want, "tokens": got,
                    "documents": int(len(chosen)), "available_tokens": avail[s],
                    "epochs": got / avail[s] if avail[s] else 0.0}
    src_all, doc_all = np.concatenate(src), np.concatenate(doc)
    order = rng.permutation(len(src_all))
    return src_all[order], doc_all[order], stats
