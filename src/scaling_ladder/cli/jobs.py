"""``--jobs``: the processes of the verbs that bootstrap (fit, compare, report)."""

from __future__ import annotations

from typing import Annotated

import typer

Jobs = Annotated[int | None, typer.Option(
    help="Processes for the bootstrap refits and the independent fits (default: one per "
    "core); the results are the same whatever the number.", show_default=False)]
