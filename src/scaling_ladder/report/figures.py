"""The report's figures: static SVG drawn by matplotlib, inlined in the page.

Why matplotlib and static SVG rather than plotly: plotly's JavaScript bundle alone is 3.5-4.6 MB
(it must be embedded once for a page that opens with no network), most of the 5 MB budget
before any data, and a plotly page draws nothing until that script has parsed and run. A
matplotlib SVG figure is 20-150 kB, draws without JavaScript (so it also prints, diffs and
opens in any viewer), and matplotlib is the figure library DESIGN.md already names. Text is
kept as SVG ``<text>`` (``svg.fonttype = none``): smaller than glyph outlines, searchable, and
escaped by matplotlib's XML writer, so a recipe named ``<script>`` stays text. Each figure gets
its own ``svg.hashsalt`` so that the ids of clip paths and markers are unique in one page.

Every function takes plain arrays and tables prepared by :mod:`.build` and returns a
:class:`Figure` (or ``None`` when there is nothing to draw); none of them fits anything.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from ..format import count

_RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titley": 1.0,  # a fixed title position: "auto" measures every axis to place it
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
}
RECIPE_COLORS = colormaps["tab10"].colors
DECISION_COLORS = {"go": "#1a9850", "no-go": "#d73027", "inconclusive": "#7f7f7f"}


@dataclass(frozen=True)
class Figure:
    """One drawn figure: a short title, a caption saying what it shows, and its SVG markup."""

    key: str
    title: str
    caption: str
    svg: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title, "caption": self.caption}


def text(s: Any) -> str:
    """A data string made safe for matplotlib: no mathtext (``$``), no hidden legend entries.

    matplotlib reads ``$...$`` as math (and raises on unbalanced ``$``) and hides legend labels
    that start with ``_``; names from the data must show as they are.
    """
    s = str(s).replace("$", r"\$")
    return "\u200b" + s if s.startswith("_") else s


def _svg(fig: MplFigure, key: str) -> str:
    """The figure as an ``<svg>`` element to inline: no XML prolog, no metadata, unique ids."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"sl-{key}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # unique ids per figure: matplotlib's are hashes, but the style-sheet-free defs may repeat
    return svg.replace("<svg ", f'<svg role="img" aria-label="{key}" ', 1)


def _styled(fn: Callable) -> Callable:
    """Draw (and save) the whole figure under the report's matplotlib style."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


def _new(width: float, height: float) -> MplFigure:
    return MplFigure(figsize=(width, height))


def _grid(fig: MplFigure, nrows: int = 1, ncols: int = 1, *, left: float = 0.75,
          right: float = 0.2, top: float = 0.35, bottom: float = 0.55, wgap: float = 0.45,
          hgap: float = 0.8, height_ratios: Sequence[float] | None = None):
    """A grid with margins and gaps in inches: fixed layout, twice as fast to save as
    matplotlib's constrained layout (which draws the figure once more to measure it)."""
    w, h = fig.get_size_inches()
    axes_w = (w - left - right - wgap * (ncols - 1)) / ncols
    axes_h = (h - top - bottom - hgap * (nrows - 1)) / nrows
    return fig.add_gridspec(nrows, ncols, left=left / w, right=1 - right / w, top=1 - top / h,
                            bottom=bottom / h, wspace=wgap / axes_w, hspace=hgap / axes_h,
                            height_ratios=height_ratios)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                             "\u2076\u2077\u2078\u2079")


def _power_of_ten(v: float, _pos=None) -> str:
    """A log axis' tick as 10 with a Unicode superscript: matplotlib's own labels are mathtext
    (``$10^{9}$``), whose parser took a sixth of the report's time."""
    if not (np.isfinite(v) and v > 0):
        return ""
    e = round(float(np.log10(v)))
    if abs(np.log10(v) - e) > 1e-9:
        return f"{v:g}"
    return "10" + str(e).translate(_SUPERSCRIPT)


def _log(ax, *, x: bool = True, y: bool = True) -> None:
    """Log scales without minor ticks (a third of the drawing time; the grid uses majors) and
    without mathtext in the tick labels."""
    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    if y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))


