"""The planner: sizes, N three ways, OLMo rules, protocols, seeds, checkpoints, FLOPs, TOML."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.errors import InputError
from scaling_ladder.laws.compute import training_flops
from scaling_ladder.plan.plan import (
    SIZE_TABLE,
    CheckpointSpec,
    Shape,
    apply_overrides,
    build_plan,
    cooldown_branches,
    dumps_toml,
    eval_steps,
    load_plan,
    make_plan,
)

runner = CliRunner()


def test_parameter_formula_by_hand():
    # d=64, L=4, h=176, V=257: per layer 4*64^2 + 3*64*176 + 2*64 = 50,304; + final norm 64
    s = Shape(64, 4, 4)
    assert s.mlp_hidden == 176  # 8/3 * 64 = 170.7, up to a multiple of 16
    assert s.params(257, convention="non_embedding") == 4 * 50_304 + 64
    assert s.params(257, convention="no_input_embedding") == 4 * 50_304 + 64 + 257 * 64
    assert s.params(257, tied=True) == 4 * 50_304 + 64 + 257 * 64
    assert s.params(257, tied=False) == 4 * 50_304 + 64 + 2 * 257 * 64


def test_size_table_reproduces_llama_7b_count():
    # LLaMA-7B: d 4096, 32 layers, SwiGLU 11008, vocabulary 32000, untied: 6.74B parameters
    s = SIZE_TABLE["d4096-l32"]
    assert s.mlp_hidden == 11008
    assert s.params(32000, tied=False) == pytest.approx(6.738e9, rel=1e-3)


def test_default_plan_has_five_sizes_more_seeds_small():
    plan = make_plan({"recipes": ["a"]})
    sizes = sorted({r.size for r in plan.runs}, key=lambda s: SIZE_TABLE[s].params(257))
    assert len(sizes) == 5
    seeds = {s: sum(r.size == s for r in plan.runs) for s in sizes}
    assert seeds[sizes[0]] == 3 and seeds[sizes[-1]] == 1
    assert all(seeds[a] >= seeds[b] for a, b in zip(sizes, sizes[1:]))
    assert not plan.notes


def test_olmo_rules_at_the_reference_size():
    # at N = 108M non-embedding parameters the rules give lr 0.0047 and 160 x 2048 tokens
    n = SIZE_TABLE["d768-l12"].params(257, convention="non_embedding")
    plan = make_plan({"recipes": ["a"], "seq_len": 2048, "sizes": {"names": ["d768-l12"]},
                      "hparams": {"ref_params": n}, "seeds": {"smallest": 1}})
    run = plan.runs[0]
    assert run.lr == pytest.approx(0.0047)
    assert run.batch_sequences == 160 and run.batch_tokens == 160 * 2048
    # a model 8x smaller: lr x 2, batch x 1/4
    plan = make_plan({"recipes": ["a"], "seq_len": 2048, "sizes": {"names": ["d768-l12"]},
                      "hparams": {"ref_params": 8 * n}, "seeds": {"smallest": 1}})
    assert plan.runs[0].lr == pytest.approx(0.0094)
    assert plan.runs[0].batch_sequences == 40


def test_tokens_follow_the_multipliers_and_warmup_is_capped():
    plan = make_plan({"recipes": ["a"], "token_multipliers": [5, 20],
                      "sizes": {"names": ["d32-l2", "d64-l4"]}, "seeds": {"smallest": 1}})
    assert len(plan.runs) == 4
    for r in plan.runs:
        assert r.tokens == r.steps * r.batch_tokens
        assert r.multiplier * r.params <= r.tokens < r.multiplier * r.params + r.batch_tokens
        assert r.warmup_steps <= 0.1 * r.steps
        assert f"k{r.multiplier:g}" in r.name


def test_flops_include_the_head_and_the_attention_term():
    plan = make_plan({"recipes": ["a"], "tokens": 1e6, "vocab_size": 50304,
                      "params_convention": "non_embedding",
                      "sizes": {"names": ["d64-l4"]}, "seeds": {"smallest": 1}})
    r = plan.runs[0]
    # by hand: 6 (N_nonembed + V d) D + 6 L T d D
    hand = (6 * (r.params_nonembed + 50304 * 64) + 6 * 4 * 128 * 64) * r.tokens
    assert r.flops == pytest.approx(hand)
    assert r.flops == pytest.approx(float(training_flops(
        r.params_no_input_embed, r.tokens, n_layers=4, d_model=64, seq_len=128)))
    assert r.flops_6nd == pytest.approx(6 * r.params_nonembed * r.tokens)
    assert r.flops / r.flops_6nd > 5  # 6ND understates a tiny large-vocabulary model


@pytest.mark.parametrize("kind, mults", [("fixed", [1.0]), ("reduced-lr", [0.1]),
                                         ("sweep", [0.5, 1.0, 2.0])])
def test_protocols(kind, mults):
    plan = make_plan({"recipes": ["a", "b"], "protocol": {"kind": kind},
                      "sizes": {"names": ["d32-l2"]}, "seeds": {"smallest": 1}})
    base = make_plan({"recipes": ["a"], "sizes": {"names": ["d32-l2"]},
                      "seeds": {"smallest": 1}}).runs[0].lr
    for recipe in ("a", "b"):
        got = sorted(r.lr for r in plan.runs if r.recipe == recipe)
        assert got == pytest.approx([base * m for m in mults])
    assert {r.protocol for r in plan.runs} == {kind}


def test_eval_steps_log_spaced_and_cadence():
    steps = eval_steps(1000, CheckpointSpec(log_spaced=4, first_fraction=0.01, every=0.25))
    assert steps == [10, 46, 215, 250, 500, 750, 1000]
    assert eval_steps(3, CheckpointSpec()) == [1, 2, 3]


def test_wsd_cooldown_branches_start_from_stable_checkpoints():
    b = cooldown_branches(1000, 0.2, [0.25, 0.5])
    assert [(x.start, x.end) for x in b] == [(200, 250), (400, 500)]
    plan = make_plan({"recipes": ["a"], "sizes": {"names": ["d32-l2"]}, "tokens": 1e6,
                      "seeds": {"smallest": 1},
                      "hparams": {"schedule": "wsd", "cooldowns": [0.5]}})
    r = plan.runs[0]
    (branch,) = cooldown_branches(r.steps, r.decay_fraction, r.cooldowns)
    assert branch.start in r.eval_steps


def test_stages_funnel_and_placeholders():
    spec = {"recipes": ["a", "b", "c"], "seeds": {"smallest": 1},
            "sizes": {"names": ["d24-l2", "d32-l2", "d48-l3", "d64-l4", "d96-l4"]},
            "stages": [{"name": "smoke", "sizes": "first:1", "tokens_scale": 0.1},
                       {"name": "small", "sizes": "first:3"},
                       {"name": "large", "sizes": "last:2", "recipes": 2}]}
    plan = make_plan(spec)
    smoke = plan.stage("smoke")
    assert len(smoke.runs) == 3 and smoke.runs[0].tokens < plan.stage("small").runs[0].tokens
    large = plan.stage("large")
    assert {r.recipe for r in large.runs} == {"@top1", "@top2"}
    assert all(r.placeholder for r in large.runs)
    filled = plan.with_recipes("large", ["c", "a"])
    assert {r.recipe for r in filled.stage("large").runs} == {"c", "a"}
    assert not any(r.placeholder for r in filled.runs)
    assert len({r.name for r in filled.runs}) == len(filled.runs)


def test_budget_scales_tokens_with_a_note():
    spec = {"recipes": ["a"], "sizes": {"names": ["d32-l2", "d64-l4"]}, "tokens": 1e6}
    full = make_plan(spec)
    cut = make_plan({**spec, "budget": {"flops": full.flops / 4}})
    assert cut.flops <= full.flops / 4 * 1.05
    assert any("scaled by" in n for n in cut.notes)
    over = make_plan({**spec, "budget": {"flops": full.flops / 4, "scale_tokens": False}})
    assert over.flops == full.flops and any("over budget" in n for n in over.notes)


def test_fewer_than_five_sizes_is_noted():
    plan = make_plan({"recipes": ["a"], "sizes": {"names": ["d32-l2", "d64-l4"]}})
    assert any("Choshen" in n for n in plan.notes)


def test_toml_round_trip(tmp_path):
    plan = make_plan({"recipes": ["a", "b"], "sizes": {"max_params": 5e5}, "tokens": 2e5})
    path = tmp_path / "plan.toml"
    path.write_text(plan.to_toml())
    back = load_plan(path)
    assert back.runs == plan.runs
    assert back.spec == plan.spec
    # editing the runs by hand is honoured; overrides re-plan from the spec
    raw = tomllib.loads(path.read_text())
    raw["runs"] = raw["runs"][:2]
    path.write_text(dumps_toml(raw))
    assert len(load_plan(path).runs) == 2
    assert len(load_plan(path, ["sizes.count=3"]).runs) > 2


def test_overrides_are_toml_values():
    raw = apply_overrides({"sizes": {"count": 5}}, ["sizes.count=6", "recipes=[\"x\", \"y\"]",
                                                     "experiment=abc", "hparams.lr=3e-3"])
    assert raw == {"sizes": {"count": 6}, "recipes": ["x", "y"], "experiment": "abc",
                   "hparams": {"lr": 3e-3}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides({}, ["sizes.count"])


def test_bad_spec_names_key_and_line(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text('recipes = ["a"]\n\n[sizes]\ncount = 5\nmax_parms = 1e6\n')
    with pytest.raises(InputError) as exc:
        build_plan(path)
    assert str(exc.value).startswith(f"{path}, line 5: sizes.max_parms: extra inputs")


def test_too_narrow_size_range_is_an_input_error():
    with pytest.raises(InputError, match="fewer than sizes.count"):
        make_plan({"sizes": {"min_params": 3e4, "max_params": 4e4}})


def test_plan_and_cli_do_not_import_torch():
    code = ("import sys; import scaling_ladder, scaling_ladder.plan.plan, scaling_ladder.cli, "
            "scaling_ladder.train; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_plan_json_and_toml(tmp_path):
    out = tmp_path / "plan.toml"
    res = runner.invoke(app, ["plan", "--recipes", "a,b", "--max-params", "5e5", "--tokens",
                              "2e5", "--out", str(out), "--json", "-"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["params_convention"] == "total" and payload["n_runs"] == 20
    run = payload["runs"][0]
    assert {"params", "params_total", "params_nonembed", "params_no_input_embed", "flops",
            "flops_6nd", "eval_steps", "seconds", "d_model", "n_layers", "n_heads",
            "vocab_size"} <= set(run)
    assert math.isclose(payload["flops"], sum(r["flops"] for r in payload["runs"]))
    assert len(load_plan(out).runs) == 20


def test_cli_plan_table_and_errors(tmp_path):
    res = runner.invoke(app, ["plan", "--recipes", "a", "--sizes", "5", "--max-params", "1e6"])
    assert res.exit_code == 0, res.output
    assert "estimated time" in res.stdout and "N = total parameters" in res.stdout
    bad = runner.invoke(app, ["plan", "--protocol", "tuned"])
    assert bad.exit_code == 2
    assert "protocol.kind" in bad.output
    missing = runner.invoke(app, ["plan", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert not list(tmp_path.iterdir())
