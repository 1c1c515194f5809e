"""The scaling report: sections in order, omitted sections with reasons, the comparison's and
the data checks' dicts rendered, gains with the right sign, escaping, files, and the CLI."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

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


def demo_comparison(obs: sl.Observations, **replace):
    """The real comparison of ``obs`` against ``baseline``, with small bootstrap counts;
    ``replace`` sets fields of the result (e.g. ``warnings``)."""
    from scaling_ladder.compare import CompareOptions, compare

    res = compare(obs, baseline="baseline", metric="val/web",
                  options=CompareOptions(bootstrap=10, slice_bootstrap=5, gate_bootstrap=5,
                                         variants=("shared-exponents",)))
    return dataclasses.replace(res, **replace) if replace else res


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


def cells(table) -> dict[str, dict[str, str]]:
    """A table's rows by their first cell, each as {column: cell}."""
    return {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows}


@pytest.fixture(scope="module")
def demo():
    return demo_observations()


@pytest.fixture(scope="module")
def plain(demo):
    """The report of observations alone: fits made here, nothing else given."""
    return build_report(demo, metric="val/web", bootstrap=12, seed=0)


@pytest.fixture(scope="module")
def comparison(demo):
    return demo_comparison(demo)


@pytest.fixture(scope="module")
def full(demo, comparison):
    return build_report(demo, bootstrap=12, compare=comparison, checks=checks_dict())


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
    scaling = plain.section("scaling")
    assert "candidate better" in scaling.intro and "expected gain" in scaling.intro
    assert scaling.intro.startswith("Single-recipe fits, for the curves")
    table = scaling.tables[1]
    assert table.columns[-2:] == ("expected gain vs baseline", "95% CI of the gain")
    rows = {r[0]: r for r in table.rows}
    assert rows["baseline"][-2] == "baseline"
    better, worse = float(rows["better"][-2]), float(rows["worse"][-2])
    assert 0.03 < better < 0.07 and -0.07 < worse < -0.03
    # the headline and go / no-go print the same digits as the table
    assert f"expected gain {rows['better'][-2]} {rows['better'][-1]}" in scaling.intro
    go = {r[0]: r for r in plain.section("gonogo").tables[0].rows}
    assert go["better"][3:5] == rows["better"][-2:]
    verdicts = {r[0]: r[-1] for r in go.values()}
    assert verdicts == {"better": "go", "worse": "no-go"}  # by the interval rule


def test_largest_model_is_held_out_and_scored(plain):
    are = plain.section("scaling").tables[2]
    assert are.columns == ("recipe", "held-out N", "runs", "ARE (diagnostic)")
    assert are.caption.startswith("Hold-out check, a diagnostic")
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
    assert {r[1] for r in worse_rows} >= {"val/web", "ds/quiz"}
    assert not [r for r in regs.rows if r[0] == "better" and r[1] != "ds/quiz"]
    rel = [abs(float(r[6].rstrip("%"))) for r in regs.rows]
    assert rel == sorted(rel, reverse=True)  # worst first


def test_training_loss_is_set_aside_everywhere_as_in_the_comparison(plain, full):
    for report in (plain, full):
        text = json.dumps(report.to_dict()["sections"])
        assert '"train"' not in text and "train (" not in text
        assert any("training loss set aside" in n for n in report.meta["notes"])
        assert "training loss set aside" in report.html
    assert {r[0] for r in plain.section("downstream").tables[0].rows} == {"val/web"}


def test_comparison_renders_decision_reasons_and_regressions(full, comparison):
    d = full.section("decision")
    assert d.omitted is None and d.verdict == comparison.decision == "go"
    rows = cells(d.tables[0])
    assert rows["better"]["decision"] == "go" and rows["worse"]["decision"] == "no-go"
    s = comparison.recipe_summary("better")
    assert rows["better"]["P(beats baseline)"] == f"{s['p_beats_baseline']:.3g}"
    assert rows["better"]["predicted val/web"] == f"{s['predicted']:.4g}"
    assert float(rows["better"]["predicted gain"]) == pytest.approx(-s["predicted_delta"],
                                                                    rel=1e-3)
    lo, hi = (float(x) for x in rows["worse"]["95% CI of the gain"].strip("[]").split(", "))
    w = comparison.recipe_summary("worse")["ci95"]
    assert (lo, hi) == (pytest.approx(-w[1], rel=1e-3), pytest.approx(-w[0], rel=1e-3))
    assert "Δ" not in json.dumps([t.to_dict() for t in d.tables[:1]])
    assert comparison.reasons[0] in d.intro
    reasons = d.tables[1]
    assert reasons.columns == ("recipe", "reason") and len(reasons.rows) >= 4
    assert [t.columns[0] for t in d.tables[2:]] == ["proxy scale", "metric", "stage gate"]


