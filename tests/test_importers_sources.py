"""Hugging Face Trainer folders, lm-eval results and MLflow runs, each written by its own library
in the test (a tiny GPT-2 trained by transformers' Trainer, evaluated by lm_eval on a local
task, runs logged by mlflow), imported, and checked run by run: N, tokens, metrics, rows."""

from __future__ import annotations

import json
import shutil
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.errors import InputError
from scaling_ladder.observations.importers import (
    MissingExtraError,
    read_hf,
    read_lm_eval,
    read_mlflow,
)
from scaling_ladder.observations.importers import lm_eval as lm_eval_importer
from scaling_ladder.observations.importers.config import count_params

runner = CliRunner()
SEQ = 16  # tokens per training sequence


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    for needle in needles:
        assert str(needle) in res.stderr, res.stderr


# ---------------------------------------------------------------- Hugging Face Trainer


def _train(out_dir, n_layer, n_embd, *, tokens_logged, eval_sets, accumulation=1,
           tokenizer=None):
    """Train a tiny GPT-2 for 6 steps with the real Trainer; checkpoints at steps 3 and 6
    (and the tokenizer, when given, saved in the run folder as a training script does)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=2,
                                       vocab_size=64, n_positions=32))
    ids = torch.randint(0, 64, (48, SEQ))
    data = [{"input_ids": x, "labels": x} for x in ids]
    evals = {name: data[i * 4:(i + 1) * 4] for i, name in enumerate(eval_sets)}
    args = TrainingArguments(
        output_dir=str(out_dir), max_steps=6, save_steps=3, logging_steps=1,
        eval_strategy="steps", eval_steps=3, per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulation, report_to=[], use_cpu=True,
        include_num_input_tokens_seen=tokens_logged, disable_tqdm=True, seed=7,
        learning_rate=1e-3)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      eval_dataset=evals if len(evals) > 1 else evals[eval_sets[0]])
    trainer.train()
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return {"total": model.num_parameters(),
            "nonembed": model.num_parameters(exclude_embeddings=True),
            "history": trainer.state.log_history}


def _word_tokenizer(folder):
    """A 64-word tokenizer saved and loaded back, as a run would name it (its folder)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    words = ["[UNK]", "[EOS]"] + [f"w{i}" for i in range(62)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                            eos_token="[EOS]").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def hf_runs(tmp_path_factory):
    """Two runs: small logs num_input_tokens_seen and two eval sets; big logs neither tokens
    nor named eval sets, with gradient accumulation 2."""
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    root = tmp_path_factory.mktemp("hf") / "out"
    truth = {"run-small": _train(root / "run-small", 1, 16, tokens_logged=True,
                                 eval_sets=["c4", "wiki"],
                                 tokenizer=_word_tokenizer(tmp_path_factory.mktemp("toy-words"))),
             "run-big": _train(root / "run-big", 2, 32, tokens_logged=False,
                               eval_sets=["eval"], accumulation=2)}
    return root, truth


def _expected(history, metric_of):
    rows = {}
    for entry in history:
        for key, value in entry.items():
            if metric_of(key) and "step" in entry:
                rows[metric_of(key), entry["step"]] = (value, entry.get("num_input_tokens_seen"))
    return rows