def _plain_log(axis, *, counts: bool = False) -> None:
    """Log-axis ticks written plainly (2.4, 2.6 or 100M, 200M) instead of 2.5x10^0, for
    ranges under one or two decades; wider ranges keep matplotlib's powers of ten."""
    lo, hi = axis.get_view_interval()
    if lo <= 0 or hi / lo > (30 if counts else 10):
        return
    if counts:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    else:
        ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: count(v) if counts else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _size_colors(sizes: Sequence[float]) -> dict[float, tuple]:
    """Model sizes mapped to viridis by log N (small = dark, large = yellow)."""
    sizes = sorted(set(float(s) for s in sizes))
    cmap = colormaps["viridis"]
    if len(sizes) == 1:
        return {sizes[0]: cmap(0.35)}
    lo, hi = np.log(sizes[0]), np.log(sizes[-1])
    return {s: cmap(0.9 * (np.log(s) - lo) / (hi - lo)) for s in sizes}


def _size_legend(fig: MplFigure, colors: Mapping[float, tuple], extra: Sequence = (),
                 right: float = 1.6, top: float = 0.35) -> None:
    """One legend in the right margin (``right`` inches wide): ``extra`` handles, then the
    model sizes."""
    handles = [Line2D([], [], color=c, marker="o", markersize=4, label=f"N = {count(n)}")
               for n, c in colors.items()]
    if len(handles) > 12:  # keep the legend readable: every k-th size
        handles = handles[:: int(np.ceil(len(handles) / 12))]
    w, h = fig.get_size_inches()
    fig.legend(handles=list(extra) + handles, loc="upper left", frameon=False,
               bbox_to_anchor=(1 - (right - 0.1) / w, 1 - top / h), borderaxespad=0)


# ------------------------------------------------------------------------------- loss curves


@_styled
def loss_curves(frame: pd.DataFrame, *, metrics: Sequence[str], recipes: Sequence[str],
                key: str = "loss-curves", unit: str = "nats/token") -> Figure | None:
    """Loss against tokens and against FLOPs, log-log: one row per recipe, colour = model size.

    ``frame`` holds the rows of ``metrics`` (columns recipe, run, params, tokens, flops, metric,
    value). The first metric is drawn solid, a second (``train``) dashed. Runs with a single
    checkpoint are drawn as points joined across token budgets of the same size.
    """
    if frame.empty or not recipes:
        return None
    colors = _size_colors(frame["params"].unique())
    styles = dict(zip(metrics, ("-", "--", ":")))
    fig = _new(9.5, 2.75 * len(recipes) + 0.15)
    axes = _grid(fig, len(recipes), 2, right=1.6, wgap=0.25).subplots(squeeze=False,
                                                                      sharey=True)
    for i, recipe in enumerate(recipes):
        sub = frame[frame["recipe"] == recipe]
        for j, xcol in enumerate(("tokens", "flops")):
            ax = axes[i, j]
            for metric in metrics:
                rows = sub[sub["metric"] == metric]
                _draw_runs(ax, rows, xcol, colors, styles.get(metric, "-"))
            _log(ax)
            ax.set_xlabel("training tokens D" if xcol == "tokens" else "training FLOPs C")
            if j == 0:
                ax.set_ylabel(f"loss ({unit})")
            ax.set_title(f"{text(recipe)}: loss vs {'tokens' if xcol == 'tokens' else 'FLOPs'}",
                         loc="left")
            _plain_log(ax.yaxis)
    extra = [Line2D([], [], color="0.3", linestyle=styles[m], label=text(m)) for m in metrics]
    _size_legend(fig, colors, extra if len(metrics) > 1 else ())
    shown = " (solid) and ".join(metrics) + (" (dashed)" if len(metrics) > 1 else "")
    caption = (f"Each line is one run's {shown} loss, coloured by model size; one row per "
               "recipe, against training tokens (left) and training compute (right), both axes "
               "logarithmic. Runs logged only at their end are points, joined across the token "
               "budgets of one model size.")
    return Figure(key, "Loss curves", caption, _svg(fig, key))


