"""One number per quantity: the report prints the comparison's numbers, the same everywhere.

Per recipe, the decision metric at the target (predicted value and its CI, gain and its CI,
P(beats baseline), compute multiplier) and the gain observed at the largest proxy scale are
read from the comparison's JSON and from every report section that shows them (the report's
``--json`` holds its tables as strings); each must be one string across the sections, equal to
the comparison's number to the printed digits.
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from conftest import make_ladder
from scaling_ladder.cli import app
from scaling_ladder.compare import CompareOptions, Comparison, compare
from scaling_ladder.report import build_report

TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}
NUMBER = r"[+\-]?(?:\d+\.?\d*|\.\d+)(?:e[+\-]?\d+)?"


# ----------------------------------------------------------------------------- checking


def agrees(text: str, value: float | None) -> bool:
    """``text`` (a printed number) is ``value`` rounded to the digits printed."""
    if value is None:
        return text == "—"
    x = float(text)
    if x == 0:
        return abs(value) < 1e-12
    mantissa = re.sub(r"e.*$", "", text.lstrip("+-")).replace(".", "").lstrip("0")
    ulp = 10 ** (math.floor(math.log10(abs(x))) - max(len(mantissa), 1) + 1)
    return abs(x - value) <= 0.5 * ulp * (1 + 1e-9)


def agrees_pair(text: str, pair) -> bool:
    lo, hi = text.strip("[]").split(", ")
    return agrees(lo, pair[0]) and agrees(hi, pair[1])


def table(section: dict, first_column: str, has: str) -> dict[str, dict[str, str]]:
    """The section's table whose first column is ``first_column`` and that has a column
    containing ``has``, as {first cell: {column: cell}}."""
    for t in section["tables"]:
        if t["columns"][0] == first_column and any(has in c for c in t["columns"]):
            return {r[0]: dict(zip(t["columns"], r, strict=True)) for r in t["rows"]}
    raise AssertionError(f"no table ({first_column}, ...{has}...) in section {section['key']}")


def shown_by_section(report: dict, cmp: dict) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """Per recipe and quantity, every (section, printed text) of the report."""
    sections = {s["key"]: s for s in report["sections"]}
    metric, base = cmp["metric"], cmp["baseline"]
    dec = table(sections["decision"], "recipe", "P(beats")
    tgt = table(sections["scaling"], "recipe", "expected gain")
    go = table(sections["gonogo"], "recipe", "gain at the largest proxy")
    intro = sections["scaling"]["intro"]
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}

    def put(recipe, quantity, where, text):
        out.setdefault(recipe, {}).setdefault(quantity, []).append((where, text))

    m = re.search(rf"predicts {re.escape(metric)} ({NUMBER}) for baseline {re.escape(base)}\.",
                  intro)
    assert m, intro
    put(base, "predicted", "scaling headline", m.group(1))
    put(base, "predicted", "scaling table", tgt[base][f"predicted {metric}"])
    put(base, "predicted_ci", "scaling table", tgt[base]["95% CI"])
    for r in cmp["recipes"]:
        d, t, g = dec[r], tgt[r], go[r]
        for where, row, col in (("decision", d, f"predicted {metric}"),
                                ("scaling table", t, f"predicted {metric}")):
            put(r, "predicted", where, row[col])
        put(r, "predicted_ci", "decision", d["95% CI"])
        put(r, "predicted_ci", "scaling table", t["95% CI"])
        for where, text in (("decision", d["predicted gain"]),
                            ("scaling table", t["expected gain vs baseline"]),
                            ("go/no-go", g["predicted gain at target"])):
            put(r, "gain", where, text)
        for where, row in (("decision", d), ("scaling table", t), ("go/no-go", g)):
            put(r, "gain_ci", where, row["95% CI of the gain"])
        # P(beats) is the decision's; the scaling fit shows it only when it is the prediction's
        on_fit = cmp["recipes"][r].get("basis", "fit") == "fit"
        for where, row in (("decision", d), ("go/no-go", g)) + (
                (("scaling table", t),) if on_fit else ()):
            put(r, "p_beats", where, row["P(beats baseline)"])
        if not on_fit:
            assert t["P(beats baseline)"] == "—"
        put(r, "multiplier", "decision", d["compute multiplier [95% CI]"])
        put(r, "proxy_gain", "go/no-go", g["gain at the largest proxy"])
        said = re.search(rf"\(gain ({NUMBER})\)$", d["decided on"])  # decided on a ranking
        if said:
            put(r, "proxy_gain", "decided on", said.group(1))
        put(r, "proxy_scale", "go/no-go", g["proxy scale"])
        m = re.search(rf"Candidate {re.escape(r)}: ({NUMBER}), expected gain ({NUMBER}) "
                      rf"(\[[^\]]+\]) \(95% CI\), P\(beats baseline\) ({NUMBER}|—)\.", intro)
        assert m, intro
        for q, text in zip(("predicted", "gain", "gain_ci", "p_beats"), m.groups(),
                           strict=True):
            if q != "p_beats" or on_fit:
                put(r, q, "scaling headline", text)
    return out


def check_one_number_per_quantity(report: dict, cmp: dict) -> int:
    """Assert the report against the comparison's JSON; return how many texts were checked."""
    sign = -1.0 if cmp["kind"] == "loss" else 1.0
    shown = shown_by_section(report, cmp)
    per_scale = pd.DataFrame(cmp["per_scale"])
    per_scale = per_scale[(per_scale["metric"] == cmp["metric"]) & per_scale["delta"].notna()]
    sections = {s["key"]: s for s in report["sections"]}
    checked = 0
    for recipe, quantities in shown.items():
        for quantity, texts in quantities.items():  # one string per quantity
            assert len({t for _, t in texts}) == 1, (recipe, quantity, texts)
        base = recipe == cmp["baseline"]
        s = {} if base else cmp["recipes"][recipe]
        expected = {"predicted": cmp["baseline_predicted"] if base else s["predicted"]}
        if base:
            pred = next(p for p in cmp["predictions"]
                        if p["metric"] == cmp["metric"] and p["recipe"] == recipe)
            expected["predicted_ci"] = (pred["predicted_lo"], pred["predicted_hi"])
        else:
            expected.update(
                predicted_ci=tuple(s["predicted_ci95"]), gain=sign * s["predicted_delta"],
                gain_ci=tuple(sorted(sign * v for v in s["ci95"])),
                p_beats=s["p_beats_baseline"])
            rows = per_scale[per_scale["recipe"] == recipe].sort_values(["flops", "params"])
            top = rows.iloc[-1]
            expected.update(proxy_gain=sign * top["delta"], proxy_scale=top["scale"])
        for quantity, value in expected.items():
            text = quantities[quantity][0][1]
            if quantity == "proxy_scale":
                assert text == value
            elif isinstance(value, tuple):
                assert agrees_pair(text, value), (recipe, quantity, text, value)
            else:
                assert agrees(text, value), (recipe, quantity, text, value)
            checked += len(quantities[quantity])
        if base:
            continue
        mult = quantities["multiplier"][0][1]
        point, _, ci = mult.partition(" ")
        assert agrees(point, s["compute_multiplier"])
        assert not ci or agrees_pair(ci, s["compute_multiplier_ci95"])
        # the rule's own words say the same: the gain at the largest proxy, P, the prediction
        said = " ".join(r[1] for r in _rows(sections["decision"], "reason") if r[0] == recipe)
        m = re.search(rf"gain at (.+?) = ({NUMBER}) ", said)
        if m:
            assert m.group(1) == expected["proxy_scale"]
            assert agrees(m.group(2), expected["proxy_gain"])
            assert agrees(m.group(2), float(quantities["proxy_gain"][0][1]))
        m = re.search(rf"\) = ({NUMBER}) \(.*predicted gain ({NUMBER}) nats", said)
        if m:
            assert agrees(m.group(1), expected["p_beats"])
            assert agrees(m.group(2), expected["gain"])
    # the decision metric at the reference scale of the downstream table: the same gains
    loss = table(sections["downstream"], "metric", "(baseline)")
    row = loss.get(cmp["metric"])
    if row is not None:
        ref = sections["downstream"]["tables"][0]["caption"]
        for recipe in cmp["recipes"]:
            scale = shown[recipe]["proxy_scale"][0][1]
            cell = row[f"{recipe} (gain)"]
            if f"at {scale} (" in ref:
                assert cell.endswith(f"({shown[recipe]['proxy_gain'][0][1]})"), (cell, scale)
                checked += 1
    return checked


