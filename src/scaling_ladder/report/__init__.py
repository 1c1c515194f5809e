"""The scaling report (``ladder report``): one self-contained HTML page, or Markdown.

:func:`build_report` assembles the sections (:mod:`.sections`) from observations, fits and the
results of the comparison and the data checks; :mod:`.model` holds what a report is made of;
:mod:`.figures` draws the figures as static SVG (matplotlib); :mod:`.render` writes the page
from ``page.html.j2``.
"""

from .build import build_report
from .figures import Figure
from .model import Report, Section, Table

__all__ = ["build_report", "Figure", "Report", "Section", "Table"]
