"""The scaling report: sections in order, omitted sections with reasons, the comparison's and
the data checks' dicts rendered, gains with the right sign, escaping, files, and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scaling_ladder as sl
from conftest import make_ladder
from scaling_ladder.cli import app
from scaling_ladder.report import build_report
from scaling_ladder.report.figures import text

TRUTH = {"E": 1.9, "A": 450.0, "B": 1800.0, "alpha": 0.33, "beta": 0.31}
EVIL = "<script>alert(1)</script>"
runner = CliRunner()
ORDER = ["decision", "experiments", "curves", "scaling", "isoflop", "gonogo", "downstream",
         "data"]


def demo_observations(*, worse: str = "worse") -> sl.Observations:
    """A small ladder of three recipes: learning curves of a validation and a training loss,
    a downstream accuracy with its random baseline, optimiser settings. ``better`` has a lower
    irreducible loss than ``baseline`` (true gain 0.05 nats/token), ``worse`` a higher one."""
    recipes = {"baseline": TRUTH, "better": {**TRUTH, "E": 1.85}, worse: {**TRUTH, "E": 1.95}}
    frames = []
    for i, (name, truth) in enumerate(recipes.items()):
        f = make_ladder(truth, noise=0.002, seed=i, recipe=name, checkpoints=6)
        f["metric"] = "val/web"
        train = f.assign(metric="train", value=f["value"] * 0.985)
        acc = f.assign(metric="ds/quiz", kind="accuracy", random_baseline=0.25,
                       value=0.25 + 0.6 / (1 + np.exp(3 * (f["value"] - 3.4))))
        both = pd.concat([f.assign(kind="loss"), train.assign(kind="loss"), acc])
        frames.append(both.assign(lr=3e-3, batch_tokens=2.0 ** 19, seed=0))
    return sl.from_frame(pd.concat(frames, ignore_index=True), name="demo.csv")


def compare_dict(worse: str = "worse") -> dict:
    """A hand-made result of the comparison, in the shape ``compare.py``'s to_dict() has."""
    return {
        "baseline": "baseline", "decision": "go",
        "reasons": ["better beats baseline at the target with P = 0.97",
                    f"{worse} is worse at every scale"],
        "recipes": {
            "better": {"p_beats_baseline": 0.97, "predicted_delta": -0.048,
                       "ci95": [-0.07, -0.02], "compute_multiplier": 1.6, "decision": "go"},
            worse: {"p_beats_baseline": 0.02, "predicted_delta": 0.051, "ci95": [0.03, 0.07],
                    "compute_multiplier": 0.62, "decision": "no-go"},
        },
        "decision_accuracy": 0.83, "rank_stability": 0.9,
        "regressions": [{"recipe": "better", "metric": "ds/quiz", "delta": -0.004,
                         "beyond_noise": False}],
    }


def checks_dict(source: str = "web") -> dict:
    """A hand-made result of the stage-0 data checks (``data.CheckResult.to_dict()``)."""
    src = {"source": source, "documents": 1200, "bytes": 5_000_000, "tokens": 1_250_000,
           "bytes_per_token": 4.0, "length_bytes": {"p50": 3000.0}, "exact_dup_rate": 0.012,
           "near_dup_rate": 0.034, "distinct_1": 0.08, "distinct_4": 0.71,
           "diversity_words": 100000, "gzip_ratio": 0.37, "replacement_rate": 0.0,
           "unknown_rate": 0.0, "roundtrip_checked": 50, "roundtrip_failures": 0,
           "roundtrip_example": None, "set_aside": {"empty": 3}, "set_aside_examples": []}
    cont = {"recipe": "better", "slice": "eval/quiz", "ngrams": 5000, "matched": 40,
            "documents": 100, "contaminated_documents": 4, "examples": ["the quick brown fox"],
            "rate": 0.008, "document_rate": 0.04}
    return {"directory": "tokens/", "tokenizer": {"kind": "byte", "vocab_size": 257},
            "ngram": 13, "near_threshold": 0.8, "sources": [src], "contamination": [cont],
            "notes": ["web: 2 documents set aside as empty"]}


@pytest.fixture(scope="module")
def demo():
    return demo_observations()


@pytest.fixture(scope="module")
def plain(demo):
    """The report of observations alone: fits made here, nothing else given."""
    return build_report(demo, metric="val/web", bootstrap=12, seed=0)


@pytest.fixture(scope="module")
def full(demo):
    return build_report(demo, metric="val/web", bootstrap=12, compare=compare_dict(),
                        checks=checks_dict())


# ------------------------------------------------------------------------------ sections


