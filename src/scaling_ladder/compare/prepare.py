"""Observations made ready for a comparison: checks, downstream average, protocols, scales.

Every problem a user can fix is an :class:`InputError` naming what is wrong and how to fix it
(one recipe only, a baseline that is not in the data, a decision metric that is missing, no
scale shared with the baseline); gaps the comparison can live with (a metric some recipes lack,
a recipe that shares no scale with the baseline) become notes.

The decision metric is a loss or an accuracy (a ``ds/`` task, or ``ds/average``): an accuracy is
compared scale by scale with higher as better, and :func:`paired_loss` names the loss a
two-step prediction of it would go through (Bhagia et al. 2024, arXiv:2412.04403).

Scales are matched by tokens: a run trained past the baseline's token budget at its size is cut
at that budget when a checkpoint of it stands for a run trained to it
(:func:`~scaling_ladder.compare.budgets.cut_to_budgets`), and the notes say what was cut, or
not, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InputError
from ..laws.downstream import paired_loss
from ..observations.table import Observations, _closest, _listing, from_frame
from ..units import BITS_PER_BYTE
from .budgets import cut_to_budgets
from .ranking import RankAtScale
from .scales import final_values, observed_ranking, per_scale_table
from .tokenizers import common_units, matched_note, unit_ranking

AVERAGE = "ds/average"
SLICE_AVERAGE = "val/average"  # mean loss over the other val/ slices: the regression aggregate
KINDS = ("loss", "accuracy")  # kinds a decision metric may have


@dataclass(frozen=True)
class Prepared:
    """The rows a comparison uses and the per-scale table built from them.

    ``kind`` is the decision metric's (``loss``: lower is better; ``accuracy``: higher is
    better). For an accuracy, ``paired_loss`` is the loss a two-step prediction goes through
    (None when there is none, or when the metric is a loss) and ``paired_loss_how`` says why
    that one. ``observed`` is the ranking the data show at the largest scale holding every
    recipe (:func:`~scaling_ladder.compare.scales.observed_ranking`). ``cuts`` has one record
    per run trained past the baseline's budget (see :func:`cut_to_budgets`).
    """

    frame: pd.DataFrame          # rows of the chosen protocol, with ds/average added
    frame_all: pd.DataFrame      # every protocol
    labels: pd.Series | None     # protocol of each row of frame_all (None: one protocol)
    protocol: str | None
    metric: str
    match: str
    table: pd.DataFrame          # per-scale table of every metric
    recipes: tuple[str, ...]
    missing: dict[str, str]      # recipe -> why it cannot be judged
    where: str | None
    notes: tuple[str, ...]
    kind: str = "loss"
    paired_loss: str | None = None
    paired_loss_how: str = ""
    observed: RankAtScale | None = None
    cuts: tuple[dict[str, Any], ...] = ()
    units: str = "nats/token"    # of the decision metric: nats/token, bits/byte or accuracy
    per_token: pd.DataFrame | None = None  # across tokenizers: both units' rankings

    @property
    def loss_units(self) -> str:
        """What a loss delta is said in: bits/byte across tokenizers, else nats."""
        return said_in(self.units)


def prepare(obs: Observations | pd.DataFrame, *, baseline: str, metric: str | None,
            options, seed: int) -> Prepared:
    """Check the inputs, pick the protocol and the matching, and build the per-scale table."""
    frame, where, metric = check_inputs(obs, baseline, metric, kinds=KINDS)
    notes: list[str] = []
    if metric != "train" and (frame["metric"] == "train").any():
        # each recipe trains on its own data: its training loss measures a different text
        frame = frame[frame["metric"] != "train"]
        notes.append("training loss set aside: each recipe trains on its own data, so it is not "
                     "comparable across recipes (held-out slices are)")
    per_token = unit_ranking(frame, metric)
    frame, units, unit_notes = common_units(frame, metric, where=where)
    notes += unit_notes
    labels = protocol_labels(frame)
    protocol = None
    if labels is None and options.protocol is not None:
        raise InputError(where, f'protocol "{options.protocol}" given but the runs have one '
                         "protocol", column="protocol", fix="drop --protocol")
    frame_all = frame
    if labels is not None:
        runs = frame.groupby(labels)["run"].nunique()
        protocol = options.protocol or str(runs.idxmax())
        if protocol not in runs.index:
            raise InputError(where, f'no runs under protocol "{protocol}"', column="protocol",
                             fix=f"choose one of {_listing(runs.index)}")
        frame = frame[(labels == protocol).to_numpy()]
        notes.append(f"the decision uses protocol {protocol} ({frame['run'].nunique()} of "
                     f"{frame_all['run'].nunique()} runs)")
    frame, tasks = with_average(frame)
    if tasks:
        notes.append(f"{AVERAGE} = mean accuracy over the {len(tasks)} tasks every run has")
    if metric not in set(frame["metric"]):  # ds/average asked for, but not every run has tasks
        raise InputError(where, f'no rows with metric "{metric}": it needs at least two '
                         "accuracy tasks on every run", column="metric",
                         fix="choose a metric in the data")
    kind = str(frame.loc[frame["metric"] == metric, "kind"].iloc[0])
    per_scale, slices = with_slice_average(frame, metric)  # the table's rows, not the laws'
    if slices:
        notes.append(f"{SLICE_AVERAGE} = mean loss over the {len(slices)} val/ slices every run "
                     f"has besides {metric} (weighted equally; per-scale table and regression "
                     "table only)")
    match = "flops" if options.match == "flops" else "params-tokens"
    scaled, cuts, cut_notes = per_scale, (), []
    if match == "params-tokens":
        scaled, cuts, cut_notes = cut_to_budgets(per_scale, baseline=baseline,
                                                 tolerance=options.tolerance)
    finals = final_values(scaled, match=match, tolerance=options.tolerance, primary=metric)
    if options.match == "auto" and not shares_scale(finals, baseline, metric):
        match, cuts, cut_notes = "flops", (), []
        finals = final_values(per_scale, match=match, tolerance=options.tolerance,
                              primary=metric)
        notes.append("no (N, D) scale is shared with the baseline: recipes matched by FLOPs "
                     "(IsoFLOP design; each recipe's best size per budget)")
    notes += cut_notes + [n for n in [matched_note(frame, match)] if n]
    table = per_scale_table(finals, baseline=baseline, level=options.level, seed=seed)
    recipes = tuple(sorted(frame["recipe"].astype(str).unique()))
    prim = table[table["metric"] == metric]
    shared = {r: bool(((prim["recipe"] == r) & prim["delta"].notna()).any())
              for r in recipes if r != baseline}
    if not any(shared.values()):
        raise InputError(where, f'no scale has runs of both the baseline "{baseline}" and '
                         f"another recipe on {metric}", column="params",
                         fix="train the baseline at the recipes' sizes and token budgets, or "
                         "match by FLOPs with --match flops")
    missing = {r: f"no scale shared with {baseline} on {metric}: {r} cannot be judged"
               for r, ok in shared.items() if not ok}
    notes += list(missing.values()) + missing_metric_notes(frame, recipes)
    paired, how = None, ""
    if kind == "accuracy":
        paired, how = paired_loss(frame, metric, recipes)
        notes.append(f"{metric} is an accuracy (higher is better): compared at each scale; "
                     + (f"a two-step prediction goes through {how}" if paired else
                        f"no loss to predict it through ({how}): ranked at each scale"))
    return Prepared(frame, frame_all, labels, protocol, metric, match, table, recipes, missing,
                    where, tuple(notes), kind=kind, paired_loss=paired, paired_loss_how=how,
                    observed=observed_ranking(table, metric, baseline=baseline,
                                              loss_units=said_in(units)), cuts=cuts,
                    units=units, per_token=per_token)


def said_in(units: str) -> str:
    """The word a loss delta is said in, from the decision metric's units."""
    return BITS_PER_BYTE if units == BITS_PER_BYTE else "nats"