def test_the_regression_table_renders_each_regression(demo, comparison):
    from scaling_ladder.compare.regressions import regression_table

    # this ladder's predictions at the target are set aside, so its comparison tests slices at
    # the largest scale only; the table as a comparison resting on its fit would have it
    table = regression_table(comparison.per_scale, comparison.predictions, baseline="baseline",
                             primary="val/web", near=set(), max_loss=0.01, max_accuracy=0.01)
    assert len(table)
    report = build_report(demo, bootstrap=0,
                          compare=dataclasses.replace(comparison, regressions=table))
    regs = report.section("downstream").tables[-1]
    assert regs.columns == ("recipe", "metric", "where", "gain", "95% CI of the gain",
                            "threshold", "blocking")
    assert len(regs.rows) == len(table)
    r = table.iloc[0]  # worse on ds/quiz: an accuracy, gain = delta
    assert regs.rows[0][:4] == (r["recipe"], r["metric"], r["where"], f"{r['delta']:+.4g}")


def test_the_report_takes_the_comparisons_metric_baseline_and_target(demo, comparison):
    report = build_report(demo, bootstrap=0, compare=comparison)
    assert report.meta["metric"] == "val/web" and report.meta["baseline"] == "baseline"
    assert report.meta["target"]["params"] == comparison.target.params
    with pytest.raises(ValueError, match="baseline is baseline, not better"):
        build_report(demo, bootstrap=0, compare=comparison, baseline="better")
    with pytest.raises(ValueError, match="decides on metric val/web, not train"):
        build_report(demo, bootstrap=0, compare=comparison, metric="train")
    with pytest.raises(ValueError, match="target is N = "):
        build_report(demo, bootstrap=0, compare=comparison, target=(7e9, 1.4e11))


def test_warnings_come_first_in_the_decision_once(demo, comparison):
    said = ("hold-out error 12% at N = 400M (above 5%)",
            "contamination: eval/quiz overlaps better's training stream")
    cmp = dataclasses.replace(comparison, warnings=said)
    report = build_report(demo, bootstrap=0, compare=cmp, checks=checks_dict())
    assert report.section("decision").warnings == said  # better's contamination not said twice
    assert report.to_dict()["warnings"] == list(said)
    html = report.html
    box = html.index('class="warnings"')
    assert box < html.index('class="verdict"') and html.index(said[0]) > box
    md = report.markdown
    assert f"> **Warning:** {said[0]}" in md
    assert md.index("> **Warning:**") < md.index("**Decision: go**")
    # without the comparison's word on it, the data checks' contamination is a warning
    quiet = dataclasses.replace(comparison, warnings=())
    report = build_report(demo, bootstrap=0, compare=quiet, checks=checks_dict())
    (w,) = report.warnings
    assert w.startswith("Contamination: 4% of the documents of eval/quiz") and "better" in w
    # and it shows even when there is no decision
    report = build_report(demo, metric="val/web", bootstrap=0, checks=checks_dict())
    assert report.section("decision").omitted and report.warnings == (w,)
    assert 'class="warnings"' in report.html


def test_isoflop_stop_signal_is_a_warning():
    """Valleys whose minimum moves to smaller models at larger compute (a stop signal) raise
    a warning of the report's own, shown at the top of the Decision."""
    rows = []
    for c, best in ((1e18, 2e8), (1e19, 6e7), (1e20, 4e8)):  # N*(C) down, then up
        for n in np.round(np.geomspace(best / 4, best * 4, 5)):
            rows.append({"experiment": "iso", "recipe": "baseline", "run": f"{c:g}-{n:.3g}",
                         "params": n, "tokens": c / (6 * n), "metric": "val/x", "kind": "loss",
                         "final": True, "value": 3.0 - 0.1 * np.log10(c)
                         + 0.2 * np.log10(n / best) ** 2})
    obs = sl.from_frame(pd.DataFrame(rows), name="iso.csv")
    report = build_report(obs, metric="val/x", bootstrap=0, holdout=False)
    assert any("stop signal" in n for n in report.section("isoflop").notes)
    (w,) = report.warnings
    assert w.startswith("IsoFLOP stop signal (baseline)")
    assert report.section("decision").warnings == (w,)


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
    for bad in ([1, 2], {"decision": "go"}):  # a comparison is a result, not its JSON
        with pytest.raises(ValueError, match="'compare' argument .* must be a Comparison"):
            build_report(demo, metric="val/web", bootstrap=0, compare=bad)


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


