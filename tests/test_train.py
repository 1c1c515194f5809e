"""The trainer end to end on tiny token files: rows, resume after kill -9, corrupt checkpoints,
WSD cooldown branches, the local and Ray executors, and the ``ladder train`` verb."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

import scaling_ladder as sl  # noqa: E402
from scaling_ladder.cli import app  # noqa: E402
from scaling_ladder.data import ByteTokenizer  # noqa: E402
from scaling_ladder.errors import InputError  # noqa: E402
from scaling_ladder.plan.plan import make_plan  # noqa: E402
from scaling_ladder.train import TrainOptions, train_ladder  # noqa: E402
from scaling_ladder.train import checkpoint as ckpt  # noqa: E402
from scaling_ladder.train.executors import run_job  # noqa: E402
from scaling_ladder.train.trainer import eval_windows, train_run  # noqa: E402

OPTIONS = TrainOptions(device="cpu", threads=1, eval_tokens=1024)
WORDS = ("the cat dog sat ran on a mat log big small red blue and then it was very "
         "happy sad slow fast").split()


def _docs(rng, kind: str, n: int) -> list[bytes]:
    """Learnable text: word sentences from a small vocabulary, or counting sequences."""
    docs = []
    for _ in range(n):
        if kind == "words":
            text = " ".join(rng.choice(WORDS, size=rng.integers(20, 60))) + "."
        else:
            start = int(rng.integers(0, 500))
            text = " ".join(str(start + i) for i in range(int(rng.integers(10, 40))))
        docs.append(text.encode())
    return docs


def _stream(docs: list[bytes]) -> tuple[np.ndarray, float]:
    parts = [np.append(np.frombuffer(d, np.uint8).astype(np.uint16), 256) for d in docs]
    arr = np.concatenate(parts)
    return arr, sum(len(d) for d in docs) / len(arr)


def write_token_dir(root: Path) -> Path:
    """A token folder in the layout of ``scaling_ladder.data`` (byte tokenizer, EOS 256):
    two sources (their validation slices) and two recipes mixing them differently."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "scaling-ladder-tokens", "version": 1, "dtype": "uint16",
                "tokenizer": ByteTokenizer().spec(),
                "sources": {}, "recipes": {}}
    for source in ("words", "digits"):
        arr, bpt = _stream(_docs(rng, source, 60))
        (root / "val").mkdir(exist_ok=True)
        arr.astype("<u2").tofile(root / "val" / f"{source}.bin")
        manifest["sources"][source] = {"val": {"file": f"val/{source}.bin",
                                               "bytes_per_token": bpt}}
    for recipe, share in (("alpha", 0.8), ("beta", 0.2)):
        n_words = int(600 * share)
        docs = _docs(rng, "words", n_words) + _docs(rng, "digits", 600 - n_words)
        order = rng.permutation(len(docs))
        arr, bpt = _stream([docs[i] for i in order])
        (root / recipe).mkdir(exist_ok=True)
        arr.astype("<u2").tofile(root / recipe / "train-00000.bin")
        manifest["recipes"][recipe] = {"shards": [{"file": f"{recipe}/train-00000.bin"}],
                                       "bytes_per_token": bpt}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    return write_token_dir(tmp_path_factory.mktemp("tokens"))


