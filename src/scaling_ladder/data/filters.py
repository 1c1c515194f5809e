"""Document filters a recipe applies to a source's train split, and duplicate detection.

Built-ins: minimum length, maximum non-alphabetic fraction, exact-duplicate removal (first
copy kept) and near-duplicate removal by MinHash LSH (Broder 1997; the banding index of
``datasketch``), plus any ``module:function(text) -> bool`` by import path. A chain of filters
runs in order over a stream of chunks, and the duplicate filters remember what they kept.

A ``callable`` filter runs code named by a data file, so it runs only by explicit opt-in:
``allow_code=True`` (``ladder data build --allow-code``), or a function an installed package
registers in the entry point group ``scaling_ladder.filters``, e.g. in its pyproject.toml::

    [project.entry-points."scaling_ladder.filters"]
    boilerplate = "mypkg.filters:not_boilerplate"
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from ..errors import InputError
from .ngrams import Texts, minhash_signatures
from .recipes import CallableFilter, ExactDedup, MaxNonAlpha, MinLength, NearDedup, RecipeFile
from .sources import Document

_LETTER = re.compile(r"[^\W\d_]")
_SPACE = re.compile(r"\s")


def label(spec) -> str:
    """A short name for a filter, as reports show it: ``near_dedup(0.8)``."""
    args = {MinLength: lambda f: f.chars, MaxNonAlpha: lambda f: f.fraction,
            NearDedup: lambda f: f.threshold, CallableFilter: lambda f: f.path}
    arg = args.get(type(spec))
    return f"{spec.kind}({arg(spec)})" if arg else spec.kind


def non_alpha_fraction(text: str) -> float:
    """Share of the non-space characters that are not letters (digits, symbols, punctuation)."""
    visible = len(text) - len(_SPACE.findall(text))
    return 1 - len(_LETTER.findall(text)) / visible if visible else 0.0


def exact_duplicates(digests: Sequence[bytes], seen: set[bytes] | None = None) -> np.ndarray:
    """True where a document's digest was seen before (in ``seen`` or earlier in the list)."""
    seen = set() if seen is None else seen
    out = np.zeros(len(digests), bool)
    for i, d in enumerate(digests):
        out[i] = d in seen
        seen.add(d)
    return out


class NearDuplicates:
    """Greedy MinHash-LSH near-duplicate detection over a stream of document chunks.

    A document is a near-duplicate when its estimated Jaccard similarity of word
    ``shingle``-grams to an earlier, kept document is at least ``threshold`` (Broder 1997);
    candidates come from the LSH bands ``datasketch`` chooses for that threshold, and each is
    confirmed on the full signatures. Documents with fewer than ``shingle`` words are never
    near-duplicates.
    """

    def __init__(self, threshold: float = 0.8, shingle: int = 5, num_perm: int = 128) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.shingle, self.num_perm = threshold, shingle, num_perm
        # Weigh misses 19x false candidates when choosing bands: every candidate is confirmed
        # on its full signature, so a false candidate costs time, a miss a duplicate
        # (128 permutations at 0.8: 16 bands of 8; P(candidate | J = 0.9) > 0.999).
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.05, 0.95))
        self._kept: dict[int, np.ndarray] = {}
        self._next = 0

    def __call__(self, texts: Texts) -> np.ndarray:
        """True for each document of the chunk that nearly duplicates an earlier one."""
        from datasketch import LeanMinHash

        sig, has = minhash_signatures(texts, shingle=self.shingle, num_perm=self.num_perm)
        dup = np.zeros(len(texts), bool)
        for i in np.flatnonzero(has):
            m = LeanMinHash(seed=1, hashvalues=sig[i], scheme="affine32")
            for key in self._lsh.query(m):
                if np.mean(self._kept[key] == sig[i]) >= self.threshold:
                    dup[i] = True
                    break
            if not dup[i]:
                self._lsh.insert(self._next, m, check_duplication=False)
                self._kept[self._next] = sig[i]
                self._next += 1
        return dup


def near_duplicates(texts: Texts, threshold: float = 0.8, shingle: int = 5,
                    num_perm: int = 128) -> np.ndarray:
    """True for each document that nearly duplicates an earlier one (see NearDuplicates)."""
    return NearDuplicates(threshold, shingle, num_perm)(texts)


ENTRY_POINTS = "scaling_ladder.filters"
ALLOW_CODE_FIX = ("run it only if you trust the file: ladder data build --allow-code (in Python, "
                  "build(..., allow_code=True)), or register the function in the entry point "
                  f'group "{ENTRY_POINTS}" of an installed package')


