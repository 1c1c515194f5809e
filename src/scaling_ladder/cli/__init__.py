"""The ``ladder`` command: thin verbs over the library API, one module per group of verbs.

Exit status: 0 done; 1 a verdict against the input (``check`` off band, ``train`` with failed
runs, ``data check`` round-trip failures); 2 bad input or usage (one line on stderr naming file,
line, column and the fix); 3 an internal error (please report it; ``ladder --debug VERB`` or
SCALING_LADDER_DEBUG=1 prints its traceback).
"""

from importlib import import_module

from .common import app

for _verbs in ("fit", "tasks", "decide", "report", "train", "data", "imports"):  # --help order
    import_module(f"{__name__}.{_verbs}")  # each module registers its verbs on ``app``


def main() -> None:
    app()


__all__ = ["app", "main"]
