"""Trainer throughput against a plain PyTorch loop with the same model, in the same process.

    python bench/train_speed.py                  # CPU: d96-l4, vocab 257, context 128
    python bench/train_speed.py --precision bfloat16  # the trainer under bf16 autocast
    python bench/train_speed.py --compile        # torch.compile the trainer (and the plain
                                                 # loop in its precision; not the baseline)
    python bench/train_speed.py --device cuda    # GPU: d768-l12 (124M with vocab 50304),
                                                 # context 1024, bf16 autocast

The baseline is the plain loop in float32, eager, what one would write by hand on a CPU; the trainer
runs in its own precision (``auto``: bf16 autocast on a GPU, and on a CPU with AMX from d_model
96, ``trainer.CPU_BF16_MIN_D``; float32 otherwise), and the plain loop is also timed in that
precision, to show what the trainer's bookkeeping costs.
The plain loop is random windows from a token tensor already on
the device, forward, backward, gradient clipping, AdamW, zero_grad; no schedule, data order,
evaluation or checkpoint. The trainer (``train_run``) does all of those; its tokens/s counts
the steps between evaluations (evaluations, checkpoints and the first two steps excluded),
and the plain loop is timed the same way (first two steps excluded). Both loops run twice,
alternating (``--rounds``, default 3); the ratio is of the medians, and every sample is
printed, because a shared VM's speed can vary 2x between minutes.
MFU uses PaLM's FLOPs per token (``flops_per_token(causal=False)``) over the peak of the
matching precision: for CPU, a 1024^3 matmul in that precision on the same threads; for a GPU,
the dense bf16 datasheet figure.
Targets: trainer / plain loop >= 1.0, MFU >= 40% of the matching peak; on a GPU, MFU >= 50%
for the 124M model (bf16).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scaling_ladder.plan.plan import make_plan
from scaling_ladder.train.config import TrainOptions
from scaling_ladder.train.model import GPT, ModelConfig
from scaling_ladder.train.trainer import describe_hardware, train_run, use_bf16

PRESETS = {
    "cpu": {"shape": "d96-l4", "vocab": 257, "seq_len": 128, "batch": 16, "steps": 120},
    "cuda": {"shape": "d768-l12", "vocab": 50304, "seq_len": 1024, "batch": 16, "steps": 60},
}


def write_tokens(root: Path, vocab: int, n: int, seed: int = 0) -> Path:
    """Random token ids in the ``scaling_ladder.data`` layout (one recipe, one val slice)."""
    rng = np.random.default_rng(seed)
    for rel in ("bench/train-00000.bin", "val/bench.bin"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        rng.integers(0, vocab - 1, size=n if "train" in rel else 8192,
                     dtype=np.uint16).astype("<u2").tofile(root / rel)
    manifest = {"format": "scaling-ladder-tokens", "version": 1, "dtype": "uint16",
                "tokenizer": {"kind": "random", "vocab_size": vocab, "eos_id": vocab - 1},
                "sources": {"bench": {"val": {"file": "val/bench.bin", "bytes_per_token": 1.0}}},
                "recipes": {"bench": {"shards": [{"file": "bench/train-00000.bin"}],
                                      "bytes_per_token": 1.0}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def plain_loop(run, device: torch.device, tokens: np.ndarray, compile_: bool,
               bf16: bool) -> float:
    """tokens/s of a hand-written loop with the run's model, optimiser and batch."""
    torch.manual_seed(run.seed)
    cfg = ModelConfig(vocab_size=run.vocab_size, seq_len=run.seq_len, d_model=run.d_model,
                      n_layers=run.n_layers, n_heads=run.n_heads, mlp_hidden=run.mlp_hidden)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(model.optimizer_groups(run.weight_decay), lr=run.lr,
                            betas=(run.beta1, run.beta2), fused=device.type == "cuda")
    net = torch.compile(model) if compile_ else model
    data = torch.from_numpy(tokens.astype(np.int64)).to(device)
    offsets = torch.arange(run.seq_len + 1, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    gen = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        starts = torch.randint(0, len(data) - run.seq_len - 1, (run.batch_sequences, 1),
                               device=device, generator=gen)
        batch = data[starts + offsets]
        with autocast:
            loss = net(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(run.steps - 2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (run.steps - 2) * run.batch_tokens / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shape", help="a SIZE_TABLE name (default per device)")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, as in a "
                    "ladder: one run per core)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                    help="the trainer's precision (the baseline loop is float32)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    preset = PRESETS["cuda" if device.type == "cuda" else "cpu"]
    shape = args.shape or preset["shape"]
    steps, batch = args.steps or preset["steps"], args.batch or preset["batch"]
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    plan = make_plan({"recipes": ["bench"], "vocab_size": preset["vocab"],
                      "seq_len": preset["seq_len"], "sizes": {"names": [shape]},
                      "tokens": steps * batch * preset["seq_len"], "seeds": {"smallest": 1},
                      "hparams": {"batch_sequences": batch, "lr": 3e-4},
                      "checkpoints": {"log_spaced": 0, "every": 0}})
    run = plan.runs[0]
    bf16 = use_bf16(args.precision, device, run.d_model)
    hardware, peak = describe_hardware(device, bf16)
    _, peak32 = describe_hardware(device, False)
    options = TrainOptions(device=str(device), threads=args.threads if device.type == "cpu"
                           else None, compile=args.compile, eval_tokens=1024, gns=False,
                           keep=1, precision="bfloat16" if bf16 else "float32")
    fpt = GPT(ModelConfig(vocab_size=run.vocab_size, seq_len=run.seq_len,
                          d_model=run.d_model, n_layers=run.n_layers, n_heads=run.n_heads,
                          mlp_hidden=run.mlp_hidden)).flops_per_token(causal=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_tokens(Path(tmp) / "tokens", run.vocab_size,
                            max(2_000_000, 4 * run.batch_tokens))
        tokens = np.fromfile(data / "bench/train-00000.bin", dtype="<u2")
        plain, same, trainer = [], [], []
        for i in range(args.rounds):
            plain.append(plain_loop(run, device, tokens, args.compile and device.type == "cuda",
                                    device.type == "cuda"))
            if bf16 and device.type == "cpu":
                same.append(plain_loop(run, device, tokens, args.compile, True))
            result = train_run(run, data, Path(tmp) / f"run{i}", options)
            trainer.append(result.tokens_per_s)
    best_plain, best_trainer = float(np.median(plain)), float(np.median(trainer))
    best_same = float(np.median(same)) if same else best_plain
    if device.type == "cuda":
        peak32 = peak
    out = {"device": hardware, "shape": shape, "params": run.params_total,
           "seq_len": run.seq_len, "batch_sequences": batch, "steps": steps,
           "compile": args.compile, "precision": "bf16 autocast" if bf16 else "float32",
           "peak_flops": peak, "flops_per_token": fpt,
           "plain_tokens_per_s": best_plain, "trainer_tokens_per_s": best_trainer,
           "plain_same_precision_tokens_per_s": best_same,
           "ratio": best_trainer / best_plain, "ratio_same_precision": best_trainer / best_same,
           "plain_mfu": best_plain * fpt / peak32 if peak32 else None,
           "trainer_mfu": best_trainer * fpt / peak if peak else None,
           "all_plain": plain, "all_plain_same_precision": same, "all_trainer": trainer}
    print(f"{hardware}: {shape} ({run.params_total / 1e6:.2f}M params), "
          f"{batch}x{run.seq_len} tokens/step, {steps} steps, "
          f"{'compiled' if args.compile else 'eager'}, {out['precision']}")
    base = "bf16 autocast" if device.type == "cuda" else "float32, eager"
    print(f"  plain loop ({base}) : {best_plain:12,.0f} tokens/s (median)  "
          f"MFU {_pct(out['plain_mfu'])} of the {base} peak")
    if same:
        print(f"  plain loop (bf16)    : {best_same:12,.0f} tokens/s (median)")
    print(f"  trainer ({out['precision']}): {best_trainer:12,.0f} tokens/s (median)  "
          f"MFU {_pct(out['trainer_mfu'])} of the matching peak")
    print(f"  ratio trainer / plain {base} loop (medians): {out['ratio']:.3f} (target >= 1); "
          f"at the same precision: {out['ratio_same_precision']:.3f}")
    print(f"  samples: plain {[round(x) for x in plain]}, same precision "
          f"{[round(x) for x in same]}, trainer {[round(x) for x in trainer]}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


if __name__ == "__main__":
    sys.exit(main())