def test_sections_come_in_the_order_of_a_scaling_report(plain):
    assert [s.key for s in plain.sections] == ORDER
    assert plain.meta["baseline"] == "baseline" and plain.meta["metric"] == "val/web"
    assert [f.key for f in plain.figures] == ["loss-curves", "scaling-fit", "isoflop",
                                              "decision"]


def test_missing_comparison_and_checks_are_omitted_saying_how_to_get_them(plain):
    decision, data = plain.section("decision"), plain.section("data")
    assert decision.omitted and "--compare" in decision.omitted and not decision.tables
    assert data.omitted and "--checks" in data.omitted
    assert "(omitted)" in plain.html and "Omitted: No recipe comparison" in plain.html


def test_predicted_gain_has_the_sign_of_the_truth(plain):
    # better: E lower by 0.05 -> positive gain ~0.05 at the target; worse: negative
    gains = plain.section("scaling").intro
    assert "candidate better" in gains and "expected gain" in gains
    table = plain.section("scaling").tables[1]
    rows = {r[0]: r for r in table.rows}
    assert rows["baseline"][-1] == "baseline"
    better = float(rows["better"][-1].split(" ± ")[0])
    worse = float(rows["worse"][-1].split(" ± ")[0])
    assert 0.03 < better < 0.07 and -0.07 < worse < -0.03
    verdicts = {r[0]: r[-2] for r in plain.section("gonogo").tables[0].rows}
    assert verdicts == {"better": "go", "worse": "no-go"}  # by the interval rule


def test_largest_model_is_held_out_and_scored(plain):
    are = plain.section("scaling").tables[2]
    assert are.columns[:3] == ("recipe", "held-out N", "runs")
    assert {r[0] for r in are.rows} == {"baseline", "better", "worse"}
    assert all(float(r[3]) < 0.02 for r in are.rows)  # a correct law predicts 4e8 well


def test_experiment_table_says_the_convention_and_settings(plain):
    t = plain.section("experiments").tables[0]
    assert "N (as given)" in t.columns and "lr" in t.columns and "batch (tokens)" in t.columns
    assert len(t.rows) == 45 and t.rows[0][1] == "baseline"  # baseline first
    assert "6 (" in t.rows[0][-1]  # 6 checkpoints, first -> last tokens


def test_downstream_separates_loss_and_accuracy_with_random_baselines(plain):
    tables = plain.section("downstream").tables
    loss, acc, regs = tables
    assert "Loss-based" in loss.caption and "Accuracy-based" in acc.caption
    assert acc.columns[1] == "random baseline" and acc.rows[0][1] == "0.25"
    # the worse recipe regresses on every metric; the better one on none
    worse_rows = [r for r in regs.rows if r[0] == "worse"]
    assert {r[1] for r in worse_rows} >= {"val/web", "train", "ds/quiz"}
    assert not [r for r in regs.rows if r[0] == "better" and r[1] != "ds/quiz"]
    rel = [abs(float(r[6].rstrip("%"))) for r in regs.rows]
    assert rel == sorted(rel, reverse=True)  # worst first


def test_comparison_dict_renders_decision_reasons_and_regressions(full):
    d = full.section("decision")
    assert d.omitted is None and d.verdict == "go"
    rows = {r[0]: r for r in d.tables[0].rows}
    assert rows["better"][1] == "go" and rows["better"][2] == "0.97"
    assert rows["worse"][4] == "[+0.03, +0.07]"
    assert "better beats baseline at the target with P = 0.97" in d.intro
    evidence = dict(d.tables[1].rows)
    assert evidence["decision_accuracy"] == "0.83" and evidence["rank_stability"] == "0.9"
    regs = full.section("downstream").tables[-1]
    assert regs.columns == ("recipe", "metric", "delta", "beyond_noise")
    assert regs.rows == (("better", "ds/quiz", "-0.004", "no"),)
    # go/no-go takes the comparison's prediction: gain = -delta for a loss
    go = {r[0]: r for r in full.section("gonogo").tables[0].rows}
    assert go["better"][3] == "+0.048" and go["better"][-2:] == ("go", "the comparison")


def test_checks_dict_renders_sources_and_contamination(full):
    s = full.section("data")
    assert s.omitted is None
    src, cont = s.tables
    assert src.rows[0][0] == "web" and src.rows[0][4] == "1.2%" and src.rows[0][-1] == "3"
    assert cont.rows[0][:3] == ("better", "eval/quiz", "0.8%")
    assert s.notes == ("web: 2 documents set aside as empty",)


