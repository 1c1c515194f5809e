"""End to end: ``ladder demo --experiment tokenizer``, byte-level against BPE in bits/byte.

One run of the demo (a module fixture) serves every test; it trains the demo's own ladders.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import scaling_ladder as sl  # noqa: E402
from scaling_ladder.cli import app  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("tokenizer-demo")
    res = CliRunner().invoke(app, ["demo", "--experiment", "tokenizer", "--out", str(out_dir),
                                   "--json", "-"])
    assert res.exit_code == 0, res.output
    return out_dir, json.loads(res.stdout)


def test_the_tokenizer_demo_decides_in_bits_per_byte(demo):
    out_dir, out = demo
    assert out["decision"] in ("go", "no-go")
    assert set(out["recipes"]) == {"balanced.bpe-4096"}
    cmp = json.loads((out_dir / "comparison.json").read_text())
    assert cmp["units"] == "bits/byte" and cmp["matched"] == "tokens"
    assert "nats" not in " ".join(cmp["reasons"])  # gains are said per byte


def test_its_report_shows_the_per_token_ranking_beside_the_decision(demo):
    out_dir, _ = demo
    report = json.loads((out_dir / "report.json").read_text())
    decision = next(s for s in report["sections"] if s["key"] == "decision")
    table = next(t for t in decision["tables"] if "rank per token" in t["columns"])
    ranks = {row[0]: (row[3], row[5]) for row in table["rows"]}  # per byte, per token
    # the trap: per token the byte model looks better, per byte BPE is
    assert ranks == {"balanced.bpe-4096": ("1", "2"), "balanced.byte": ("2", "1")}
    assert "the wrong winner" in table["caption"]
    html = (out_dir / "report.html").read_text()
    assert "rank per token" in html and "bits/byte" in html


def test_both_ladders_share_their_scales(demo):
    _, out = demo
    f = sl.read_observations(out["observations"]).frame
    final = f[(f["metric"] == "val/mean") & f["final"] & f["cooldown_of"].isna()]
    by = final.groupby("recipe")
    assert set(by.groups) == {"balanced.byte", "balanced.bpe-4096"}
    shapes = [sorted(zip(g["params"], g["tokens"])) for _, g in by]
    assert shapes[0] == shapes[1]  # N without embeddings: one shape, one N, either tokenizer
    assert set(final["tokenizer"]) == {"byte-257", "bpe-4096"}
