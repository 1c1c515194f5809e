"""``ladder train`` safe by construction: one writer per folder, token files verified before
they are read, corrupt checkpoints recovered from (and said so on the console), leftovers of
killed writes removed, workers that die with their parent, and every bad input reported
before the first step."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from scaling_ladder.cli import app  # noqa: E402
from scaling_ladder.data import build, open_tokens  # noqa: E402
from scaling_ladder.data import verify as verify_mod  # noqa: E402
from scaling_ladder.errors import InputError, Problems  # noqa: E402
from scaling_ladder.files import remove_leftovers  # noqa: E402
from scaling_ladder.train import checkpoint as ckpt  # noqa: E402
from scaling_ladder.train import train_ladder  # noqa: E402
from scaling_ladder.train.executors import run_job  # noqa: E402
from scaling_ladder.train.lock import folder_lock  # noqa: E402
from scaling_ladder.train.trainer import train_run  # noqa: E402
from test_train import OPTIONS, _rows, tiny_plan, write_token_dir  # noqa: E402

runner = CliRunner()
CPU = ["--device", "cpu", "--quiet", "--set", "train.eval_tokens=1024", "--set",
       "train.threads=1"]
WSD = {"hparams": {"schedule": "wsd", "cooldowns": [0.5], "decay_fraction": 0.25}}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    """Token data as test_train writes it: no SHA-256 in the manifest (made elsewhere)."""
    return write_token_dir(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Token data made by ``ladder data build`` (byte tokenizer): shards with SHA-256."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    words = "the cat dog sat ran on a mat log big small red blue".split()
    for source in ("a", "b"):
        with open(root / f"{source}.jsonl", "w") as fh:
            for _ in range(80):
                fh.write(json.dumps({"text": " ".join(rng.choice(words, 30))}) + "\n")
    (root / "recipes.toml").write_text(
        '[build]\nval_fraction = 0.2\n[sources.a]\npaths = ["a.jsonl"]\n'
        '[sources.b]\npaths = ["b.jsonl"]\n[recipes.r]\nweights = { a = 1, b = 1 }\n')
    build(root / "recipes.toml", root / "out")
    return root / "out"


def write_plan(path: Path, plan, **runs) -> Path:
    """``plan`` as TOML, with ``key = value`` of every [[runs]] table replaced (hand edits)."""
    text = plan.to_toml()
    head, sep, tail = text.partition("[[runs]]")
    for key, value in runs.items():
        tail = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", tail)
    path.write_text(head + sep + tail)
    return path


def train_cli(plan: Path, data: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(plan), "--data", str(data), "--out", str(out),
                               *CPU, *extra])


def keys(rows: list[dict]) -> list[tuple]:
    return [(r["run"], r["step"], r["metric"]) for r in rows]


# ---------------------------------------------------------------- 1. one writer per folder


class HeldExecutor:
    """Trains in this process, but only once ``release`` is set: a ladder that holds its
    folder for as long as a test needs."""

    name = "held"

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def resources(self) -> dict:
        return {}

    def map(self, jobs, poll):
        self.started.set()
        assert self.release.wait(60)
        for job in jobs:
            yield run_job(*job)


def test_a_second_train_on_the_same_folder_exits_2_at_once(tokens, tmp_path):
    plan = tiny_plan(tokens=10 * 8 * 32)
    out = tmp_path / "out"
    held = HeldExecutor()
    first = threading.Thread(target=lambda: results.append(
        train_ladder(plan, tokens, out, executor=held, options=OPTIONS)))
    results: list = []
    first.start()
    try:
        assert held.started.wait(30)  # the first ladder holds the folder
        t0 = time.perf_counter()
        second = train_cli(write_plan(tmp_path / "plan.toml", plan), tokens, out)
        assert time.perf_counter() - t0 < 5  # at once, not once the first is done
        assert second.exit_code == 2, second.output
        line = _one_line(second)
        assert line.startswith(f"error: {out}: another ladder train is writing to this folder "
                               f"(pid {os.getpid()} on host {socket.gethostname()}, started ")
        assert line.endswith("; wait for it to finish, or train into another --out folder")
    finally:
        held.release.set()
        first.join()
    assert [r["state"] for r in results[0].runs] == ["done"]
    rows = _rows(out / "observations.jsonl")
    assert rows and len(keys(rows)) == len(set(keys(rows)))  # no duplicate rows
    again = train_cli(tmp_path / "plan.toml", tokens, out)  # the lock went with the first
    assert again.exit_code == 0, again.output


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    code = ("import sys, time\nfrom scaling_ladder.train.lock import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(InputError, match=f"pid {holder.pid} on host"):
            with folder_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folder_lock(tmp_path) as path:  # no stale lock to clean up by hand
        assert json.loads(path.read_text())["pid"] == os.getpid()


# ------------------------------------------------------------- 2. verify what is read


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:  # 2% of the tokens replaced by other ids of the vocabulary
    ids = np.fromfile(path, "<u2")
    at = np.random.default_rng(1).choice(len(ids), max(1, len(ids) // 50), replace=False)
    ids[at] = (ids[at] + 1) % 256
    ids.tofile(path)


@pytest.mark.parametrize("damage, problem", [
    (_truncate, "bytes but the manifest says"),
    (_flip, "differs from the manifest's"),
    (lambda p: p.unlink(), "no such file, but the manifest lists it"),
])
def test_damaged_token_files_stop_train_and_data_check(built, tmp_path, damage, problem):
    data = tmp_path / "data"
    shutil.copytree(built, data)
    shard = data / "r" / "train-00000.bin"
    plan = write_plan(tmp_path / "plan.toml", tiny_plan(recipes=["r"]))
    damage(shard)
    res = train_cli(plan, data, tmp_path / "out")
    assert res.exit_code == 2, res.output
    line = _one_line(res)
    assert line.startswith(f"error: {shard}: ") and problem in line
    assert line.endswith(f"run ladder data build again into {data}")
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
    res = runner.invoke(app, ["data", "check", str(data)])
    assert res.exit_code == 2
    assert _one_line(res).startswith(f"error: {shard}: ") and problem in res.stderr


def test_token_ids_outside_the_vocabulary_name_the_shard(tokens, built, tmp_path):
    # data made elsewhere (no SHA-256 to compare): the id range is still checked
    data = tmp_path / "data"
    shutil.copytree(tokens, data)
    shard = data / "alpha" / "train-00000.bin"
    ids = np.fromfile(shard, "<u2")
    ids[100] = 300
    ids.tofile(shard)
    res = train_cli(write_plan(tmp_path / "plan.toml", tiny_plan()), data, tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert _one_line(res).startswith(f"error: {shard}: holds token id 300, outside the "
                                     "vocabulary of 257 (ids 0 to 256)")
    with pytest.raises(InputError, match="holds token id 300"):  # the worker checks too
        train_run(tiny_plan().runs[0], data, tmp_path / "run", OPTIONS)
    assert not (tmp_path / "run" / "checkpoints").exists()
    # data check: a shard whose manifest hash matches but whose ids do not fit
    data = tmp_path / "built"
    shutil.copytree(built, data)
    shard = data / "r" / "train-00000.bin"
    ids = np.fromfile(shard, "<u2")
    ids[5] = 4000
    ids.tofile(shard)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["recipes"]["r"]["shards"][0]["sha256"] = verify_mod._scan(shard, ids.dtype)["sha256"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    res = runner.invoke(app, ["data", "check", str(data)])
    assert res.exit_code == 2 and "holds token id 4000" in _one_line(res)


def test_hashes_are_cached_until_a_file_changes(built, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(built, data)
    scans = []
    real = verify_mod._scan
    monkeypatch.setattr(verify_mod, "_scan", lambda p, d: scans.append(p) or real(p, d))
    ds = open_tokens(data)
    files = verify_mod.token_files(ds)
    assert verify_mod.verify(ds, files) == [] and len(scans) == len(files) == 3
    assert verify_mod.verify(open_tokens(data), files) == [] and len(scans) == 3  # cached
    _flip(data / "r" / "train-00000.bin")
    problems = verify_mod.verify(open_tokens(data), files)
    assert scans[3:] == [data / "r" / "train-00000.bin"]  # only the changed file again
    assert len(problems) == 1 and "differs from the manifest's" in str(problems[0])


# ------------------------------------------------------------- 3. corrupt checkpoints


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_corrupt_branch_point_recomputed_from_scratch_said_on_the_console(tokens, tmp_path):
    """The stable checkpoint a WSD cooldown branch starts from is corrupt and nothing good
    precedes it: ``ladder train`` again trains the run to that step from scratch, says so on
    stderr, and the branch's rows are those of the first time. Leftovers of killed writes
    in the folders are removed on the way."""
    plan = tiny_plan(**WSD)
    run = plan.runs[0]
    out = tmp_path / "out"
    run_dir = out / "runs" / run.name
    train_run(run, tokens, run_dir, OPTIONS)
    branch = _rows(run_dir / "cooldown-0.5.jsonl")
    start = 15
    assert ckpt.steps_in(run_dir / "checkpoints")[0] == start  # none before it kept
    _corrupt(ckpt.path_for(run_dir / "checkpoints", start))
    (run_dir / "cooldown-0.5.jsonl").unlink()  # killed before the branch was written
    (run_dir / "summary.json").unlink()
    leftovers = [run_dir / "checkpoints" / ".step-00000040.ckpt.k2j4_9xz",
                 run_dir / ".status.json.abcdefgh", out / ".observations.jsonl.0a1b2c3d"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    (out / ".keep").write_text("not ours")
    res = train_cli(write_plan(tmp_path / "plan.toml", plan), tokens, out)
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith(f"run {run.name}:")]
    assert len(notes) == 1, res.stderr
    assert f"cooldown branch 0.5 starts from step {start}, but" in notes[0]
    assert "content hash mismatch" in notes[0]
    assert notes[0].endswith(f"recomputed step {start} from scratch")
    again = _rows(run_dir / "cooldown-0.5.jsonl")
    assert keys(again) == keys(branch)
    assert np.allclose([r["value"] for r in again], [r["value"] for r in branch], rtol=0,
                       atol=1e-6)
    assert not any(p.exists() for p in leftovers) and (out / ".keep").exists()


def test_corrupt_checkpoints_fall_back_to_the_good_one_before(tokens, tmp_path):
    run = tiny_plan(**WSD).runs[0]
    options = OPTIONS.model_copy(update={"keep": 10})
    work = tmp_path / "work"
    first = train_run(run, tokens, work, options)
    branch = _rows(work / "cooldown-0.5.jsonl")
    steps = ckpt.steps_in(work / "checkpoints")
    assert steps[:4] == [1, 6, 10, 15]
    _corrupt(ckpt.path_for(work / "checkpoints", 15))  # the branch point
    _corrupt(ckpt.path_for(work / "checkpoints", steps[-1]))  # the newest
    (work / "cooldown-0.5.jsonl").unlink()
    (work / "summary.json").unlink()
    with pytest.warns(ckpt.CheckpointWarning):
        again = train_run(run, tokens, work, options)
    assert again.resumed_from == steps[-2] and again.final == first.final
    assert len(again.notes) == 2
    assert again.notes[0].endswith(f"fell back to the checkpoint of step {steps[-2]}")
    assert again.notes[1].endswith("recomputed step 15 from the checkpoint of step 10")
    assert [r["value"] for r in _rows(work / "cooldown-0.5.jsonl")] == pytest.approx(
        [r["value"] for r in branch], abs=1e-6)


# ------------------------------------------------------------------- 4. atomic and clean


def test_remove_leftovers_takes_only_temporary_files_of_open_atomic(tmp_path):
    import tempfile

    _, left = tempfile.mkstemp(dir=tmp_path, prefix=".x.json.")  # what open_atomic makes
    for keep in (".keep", "step-00000001.ckpt", ".hidden.txt", "a.json.abcdefgh"):
        (tmp_path / keep).write_text("x")
    (tmp_path / ".dir.abcdefgh").mkdir()
    assert remove_leftovers(tmp_path) == [Path(left)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".dir.abcdefgh", ".hidden.txt", ".keep", "a.json.abcdefgh", "step-00000001.ckpt"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_die_with_a_killed_parent(tokens, tmp_path):
    """SIGKILL the process running the local executor: its workers are gone within seconds."""
    plan = tiny_plan(recipes=["alpha", "beta"], tokens=2000 * 8 * 32)
    jobs = [[r.to_dict(), str(tokens), str(tmp_path / r.name), OPTIONS.model_dump()]
            for r in plan.runs]
    code = ("import json, sys\nfrom scaling_ladder.train.executors import LocalExecutor\n"
            "jobs = [tuple(j) for j in json.loads(sys.argv[1])]\n"
            "for _ in LocalExecutor(2).map(jobs, lambda: None): pass\n")
    parent = subprocess.Popen([sys.executable, "-c", code, json.dumps(jobs)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while not all((tmp_path / r.name / "train.log").exists() for r in plan.runs):
            assert parent.poll() is None and time.time() < deadline  # both runs started
            time.sleep(0.05)
        workers = _children(parent.pid)
        assert len(workers) == 2 and all(_alive(w) for w in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.time() + 5
    while any(_alive(w) for w in workers):
        assert time.time() < deadline, f"workers {workers} outlived their parent"
        time.sleep(0.05)
    assert not any((tmp_path / r.name / "summary.json").exists() for r in plan.runs)


# ------------------------------------------------------------- 5. validate before work


@pytest.mark.parametrize("plan_kw, runs, flags, expected", [
    ({"recipes": ["alpha", "gamma"]}, {}, [],
     'no recipe "gamma" in the token data (run gamma-d16-l2-s0); plan with recipes from '
     "alpha, beta"),
    ({}, {"lr": "nan"}, [], "run alpha-d16-l2-s0: lr = nan is not a learning rate"),
    ({}, {"lr": "0.0"}, [], "run alpha-d16-l2-s0: lr = 0.0 is not a learning rate"),
    ({}, {"lr": "-0.01"}, [], "run alpha-d16-l2-s0: lr = -0.01 is not a learning rate"),
    ({}, {"steps": "-5"}, [], "run alpha-d16-l2-s0: steps = -5; a run needs at least 1 step"),
    ({}, {"vocab_size": "300"}, [], "the tokenizer has 257 tokens but run alpha-d16-l2-s0 "
     "was planned for 300"),
    ({}, {}, ["--device", "tpu"], "--device 'tpu' is unknown; use auto, cpu, cuda or cuda:K"),
    ({}, {}, ["--workers", "0"], "--workers 0 is not a number of runs at once"),
    ({}, {}, ["--workers", "-1"], "--workers -1 is not a number of runs at once"),
    ({}, {}, ["--executor", "slurm"], "--executor 'slurm' is unknown; use local or ray"),
])
def test_bad_plans_data_and_options_exit_2_before_any_work(tokens, tmp_path, plan_kw, runs,
                                                          flags, expected):
    plan = write_plan(tmp_path / "plan.toml", tiny_plan(**plan_kw), **runs)
    t0 = time.perf_counter()
    res = train_cli(plan, tokens, tmp_path / "out", *flags)  # --workers -1 used to hang
    assert time.perf_counter() - t0 < 10
    assert res.exit_code == 2, res.output
    line = _one_line(res)
    assert expected in line and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_every_problem_is_listed_at_once(tokens, tmp_path):
    plan = write_plan(tmp_path / "plan.toml", tiny_plan(recipes=["alpha", "gamma"]),
                      lr="nan", steps="-5")
    res = train_cli(plan, tokens, tmp_path / "out", "--device", "tpu", "--workers", "0")
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert lines[0] == ("error: ladder train found 5 problems before training; nothing was "
                        "trained (fix them and run it again):")
    body = "\n".join(lines[1:])
    for text in ("--workers 0", "--device 'tpu'", "lr = nan", "steps = -5", 'recipe "gamma"'):
        assert text in body
    assert len(lines) == 6 and all(line.startswith("  - ") for line in lines[1:])
    with pytest.raises(Problems) as info:  # the library says the same
        train_ladder(tiny_plan(vocab_size=300), tokens, tmp_path / "out", options=OPTIONS,
                     workers=-1)
    assert len(info.value.problems) == 2 and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ helpers


def _one_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