def _rows(section: dict, column: str) -> list[list[str]]:
    return [r for t in section["tables"] if column in t["columns"] for r in t["rows"]]


def test_agrees_reads_the_printed_digits():
    assert agrees("-0.1134", -0.11341946) and not agrees("-0.1134", -0.1136)
    assert agrees("+0.04277", 0.042772676) and not agrees("-0.04277", 0.042772676)
    assert agrees("4", 3.998) and agrees("0", 0.0) and not agrees("0", 0.001)
    assert agrees("2.418", 2.41793) and agrees_pair("[+0.06554, +0.1655]", (0.065536, 0.16551))


# ------------------------------------------------------------------------ a small ladder


@pytest.fixture(scope="module")
def ladder() -> sl.Observations:
    """Three recipes on five sizes: ``better`` has a lower irreducible loss than ``base``
    (true gain 0.05 nats/token), ``worse`` a higher one; training loss beside validation."""
    frames = []
    for i, (name, e) in enumerate((("base", 1.9), ("better", 1.85), ("worse", 1.95))):
        f = make_ladder({**TRUTH, "E": e}, noise=0.002, seed=i, recipe=name, checkpoints=5)
        frames += [f.assign(metric="val/web", kind="loss"),
                   f.assign(metric="train", kind="loss", value=f["value"] * 0.98)]
    return sl.from_frame(pd.concat(frames, ignore_index=True), name="ladder.csv")