def check_inputs(obs: Observations | pd.DataFrame, baseline: str, metric: str | None, *,
                 kinds: tuple[str, ...] = ("loss",)):
    """The frame, where it came from and the decision metric, or an InputError naming what is
    wrong. ``kinds``: the kinds the decision metric may have (``compare`` takes loss and
    accuracy; a two-step prediction needs a loss). The default metric is a loss."""
    if not isinstance(obs, Observations):
        obs = from_frame(obs)  # a table built in a notebook: validate it like a file
    frame = obs.frame
    where = ", ".join(obs.sources) if isinstance(obs, Observations) and obs.sources else None
    if len(frame) == 0:
        raise InputError(where, "no rows to compare", fix="loosen the selection")
    recipes = sorted(frame["recipe"].astype(str).unique())
    if len(recipes) < 2:
        raise InputError(where, f'one recipe only ("{recipes[0]}"): compare needs at least two',
                         column="recipe", fix="add runs of another recipe, or check --where")
    if baseline not in recipes:
        raise InputError(where, f'baseline "{baseline}" is not a recipe in the data',
                         column="recipe", fix=f"choose one of {_listing(recipes)}"
                         + _closest(baseline, recipes))
    losses = frame[frame["kind"] == "loss"]
    if metric is None:
        cover = losses.groupby("metric")["recipe"].nunique()
        if cover.empty:
            raise InputError(where, "no loss metric to decide on", column="kind",
                             fix="add a loss metric (train or val/<slice>)")
        full = cover[cover == cover.max()].index
        val = [m for m in full if str(m).startswith("val/")]
        metric = sorted(val)[0] if val else sorted(full)[0]
    elif metric == AVERAGE and metric not in set(frame["metric"]) and "accuracy" in kinds:
        return frame, where, metric  # prepare adds it from the tasks every run has
    elif metric not in set(frame["metric"]):
        raise InputError(where, f'no rows with metric "{metric}"', column="metric",
                         fix=f"choose one of {_listing(sorted(frame['metric'].unique()))}"
                         + _closest(metric, frame["metric"].unique()))
    elif not set(frame.loc[frame["metric"] == metric, "kind"]) <= set(kinds):
        have = sorted(set(frame.loc[frame["metric"] == metric, "kind"]))
        raise InputError(where, f'metric "{metric}" is not a loss' if kinds == ("loss",) else
                         f'metric "{metric}" is of kind {" and ".join(have)}', column="metric",
                         fix="decide on a loss (accuracies are judged through the two-step "
                         "law and the regression table)" if kinds == ("loss",) else
                         f"decide on a metric of kind {' or '.join(kinds)}")
    elif frame.loc[frame["metric"] == metric, "kind"].nunique() > 1:
        raise InputError(where, f'metric "{metric}" mixes kinds (loss and accuracy)',
                         column="kind", fix="give each metric one kind, or rename one of them")
    if baseline not in set(frame.loc[frame["metric"] == metric, "recipe"]):
        raise InputError(where, f'baseline "{baseline}" has no rows of metric "{metric}"',
                         column="metric", fix="choose a metric the baseline was evaluated on")
    return frame, where, metric