def _draw_runs(ax, rows: pd.DataFrame, xcol: str, colors, style: str) -> None:
    """Each run's curve, ending in a dot; runs with one checkpoint as points joined per size.

    The curves are one LineCollection and the end dots one marker set per size: a Line2D per
    run made drawing and saving the loss curves of a 100-run ladder a second."""
    rows = rows.sort_values(["run", xcol], kind="stable")
    run = rows["run"].to_numpy()
    x, y = rows[xcol].to_numpy(float), rows["value"].to_numpy(float)
    n = rows["params"].to_numpy(float)
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    ends = np.r_[starts[1:], len(run)]
    first = pd.unique(run)  # the runs in their order in the table, as the legend reads
    order = {r: i for i, r in enumerate(first)}
    spans = sorted(zip(starts, ends, strict=True), key=lambda se: order[run[se[0]]])
    lines, line_colors, single = [], [], []
    for a, b in spans:
        if b - a == 1:
            single.append(a)
            continue
        xs, ys = x[a:b], y[a:b]
        if len(xs) > 2000:  # thin very long logs for drawing only
            keep = np.unique(np.r_[np.linspace(0, len(xs) - 1, 2000).astype(int), len(xs) - 1])
            xs, ys = xs[keep], ys[keep]
        lines.append(np.column_stack([xs, ys]))
        line_colors.append(colors[float(n[a])])
    if lines:
        ax.add_collection(LineCollection(lines, colors=line_colors, linestyles=style,
                                         linewidths=1.0, alpha=0.85))
        last = np.array([seg[-1] for seg in lines])
        for c in dict.fromkeys(line_colors):
            pick = [i for i, lc in enumerate(line_colors) if lc == c]
            ax.plot(last[pick, 0], last[pick, 1], "o", color=c, markersize=3, linestyle="")
        ax.autoscale_view()
    if single:
        pts = rows.iloc[single]
        for size, grp in pts.groupby("params"):
            grp = grp.sort_values(xcol)
            ax.plot(grp[xcol], grp["value"], "o" + style, color=colors[float(size)],
                    markersize=3.5, linewidth=0.8, alpha=0.9)


# ------------------------------------------------------------------------------- scaling fit


@_styled
def scaling_fit(panels: Sequence[Mapping[str, Any]], *, key: str = "scaling-fit",
                law: str = "", star: str = "", unit: str = "nats/token") -> Figure | None:
    """Fitted curves with bands, where each run lands, and the residuals; held-out points open.

    Each panel (one recipe) has ``points`` (a table with params, flops, value, residual,
    heldout), ``curves`` (per size: params, flops, mean, lo, hi) and optionally ``target``
    (flops, mean, lo, hi, actual); ``star`` says what the target's star and bar are.
    """
    panels = [p for p in panels if len(p["points"])]
    if not panels:
        return None
    sizes = np.unique(np.concatenate([p["points"]["params"].to_numpy(float) for p in panels]))
    colors = _size_colors(sizes)
    fig = _new(max(3.6 * len(panels) + 1.8, 6.5), 5.6)
    grid = _grid(fig, 2, len(panels), right=1.7, wgap=0.5, hgap=0.12, height_ratios=(3, 1.3))
    top = None
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[0, i], sharey=top)
        res = fig.add_subplot(grid[1, i], sharex=ax)
        top = top or ax
        for curve in panel["curves"]:
            c = colors.get(float(curve["params"]), "0.4")
            ax.plot(curve["flops"], curve["mean"], "-", color=c, linewidth=1.0)
            if curve.get("lo") is not None:
                ax.fill_between(curve["flops"], curve["lo"], curve["hi"], color=c, alpha=0.18,
                                linewidth=0)
        pts = panel["points"]
        for held, marker_face in ((False, None), (True, "none")):
            sub = pts[pts["heldout"].to_numpy(bool) == held]
            if sub.empty:
                continue
            cs = [colors[float(n)] for n in sub["params"]]
            face = cs if marker_face is None else "none"
            ax.scatter(sub["flops"], sub["value"], s=16, c=face, edgecolors=cs, linewidths=1.0,
                       zorder=3)
            res.scatter(sub["flops"], 100 * sub["residual"], s=12, c=face, edgecolors=cs,
                        linewidths=1.0, zorder=3)
        tgt = panel.get("target")
        if tgt:
            _interval(ax, tgt["flops"], tgt["mean"], tgt.get("lo"), tgt.get("hi"),
                      color="black", marker="*", markersize=9, zorder=4)
            if tgt.get("actual") is not None:
                ax.plot([tgt["flops"]], [tgt["actual"]], "x", color="#d73027", markersize=8,
                        zorder=5)
        _log(ax)
        ax.set_title(f"{text(panel['recipe'])}", loc="left")
        _plain_log(ax.yaxis)
        ax.set_ylabel(f"final loss ({unit})" if i == 0 else "")
        ax.tick_params(labelbottom=False)
        res.axhline(0, color="0.3", linewidth=0.8)
        res.set_xlabel("training FLOPs C")
        res.set_ylabel("residual (%)" if i == 0 else "")
    handles = [Line2D([], [], color="0.3", marker="o", linestyle="", label="fitted run"),
               Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                      label="held-out run (diagnostic)"),
               Line2D([], [], color="black", marker="*", linestyle="", markersize=8,
                      label="prediction at target"),
               Line2D([], [], color="#d73027", marker="x", linestyle="",
                      label="observed at target")]
    _size_legend(fig, colors, handles, right=1.7)
    star = star or ("the single-recipe fit's prediction at the target with its 95% "
                    "prediction interval (a new run)")
    caption = (f"Final loss against compute, one panel per recipe, colour = model size. Lines: "
               f"the {law} law fitted to each recipe alone (for the curves), along each size's "
               "token range, with its 95% bootstrap band (the curve's CI); filled points were "
               "fitted, open points were held out (a diagnostic). "
               f"Star: {star}; cross: the observed run at the target, when there is one. Bottom: "
               "residuals, observed / predicted − 1, in percent.")
    return Figure(key, "Scaling fit", caption, _svg(fig, key))