def tiny_plan(**spec):
    base = {"experiment": "t", "recipes": ["alpha"], "seq_len": 32, "tokens": 40 * 8 * 32,
            "sizes": {"names": ["d16-l2"]}, "seeds": {"smallest": 1},
            "hparams": {"batch_sequences": 8, "lr": 1e-2},
            "checkpoints": {"log_spaced": 3, "every": 0.25}}
    for k, v in spec.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and k in base else v
    return make_plan(base)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_run_writes_observations_that_validate(tokens, tmp_path):
    run = tiny_plan().runs[0]
    result = train_run(run, tokens, tmp_path / "run", OPTIONS)
    assert result.state == "done"
    obs = sl.read_observations(tmp_path / "run" / "observations.jsonl")
    f = obs.frame
    assert not obs.set_aside
    assert set(f["metric"]) == {"train", "val/words", "val/digits", "val/mean"}
    assert sorted(set(f["step"])) == run.eval_steps
    assert (f["kind"] == "loss").all() and (f["params"] == run.params).all()
    assert (f["tokens"] == f["step"] * run.batch_tokens).all()
    assert f.loc[f["final"], "step"].unique().tolist() == [run.steps]
    for col in ("experiment", "recipe", "run", "seed", "lr", "batch_tokens", "tokenizer",
                "protocol", "hardware", "params_nonembed", "bits_per_byte", "flops"):
        assert f[col].notna().all(), col
    assert f["tokenizer"].iloc[0] == "byte-257" and f["hardware"].iloc[0].startswith("cpu:")
    # bits/byte divide by the UTF-8 bytes of the evaluated prefix (EOS is no byte)
    prefix = eval_windows(np.fromfile(tokens / "val" / "words.bin", "<u2"), run.seq_len,
                          OPTIONS.eval_tokens)[:, 1:]
    words = f[f["metric"] == "val/words"]
    assert np.allclose(words["bits_per_byte"],
                       words["value"] / math.log(2) / float((prefix < 256).float().mean()))
    assert words["value"].iloc[-1] < words["value"].iloc[0] - 1.0  # it learned
    # summary: throughput, MFU against the measured CPU peak, gradient noise scale
    assert result.tokens_per_s > 0 and 0 < result.mfu < 1
    assert result.gns_tokens is not None and math.isfinite(result.gns_tokens)
    assert set(result.final) == {"train", "val/words", "val/digits", "val/mean"}
    # a finished run is not trained again
    again = train_run(run, tokens, tmp_path / "run", OPTIONS)
    assert again.state == "skipped" and again.final == result.final


def test_token_data_without_a_known_tokenizer_uses_the_manifest_bytes(tokens, tmp_path):
    # pre-tokenized data from elsewhere: bits/byte from the manifest's mean bytes per token
    data = tmp_path / "data"
    shutil.copytree(tokens, data)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["tokenizer"] = {"kind": "external", "vocab_size": 257, "eos_id": 256}
    (data / "manifest.json").write_text(json.dumps(manifest))
    run = tiny_plan(tokens=10 * 8 * 32).runs[0]
    assert train_run(run, data, tmp_path / "run", OPTIONS).state == "done"
    words = sl.read_observations(tmp_path / "run" / "observations.jsonl").select(
        metric="val/words").frame
    bpt = manifest["sources"]["words"]["val"]["bytes_per_token"]
    assert np.allclose(words["bits_per_byte"], words["value"] / math.log(2) / bpt)
    # D in bytes: every row carries the training stream's bytes per token (the recipe's)
    assert (words["train_bytes_per_token"] == manifest["recipes"]["alpha"]["bytes_per_token"]
            ).all()


def test_training_is_deterministic_on_cpu(tokens, tmp_path):
    run = tiny_plan(tokens=10 * 8 * 32).runs[0]
    a = train_run(run, tokens, tmp_path / "a", OPTIONS)
    b = train_run(run, tokens, tmp_path / "b", OPTIONS)
    assert a.final == b.final


def test_bf16_autocast_trains_close_to_float32(tokens, tmp_path):
    # the GPU's default precision, run through CPU autocast: same code path, coarser numbers
    run = tiny_plan(tokens=10 * 8 * 32).runs[0]
    f32 = train_run(run, tokens, tmp_path / "f32",
                    OPTIONS.model_copy(update={"precision": "float32"}))
    bf16 = train_run(run, tokens, tmp_path / "bf16",
                     OPTIONS.model_copy(update={"precision": "bfloat16"}))
    assert bf16.state == "done"
    rows = sl.read_observations(tmp_path / "bf16" / "observations.jsonl").frame
    assert rows["value"].notna().all()
    for k, v in f32.final.items():
        assert bf16.final[k] == pytest.approx(v, rel=0.02), k


def test_auto_precision_is_bf16_on_amx_cpus_from_the_width_where_it_pays(monkeypatch):
    from scaling_ladder.train import trainer

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    wide, narrow = trainer.CPU_BF16_MIN_D, trainer.CPU_BF16_MIN_D // 2
    assert trainer.use_bf16("auto", gpu, narrow)
    assert trainer.use_bf16("bfloat16", cpu, narrow) and not trainer.use_bf16("float32", gpu, wide)
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: "AMX")
    assert trainer.use_bf16("auto", cpu, wide) and not trainer.use_bf16("auto", cpu, narrow)
    for units in ("AVX512-BF16", None):
        monkeypatch.setattr(trainer, "cpu_bf16_units", lambda units=units: units)
        assert not trainer.use_bf16("auto", cpu, wide)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN for bf16")