def test_results_with_to_dict_are_accepted(demo):
    class Result:
        def to_dict(self):
            return checks_dict()

    report = build_report(demo, metric="val/web", bootstrap=0, checks=Result())
    assert report.section("data").omitted is None
    with pytest.raises(ValueError, match="'compare' argument"):
        build_report(demo, metric="val/web", bootstrap=0, compare=[1, 2])


def test_given_fit_by_recipe_marks_runs_beyond_its_range_held_out(demo):
    rows = demo.select(metric="val/web", where="params < 4e8")
    fit = sl.ChinchillaLaw().fit(rows, by="recipe", bootstrap=0)
    report = build_report(demo, metric="val/web", fit=fit)
    scaling = report.section("scaling")
    assert "given, not made here" in scaling.intro
    assert {r[0] for r in scaling.tables[2].rows} == {"baseline", "better", "worse"}
    with pytest.raises(ValueError, match="One fit was given for 3 recipes"):
        build_report(demo, metric="val/web", fit=sl.ChinchillaLaw().fit(
            demo.select(metric="val/web", recipe="baseline")))


def test_target_is_the_largest_run_unless_given(plain, demo):
    assert plain.meta["target"]["params"] == 4e8
    report = build_report(demo, metric="val/web", bootstrap=0, target=(7e9, 1.4e11))
    assert report.meta["target"] == {"params": 7e9, "tokens": 1.4e11, "flops": 6 * 7e9 * 1.4e11,
                                     "how": "given"}
    with pytest.raises(ValueError, match="positive"):
        build_report(demo, metric="val/web", bootstrap=0, target=(-1, 5))


def test_unknown_metric_or_baseline_is_an_input_error(demo):
    with pytest.raises(sl.InputError, match='no rows with metric "val/nope"'):
        build_report(demo, metric="val/nope")
    with pytest.raises(sl.InputError, match='no recipe "nope"'):
        build_report(demo, metric="val/web", baseline="nope")


# ------------------------------------------------- the real comparison and data checks


def test_real_comparison_renders_its_decision_and_regressions(demo):
    from scaling_ladder.compare import CompareOptions, compare

    res = compare(demo, baseline="baseline", metric="val/web",
                  options=CompareOptions(bootstrap=20, slice_bootstrap=5, gate_bootstrap=0))
    report = build_report(demo, metric="val/web", bootstrap=0, compare=res)
    d = report.section("decision")
    assert d.verdict == res.decision and d.omitted is None
    rows = {r[0]: r for r in d.tables[0].rows}
    assert rows["better"][1] == res.decisions["better"].decision == "go"
    assert rows["worse"][1] == "no-go"
    reasons = d.tables[1]
    assert reasons.columns == ("recipe", "reason") and len(reasons.rows) >= 4
    assert any(t.columns[0] == "proxy scale" for t in d.tables)  # rank stability per scale
    regs = report.section("downstream").tables[-1]
    assert len(regs.rows) == len(res.regressions) and "95% CI" in regs.columns
    go = {r[0]: r for r in report.section("gonogo").tables[0].rows}
    delta = res.recipe_summary("better")["predicted_delta"]
    assert float(go["better"][3]) == pytest.approx(-delta, rel=1e-3)  # gain = -delta (loss)


def _built_data(root):
    """A tiny built data directory: two sources, two recipes."""
    from scaling_ladder.data import build

    rng = np.random.default_rng(0)
    words = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa".split())
    for name in ("web", "books"):
        with open(root / f"{name}.jsonl", "w") as fh:
            for i in range(80):
                body = f"{name} {i}: " + " ".join(rng.choice(words, 40))
                fh.write(json.dumps({"text": body}) + "\n")
    recipes = root / "recipes.toml"
    recipes.write_text('[sources.web]\npaths = ["web.jsonl"]\n[sources.books]\n'
                       'paths = ["books.jsonl"]\n[recipes.baseline]\nweights = { web = 1 }\n'
                       '[recipes.better]\nweights = { web = 1, books = 1 }\n')
    build(recipes, root / "tokens")
    return root / "tokens"


def test_real_data_checks_render_sources_and_contamination(demo, tmp_path):
    from scaling_ladder.data import check

    result = check(_built_data(tmp_path))
    report = build_report(demo, metric="val/web", bootstrap=0, checks=result)
    s = report.section("data")
    assert s.omitted is None
    src, cont = s.tables[:2]
    assert {r[0] for r in src.rows} == {"web", "books"}
    assert {(r[0], r[1]) for r in cont.rows} >= {("baseline", "val/web"), ("better", "val/books")}