def test_go_nogo_shows_the_comparisons_gains(full, comparison):
    go = {r[0]: r for r in full.section("gonogo").tables[0].rows}
    rows = cells(full.section("decision").tables[0])
    for recipe in ("better", "worse"):
        # predicted gain, its CI, P(beats), decision: the Decision table's cells
        d = rows[recipe]
        assert go[recipe][3:7] == (d["predicted gain"], d["95% CI of the gain"],
                                   d["P(beats baseline)"], d["decision"])
        # the gain at the largest proxy: the per-scale table's, at the scale the rule reads
        t = comparison.per_scale
        t = t[(t["metric"] == "val/web") & (t["recipe"] == recipe) & t["delta"].notna()]
        top = t.sort_values(["flops", "params"]).iloc[-1]
        assert go[recipe][1:3] == (f"{-top['delta']:+.4g}", top["scale"])
        reason = next(r for r in comparison.recipe_summary(recipe)["reasons"]
                      if r.startswith("gain at "))
        assert reason.startswith(f"gain at {top['scale']} = {go[recipe][1]} nats")


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
    report = build_report(obs, bootstrap=0, compare=demo_comparison(obs, warnings=(EVIL,)),
                          checks=checks_dict(source=EVIL))
    assert report.warnings[0] == EVIL
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


def test_cli_report_markdown_and_given_comparison(demo, comparison, tmp_path):
    runs, cmp = tmp_path / "runs.csv", tmp_path / "cmp.json"
    demo.write(runs)
    d = dataclasses.replace(comparison, warnings=("E at its lower bound",)).to_dict()
    cmp.write_text(json.dumps(d))
    out = tmp_path / "r.md"
    res = runner.invoke(app, ["report", str(runs), "--bootstrap", "0", "--compare", str(cmp),
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "**Decision: go**" in md and "> **Warning:** E at its lower bound" in md
    assert "warning: E at its lower bound" in res.stdout and "Decision" in res.stdout
    # an older comparison (no warnings key) or another file: exit 2, naming the file and fix
    for key in ("warnings", "per_scale"):
        cmp.write_text(json.dumps({k: v for k, v in d.items() if k != key}))
        res = runner.invoke(app, ["report", str(runs), "--compare", str(cmp), "-o",
                                  str(tmp_path / "x.md")])
        assert res.exit_code == 2 and res.stderr.count("\n") == 1
        assert f"{cmp}: is not a comparison written by this version" in res.stderr
        assert f"no key '{key}'" in res.stderr and "re-run ladder compare" in res.stderr
    cmp.write_text(json.dumps(d | {"verdict": "go"}))
    res = runner.invoke(app, ["report", str(runs), "--compare", str(cmp), "-o",
                              str(tmp_path / "x.md")])
    assert res.exit_code == 2 and "unknown key 'verdict'" in res.stderr
    cmp.write_text(json.dumps(d))
    res = runner.invoke(app, ["report", str(runs), "--compare", str(cmp), "--baseline",
                              "better", "-o", str(tmp_path / "x.md")])
    assert res.exit_code == 2 and "baseline is baseline, not better" in res.stderr
    assert not (tmp_path / "x.md").exists()


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


def test_report_modules_import_in_one_direction():
    """No import circle in report/: build -> sections -> section modules -> model -> render
    (imports only for type checkers do not count)."""
    root = Path(build_report.__code__.co_filename).parent
    graph = {}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        checking = [n for n in ast.walk(tree) if isinstance(n, ast.If)
                    and "TYPE_CHECKING" in ast.unparse(n.test)]
        hidden = {id(x) for n in checking for x in ast.walk(n)}
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in hidden:
                deps |= ({node.module} if node.module else {a.name for a in node.names})
        graph[path.stem] = deps & {p.stem for p in root.glob("*.py")}

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d)))
                   for d in graph[start])

    assert not [m for m in graph if reaches(m, m)]
    assert not [m for m, deps in graph.items() if "build" in deps and m != "__init__"]
    assert {"model"} <= graph["decision"] & graph["scaling"] & graph["tables"] & graph["fits"]


def test_cli_report_help_has_an_example():
    res = runner.invoke(app, ["report", "--help"])
    assert res.exit_code == 0 and "Example:" in res.stdout and "--baseline c4" in res.stdout


def test_an_interval_that_misses_its_point_is_still_drawn(demo):
    # two resamples: the percentile interval of a prediction need not contain the point
    report = build_report(demo, bootstrap=2, compare=True, metric="val/web",
                          baseline="baseline")
    assert {"scaling-fit", "decision"} <= {f.key for f in report.figures}


def test_every_figure_is_drawn_under_the_report_style():
    from scaling_ladder.report import figures

    for name in ("loss_curves", "scaling_fit", "isoflop", "decision_scatter"):
        assert hasattr(getattr(figures, name), "__wrapped__"), name  # functools.wraps of _styled