def test_bf16_follows_float32_step_by_step_and_the_hardware_line_says_which(tokens, tmp_path):
    """A model wide enough for ``auto`` to pick bf16 on an AMX CPU: every checkpoint's losses
    within 0.03 nats of float32's (bf16 keeps 8 bits of mantissa; the float32 master weights,
    norms, softmax and attention keep the drift from growing over the steps)."""
    from scaling_ladder.train.trainer import CPU_BF16_MIN_D, cpu_bf16_units

    run = tiny_plan(tokens=12 * 8 * 32, sizes={"names": ["d96-l4"]},
                    hparams={"lr": 3e-3}, checkpoints={"log_spaced": 4, "every": 0.25}).runs[0]
    assert run.d_model >= CPU_BF16_MIN_D
    train_run(run, tokens, tmp_path / "f32", OPTIONS.model_copy(update={"precision": "float32"}))
    auto = "bfloat16" if cpu_bf16_units() != "AMX" else "auto"  # auto is bf16 here: checked
    train_run(run, tokens, tmp_path / "bf16", OPTIONS.model_copy(update={"precision": auto}))
    a, b = (_rows(tmp_path / d / "observations.jsonl") for d in ("f32", "bf16"))
    assert [(r["step"], r["metric"]) for r in a] == [(r["step"], r["metric"]) for r in b]
    assert len({r["step"] for r in a}) >= 4
    for x, y in zip(a, b):
        assert y["value"] == pytest.approx(x["value"], abs=0.03), (x["step"], x["metric"])
    assert a[-1]["value"] < a[0]["value"] - 0.5  # it learned, so the steps are not all noise
    assert a[0]["hardware"].endswith(", float32") and b[0]["hardware"].endswith(
        ", bf16 autocast")
    units = cpu_bf16_units()
    assert (f"{units} bf16" if units else "no bf16 units") in b[0]["hardware"]
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["hardware"] == \
        b[0]["hardware"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on CPU needs a C compiler")
def test_compiled_training_matches_eager(tokens, tmp_path):
    run = tiny_plan(tokens=10 * 8 * 32).runs[0]
    eager = train_run(run, tokens, tmp_path / "eager", OPTIONS)
    compiled = train_run(run, tokens, tmp_path / "compiled",
                         OPTIONS.model_copy(update={"compile": True}))
    assert compiled.state == "done"
    for k, v in eager.final.items():
        assert compiled.final[k] == pytest.approx(v, rel=1e-5), k
    # checkpoints hold the plain model's weights (no torch.compile prefixes): they resume eager
    saved = ckpt.load_latest(tmp_path / "compiled" / "checkpoints")
    assert not any(k.startswith("_orig_mod") for k in saved["model"])


def test_corrupt_checkpoint_falls_back_and_ends_the_same(tokens, tmp_path):
    run = tiny_plan().runs[0]
    ref = train_run(run, tokens, tmp_path / "ref", OPTIONS)
    work = tmp_path / "work"
    train_run(run, tokens, work, OPTIONS.model_copy(update={"keep": 3}))
    steps = ckpt.steps_in(work / "checkpoints")
    newest = ckpt.path_for(work / "checkpoints", steps[-1])
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x55
    newest.write_bytes(bytes(data))
    (work / "summary.json").unlink()  # as if killed before the run finished
    with pytest.warns(ckpt.CheckpointWarning, match="hash mismatch"):
        again = train_run(run, tokens, work, OPTIONS)
    assert again.resumed_from == steps[-2]
    assert again.final == ref.final
    rows = _rows(work / "observations.jsonl")
    assert len(rows) == len(_rows(tmp_path / "ref" / "observations.jsonl"))


def test_vocabulary_mismatch_is_an_input_error(tokens, tmp_path):
    run = tiny_plan(vocab_size=300).runs[0]
    with pytest.raises(InputError, match="planned for 300"):
        train_run(run, tokens, tmp_path / "run", OPTIONS)


def test_wsd_cooldown_branch_rows(tokens, tmp_path):
    run = tiny_plan(hparams={"schedule": "wsd", "cooldowns": [0.5],
                             "decay_fraction": 0.25}).runs[0]
    train_run(run, tokens, tmp_path / "run", OPTIONS)
    branch = _rows(tmp_path / "run" / "cooldown-0.5.jsonl")
    assert {r["run"] for r in branch} == {f"{run.name}-cd0.5"}
    assert all(r["final"] and r["cooldown_of"] == run.name for r in branch)
    assert {r["step"] for r in branch} == {run.steps // 2}
    main = {r["step"] for r in _rows(tmp_path / "run" / "observations.jsonl")}
    assert run.steps // 2 in main  # the main run's stable point at the same tokens
    # the branch is a function of its stable checkpoint: redone, it gives the same rows
    (tmp_path / "run" / "cooldown-0.5.jsonl").unlink()
    (tmp_path / "run" / "summary.json").unlink()
    train_run(run, tokens, tmp_path / "run", OPTIONS)
    again = _rows(tmp_path / "run" / "cooldown-0.5.jsonl")
    assert [r["value"] for r in again] == [r["value"] for r in branch]
    # the stable checkpoint the branch started from is kept
    start = run.steps // 2 - round(0.25 * (run.steps // 2))
    assert start in ckpt.steps_in(tmp_path / "run" / "checkpoints")


def _start_worker(run, tokens: Path, run_dir: Path, options: TrainOptions):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "job.json").write_text(json.dumps({"run": run.to_dict(), "data_dir": str(tokens),
                                                  "options": options.model_dump()}))
    return subprocess.Popen([sys.executable, "-m", "scaling_ladder.train.executors",
                             str(run_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_kill_minus_9_resumes_to_the_same_loss_and_rows(tokens, tmp_path):
    """SIGKILL twice at arbitrary moments (between and during checkpoints, cooldown branch
    included): the final losses equal an uninterrupted run's to 1e-6 and the rows match
    one for one, none duplicated, none missing."""
    run = tiny_plan(sizes={"names": ["d48-l3"]}, tokens=120 * 8 * 32,
                    hparams={"schedule": "wsd", "cooldowns": [0.5]},
                    checkpoints={"log_spaced": 4, "every": 0.1}).runs[0]
    ref = train_run(run, tokens, tmp_path / "ref", OPTIONS)
    work = tmp_path / "work"
    for target in (run.eval_steps[2], run.eval_steps[6]):  # two kills, the 2nd after resume
        proc = _start_worker(run, tokens, work, OPTIONS)
        deadline = time.time() + 120
        while not ckpt.steps_in(work / "checkpoints") or \
                ckpt.steps_in(work / "checkpoints")[-1] < target:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.005)
        time.sleep(0.1 * (target % 3))  # land at some point between checkpoints
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (work / "summary.json").exists()
    resumed = train_run(run, tokens, work, OPTIONS)
    assert resumed.resumed_from is not None
    for metric, value in ref.final.items():
        assert abs(resumed.final[metric] - value) <= 1e-6, metric
    for name in ("observations.jsonl", "cooldown-0.5.jsonl"):
        a, b = _rows(tmp_path / "ref" / name), _rows(work / name)
        key = [(r["run"], r["step"], r["metric"]) for r in b]
        assert len(key) == len(set(key))  # no duplicates
        assert key == [(r["run"], r["step"], r["metric"]) for r in a]  # none missing
        assert np.allclose([r["value"] for r in a], [r["value"] for r in b], rtol=0,
                           atol=1e-6)


class _OrderExecutor:
    """Trains in this process, in the order it is given the jobs, and records it."""

    name = "order"

    def __init__(self) -> None:
        self.order: list[str] = []

    def resources(self) -> dict:
        return {}

    def map(self, jobs, poll):
        for job in jobs:
            self.order.append(job[0]["name"])
            yield run_job(*job)


def test_runs_start_longest_first_and_results_keep_plan_order(tokens, tmp_path):
    """Longest-processing-time first, as Plan.wall_seconds assumes: the plan's order is
    smallest first, so a large run would otherwise end alone while other workers idle."""
    plan = tiny_plan(sizes={"names": ["d16-l2", "d32-l2"]}, tokens=4 * 8 * 32)
    exe = _OrderExecutor()
    result = train_ladder(plan, tokens, tmp_path / "out", executor=exe, options=OPTIONS)
    by_time = sorted(plan.runs, key=lambda r: -r.seconds)
    assert by_time[0].d_model == 32
    assert exe.order == [r.name for r in by_time]
    assert [r["name"] for r in result.runs] == [r.name for r in plan.runs]


@pytest.mark.slow
def test_local_executor_trains_a_ladder(tokens, tmp_path):
    plan = tiny_plan(recipes=["alpha", "beta"], sizes={"names": ["d16-l2", "d32-l2"]},
                     tokens=30 * 8 * 32)
    events = []
    result = train_ladder(plan, tokens, tmp_path / "out", options=OPTIONS, workers=2,
                          progress=events.append)
    assert [r["state"] for r in result.runs] == ["done"] * 4
    assert events and events[-1].runs_done == 4
    assert events[-1].steps_done == events[-1].steps_total == sum(r.steps for r in plan.runs)
    obs = sl.read_observations(result.observations)
    assert obs.n_runs == 4 and not obs.set_aside
    assert (tmp_path / "out" / "runs" / plan.runs[0].name / "train.log").exists()
    assert (tmp_path / "out" / "plan.toml").exists()
    ladder = json.loads((tmp_path / "out" / "ladder.json").read_text())
    assert ladder["executor"]["kind"] == "local" and ladder["n_runs"] == 4
    # bigger is better at equal tokens, for each recipe
    final = obs.frame[obs.frame["final"] & (obs.frame["metric"] == "val/words")]
    for _, g in final.groupby("recipe"):
        g = g.sort_values("params")
        assert g["value"].iloc[-1] < g["value"].iloc[0]
    # a second call skips finished runs
    again = train_ladder(plan, tokens, tmp_path / "out", options=OPTIONS, workers=2)
    assert [r["state"] for r in again.runs] == ["skipped"] * 4


@pytest.mark.slow
def test_ray_executor_runs_a_two_run_ladder(tokens, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    plan = tiny_plan(recipes=["alpha", "beta"], tokens=20 * 8 * 32)
    result = train_ladder(plan, tokens, tmp_path / "out", executor="ray", options=OPTIONS)
    assert [r["state"] for r in result.runs] == ["done", "done"]
    assert result.executor["kind"] == "ray" and result.executor["address"] == "local"
    assert sl.read_observations(result.observations).n_runs == 2


@pytest.mark.slow
def test_torchrun_ddp_matches_one_process(tokens, tmp_path):
    """One run on 2 ranks (DDP, gloo on CPU) ends where the same run in one process does."""
    plan = tiny_plan(tokens=20 * 8 * 32)
    (tmp_path / "plan.toml").write_text(plan.to_toml())
    name = plan.runs[0].name
    args = ["-m", "scaling_ladder.train.executors", "--plan", str(tmp_path / "plan.toml"),
            "--run-name", name, "--data", str(tokens), "--set", "threads=1", "--set",
            "eval_tokens=1024", "--out"]
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_port", "29517", *args, str(tmp_path / "ddp")], check=True,
                   capture_output=True)
    one = train_run(plan.runs[0], tokens, tmp_path / "one", OPTIONS)
    ddp = json.loads((tmp_path / "ddp" / "runs" / name / "result.json").read_text())
    assert ddp["state"] == "done"
    for metric, value in one.final.items():
        assert ddp["final"][metric] == pytest.approx(value, abs=1e-5), metric
    config = json.loads((tmp_path / "ddp" / "runs" / name / "config.json").read_text())
    assert config["world_size"] == 2


@pytest.mark.slow
def test_cli_plan_then_train(tokens, tmp_path):
    runner = CliRunner()
    plan_path = tmp_path / "plan.toml"
    res = runner.invoke(app, ["plan", "--data", str(tokens), "--tokens", "5120", "--set",
                              "sizes.names=[\"d16-l2\"]", "--set", "seq_len=32", "--set",
                              "hparams.batch_sequences=8", "--set", "seeds.smallest=1",
                              "--out", str(plan_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", str(plan_path), "--data", str(tokens), "--out",
                              str(tmp_path / "out"), "--device", "cpu", "--set",
                              "train.eval_tokens=512", "--json", "-"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert {r["name"] for r in payload["runs"]} == {"alpha-d16-l2-s0", "beta-d16-l2-s0"}
    assert sl.read_observations(payload["observations"]).n_runs == 2
    bad = runner.invoke(app, ["train", str(plan_path), "--data", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "manifest.json" in bad.output


def test_help_works_without_torch(tmp_path):
    code = ("import importlib.abc, sys\n"
            "class NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('No module named torch')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from typer.testing import CliRunner\nfrom scaling_ladder.cli import app\n"
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
            "assert 'train' in r.output and 'plan' in r.output\n"
            "r = CliRunner().invoke(app, ['train', 'p.toml', '--data', 'd', '--out', 'o'])\n"
            "assert r.exit_code == 2 and 'scaling-ladder[train]' in r.output, r.output\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
