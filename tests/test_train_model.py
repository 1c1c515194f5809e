"""The model, the schedules and the checkpoint files (no token data needed)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from scaling_ladder.plan.plan import make_plan  # noqa: E402
from scaling_ladder.plan.sizes import SIZE_TABLE, Shape  # noqa: E402
from scaling_ladder.train import checkpoint as ckpt  # noqa: E402
from scaling_ladder.train.model import GPT, ModelConfig  # noqa: E402
from scaling_ladder.train.trainer import cosine_lr, schedule, wsd_lr  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run ~15x slower on two OpenMP threads than on one (thread start-up)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(shape: Shape, vocab: int = 257, tied: bool = True, seq_len: int = 32) -> GPT:
    return GPT(ModelConfig(vocab_size=vocab, seq_len=seq_len, d_model=shape.d_model,
                           n_layers=shape.n_layers, n_heads=shape.n_heads,
                           mlp_hidden=shape.mlp_hidden, tied=tied))


@pytest.mark.parametrize("name", ["d16-l2", "d32-l2", "d48-l3", "d64-l4", "d96-l4"])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("vocab", [257, 1000])
def test_parameter_counts_equal_the_planner(name, tied, vocab):
    shape = SIZE_TABLE[name]
    model = _model(shape, vocab, tied)
    for convention in ("total", "non_embedding", "no_input_embedding"):
        assert model.num_params(convention=convention) == shape.params(
            vocab, tied=tied, convention=convention), convention
    assert model.num_params(non_embedding=True) == shape.params(
        vocab, convention="non_embedding")
    # and by brute force: every distinct parameter tensor
    assert model.num_params() == sum({id(p): p.numel() for p in model.parameters()}.values())


def test_flops_per_token_by_hand():
    shape = Shape(64, 4, 4)  # h = 176
    model = _model(shape, vocab=257, seq_len=128)
    matmul = 4 * (3 * 64 * 64 + 64 * 64 + 2 * 64 * 176 + 176 * 64) + 257 * 64  # weights used
    gains = 4 * 2 * 64 + 64  # RMSNorm gains: in N, as in every 6N count (0.3% here)
    n = matmul + gains
    assert model.flops_per_token() == 6 * n + 6 * 4 * 128 * 64
    assert model.flops_per_token(causal=False) == 6 * n + 12 * 4 * 128 * 64
    # the planner's FLOPs per token agree
    run = make_plan({"recipes": ["a"], "sizes": {"shapes": [{"d_model": 64, "n_layers": 4,
                                                            "n_heads": 4}]},
                     "tokens": 12800, "seeds": {"smallest": 1}}).runs[0]
    assert run.flops == pytest.approx(model.flops_per_token() * run.tokens)


def test_forward_flops_match_a_counted_forward_pass():
    """2 FLOPs per weight per token in the matmuls, checked against torch's own counter (it
    does not count the CPU flash-attention kernel, so the attention term is left out)."""
    from torch.utils.flop_counter import FlopCounterMode

    shape = Shape(32, 2, 2)
    model = _model(shape, vocab=257, seq_len=16)
    x = torch.randint(0, 257, (2, 16))
    with FlopCounterMode(display=False) as counter:
        model(x)
    linear = 2 * model.num_params(convention="no_input_embedding") - 2 * (2 * 2 * 32 + 32)
    # besides: W_q and W_k again with their rows' halves swapped, for RoPE (Attention.forward),
    # work the implementation chooses, not the model's FLOPs
    swapped = 2 * 2 * (2 * 32 * 32)
    assert counter.get_total_flops() == (linear + swapped) * 2 * 16  # 2 sequences of 16 tokens


def test_two_layer_model_overfits_one_batch():
    torch.manual_seed(0)
    model = _model(Shape(32, 2, 2), vocab=64, seq_len=32)
    x = torch.randint(0, 64, (4, 33))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-2)
    first = None
    for _ in range(80):
        loss = model(x[:, :-1], x[:, 1:])
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 4.0  # about ln 64
    assert loss.item() < 0.1


def test_same_seed_same_model():
    torch.manual_seed(3)
    a = _model(Shape(32, 2, 2))
    torch.manual_seed(3)
    b = _model(Shape(32, 2, 2))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_tied_head_shares_the_embedding():
    model = _model(Shape(32, 2, 2), tied=True)
    assert model.head.weight is model.embed.weight
    untied = _model(Shape(32, 2, 2), tied=False)
    assert untied.head.weight is not untied.embed.weight


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        ModelConfig(d_model=30, n_heads=4)


# ------------------------------------------------------------------------------ schedules


def test_cosine_matches_its_definition():
    lr, steps, warmup, r = 1e-3, 100, 10, 0.1
    got = [cosine_lr(s, lr=lr, steps=steps, warmup=warmup, min_ratio=r) for s in range(steps)]
    assert got[0] == pytest.approx(lr / 10) and got[9] == pytest.approx(lr)
    for s in range(warmup, steps):
        p = (s - warmup + 1) / (steps - warmup)
        assert got[s] == pytest.approx(r * lr + (1 - r) * lr * 0.5 * (1 + math.cos(math.pi * p)))
    assert got[-1] == pytest.approx(r * lr)  # the last update is taken at the minimum
    assert all(a >= b for a, b in zip(got[warmup:], got[warmup + 1:]))


def test_wsd_matches_its_definition():
    lr, steps, warmup, decay, r = 1e-3, 100, 10, 20, 0.0
    got = [wsd_lr(s, lr=lr, steps=steps, warmup=warmup, decay_steps=decay, min_ratio=r)
           for s in range(steps)]
    assert got[:warmup] == pytest.approx([lr * (s + 1) / warmup for s in range(warmup)])
    assert got[warmup:80] == pytest.approx([lr] * 70)  # stable
    assert got[80:] == pytest.approx([lr * (1 - (s - 79) / decay) for s in range(80, 100)])
    assert got[-1] == 0.0


def test_a_cooldown_branch_shares_the_stable_phase():
    run = make_plan({"recipes": ["a"], "sizes": {"names": ["d32-l2"]}, "tokens": 2e5,
                     "seeds": {"smallest": 1},
                     "hparams": {"schedule": "wsd", "cooldowns": [0.5]}}).runs[0]
    main, branch = schedule(run), schedule(run, run.steps // 2)
    start = run.steps // 2 - round(run.decay_fraction * (run.steps // 2))
    assert [main(s) for s in range(start)] == [branch(s) for s in range(start)]
    assert branch(run.steps // 2 - 1) == pytest.approx(run.lr * run.min_lr_ratio)


# ---------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_and_hash(tmp_path):
    state = {"model": {"w": torch.arange(6.0)}, "step": 7, "rows": "[]",
             "rng_cpu": torch.get_rng_state()}
    path = ckpt.save(tmp_path, 7, state)
    assert path.name == "step-00000007.ckpt"
    back = ckpt.load_file(path)
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["step"] == 7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ckpt.CorruptCheckpoint, match="hash mismatch"):
        ckpt.load_file(path)


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    for step in (10, 20, 30):
        ckpt.save(tmp_path, step, {"step": step})
    newest = ckpt.path_for(tmp_path, 30)
    newest.write_bytes(newest.read_bytes()[:-5])  # truncated
    with pytest.warns(ckpt.CheckpointWarning, match="step-00000030.ckpt"):
        state = ckpt.load_latest(tmp_path)
    assert state["step"] == 20
    assert ckpt.steps_in(tmp_path) == [10, 20]  # the bad one is set aside as .corrupt
    assert (tmp_path / "step-00000030.corrupt").exists()


class Thing:
    """Any class: torch.save pickles it, and weights_only=True must refuse it."""


def test_checkpoints_refuse_pickled_objects(tmp_path):
    ckpt.save(tmp_path, 1, {"thing": Thing()})
    with pytest.raises(ckpt.CorruptCheckpoint, match="cannot be loaded"):
        ckpt.load_file(ckpt.path_for(tmp_path, 1))


def test_prune_keeps_the_newest_and_protected(tmp_path):
    for step in (1, 2, 3, 4, 5):
        ckpt.save(tmp_path, step, {"step": step})
    ckpt.prune(tmp_path, keep=2, protect={2})
    assert ckpt.steps_in(tmp_path) == [2, 4, 5]