# ---------------------------------------------------------------------------------- IsoFLOP


_ISO_LEFT = ("Left: final loss against model size at fixed compute for {recipe}; points are "
             "runs within one budget, solid lines the parabola in log N fitted to them "
             "(Hoffmann et al. 2022, approach 2), dashed lines the fitted law's profile where a "
             "budget has too few sizes for a parabola; crosses mark each valley's minimum.")


@_styled
def isoflop(profiles: Sequence[Mapping[str, Any]], frontier: Mapping[str, Mapping[str, Any]], *,
            recipe: str, key: str = "isoflop", unit: str = "nats/token") -> Figure | None:
    """IsoFLOP valleys (loss against N at fixed compute, parabola and minimum per budget) and
    the compute-optimal frontier N*(C) of every recipe."""
    if not profiles and not frontier:
        return None
    fig = _new(9.5 if profiles and frontier else 5.2, 3.6)
    n = int(bool(profiles)) + int(bool(frontier))
    axes = list(_grid(fig, 1, n, wgap=0.95).subplots(squeeze=False)[0])
    left = axes.pop(0) if profiles else None
    right = axes.pop(0) if frontier else None
    cmap = colormaps["plasma"]
    for i, prof in enumerate(profiles):
        c = cmap(0.85 * i / max(len(profiles) - 1, 1))
        x = np.asarray(prof["params"], float)
        left.plot(x, prof["value"], "o", color=c, markersize=4)
        if prof.get("curve") is not None:
            cx, cy = prof["curve"]
            left.plot(cx, cy, "-" if prof.get("kind") == "parabola" else "--", color=c,
                      linewidth=1.0, label=f"{prof['flops']:.2g} FLOPs")
        if prof.get("minimum") is not None:
            left.plot(*prof["minimum"], "X", color=c, markersize=8, markeredgecolor="black",
                      markeredgewidth=0.5)
    if left is not None:
        _log(left, y=False)
        _plain_log(left.xaxis, counts=True)
        left.set_xlabel("model size N (parameters)")
        left.set_ylabel(f"final loss ({unit})")
        left.set_title(f"{text(recipe)}: IsoFLOP valleys", loc="left")
        left.legend(frameon=False, loc="upper right", title="budget")
    if right is None:
        return Figure(key, "IsoFLOP valleys", _ISO_LEFT.format(recipe=text(recipe)),
                      _svg(fig, key))
    for j, (name, fr) in enumerate(frontier.items()):
        c = RECIPE_COLORS[j % len(RECIPE_COLORS)]
        if fr.get("law") is not None:
            cc, n, lo, hi = fr["law"]
            right.plot(cc, n, "-", color=c, label=f"{text(name)} (fitted law)")
            if lo is not None:
                right.fill_between(cc, lo, hi, color=c, alpha=0.15, linewidth=0)
        if fr.get("minima"):
            mc, mn = zip(*fr["minima"])
            right.plot(mc, mn, "X", color=c, markeredgecolor="black", markeredgewidth=0.5,
                       markersize=7, linestyle="",
                       label=f"{text(name)} (IsoFLOP minima)")
    _log(right)
    right.set_xlabel("training FLOPs C")
    right.set_ylabel("compute-optimal N*")
    right.set_title("Compute-optimal frontier", loc="left")
    right.legend(frameon=False, loc="upper left")
    right_text = ("the compute-optimal model size N*(C) of every recipe, from the fitted law "
                  "(line, 95% band over bootstrap draws) and from the IsoFLOP minima (crosses). "
                  "A valley whose minimum jumps between budgets is a stop signal.")
    caption = (_ISO_LEFT.format(recipe=text(recipe)) + " Right: " + right_text if profiles
               else right_text[0].upper() + right_text[1:])
    return Figure(key, "IsoFLOP valleys and the compute-optimal frontier", caption,
                  _svg(fig, key))


