"""``ladder compare · simulate``: compare recipes across scales and decide."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DataTable,
    Example,
    Experiment,
    JsonOut,
    Paths,
    Where,
    app,
    emit_json,
    handle,
    load,
    out,
    print_notes,
    progress_bar,
)
from .jobs import Jobs

# ------------------------------------------------------------------------ compare, simulate

DecisionMetric = Annotated[str | None, typer.Option(
    "--metric", help="The loss metric the decision rests on (default: the first val/ loss "
    "every recipe has). Every other metric is still compared.")]
TargetN = Annotated[float | None, typer.Option(help="Target model size N (with "
                                               "--target-tokens).")]
TargetD = Annotated[float | None, typer.Option(help="Target training tokens D.")]
RulePath = Annotated[Path | None, typer.Option("--rule", help="Go/no-go thresholds (TOML; "
                                               "keys of scaling_ladder.Rule).")]


def _rule(path: Path | None):
    from ..compare.decide import Rule

    return Rule.from_toml(path) if path else Rule()


def _ci(ci, digits: int = 4, sign: bool = True) -> str:
    if not ci or ci[0] is None or ci[1] is None or not all(map(math.isfinite, ci)):
        return "—"
    f = f"{'+' if sign else ''}.{digits}g"
    return f"[{ci[0]:{f}}, {ci[1]:{f}}]"


def _num(v, digits: int = 4, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.{digits}g}" if sign else f"{v:.{digits}g}"


@app.command("compare")
@handle
def compare_verb(
    paths: Paths = None,
    example: Example = None,
    experiment: Experiment = None,
    where: Where = None,
    baseline: Annotated[str, typer.Option(help="The recipe the others are compared with.",
                                          show_default=False)] = "",
    metric: DecisionMetric = None,
    target_params: TargetN = None,
    target_tokens: TargetD = None,
    target_flops: Annotated[float | None, typer.Option(
        help="Target compute C (each recipe at its compute-optimal N, D).")] = None,
    rule_path: RulePath = None,
    law: Annotated[str, typer.Option(help="chinchilla, overtrain or kaplan (no irreducible "
                                     "term: runs far from it).")] = "chinchilla",
    checkpoints: Annotated[str, typer.Option(
        help="Points the laws are fitted to: auto (the final checkpoint of WSD runs, else "
        "drop-first:0.1), final, all, drop-first:F.")] = "auto",
    match: Annotated[str, typer.Option(help="auto | params-tokens | flops (IsoFLOP "
                                       "designs).")] = "auto",
    protocol: Annotated[str | None, typer.Option(help="Decide under this protocol when runs "
                                                 "have several (protocol or lr column).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Resamples of the decision metric's joint "
                                           "fit.")] = 100,
    slice_bootstrap: Annotated[int, typer.Option(help="Resamples of every other slice's and "
                                                 "task's fit.")] = 30,
    gate_bootstrap: Annotated[int, typer.Option(help="Resamples of each stage gate's fit (0: "
                                                "no stage gates).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    jobs: Jobs = None,
    json_out: JsonOut = None,
) -> None:
    """Compare recipes across scales against a baseline and decide go / no-go.

    Per scale: deltas with CIs against seed noise; across scales: sign, trend, rank stability
    and decision accuracy; at the target: P(beats baseline), predicted delta and the compute
    multiplier from a joint fit; regressions, downstream, protocols and stage gates.
    --checkpoints selects the points the laws are fitted to. Example: ladder compare
    --example overtrain --baseline c4 --target-params 6.9e9 --target-tokens 1.38e11
    """
    from ..compare import CompareOptions
    from ..compare import compare as run_compare
    from ..laws.fit import jobs as processes

    if not baseline:
        raise ValueError("Name the baseline recipe with --baseline.")
    rule = _rule(rule_path)
    obs = load(paths, example, experiment, None, None, where, "all")
    options = CompareOptions(law=law, bootstrap=bootstrap, slice_bootstrap=slice_bootstrap,
                             gate_bootstrap=gate_bootstrap, match=match,
                             fit_checkpoints=checkpoints, protocol=protocol)
    with processes(jobs), progress_bar("compare", quiet=json_out == "-") as progress:
        result = run_compare(obs, baseline=baseline, metric=metric, target_params=target_params,
                             target_tokens=target_tokens, target_flops=target_flops, rule=rule,
                             options=options, seed=seed, progress=progress)
    if emit_json(json_out, result.to_dict()):
        return
    _print_comparison(result)


def _print_comparison(res) -> None:
    d = res.to_dict()
    for w in res.warnings:  # what a reader must see before the decision
        out.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    sign = 1.0 if res.kind == "accuracy" else -1.0
    t = DataTable(title=f"{d['decision'].upper()}: recipes against {res.baseline} on {res.metric} "
                  f"({res.units}, matched by {res.matched}) at {res.target.label}",
                  caption="gain = improvement over the baseline (positive is better); compute "
                  "multiplier k: the recipe reaches the baseline's target loss with k x the "
                  "compute; P(beats) is the decision's (decided on)")
    for col in ("recipe", "decision", "decided on", "P(beats)", "predicted gain", "95% CI",
                "compute multiplier", "trend with N"):
        t.add_column(col, justify="left" if col in ("recipe", "decision", "decided on")
                     else "right")
    for name, r in d["recipes"].items():
        gain = None if r["predicted_delta"] is None else sign * r["predicted_delta"]
        ci = [None if v is None else sign * v for v in r["ci95"]]
        t.add_row(name, r["decision"],
                  "the prediction" if r["basis"] == "fit" else f"the {r['basis']}",
                  _num(r["p_beats_baseline"], 3), _num(gain, 4, sign=True),
                  _ci(sorted(ci) if None not in ci else ci),
                  f"{_num(r['compute_multiplier'], 3)} "
                  f"{_ci(r['compute_multiplier_ci95'], 3, sign=False)}",
                  (r["survival"] or {}).get("trend", "—"))
    out.print(t)
    if res.ranking is not None and res.ranking.order:
        basis = "the fit" if res.ranking.basis == "fit" else f"the data: {res.ranking.basis}"
        out.print(f"order at the target, best first: {' > '.join(res.ranking.order)} "
                  f"(from {basis})", highlight=False)
    for name, r in d["recipes"].items():
        out.print(f"[bold]{name}[/]: {r['decision']} - {r['headline']}", highlight=False)
        for reason in r["reasons"]:
            out.print(f"  - {reason}", markup=False)
        for advice in r["advice"]:
            out.print(f"  > {advice}", markup=False)
    _print_scales(res)
    _print_findings(res, d)


def _print_scales(res) -> None:
    prim = res.per_scale[res.per_scale["metric"] == res.metric].sort_values(
        ["params", "tokens", "recipe"])
    others = [r for r in res.recipes if r != res.baseline]
    t = DataTable(title=f"{res.metric} per scale ({res.units})",
                  caption="delta = recipe - baseline, ± half-width of its 95% CI; "
                  "(k x) = |delta| / noise")
    for col in ["scale", "noise", res.baseline] + [f"{r} delta" for r in others]:
        t.add_column(col, justify="left" if col == "scale" else "right")
    for scale, g in prim.groupby("scale", sort=False):
        g = g.set_index("recipe")
        first = g.iloc[0]
        cells = [f"{g.loc[res.baseline, 'value']:.4g}" if res.baseline in g.index else "—"]
        for r in others:
            if r not in g.index or not math.isfinite(g.loc[r, "delta"]):
                cells.append("—")
                continue
            row = g.loc[r]
            half = (row["ci_hi"] - row["ci_lo"]) / 2
            enr = _num(row["effect_to_noise"], 2)
            cells.append(f"{row['delta']:+.3g} ±{_num(half, 2)} ({enr}x)")
        t.add_row(scale, f"{_num(first['noise_sd'], 2)} {first['noise_source']}", *cells)
    out.print(t)
    rs = res.rank_stability
    if rs["scales"]:
        t = DataTable(title=f"Rank stability against {rs['reference_scale']}")
        for col in ("scale", "compute", "recipes", "signal/noise", "Kendall tau",
                    "Spearman rho", "decision accuracy"):
            t.add_column(col, justify="left" if col == "scale" else "right")
        for s in rs["scales"]:
            t.add_row(s["scale"], f"{s['compute_fraction']:.2%}", str(s["n_recipes"]),
                      _num(s["snr"], 2), _num(s["kendall_tau"], 3), _num(s["spearman_rho"], 3),
                      _num(s["decision_accuracy"], 3))
        out.print(t)


def _print_findings(res, d) -> None:
    regs = res.regressions
    if len(regs):
        t = DataTable(title=f"Regressions beyond noise ({int(regs['blocking'].sum())} blocking)")
        for col in ("recipe", "metric", "where", "delta", "95% CI", "blocking"):
            t.add_column(col, justify="right" if col in ("delta", "95% CI") else "left")
        for r in regs.head(20).itertuples():
            t.add_row(r.recipe, r.metric, r.where, f"{r.delta:+.4g}", _ci((r.ci_lo, r.ci_hi)),
                      "yes" if r.blocking else "")
        out.print(t)
    if res.near_chance:
        out.print(f"near chance (flagged, not ranked): {', '.join(res.near_chance)}")
    ds = d["downstream"]
    if ds.get("recipes"):
        t = DataTable(title=f"Loss -> downstream ({ds['metric']}; gains: positive is better)")
        for col in ("recipe", "loss gain", "L0 shift", "accuracy gain from loss",
                    "accuracy gain", "verdict"):
            t.add_column(col, justify="left" if col in ("recipe", "verdict") else "right")
        for name, r in ds["recipes"].items():
            t.add_row(name, _num(r["loss_gain"], 3, True), _num(r["l0_shift"], 3, True),
                      _num(r["accuracy_gain_from_loss"], 3, True),
                      _num(r["accuracy_gain"], 3, True), r["verdict"])
        out.print(t)
    for flip in (res.protocols or {}).get("flips", []):
        out.print(f"[yellow]protocol:[/] {flip}")
    if res.gates:
        t = DataTable(title="Stage gates")
        for col in ("gate", "evidence", "target", "decisions"):
            t.add_column(col)
        for g in res.gates:
            t.add_row(g["gate"], g["evidence"], g["target"], ", ".join(
                f"{r}: {v['decision']}" + ("" if v.get("agrees") is None else
                                           (" (right)" if v["agrees"] else " (wrong)"))
                for r, v in g["recipes"].items()))
        out.print(t)
    print_notes(res.notes)


@app.command("simulate")
@handle
def simulate_verb(
    ladders: Annotated[int, typer.Option(help="Simulated ladders for calibration.")] = 100,
    gain: Annotated[list[float] | None, typer.Option(help="True gain at the target (nats) for "
                                                     "the power table (repeatable).")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds per run; a list (1,2,4) gives one power "
                                       "design each.")] = "1",
    sizes: Annotated[str, typer.Option(help="Model sizes per ladder (2e7..4e8); a list (3,5) "
                                       "gives one power design each.")] = "5",
    noise: Annotated[float, typer.Option(help="Seed-to-seed sd of log-loss.")] = 0.003,
    power_ladders: Annotated[int, typer.Option(help="Ladders per power cell.")] = 40,
    rule_path: RulePath = None,
    bootstrap: Annotated[int, typer.Option(help="Resamples of each ladder's fit.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes to run ladders in.")] = 1,
    json_out: JsonOut = None,
) -> None:
    """Score the go/no-go rule on simulated ladders with a known answer.

    Calibration of P(beats baseline) (Brier score, reliability table), the false-go rate on
    zero-effect ladders, and with --gain the power table: P(go) per true gain and design, to
    plan how many seeds and sizes a gain needs. Example: ladder simulate --ladders 200
    --gain 0.01 --gain 0.02 --seeds 1,2
    """
    from ..evaluate.simulate import LadderDesign, design_with, simulate

    def ints(text: str, name: str) -> list[int]:
        try:
            vals = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            vals = []
        if not vals or min(vals) < 1:
            raise ValueError(f"The --{name} option takes positive integers, e.g. 1,2. "
                             f"Got {text!r}.")
        return vals

    n_seeds, n_sizes = ints(seeds, "seeds"), ints(sizes, "sizes")
    if min(n_sizes) < 2:
        raise ValueError(f"The --sizes option needs at least 2 sizes per ladder. Got {sizes!r}.")
    base = design_with(LadderDesign(seed_noise=noise), seeds=n_seeds[0], n_sizes=n_sizes[0])
    designs = [design_with(base, seeds=s, n_sizes=k) for s in n_seeds for k in n_sizes]
    with progress_bar("ladders", quiet=json_out == "-") as progress:
        result = simulate(_rule(rule_path), design=base, n_ladders=ladders, gains=gain or (),
                          designs=designs, n_power=power_ladders, bootstrap=bootstrap,
                          seed=seed, workers=workers, progress=progress)
    if emit_json(json_out, result.to_dict()):
        return
    t = DataTable(title=f"Calibration of P(beats baseline): Brier {result.brier:.4f} "
                  f"({base.label})", caption="0 is perfect, 0.25 is a coin")
    for col in ("P bin", "ladders", "mean P", "observed share"):
        t.add_column(col, justify="right")
    for r in result.reliability.itertuples():
        t.add_row(r.bin, str(r.n), _num(r.mean_p, 3), _num(r.observed, 3))
    out.print(t)
    lo, hi = result.false_go_ci
    out.print(f"false go on zero-effect ladders: {_num(result.false_go_rate, 3)} "
              f"(95% CI {_num(lo, 3)}-{_num(hi, 3)}; nominal {result.nominal_false_go:g}); "
              f"right-sign go/no-go calls: {_num(result.decision_accuracy, 3)}")
    if len(result.power):
        t = DataTable(title="Power: P(go) by true gain at the target (nats)")
        for col in ("design", "gain", "ladders", "P(go)", "P(no-go)", "P(inconclusive)"):
            t.add_column(col, justify="left" if col == "design" else "right")
        for r in result.power.itertuples():
            t.add_row(r.design, f"{r.true_gain:g}", str(r.n), _num(r.p_go, 3),
                      _num(r.p_no_go, 3), _num(r.p_inconclusive, 3))
        out.print(t)
