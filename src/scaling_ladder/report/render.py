"""Writing a built report: one self-contained HTML page (jinja2), or Markdown with SVG files.

The page template autoescapes every string; only the SVG figures are inserted as markup, and
matplotlib escapes the text inside them, so a recipe named ``<script>`` shows as text.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from ..files import write_atomic
from ..format import count

if TYPE_CHECKING:  # the model imports this module to render itself
    from .model import Report, Table

_NUMERIC = re.compile(r"^[−+\-]?[\d.,]+(e[+\-]?\d+)?[%kMBT]?( \[.*\]| \(.*\))?( ± [\d.e\-]+)?$")
_BADGES = {"go": "go", "no-go": "no-go", "inconclusive": "inconclusive"}


def _version() -> str:
    from .. import __version__

    return __version__


def _badge(cell: object) -> str:
    word = str(cell).split(" (")[0].strip().lower()
    return _BADGES.get(word, "")


def _numeric(cell: object) -> bool:
    return bool(_NUMERIC.match(str(cell)))


def to_html(report: Report) -> str:
    """The report as one HTML page with inline CSS, SVG and script; no network needed."""
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    template = env.from_string(
        resources.files(__package__).joinpath("page.html.j2").read_text(encoding="utf-8"))
    meta = report.meta
    target = meta.get("target") or {}
    return template.render(report=report, meta=_Meta(meta), version=_version(),
                           target_n=count(target.get("params", float("nan"))),
                           target_d=count(target.get("tokens", float("nan"))),
                           badge=_badge, numeric=_numeric)


class _Meta(dict):
    """Meta values by attribute in the template, with defaults for what a report may lack."""

    _defaults = {"metric": "—", "kind": "—", "baseline": "—", "runs": 0, "rows": 0,
                 "generated": "", "notes": [], "set_aside": {}, "sources": [], "law": "—",
                 "bootstrap": 0, "seed": 0}

    def __getattr__(self, name: str):
        return self.get(name, self._defaults.get(name))


# ------------------------------------------------------------------------------ Markdown


def _md_cell(x: object) -> str:
    """A cell safe in GitHub Markdown: no pipes, no raw HTML, one line."""
    s = str(x).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", r"\|").replace("\n", " ")


def _md_table(t: Table) -> list[str]:
    out = ["| " + " | ".join(_md_cell(c) for c in t.columns) + " |",
           "|" + "|".join("---:" if _numeric(t.rows[0][i]) else "---"
                          for i in range(len(t.columns))) + "|" if t.rows else
           "|" + "|".join("---" for _ in t.columns) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    if t.caption:
        out += ["", f"*{_md_cell(t.caption)}*"]
    return out


def to_markdown(report: Report, figure_dir: str | None = None) -> str:
    """The report as Markdown: tables in full; figures linked from ``figure_dir`` when given,
    else named (they are in the HTML page)."""
    meta = _Meta(report.meta)
    lines = [f"# {_md_cell(report.title)}", "",
             f"Metric **{_md_cell(meta.metric)}** ({meta.kind}), baseline "
             f"**{_md_cell(meta.baseline)}**, {meta.runs} runs, {meta.rows} rows; generated "
             f"{meta.generated} by scaling-ladder {_version()}.", ""]
    for i, s in enumerate(report.sections, 1):
        lines += [f"## {i}. {_md_cell(s.title)}", ""]
        for w in s.warnings:
            lines += [f"> **Warning:** {_md_cell(w)}", ">"]
        if s.warnings:
            lines[-1] = ""
        if s.omitted:
            lines += [f"*Omitted: {_md_cell(s.omitted)}*", ""]
            continue
        if s.verdict:
            lines += [f"**Decision: {_md_cell(s.verdict)}**", ""]
        if s.intro:
            lines += [_md_cell(s.intro), ""]
        for f in s.figures:
            if figure_dir is not None:
                lines += [f"![{_md_cell(f.title)}]({figure_dir}/{f.key}.svg)", ""]
            else:
                lines += [f"*Figure ({_md_cell(f.title)}): in the HTML report.*", ""]
            lines += [f"*{_md_cell(f.title)}.* {_md_cell(f.caption)}", ""]
        for t in s.tables:
            lines += _md_table(t) + [""]
        lines += [f"- {_md_cell(n)}" for n in s.notes] + ([""] if s.notes else [])
    if meta.notes:
        lines += ["Notes: " + "; ".join(_md_cell(n) for n in meta.notes) + ".", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- writing


SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def report_format(path: Path, format: str | None = None) -> str:
    """``html`` or ``md``: ``format`` when given, else told by the suffix of ``path``."""
    if format is None:
        format = SUFFIXES.get(Path(path).suffix.lower())
        if format is None:
            raise ValueError(f"The report {path} has the suffix {Path(path).suffix!r}; a report "
                             "is HTML or Markdown: name it .html or .md (or give --format).")
    if format not in ("html", "md"):
        raise ValueError(f"The 'format' of a report must be 'html' or 'md'. Got {format!r}.")
    return format


def write(report: Report, path: Path, format: str | None = None) -> Path:
    """Write ``report`` to ``path`` as ``html`` or ``md`` (default: from the suffix)."""
    fmt = report_format(path, format)
    if fmt == "html":
        write_atomic(path, report.html)
        return path
    figure_dir = f"{path.stem}_figures"
    for f in report.figures:
        write_atomic(path.parent / figure_dir / f"{f.key}.svg", f.svg + "\n")
    write_atomic(path, to_markdown(report, figure_dir if report.figures else None))
    return path
