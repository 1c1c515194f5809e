"""The one check for names that become file or folder names: sources, recipes, evals, stages,
runs and experiments.

A name is letters, digits, ``.``, ``_`` and ``-``, starts with a letter or digit (so never
``..`` or a hidden file), has no ``/`` (so it stays in its folder), is at most 200 characters,
and is none of the names the token folder uses itself (``val``, ``manifest.json``, ...).
"""

from __future__ import annotations

import re

from .errors import InputError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_LENGTH = 200
RESERVED = frozenset({"val", "sources", "manifest.json", "tokenizer.json", "recipes.toml",
                      "state.json"})


def is_name(name: object) -> bool:
    """True when ``name`` may become a file or folder name."""
    return (isinstance(name, str) and len(name) <= MAX_LENGTH
            and NAME.fullmatch(name) is not None and name not in RESERVED)


def check_name(kind: str, name: object, *, path: str | None = None, line: int | None = None,
               column: str | None = None) -> str:
    """``name`` if it may become a file or folder name, else an :class:`InputError` naming the
    ``kind`` (``"recipe"``, ``"run"``, ...), the file and line it came from, and the fix."""
    if is_name(name):
        return name
    too_long = isinstance(name, str) and len(name) > MAX_LENGTH
    problem = (f"{kind} name {_show(name)} is longer than {MAX_LENGTH} characters" if too_long
               else f"{kind} name {_show(name)} cannot be a file name")
    raise InputError(path, problem, line=line, column=column,
                     fix="use letters, digits, '.', '_' and '-', starting with a letter or "
                     f"digit, and none of {', '.join(sorted(RESERVED))}")


def _show(name: object) -> str:
    if not isinstance(name, str):
        return repr(name)
    text = name if len(name) <= 60 else name[:57] + "..."
    return '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + '"'
