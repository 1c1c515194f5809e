"""Bad input on every verb: exit 2 at once, one line on stderr naming the file or the flag,
no traceback, nothing half-written.

The corpus: every kind of damage a table file can carry, fed to every verb that reads tables,
and each verb's own bad options and files. A case is ``(verb and arguments, what the error
must name)``; ``{tmp}`` in an argument is the case's folder, where the bad files lie.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from scaling_ladder.cli import app

runner = CliRunner()
HEADER = "experiment,recipe,run,params,tokens,metric,value"


def good_rows() -> list[str]:
    """A small two-recipe ladder that every verb accepts."""
    rows = []
    for recipe, shift in (("base", 0.0), ("new", -0.01)):
        for n in (1e7, 2e7, 4e7, 8e7, 1.6e8):
            for k in (10, 20, 40):
                d = k * n
                loss = 1.8 + 400 / n ** 0.34 + 2000 / d ** 0.36 + shift
                rows.append(f"e,{recipe},{recipe}-{n:.0f}-{k},{n:.0f},{d:.0f},val/c4,{loss:.5f}")
    return rows


GOOD = "\n".join([HEADER, *good_rows()]) + "\n"


def with_row(row: str) -> str:
    return GOOD + row + "\n"


def replace_header(old: str, new: str) -> str:
    return GOOD.replace(HEADER, HEADER.replace(old, new), 1)


# name -> (suffix, content: text, bytes, None for a folder, "MISSING" for no file at all)
BAD_TABLES: dict[str, tuple[str, str | bytes | None]] = {
    "empty": (".csv", ""),
    "header only": (".csv", HEADER + "\n"),
    "one column": (".csv", "value\n1\n2\n"),
    "not utf-8": (".csv", b"\xff\xfe\x00bad\x00" * 10),
    "missing run": (".csv", replace_header("run", "name")),
    "missing params": (".csv", replace_header("params", "size")),
    "missing tokens": (".csv", replace_header("tokens", "toks")),
    "missing metric": (".csv", replace_header("metric", "what")),
    "misspelt value": (".csv", replace_header("value", "valeu")),
    "value text": (".csv", with_row("e,base,x,1e7,1e9,val/c4,three")),
    "value empty": (".csv", with_row("e,base,x,1e7,1e9,val/c4,")),
    "value nan": (".csv", with_row("e,base,x,1e7,1e9,val/c4,nan")),
    "value inf": (".csv", with_row("e,base,x,1e7,1e9,val/c4,inf")),
    "value negative": (".csv", with_row("e,base,x,1e7,1e9,val/c4,-2")),
    "params zero": (".csv", with_row("e,base,x,0,1e9,val/c4,3")),
    "params fraction": (".csv", with_row("e,base,x,1.5,1e9,val/c4,3")),
    "tokens negative": (".csv", with_row("e,base,x,1e7,-1e9,val/c4,3")),
    "run empty": (".csv", with_row("e,base,,1e7,1e9,val/c4,3")),
    "duplicate key": (".csv", GOOD + GOOD.splitlines()[1].rsplit(",", 1)[0] + ",9.9\n"),
    "two value columns": (".csv", GOOD.replace(HEADER, HEADER + ",value", 1).replace(
        "\n", ",1\n").replace(HEADER + ",value,1", HEADER + ",value", 1)),
    "ragged row": (".csv", with_row("e,base,x,1e7,1e9,val/c4,3,4,5,6")),
    "kind unknown": (".csv", GOOD.replace(HEADER, HEADER + ",kind", 1).replace(
        "\n", ",bits\n").replace(HEADER + ",kind,bits", HEADER + ",kind", 1)),
    "bad json line": (".jsonl", '{"run": "a", "params": 1e7\n'),
    "json not object": (".jsonl", "[1, 2, 3]\n"),
    "not parquet": (".parquet", b"PAR1 nothing here"),
    "unknown suffix": (".txt", GOOD),
    "a folder": (".csv", None),
    "missing file": (".csv", "MISSING"),
}


def table_file(name: str) -> str:
    return name.replace(" ", "-") + BAD_TABLES[name][0]


TABLE_VERBS = {
    "fit": ["fit", "--bootstrap", "0"],
    "holdout": ["holdout"],
    "isoflop": ["isoflop"],
    "compare": ["compare", "--baseline", "base", "--bootstrap", "0"],
    "report": ["report", "-o", "{tmp}/r.html", "--bootstrap", "0"],
}

GOOD_CASES = [
    # fit and its relatives: options
    (["fit", "{good}", "--law", "chinchila"], "chinchila"),
    (["fit", "{good}", "--loss", "l3"], "loss"),
    (["fit", "{good}", "--bootstrap", "-1"], "bootstrap"),
    (["fit", "{good}", "--bootstrap", "many"], "--bootstrap"),
    (["fit", "{good}", "--fix", "E"], "--fix"),
    (["fit", "{good}", "--fix", "E=x"], "--fix"),
    (["fit", "{good}", "--fix", "Q=1"], "Q"),
    (["fit", "{good}", "--metric", "val/c5"], "val/c5"),
    (["fit", "{good}", "--recipe", "nope"], "nope"),
    (["fit", "{good}", "--experiment", "nope"], "nope"),
    (["fit", "{good}", "--where", "nope > 1"], "nope"),
    (["fit", "{good}", "--where", "params >"], "--where"),
    (["fit", "{good}", "--where", "params"], "--where"),
    (["fit", "{good}", "--where", "len(run) > 1"], "--where"),
    (["fit", "{good}", "--where", "run.str.len() > 1"], "--where"),
    (["fit", "{good}", "--where", "@pd.io.common.os.system('true') == 0"], "--where"),
    (["fit", "{good}", "--where", "params > 1e30"], "good.csv"),
    (["fit", "{good}", "--checkpoints", "bogus"], "checkpoints"),
    (["fit", "{good}", "--checkpoints", "drop-first:2"], "drop-first"),
    (["fit", "{good}", "--checkpoints", "last:x"], "last"),
    (["fit", "{good}", "--json", "{tmp}/afile/out.json"], "--json"),
    (["fit", "{good}", "--json", "{tmp}"], "--json"),
    (["fit", "{good}", "--by", "nope"], "nope"),
    (["fit", "{good}", "--by", "recipe", "--shared", "gamma"], "gamma"),
    (["fit", "{good}", "--level", "2"], "level"),
    (["fit", "{good}", "--level", "-0.5"], "level"),
    (["fit", "{good}", "--example", "chinchilla"], "--example"),
    (["fit", "--example", "chinchila"], "chinchila"),
    (["fit"], "--example"),
    (["fit", "--nope"], "--nope"),
    (["holdout", "{good}", "--min-params", "1e30"], "--min-params"),
    (["holdout", "{good}", "--law", "nope"], "nope"),
    (["isoflop", "{good}", "--tolerance", "-1"], "tolerance"),
    (["isoflop", "{good}", "--tolerance", "nan"], "tolerance"),
    # optimal: fit files
    (["optimal", "--fit", "{tmp}/nope.json", "--flops", "1e21"], "nope.json"),
    (["optimal", "--fit", "{tmp}/text.json", "--flops", "1e21"], "text.json"),
    (["optimal", "--fit", "{tmp}/list.json", "--flops", "1e21"], "list.json"),
    (["optimal", "--fit", "{tmp}/noparams.json", "--flops", "1e21"], "noparams.json"),
    (["optimal", "--fit", "{tmp}/nan.json", "--flops", "1e21"], "nan.json"),
    (["optimal", "--fit", "{tmp}/negative.json", "--flops", "1e21"], "negative.json"),
    (["optimal", "--fit", "{tmp}/noalpha.json", "--flops", "1e21"], "noalpha.json"),
    (["optimal", "--fit", "{tmp}/badlaw.json", "--flops", "1e21"], "badlaw.json"),
    (["optimal", "--fit", "{tmp}", "--flops", "1e21"], "fz"),
    (["optimal", "--fit", "{fit}", "--flops", "-1"], "flops"),
    (["optimal", "--fit", "{fit}", "--flops", "nan"], "flops"),
    (["optimal", "--fit", "{fit}", "--flops", "0"], "flops"),
    (["optimal", "--fit", "{fit}", "--flops", "1e21", "--group", "nope"], "nope"),
    (["optimal", "--fit", "{fit}"], "--flops"),
    # compare and simulate
    (["compare", "{good}", "--baseline", "nope"], "nope"),
    (["compare", "{good}"], "--baseline"),
    (["compare", "{good}", "--baseline", "base", "--target-params", "-1",
      "--target-tokens", "1e12"], "target"),
    (["compare", "{good}", "--baseline", "base", "--target-params", "1e9"], "target"),
    (["compare", "{good}", "--baseline", "base", "--metric", "val/nope"], "val/nope"),
    (["compare", "{good}", "--baseline", "base", "--law", "nope"], "nope"),
    (["compare", "{good}", "--baseline", "base", "--match", "nope"], "match"),
    (["compare", "{good}", "--baseline", "base", "--bootstrap", "-3"], "bootstrap"),
    (["compare", "{good}", "--baseline", "base", "--rule", "{tmp}/nope.toml"], "nope.toml"),
    (["compare", "{good}", "--baseline", "base", "--rule", "{tmp}/bad.toml"], "bad.toml"),
    (["compare", "{good}", "--baseline", "base", "--rule", "{tmp}/unknown-key.toml"],
     "unknown-key.toml"),
    (["compare", "{good}", "--baseline", "base", "--protocol", "nope"], "nope"),
    (["simulate", "--ladders", "0"], "ladders"),
    (["simulate", "--noise", "-1"], "noise"),
    (["simulate", "--seeds", "x"], "seeds"),
    (["simulate", "--sizes", "1"], "sizes"),
    (["simulate", "--workers", "0"], "workers"),
    (["simulate", "--rule", "{tmp}/bad.toml"], "bad.toml"),
    # report
    (["report", "{good}", "-o", "{tmp}/out.pdf"], "out.pdf"),
    (["report", "{good}", "-o", "{tmp}"], "--out"),
    (["report", "{good}", "-o", "{tmp}/afile/r.html"], "--out"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--format", "pdf"], "format"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--fit", "{tmp}/nan.json"], "nan.json"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--fit", "{tmp}/text.json"], "text.json"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--compare", "{tmp}/list.json"], "list.json"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--compare", "{tmp}/nope.json"], "nope.json"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--checks", "{tmp}/text.json"], "text.json"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--target-params", "1e9"], "target"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--decide", "--compare", "{fit}"], "compare"),
    (["report", "{good}", "-o", "{tmp}/r.html", "--baseline", "nope", "--decide"], "nope"),
    # check
    (["check", "{tmp}/nope.csv", "--against", "{fit}"], "nope.csv"),
    (["check", "{good}", "--against", "{tmp}/nan.json"], "nan.json"),
    (["check", "{good}", "--against", "{fit}", "--run", "nope"], "nope"),
    (["check", "{good}", "--against", "{fit}", "--window", "0"], "window"),
    (["check", "{good}", "--against", "{fit}", "--z", "-1"], "z"),
    (["check", "{tmp}/t-bad.csv", "--against", "{fit}"], "t-bad.csv"),
    # plan
    (["plan", "--recipes", "../../evil", "--out", "{tmp}/plan.toml"], "../../evil"),
    (["plan", "--recipes", "a/b", "--out", "{tmp}/plan.toml"], "a/b"),
    (["plan", "--recipes", "..", "--out", "{tmp}/plan.toml"], ".."),
    (["plan", "--multipliers", "-20"], "-20"),
    (["plan", "--multipliers", "0"], "multipliers"),
    (["plan", "--multipliers", "x"], "multipliers"),
    (["plan", "--sizes", "0"], "sizes"),
    (["plan", "--sizes", "-3"], "sizes"),
    (["plan", "--min-params", "1e8", "--max-params", "1e6"], "params"),
    (["plan", "--protocol", "bogus"], "bogus"),
    (["plan", "--schedule", "bogus"], "bogus"),
    (["plan", "--set", "bogus"], "--set"),
    (["plan", "--set", "sizes.count=x"], "sizes.count"),
    (["plan", "--set", "nonsense.key=1"], "nonsense"),
    (["plan", "--out", "{tmp}/plan.txt"], "plan.txt"),
    (["plan", "--out", "{tmp}"], "--out"),
    (["plan", "--device", "bogus"], "bogus"),
    (["plan", "--workers", "0"], "workers"),
    (["plan", "{tmp}/nope.toml"], "nope.toml"),
    (["plan", "{tmp}/bad.toml"], "bad.toml"),
    (["plan", "--tokens", "-5"], "tokens"),
    (["plan", "--set", 'experiment="../x"'], "../x"),
    # train
    (["train", "{tmp}/nope.toml", "--data", "{tmp}", "--out", "{tmp}/runs"], "nope.toml"),
    (["train", "{tmp}/bad.toml", "--data", "{tmp}", "--out", "{tmp}/runs"], "bad.toml"),
    (["train", "{plan}", "--data", "{tmp}", "--out", "{tmp}/afile"], "afile"),
    (["train", "{plan}", "--data", "{tmp}/nope", "--out", "{tmp}/runs"], "nope"),
    # (options against real token data: tests/test_safety_train.py)
    # data
    (["data", "build", "{tmp}/nope.toml", "--out", "{tmp}/d"], "nope.toml"),
    (["data", "build", "{tmp}/bad.toml", "--out", "{tmp}/d"], "bad.toml"),
    (["data", "build", "{tmp}/evil-recipes.toml", "--out", "{tmp}/d"], "evil-recipes.toml"),
    (["data", "build", "{tmp}/code-recipes.toml", "--out", "{tmp}/d"], "--allow-code"),
    (["data", "build", "--default", "--out", "{tmp}/afile"], "afile"),
    (["data", "build", "--default", "--out", "{tmp}/d", "--tokenizer", "nope"], "nope"),
    (["data", "build", "--default", "--out", "{tmp}/d", "--vocab", "-5"], "vocab"),
    (["data", "build", "--out", "{tmp}/d"], "recipe"),
    (["data", "check", "{tmp}/nope"], "nope"),
    (["data", "check", "{tmp}"], "fz"),
    (["data", "check", "{tmp}/afile"], "afile"),
    # import
    (["import", "wandb", "{tmp}/nope.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "nope.csv"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=loss", "-o", "{tmp}/o.txt",
      "--params", "1e8", "--tokens-per-step", "1000"], "o.txt"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=nope", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "nope"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "garbage", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "--map"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "-1", "--tokens-per-step", "1000"], "params"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--tokens-per-step", "1000"], "params"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8"], "tokens"),
    (["import", "wandb", "{tmp}/wandb.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000", "--kind", "nope"], "nope"),
    (["import", "wandb", "{tmp}/t-bad.csv", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "t-bad.csv"),
    (["import", "tensorboard", "{tmp}/nope", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "nope"),
    (["import", "tensorboard", "{tmp}", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "fz"),
    (["import", "tensorboard", "{tmp}/tb", "--map", "train=loss", "-o", "{tmp}/o.csv",
      "--params", "1e8", "--tokens-per-step", "1000"], "events.out.tfevents"),
    # demo
    (["demo", "--out", "{tmp}/afile"], "afile"),
]


def _cases():
    for verb, head in TABLE_VERBS.items():
        for name in BAD_TABLES:
            yield pytest.param(head + [f"{{tmp}}/{table_file(name)}"], table_file(name),
                               id=f"{verb}: {name}")
    for args, names in GOOD_CASES:
        yield pytest.param(args, names, id=" ".join(args)[:80])


CASES = list(_cases())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The folder of bad (and a few good) files the cases name."""
    tmp = tmp_path_factory.mktemp("fz")
    (tmp / "good.csv").write_text(GOOD)
    (tmp / "t-bad.csv").write_text(with_row("e,base,x,1e7,1e9,val/c4,three"))
    (tmp / "afile").write_text("a file, not a folder\n")
    (tmp / "text.json").write_text("this is not json\n")
    (tmp / "list.json").write_text("[1, 2]\n")
    (tmp / "noparams.json").write_text('{"law": "chinchilla"}\n')
    (tmp / "bad.toml").write_text("this is [not toml\n")
    (tmp / "unknown-key.toml").write_text("no_such_threshold = 1\n")
    (tmp / "wandb.csv").write_text("Step,loss\n1,3.0\n2,2.9\n")
    (tmp / "evil-recipes.toml").write_text(
        '[sources."../../evil"]\nkind = "default"\n[recipes.a]\nweights = {"../../evil" = 1}\n')
    (tmp / "code-recipes.toml").write_text(
        '[sources.web]\npaths = ["web.jsonl"]\n[recipes.a]\nweights = {web = 1}\n'
        '[[recipes.a.filters]]\nkind = "callable"\npath = "os:system"\n')
    fit = {"law": "chinchilla", "params": {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34,
                                           "beta": 0.36},
           "objective": "huber", "objective_value": 0.001, "n_points": 10, "n_runs": 10}
    (tmp / "fit.json").write_text(json.dumps(fit))
    for name, change in (("nan", {"alpha": math.nan}), ("negative", {"alpha": -0.3})):
        (tmp / f"{name}.json").write_text(json.dumps({**fit, "params": {**fit["params"],
                                                                          **change}}))
    (tmp / "noalpha.json").write_text(json.dumps(
        {**fit, "params": {k: v for k, v in fit["params"].items() if k != "alpha"}}))
    (tmp / "badlaw.json").write_text(json.dumps({**fit, "law": "nope"}))
    planned = runner.invoke(app, ["plan", "--recipes", "base", "--max-params", "5e5", "--tokens",
                                  "4e5", "--out", str(tmp / "plan.toml")])
    assert planned.exit_code == 0, planned.output
    tb = tmp / "tb" / "run"
    tb.mkdir(parents=True)
    _truncated_events(tb)
    for name, (_, content) in BAD_TABLES.items():
        path = tmp / table_file(name)
        if content is None:
            path.mkdir(exist_ok=True)
        elif content == "MISSING":
            continue
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return tmp