@pytest.mark.slow
def test_hf_folder_of_runs_gives_each_run_its_counted_n_tokens_and_losses(hf_runs):
    root, truth = hf_runs
    obs = read_hf(root, seq_len=SEQ)
    f = obs.frame
    assert sorted(set(f["run"])) == ["run-big", "run-small"]
    assert set(f["experiment"]) == {"out"} and obs.set_aside == ()
    names = {"loss": "train", "eval_loss": "val/eval", "eval_c4_loss": "val/c4",
             "eval_wiki_loss": "val/wiki"}
    for name, t in truth.items():
        g = f[f["run"] == name]
        # N as the trainer counts it: model.num_parameters(), tied head once
        assert set(g["params"]) == set(g["params_total"]) == {t["total"]}
        assert set(g["params_nonembed"]) == {t["nonembed"]}
        assert set(g["seed"]) == {7} and set(g["lr"]) == {1e-3}
        expected = _expected(t["history"], names.get)
        assert len(g) == len(expected)
        for row in g.itertuples():
            value, seen = expected[row.metric, row.step]
            assert row.value == pytest.approx(value)
            if name == "run-small":  # the trainer's own token count
                assert row.tokens == seen == row.step * 4 * SEQ
            else:  # per-device 4 x accumulation 2 x 1 process x --seq-len 16
                assert row.tokens == row.step * 4 * 2 * SEQ
    small, big = f[f["run"] == "run-small"], f[f["run"] == "run-big"]
    assert sorted(set(small["metric"])) == ["train", "val/c4", "val/wiki"]
    # the tokenizer the run saved: its class and 64 ids; run-big saved none
    assert set(small["tokenizer"]) == {"PreTrainedTokenizer-64"}
    assert big["tokenizer"].isna().all()
    assert sorted(set(big["metric"])) == ["train", "val/eval"]
    assert len(small) == 6 + 2 * 2 and len(big) == 6 + 2
    assert set(small["tokens_from"]) == {"num_input_tokens_seen"}
    assert set(big["tokens_from"]) == {"step x 4 x 2 x 1 x 16 (per-device batch x accumulation "
                                       "x processes from training_args.bin, x --seq-len)"}
    assert set(big["batch_tokens"]) == {4 * 2 * SEQ}
    assert t["total"] > t["nonembed"]


@pytest.mark.slow
def test_hf_params_and_tokens_per_run_from_flags(hf_runs):
    root, truth = hf_runs
    obs = read_hf(root, params=["run-s*=1e6", "run-big=2e6"],
                  tokens_per_step=["run-big=1000"])
    f = obs.frame
    assert set(f[f["run"] == "run-small"]["params"]) == {1_000_000}
    big = f[f["run"] == "run-big"]
    assert set(big["params"]) == {2_000_000} and list(big["tokens"]) == list(big["step"] * 1000)
    nonembed = read_hf(root, seq_len=SEQ, params_from="config-nonembed").frame
    for name, t in truth.items():
        assert set(nonembed[nonembed["run"] == name]["params"]) == {t["nonembed"]}
    with pytest.raises(InputError, match=r"2 runs \(run-big, run-small\) would all get the one "
                                         r"--params value"):
        read_hf(root, params=1e6, seq_len=SEQ)
    assert len(read_hf(root, params=1e6, seq_len=SEQ, same_size=True)) == len(f)


@pytest.mark.slow
def test_hf_cli_imports_and_says_where_tokens_came_from(hf_runs, tmp_path):
    root, _ = hf_runs
    target = tmp_path / "runs.csv"
    res = run("import", "hf", root, "--seq-len", SEQ, "-o", target, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"] == 18 and out["runs"] == 2
    assert {r["run"]: r["rows"] for r in out["run_list"]} == {"run-big": 8, "run-small": 10}
    assert len(pd.read_csv(target)) == 18
    res = run("import", "hf", root, "--seq-len", SEQ, "-o", tmp_path / "again.csv")
    assert res.exit_code == 0, res.output
    assert "tokens: num_input_tokens_seen (run-small)" in res.stdout


@pytest.mark.slow
def test_hf_bad_inputs_exit_2_naming_the_file(hf_runs, tmp_path):
    root, _ = hf_runs
    target = tmp_path / "runs.csv"
    one_line_error(run("import", "hf", tmp_path / "nope", "-o", target),
                   tmp_path / "nope", "folder not found")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no runs here\n")
    one_line_error(run("import", "hf", tmp_path / "empty", "-o", target),
                   tmp_path / "empty", "holds no trainer_state.json")
    one_line_error(run("import", "hf", root, "-o", target),  # run-big logs no tokens
                   root / "run-big" / "checkpoint-6" / "trainer_state.json",
                   "logs no num_input_tokens_seen", "--seq-len")
    broken = tmp_path / "broken"
    shutil.copytree(root / "run-small", broken)
    (broken / "checkpoint-6" / "trainer_state.json").write_text('{"log_history": [')
    one_line_error(run("import", "hf", broken, "-o", target),
                   broken / "checkpoint-6" / "trainer_state.json", "cannot be read as JSON")
    assert not target.exists()


def test_hf_without_transformers_names_the_extra(tmp_path, monkeypatch):
    from scaling_ladder.observations.importers.hf import count_hf_params

    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r'pip install "scaling-ladder\[hf\]"'):
        count_hf_params(tmp_path / "config.json")