@pytest.mark.slow
def test_cli_report_decides_and_checks_a_data_directory(demo, tmp_path):
    runs = tmp_path / "runs.csv"
    demo.write(runs)
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(runs), "--metric", "val/web", "--decide",
                              "--checks", str(_built_data(tmp_path)), "--bootstrap", "10",
                              "-o", str(out), "--json", "-"])
    assert res.exit_code == 0, res.output
    sections = {s["key"]: s for s in json.loads(res.stdout)["sections"]}
    assert sections["decision"]["verdict"] == "go" and sections["data"]["omitted"] is None
    res = runner.invoke(app, ["report", str(runs), "--decide", "--compare", str(runs)])
    assert res.exit_code == 2 and "not both" in res.stderr


# ------------------------------------------------------------------------------ escaping


def test_data_strings_are_escaped_in_html_and_markdown():
    obs = demo_observations(worse=EVIL)
    report = build_report(obs, metric="val/web", bootstrap=0, compare=compare_dict(EVIL),
                          checks=checks_dict(source=EVIL))
    html = report.html
    assert len(re.findall(r"<script", html)) == 1  # the page's own script only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = report.markdown
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md


@pytest.mark.parametrize("name", ["a$b", "$x$", "_hidden", "50% | <b>"])
def test_figure_labels_show_names_as_they_are(name):
    assert "$" not in text(name).replace(r"\$", "")
    assert not text(name).startswith("_")
    obs = demo_observations(worse=name)
    report = build_report(obs, metric="val/web", bootstrap=0)
    assert all("<svg" in f.svg for f in report.figures)


# --------------------------------------------------------------------------------- files


def test_html_is_self_contained(plain, tmp_path):
    path = plain.write(tmp_path / "report.html")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == len(plain.figures)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    assert "<link" not in html and "@import" not in html
    assert f'data-figures-expected="{len(plain.figures)}"' in html


def test_markdown_writes_its_figures_beside_it(plain, tmp_path):
    path = plain.write(tmp_path / "report.md")
    md = path.read_text()
    assert md.startswith("# Scaling report") and "## 4. Scaling fit" in md
    for f in plain.figures:
        svg = tmp_path / "report_figures" / f"{f.key}.svg"
        assert svg.exists() and f"](report_figures/{f.key}.svg)" in md
    assert "| recipe |" in md


def test_to_dict_is_json(plain):
    d = json.loads(json.dumps(plain.to_dict()))
    assert [s["key"] for s in d["sections"]] == ORDER
    assert "svg" not in json.dumps(d["sections"][2]["figures"])


def test_overtrain_report_is_small(tmp_path):
    obs = sl.datasets.load("overtrain")
    report = build_report(obs, metric="val/c4", baseline="c4", bootstrap=0)
    size = len(report.html.encode())
    assert size < 5e6
    acc = report.section("downstream").tables[1]
    assert len(acc.rows) == 46 and acc.columns[1] == "random baseline"
    assert report.section("isoflop").tables  # three budgets with three sizes per recipe


# ----------------------------------------------------------------------------------- CLI


def test_cli_report_writes_the_page_and_json(tmp_path):
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--example", "overtrain", "--metric", "val/c4",
                              "--baseline", "c4", "--bootstrap", "0", "-o", str(out),
                              "--json", "-"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["out"] == str(out) and out.exists()
    assert [s["key"] for s in payload["sections"]] == ORDER


def test_cli_report_markdown_and_given_comparison(tmp_path):
    cmp = tmp_path / "cmp.json"
    cmp.write_text(json.dumps(compare_dict(worse="refinedweb") | {"baseline": "c4"}))
    out = tmp_path / "r.md"
    res = runner.invoke(app, ["report", "--example", "overtrain", "--metric", "val/c4",
                              "--bootstrap", "0", "--compare", str(cmp), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "**Decision: go**" in out.read_text() and "Decision" in res.stdout


def test_cli_report_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--example", "overtrain", "--baseline", "nope",
                              "--bootstrap", "0", "-o", str(out)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and 'no recipe "nope"' in res.stderr
    assert not out.exists()
    bad = tmp_path / "fit.json"
    bad.write_text("{not json")
    res = runner.invoke(app, ["report", "--example", "chinchilla", "--fit", str(bad), "-o",
                              str(out)])
    assert res.exit_code == 2 and "is not a fit written by ladder fit --json" in res.stderr
    res = runner.invoke(app, ["report", "--example", "chinchilla", "--target-params", "1e9",
                              "-o", str(out)])
    assert res.exit_code == 2 and "--target-tokens" in res.stderr
    assert not out.exists()


def test_cli_report_help_has_an_example():
    res = runner.invoke(app, ["report", "--help"])
    assert res.exit_code == 0 and "Example:" in res.stdout and "--baseline c4" in res.stdout