def _truncated_events(run_dir: Path) -> None:
    """A real event file of 8 steps, cut in the middle of its last records."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:  # the tb extra: without it the importer's own error is exit 2 too
        (run_dir / "events.out.tfevents.0.host").write_bytes(b"\x00" * 5)
        return
    writer = EventFileWriter(str(run_dir))
    for step in range(8):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=3.0 - 0.1 * step)
        writer.add_event(event_pb2.Event(wall_time=1.0, step=step,
                                         summary=summary_pb2.Summary(value=[value])))
    writer.close()
    events = next(run_dir.glob("events.out.tfevents.*"))
    data = events.read_bytes()
    events.write_bytes(data[: len(data) * 3 // 5])


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(("args", "names"), CASES)
def test_bad_input_is_exit_2_with_one_line(corpus, args, names):
    before = _listing(corpus)
    argv = [a.replace("{tmp}", str(corpus)).replace("{good}", str(corpus / "good.csv"))
            .replace("{fit}", str(corpus / "fit.json")).replace("{plan}", str(corpus / "plan.toml"))
            for a in args]
    res = runner.invoke(app, argv)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2, (res.exit_code, res.output)
    # one line; a check before work lists each of several problems on a line of its own
    assert lines[0].startswith("error: "), res.stderr
    assert all(ln.startswith("  - ") for ln in lines[1:]), res.stderr
    assert "Traceback" not in res.output and "internal error" not in res.output
    assert names in res.stderr, res.stderr
    assert "<table>" not in res.stderr
    assert _listing(corpus) == before, "a failed command left files behind"


def test_the_corpus_is_large():
    assert len(CASES) >= 250


# ------------------------------------------------------------- generated observation tables

ODD = st.sampled_from(["", " ", "nan", "inf", "-1", "0", "abc", "1e400", '"', ",", "\u00e9"])


def column(*good: str) -> st.SearchStrategy[str]:
    """Mostly plausible values of one column, now and then an odd one."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), ODD)


COLUMNS = {
    "experiment": column("e", "f"),
    "recipe": column("base", "new"),
    "run": column("a", "b", "c", "d", "e", "f"),
    "params": column("1e7", "2e7", "4e7", "8e7", "1.6e8", "1.5"),
    "tokens": column("1e8", "4e8", "1.6e9", "6.4e9"),
    "metric": column("val/c4", "train", "ds/x"),
    "value": st.one_of(st.floats(0.01, 6).map(repr), ODD),
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(COLUMNS), min_size=0, max_size=24),
       header=st.permutations(list(COLUMNS)))
def test_any_table_is_read_or_refused_in_one_line(tmp_path, rows, header):
    """Whatever the table holds, ``fit`` answers with a fit (0) or a one-line error (2)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows([[row[c] for c in header] for row in rows])
    path = tmp_path / "h.csv"
    path.write_text(buf.getvalue())
    res = runner.invoke(app, ["fit", str(path), "--bootstrap", "0"])
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 2:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "h.csv" in lines[0], res.stderr