# ------------------------------------------------------------------------------ go / no-go


def _interval(ax, x, y, lo, hi, *, color, marker, markersize, zorder=3,
              hollow: bool = False) -> None:
    """A point and its interval drawn from ``lo`` to ``hi``: a percentile interval from few
    resamples need not contain the point, which error bars (offsets from it) cannot show."""
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        ax.plot([x, x], [lo, hi], color=color, marker="_", markersize=8, linewidth=1.2,
                zorder=zorder, linestyle=":" if hollow else "-")
    ax.plot([x], [y], marker, color=color, markersize=markersize, zorder=zorder,
            markerfacecolor="white" if hollow else color)


@_styled
def decision_scatter(points: Sequence[Mapping[str, Any]], *, band: float, unit: str,
                     baseline: str, source: str = "the fitted laws",
                     key: str = "decision") -> Figure | None:
    """Proxy gain against predicted gain at the target, per recipe, with the decision regions.

    ``points``: recipe, x (gain observed at the proxies), y (gain predicted at the target),
    ylo, yhi (its 95% interval), decision, set_aside (the prediction is not what the decision
    rests on: a hollow point). ``band``: half-width of the inconclusive region.
    """
    points = [p for p in points if p.get("y") is not None]
    if not points:
        return None
    fig = _new(6.4, 4.2)
    ax = fig.add_subplot(_grid(fig, left=0.8)[0, 0])
    xs = np.array([p["x"] if p.get("x") is not None else 0.0 for p in points], float)
    ys = np.array([p["y"] for p in points], float)
    lo = [p.get("ylo") if p.get("ylo") is not None else p["y"] for p in points]
    hi = [p.get("yhi") if p.get("yhi") is not None else p["y"] for p in points]
    span = max(np.max(np.abs(np.r_[xs, ys, lo, hi])) * 1.35, 2.5 * band, 1e-3)
    ax.axhspan(band, span, color=DECISION_COLORS["go"], alpha=0.08, linewidth=0)
    ax.axhspan(-band, band, color=DECISION_COLORS["inconclusive"], alpha=0.10, linewidth=0)
    ax.axhspan(-span, -band, color=DECISION_COLORS["no-go"], alpha=0.08, linewidth=0)
    for y, word, va in ((span * 0.95, "go", "top"), (0.0, "inconclusive", "center"),
                        (-span * 0.95, "no-go", "bottom")):
        ax.text(-span * 0.97, y, word, color=DECISION_COLORS[word], va=va, ha="left",
                fontsize=9, fontweight="bold")
    ax.axhline(0, color="0.4", linewidth=0.7)
    ax.axvline(0, color="0.4", linewidth=0.7)
    # labels of neighbouring points alternate above and below them, so two close ones both read
    below = {i: k % 2 == 1 for k, i in enumerate(np.lexsort((ys, xs)))}
    for i, (p, x, y, yl, yh) in enumerate(zip(points, xs, ys, lo, hi)):
        c = DECISION_COLORS.get(p.get("decision"), "#3b6fb6")
        _interval(ax, x, y, yl, yh, color=c, marker="o", markersize=6,
                  hollow=bool(p.get("set_aside")))
        ax.annotate(text(p["recipe"]) + (" (set aside)" if p.get("set_aside") else ""), (x, y),
                    textcoords="offset points", xytext=(6, -12 if below[i] else 5), fontsize=8)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_xlabel(f"gain observed at the largest proxy ({unit})")
    ax.set_ylabel(f"gain predicted at the target ({unit})")
    ax.set_title(f"Go / no-go against baseline {text(baseline)}", loc="left")
    caption = ("Each point is a recipe against the baseline; gain is the improvement (positive "
               "is better). x: the gain measured at the largest proxy scale both recipes share; "
               f"y: the gain predicted at the target by {source}, with its 95% interval. "
               "Shaded regions: go (above), inconclusive (within the typical interval "
               f"half-width, ±{band:.3g} {unit}), no-go (below); colour is each recipe's "
               "decision."
               + (" A hollow point's prediction is set aside: its decision rests on the ranking "
                  "at the largest proxy (x), not on its place in the regions."
                  if any(p.get("set_aside") for p in points) else ""))
    return Figure(key, "Go / no-go", caption, _svg(fig, key))