def with_average(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add ``ds/average``: per run and checkpoint, the mean accuracy over the tasks every run
    has (Gadre et al. 2024 average top-1 over all tasks), with the mean random baseline."""
    acc = frame[frame["kind"] == "accuracy"]
    if acc.empty:
        return frame, []
    fin = acc[acc["final"].to_numpy(bool)]
    n_runs = fin["run"].nunique()
    per_task = fin.groupby("metric")["run"].nunique()
    tasks = sorted(per_task[per_task == n_runs].index)
    if len(tasks) < 2:
        return frame, []
    rows = acc[acc["metric"].isin(tasks)]
    keys = ["experiment", "recipe", "run", "tokens"]
    g = rows.groupby(keys, sort=False)
    avg = g.agg(value=("value", "mean"), n=("value", "size")).reset_index()
    first = g.first().reset_index().drop(columns=["value", "metric"])
    avg = avg.merge(first, on=keys)
    avg = avg[avg["n"] == len(tasks)].drop(columns="n")
    if "random_baseline" in rows:
        rb = rows.groupby(keys, sort=False)["random_baseline"].mean().rename("random_baseline")
        avg = avg.drop(columns="random_baseline").merge(rb.reset_index(), on=keys)
    avg["metric"] = AVERAGE
    return pd.concat([frame, avg[frame.columns.intersection(avg.columns)]],
                     ignore_index=True), tasks


def with_slice_average(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, list[str]]:
    """Add ``val/average``: per run and checkpoint, the mean loss over the ``val/`` slices every
    run has other than ``metric``, weighted equally (at least two; none when the data already
    has a metric of that name). Its noise then comes from the runs, as for any metric, so the
    regression table can test the aggregate without assuming how the slices correlate."""
    if SLICE_AVERAGE in set(frame["metric"]):
        return frame, []
    loss = frame[(frame["kind"] == "loss") & frame["metric"].str.startswith("val/")
                 & (frame["metric"] != metric)]
    fin = loss[loss["final"].to_numpy(bool)]
    per_slice = fin.groupby("metric")["run"].nunique()
    slices = sorted(per_slice[per_slice == frame["run"].nunique()].index)
    if len(slices) < 2:
        return frame, []
    rows = loss[loss["metric"].isin(slices)]
    keys = ["experiment", "recipe", "run", "tokens"]
    g = rows.groupby(keys, sort=False)
    avg = g.agg(value=("value", "mean"), n=("value", "size")).reset_index()
    first = g.first().reset_index().drop(columns=["value", "metric"])
    avg = avg.merge(first, on=keys)
    avg = avg[avg["n"] == len(slices)].drop(columns="n").assign(metric=SLICE_AVERAGE)
    return pd.concat([frame, avg[frame.columns.intersection(avg.columns)]],
                     ignore_index=True), slices


def protocol_labels(frame: pd.DataFrame) -> pd.Series | None:
    """A protocol per row: the ``protocol`` column, or ``lr=...`` when one (recipe, N, D) was
    trained at several learning rates; None when there is one protocol."""
    if "protocol" in frame and frame["protocol"].notna().any():
        labels = frame["protocol"].astype(object).where(frame["protocol"].notna(), "default")
        labels = labels.astype(str)
        return labels if labels.nunique() > 1 else None
    if "lr" in frame and frame["lr"].notna().any():
        fin = frame[frame["final"].to_numpy(bool)]
        per_cell = fin.groupby(["recipe", "params", "tokens"])["lr"].nunique()
        if (per_cell > 1).any():
            return frame["lr"].map(lambda v: f"lr={v:g}" if pd.notna(v) else "lr=?")
    return None


def shares_scale(finals_pt: pd.DataFrame, baseline: str, metric: str) -> bool:
    """True when some (N, D) scale holds the baseline and another recipe (auto matching)."""
    t = finals_pt[finals_pt["metric"] == metric]
    has = t.groupby("scale")["recipe"].agg(lambda r: baseline in set(r) and r.nunique() > 1)
    return bool(has.any())



def missing_metric_notes(frame: pd.DataFrame, recipes: tuple[str, ...]) -> list[str]:
    """Notes on metrics some recipes lack (the comparison goes on without them)."""
    have = frame.groupby("metric")["recipe"].agg(lambda r: set(r.astype(str)))
    gaps = {m: sorted(set(recipes) - s) for m, s in have.items() if set(recipes) - s}
    if not gaps:
        return []
    first = next(iter(gaps))
    return [f"{len(gaps)} metric(s) are missing for some recipes and are compared without "
            f"them (e.g. {first}: no rows for {', '.join(gaps[first])})"]


# ------------------------------------------------------------ the loss paired with an accuracy