def registered_filters() -> set[str]:
    """``module:function`` of every filter installed packages register under ENTRY_POINTS."""
    return {"".join(ep.value.split()) for ep in entry_points(group=ENTRY_POINTS)}


def code_filters(cfg: RecipeFile, recipes: Sequence[str] | None = None, *,
                 allow_code: bool = False) -> dict[str, bool]:
    """The code the ``callable`` filters of ``recipes`` (default: all) would run, as
    ``{module:function: registered?}``; an :class:`InputError` naming the recipe file and line
    when one is neither registered nor allowed by ``allow_code``."""
    registered = registered_filters()
    found: dict[str, bool] = {}
    for recipe in recipes if recipes is not None else cfg.recipes:
        spec = cfg.recipes.get(recipe)
        for f in spec.filters if spec is not None else ():
            if isinstance(f, CallableFilter):
                found[f.path] = f.path in registered
                if not (allow_code or found[f.path]):
                    raise _not_allowed(f.path, cfg.path, f'recipe "{recipe}" ')
    return found


def _not_allowed(path: str, config: str, who: str = "a recipe ") -> InputError:
    return InputError(config, f'{who}has a callable filter "{path}": it would import and run '
                      "this Python code on every document", line=_line_of(config, path),
                      fix=ALLOW_CODE_FIX)


def _line_of(config: str, text: str) -> int | None:
    """The first line of the file ``config`` that holds ``text``, if it can be read."""
    try:
        lines = Path(config).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((i for i, line in enumerate(lines, 1) if text in line), None)


def import_filter(path: str, config: str, *, allow_code: bool = False
                  ) -> Callable[[str], object]:
    """The function ``module:function``, when ``allow_code`` or registered (see above)."""
    if not allow_code and path not in registered_filters():
        raise _not_allowed(path, config)
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InputError(config, f'filter "{path}" cannot be imported ({exc})',
                         fix="give module:function of an importable function text -> bool"
                         ) from None
    if not callable(fn):
        raise InputError(config, f'filter "{path}" is not callable',
                         fix="give module:function of a function text -> bool")
    return fn


class FilterChain:
    """Filters applied in order: each sees only what the ones before it kept.

    Call it on successive chunks of one source; ``removed`` counts removals per filter. A
    ``callable`` filter needs ``allow_code=True`` unless it is registered (see above).
    """

    def __init__(self, specs: Sequence, *, config: str = "recipes.toml",
                 allow_code: bool = False) -> None:
        self.specs = tuple(specs)
        self.removed: Counter = Counter()
        self._steps = [self._step(s, config, allow_code) for s in self.specs]

    def _step(self, spec, config: str, allow_code: bool
              ) -> Callable[[list[Document]], np.ndarray]:
        if isinstance(spec, MinLength):
            return lambda docs: np.array([len(d.text) >= spec.chars for d in docs], bool)
        if isinstance(spec, MaxNonAlpha):
            return lambda docs: np.array(
                [non_alpha_fraction(d.text) <= spec.fraction for d in docs], bool)
        if isinstance(spec, ExactDedup):
            seen: set[bytes] = set()
            return lambda docs: ~exact_duplicates([d.digest for d in docs], seen)
        if isinstance(spec, NearDedup):
            near = NearDuplicates(spec.threshold, spec.shingle, spec.num_perm)
            return lambda docs: ~near(Texts.from_bytes([d.data for d in docs]))
        fn = import_filter(spec.path, config, allow_code=allow_code)

        def call(docs: list[Document]) -> np.ndarray:
            out = np.zeros(len(docs), bool)
            for i, d in enumerate(docs):
                try:
                    out[i] = bool(fn(d.text))
                except Exception as exc:  # noqa: BLE001 - user code; name the document
                    raise InputError(d.origin, f"filter {spec.path} raised "
                                     f"{type(exc).__name__}: {exc}",
                                     fix="fix the filter function") from None
            return out

        return call

    def __call__(self, docs: Sequence[Document]) -> np.ndarray:
        keep = np.ones(len(docs), bool)
        for spec, step in zip(self.specs, self._steps):
            idx = np.flatnonzero(keep)
            if not len(idx):
                break
            ok = np.asarray(step([docs[i] for i in idx]), bool)
            keep[idx[~ok]] = False
            self.removed[label(spec)] += int((~ok).sum())
        return keep