# --------------------------------------------------------------------- lm-eval-harness

TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: {choices}
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
"""


@pytest.fixture(scope="module")
def lm_evals(hf_runs, tmp_path_factory):
    """lm_eval's simple_evaluate (model "hf") on three checkpoints of the Trainer runs, on two
    local tasks: toy_mc (2 to 4 choices per question, from the data: chance from the samples)
    and toy_yn (two choices in the task config); results and samples written by lm_eval's
    EvaluationTracker."""
    pytest.importorskip("lm_eval")
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    root, truth = hf_runs
    here = tmp_path_factory.mktemp("lm_eval")
    words = ["[UNK]", "[EOS]"] + [f"w{i}" for i in range(62)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                        eos_token="[EOS]")
    docs = [{"q": f"w{i} w{i + 1}", "choices": [f"w{(i + k) % 60}" for k in range(2 + i % 3)],
             "label": i % 2} for i in range(9)]
    data = here / "toy.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    tasks = here / "tasks"
    tasks.mkdir()
    (tasks / "toy_mc.yaml").write_text(TASK.format(name="toy_mc", data=data,
                                                   choices='"{{choices}}"'))
    (tasks / "toy_yn.yaml").write_text(TASK.format(name="toy_yn", data=data,
                                                   choices='["w1", "w2"]'))
    manager = TaskManager(include_path=str(tasks))
    results = {}
    for run_name, step in (("run-small", 3), ("run-small", 6), ("run-big", 6)):
        ckpt = root / run_name / f"checkpoint-{step}"
        tokenizer.save_pretrained(ckpt)
        tracker = EvaluationTracker(output_path=str(here / "evals" / f"{run_name}-{step}"))
        res = simple_evaluate(model="hf", model_args=f"pretrained={ckpt}",
                              tasks=["toy_mc", "toy_yn"], task_manager=manager, device="cpu",
                              batch_size=4, evaluation_tracker=tracker, bootstrap_iters=10,
                              log_samples=True)
        samples = res.pop("samples")
        tracker.save_results_aggregated(results=res, samples=samples)
        for task, task_samples in samples.items():
            tracker.save_results_samples(task_name=task, samples=task_samples)
        results[run_name, step] = res["results"]
    mc_chance = sum(1 / len(d["choices"]) for d in docs) / len(docs)
    return here / "evals", results, mc_chance


@pytest.mark.slow
def test_lm_eval_results_join_the_checkpoints_they_evaluate(hf_runs, lm_evals, tmp_path):
    root, truth = hf_runs
    evals, results, mc_chance = lm_evals
    runs_csv = tmp_path / "runs.csv"
    read_hf(root, seq_len=SEQ).write(runs_csv)
    obs = read_lm_eval([evals], runs=runs_csv)
    f = obs.frame
    assert len(f) == 3 * 2 and set(f["kind"]) == {"accuracy"}
    assert set(f["metric"]) == {"ds/toy_mc", "ds/toy_yn"} and set(f["experiment"]) == {"out"}
    tokens_per_step = {"run-small": 4 * SEQ, "run-big": 4 * 2 * SEQ}
    for row in f.itertuples():
        task = row.metric.removeprefix("ds/")
        result = results[row.run, row.step][task]
        assert row.params == truth[row.run]["total"]
        assert row.tokens == row.step * tokens_per_step[row.run]
        measure = "acc_norm"  # both tasks have it, and it is preferred
        assert row.measure == measure
        assert row.value == pytest.approx(result[f"{measure},none"])
        assert row.stderr == pytest.approx(result[f"{measure}_stderr,none"])
        if task == "toy_yn":
            assert (row.random_baseline, row.random_baseline_from) == (0.5, "task config")
        else:
            assert row.random_baseline == pytest.approx(mc_chance)
            assert row.random_baseline_from.startswith("samples (samples_toy_mc_")
    assert sorted(f.groupby("run")["step"].apply(sorted).items()) == [
        ("run-big", [6, 6]), ("run-small", [3, 3, 6, 6])]
    acc = read_lm_eval([evals], runs=runs_csv, prefer="acc").frame
    for row in acc.itertuples():
        assert row.value == pytest.approx(results[row.run, row.step][row.metric[3:]]["acc,none"])


@pytest.mark.slow
def test_lm_eval_without_runs_file_and_known_baselines(lm_evals, tmp_path, monkeypatch):
    evals, results, _ = lm_evals
    only = tmp_path / "only"
    only.mkdir()
    for path in evals.rglob("results_*.json"):  # the results without their samples
        if "run-small-6" in str(path):
            shutil.copy(path, only / path.name)
    monkeypatch.setitem(lm_eval_importer.KNOWN_BASELINES, "toy_mc", 0.3)
    f = read_lm_eval([only], params=["run-small=4848"], tokens_per_step=100).frame
    assert list(f["run"]) == ["run-small"] * 2 and set(f["tokens"]) == {600}
    assert set(f["params"]) == {4848} and set(f["experiment"]) == {"lm-eval"}
    mc = f[f["metric"] == "ds/toy_mc"].iloc[0]
    assert (mc["random_baseline"], mc["random_baseline_from"]) == (0.3, "known tasks table")


@pytest.mark.slow
def test_lm_eval_cli_and_bad_inputs(hf_runs, lm_evals, tmp_path):
    root, _ = hf_runs
    evals, _, _ = lm_evals
    runs_csv = tmp_path / "runs.csv"
    read_hf(root, seq_len=SEQ).write(runs_csv)
    target = tmp_path / "tasks.csv"
    res = run("import", "lm-eval", evals, "--runs", runs_csv, "-o", target, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"] == 6 and out["runs"] == 2 and out["metrics"] == ["ds/toy_mc", "ds/toy_yn"]
    res = run("import", "lm-eval", evals, "--runs", runs_csv, "-o", target)
    assert "random_baseline: task config" in res.stdout
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"config": {"model_args": "pretrained=x"}}))
    one_line_error(run("import", "lm-eval", bare, "--runs", runs_csv, "-o", target),
                   bare, 'has no "results"')
    some = next(evals.rglob("results_*.json"))
    other = tmp_path / "other.csv"
    renamed = pd.read_csv(runs_csv)
    renamed["run"] = renamed["run"].str.removeprefix("run-")
    renamed.to_csv(other, index=False)
    one_line_error(run("import", "lm-eval", some, "--runs", other, "-o", target),
                   some, "names none of the runs")
    one_line_error(run("import", "lm-eval", tmp_path / "nope.json", "-o", target),
                   tmp_path / "nope.json", "file not found")


# ----------------------------------------------------------------------------- MLflow

LADDER = [  # run name, recipe, params logged: a stated count or the architecture
    ("gpt-s", "web", {"n_layer": 2, "d_model": 64, "vocab_size": 100, "tokens_per_step": 2048}),
    ("gpt-m", "web", {"n_params": 3_000_000, "batch_size": 8, "seq_len": 512}),
    ("gpt-m-code", "code", {"n_params": 3_000_000, "tokens_per_step": 4096}),
]


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory):
    """Three runs logged with mlflow's fluent API into a file store; gpt-s also logs a val
    loss every other step and a NaN train loss at its last step."""
    mlflow = pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow") / "mlruns"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    before = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(root.as_uri())
        mlflow.set_experiment("ladder")
        for name, recipe, params in LADDER:
            with mlflow.start_run(run_name=name):
                mlflow.log_params({**params, "recipe": recipe, "seed": 3, "lr": 0.002})
                for step in range(1, 5):
                    loss = float("nan") if (name, step) == ("gpt-s", 4) else 4 - step / 10
                    mlflow.log_metric("train_loss", loss, step=step * 100)
                    if name == "gpt-s" and step % 2 == 0:
                        mlflow.log_metric("val_loss", 4.5 - step / 10, step=step * 100)
    finally:
        mlflow.set_tracking_uri(before)
        patch.undo()
    return root


def test_mlflow_runs_with_their_params_from_config(mlruns):
    obs = read_mlflow(mlruns, mapping="train=train_loss,val/c4=val_loss",
                      params_from="config")
    f = obs.frame
    counted = count_params(LADDER[0][2])["total"]
    expected = {"gpt-s": (counted, 2048, "web", 3 + 2),  # 4 train, one NaN, 2 val
                "gpt-m": (3_000_000, 8 * 512, "web", 4),
                "gpt-m-code": (3_000_000, 4096, "code", 4)}
    assert sorted(set(f["run"])) == sorted(expected) and set(f["experiment"]) == {"ladder"}
    for name, (n, per_step, recipe, rows) in expected.items():
        g = f[f["run"] == name]
        assert set(g["params"]) == {n} and set(g["recipe"]) == {recipe} and len(g) == rows
        assert list(g["tokens"]) == list(g["step"] * per_step)
        assert set(g["seed"]) == {3} and set(g["lr"]) == {0.002}
        train = g[g["metric"] == "train"].sort_values("step")
        assert list(train["value"]) == pytest.approx([3.9, 3.8, 3.7, 3.6][:len(train)])
    val = f[(f["run"] == "gpt-s") & (f["metric"] == "val/c4")]
    assert list(val["step"]) == [200, 400] and list(val["value"]) == pytest.approx([4.3, 4.1])
    assert obs.set_aside == (("values NaN or infinite", 1),)


def test_mlflow_cli_per_run_params_and_one_bare_params_refused(mlruns, tmp_path):
    target = tmp_path / "runs.csv"
    res = run("import", "mlflow", mlruns, "--map", "train=train_loss",
              "--params", "gpt-s=1e5", "--params", "gpt-m*=3e6", "--tokens-per-step", 1000,
              "-o", target, "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"] == 11 and out["runs"] == 3 and out["set_aside"] == {
        "values NaN or infinite": 1}
    assert {r["run"]: r["params"] for r in out["run_list"]} == {
        "gpt-s": 100_000, "gpt-m": 3_000_000, "gpt-m-code": 3_000_000}
    one_line_error(run("import", "mlflow", mlruns, "--map", "train=train_loss",
                       "--params", "1e6", "--tokens-per-step", 1000, "-o", target),
                   "3 runs (gpt-m, gpt-m-code, gpt-s)", "--same-size")
    one_line_error(run("import", "mlflow", mlruns, "--map", "train=train_los",
                       "--params-from", "config", "-o", target),
                   'no run logs the metric "train_los"', "train_loss")


def test_mlflow_bad_folders_exit_2_and_are_left_alone(tmp_path):
    target = tmp_path / "runs.csv"
    one_line_error(run("import", "mlflow", tmp_path / "mlruns", "-o", target),
                   tmp_path / "mlruns", "folder not found")
    assert not (tmp_path / "mlruns").exists()  # MLflow's file store would have made it
    (tmp_path / "empty").mkdir()
    one_line_error(run("import", "mlflow", tmp_path / "empty", "-o", target),
                   tmp_path / "empty", "holds no MLflow experiments")
    assert list((tmp_path / "empty").iterdir()) == []


def test_mlflow_missing_extra_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MissingExtraError, match=r'pip install "scaling-ladder\[mlflow\]"'):
        read_mlflow(tmp_path, mapping="train=loss", params=1.0)


@pytest.mark.parametrize("verb", ["hf", "lm-eval", "mlflow"])
def test_import_verbs_have_help_with_an_example(verb):
    res = run("import", verb, "--help")
    assert res.exit_code == 0 and "Example" in res.stdout
