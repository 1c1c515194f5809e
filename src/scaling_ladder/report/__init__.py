"""The scaling report (``ladder report``): one self-contained HTML page, or Markdown.

:func:`build_report` assembles the sections (:mod:`.sections`) from observations, fits and the
results of the comparison and the data checks; :mod:`.figures` draws them as static SVG
(matplotlib); :mod:`.render` writes the page from ``page.html.j2``.
"""

from .build import Report, Section, Table, build_report
from .figures import Figure

__all__ = ["build_report", "Figure", "Report", "Section", "Table"]