@pytest.fixture(scope="module")
def small_comparison(ladder) -> Comparison:
    return compare(ladder, baseline="base", metric="val/web",
                   options=CompareOptions(bootstrap=10, slice_bootstrap=0, gate_bootstrap=0,
                                          variants=("shared-exponents",)))


def test_report_of_a_small_ladder_shows_one_number_per_quantity(ladder, small_comparison):
    cmp = json.loads(json.dumps(small_comparison.to_dict()))
    report = build_report(ladder, compare=small_comparison, bootstrap=5)
    checked = check_one_number_per_quantity(json.loads(json.dumps(report.to_dict())), cmp)
    assert checked >= 2 * 16
    gains = {r: -v["predicted_delta"] for r, v in cmp["recipes"].items()}
    assert gains["better"] > 0 > gains["worse"]  # the sign a reader sees is the gain's


def test_the_report_of_a_saved_comparison_is_the_report_of_the_comparison(
        ladder, small_comparison):
    """``Comparison.from_dict`` rebuilds what the report reads: same sections, same cells."""
    d = json.loads(json.dumps(small_comparison.to_dict()))
    rebuilt = Comparison.from_dict(d)
    again = json.loads(json.dumps(rebuilt.to_dict()))
    rebuilt_keys = ("decision", "reasons", "warnings", "baseline", "metric", "kind", "match",
                    "target", "baseline_predicted", "recipes", "per_scale", "rank_stability",
                    "decision_accuracy", "predictions", "regressions", "near_chance",
                    "downstream", "protocols", "gates", "rule", "options", "notes", "set_aside")
    assert {k: again[k] for k in rebuilt_keys} == {k: d[k] for k in rebuilt_keys}
    assert again["joint_fit"]["held_out_are"] == d["joint_fit"]["held_out_are"]
    one, two = (build_report(ladder, compare=c, bootstrap=0).to_dict()
                for c in (small_comparison, rebuilt))
    assert one["sections"] == two["sections"] and one["warnings"] == two["warnings"]


def test_a_comparison_of_another_version_names_the_fix(small_comparison):
    d = json.loads(json.dumps(small_comparison.to_dict()))
    with pytest.raises(sl.InputError, match=r"^cmp\.json: is not a comparison written by this "
                       r"version of ladder compare --json \(no key 'warnings'\); re-run ladder "
                       r"compare"):
        Comparison.from_dict({k: v for k, v in d.items() if k != "warnings"}, source="cmp.json")
    with pytest.raises(sl.InputError, match=r"unknown key 'p_beats'"):
        Comparison.from_dict(d | {"p_beats": 0.5})
    d["recipes"]["better"].pop("survival")
    with pytest.raises(sl.InputError, match=r"no key 'survival'"):
        Comparison.from_dict(d)


# ------------------------------------------------------- the bundled overtrain data, CLI


@pytest.mark.slow
def test_report_and_compare_print_the_same_numbers_on_overtrain(tmp_path):
    runner = CliRunner()
    common = ["--example", "overtrain", "--metric", "val/c4", "--baseline", "c4",
              "--target-params", "7e9", "--target-tokens", "1.4e11", "--bootstrap", "10",
              "--slice-bootstrap", "2", "--gate-bootstrap", "0", "--seed", "0"]
    cmp_path, rep_path = tmp_path / "compare.json", tmp_path / "report.json"
    res = runner.invoke(app, ["compare", *common, "--json", str(cmp_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", *common, "--decide", "--json", str(rep_path),
                              "-o", str(tmp_path / "report.html")])
    assert res.exit_code == 0, res.output
    cmp, report = json.loads(cmp_path.read_text()), json.loads(rep_path.read_text())
    assert report["warnings"][:len(cmp["warnings"])] == cmp["warnings"]
    checked = check_one_number_per_quantity(report, cmp)
    assert checked >= 2 * 16
    # the measured contradictions of issue 12: redpajama's gain at the target, one number
    dec = table({s["key"]: s for s in report["sections"]}["decision"], "recipe", "P(beats")
    assert agrees(dec["redpajama"]["predicted gain"],
                  -cmp["recipes"]["redpajama"]["predicted_delta"])
