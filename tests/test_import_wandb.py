"""W&B run folders, JSON histories and TensorBoard hparams, each written by its own library in
the test; per-run N, tokens, seed, lr and recipe; errors that name flags."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling_ladder.cli import app
from scaling_ladder.errors import LadderError
from scaling_ladder.observations.importers import count_params, read_tensorboard, read_wandb

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def gpt(layers, d, recipe="web", seed=0, **extra):
    """A nanoGPT-style config: learned positions, biases off, 4 d MLP, tied embeddings."""
    return {"model": {"n_layer": layers, "n_embd": d, "n_head": 2, "vocab_size": 512,
                      "block_size": 64, "bias": False},
            "batch_size": 8, "seq_len": 64, "lr": 3e-3, "seed": seed, "recipe": recipe, **extra}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Runs written by ``wandb`` itself, offline, under tmp_path/wandb."""
    wandb = pytest.importorskip("wandb")
    for key, value in {"WANDB_SILENT": "true", "WANDB_MODE": "offline", "WANDB_DIR": tmp_path,
                       "WANDB_CONFIG_DIR": tmp_path / ".config", "WANDB_CACHE_DIR":
                       tmp_path / ".cache", "WANDB_DATA_DIR": tmp_path / ".data",
                       "WANDB_CONSOLE": "off", "WANDB_DISABLE_GIT": "true"}.items():
        monkeypatch.setenv(key, str(value))

    def write(name, config, history):
        run = wandb.init(mode="offline", dir=tmp_path, project="ladder", name=name,
                         config=config)
        for step, values in history:
            run.log(values, step=step)
        run.finish()
        wandb.teardown()  # the service writes the log: wait until it has closed it

    return write


def test_wandb_run_folders_give_each_run_its_config(tmp_path, offline):
    offline("small", gpt(2, 32, seed=1), [(10, {"train/loss": 4.0}), (20, {"train/loss": 3.5}),
                                          (30, {"train/loss": 3.25, "val/c4": 3.5})])
    offline("big", gpt(4, 64, recipe="code", seed=2, tokenizer={"name": "bpe-32k"},
                       bytes_per_token=4.2, data={"train_bytes_per_token": 3.9}),
            [(10, {"train/loss": 3.5}), (20, {"train/loss": float("nan")}),
             (30, {"train/loss": 2.75, "val/c4": 3.0})])
    obs = read_wandb(tmp_path / "wandb", params_from="config")
    f = obs.frame.set_index("run")
    # the tokenizer and bytes per token a config states: losses across tokenizers convert
    assert set(f.loc[["big"], "tokenizer"]) == {"bpe-32k"}
    assert set(f.loc[["big"], "bytes_per_token"]) == {4.2}
    assert set(f.loc[["big"], "train_bytes_per_token"]) == {3.9}  # D in bytes
    assert f.loc[["small"], "tokenizer"].isna().all()
    for run, layers, d, recipe, seed, rows in (("small", 2, 32, "web", 1, 4),
                                               ("big", 4, 64, "code", 2, 3)):
        g = f.loc[[run]]
        n = count_params(gpt(layers, d)["model"])
        # 12 L d^2 (Kaplan et al. 2020) plus the norms (LayerNorm without bias: d each)
        assert n["nonembed"] == 12 * layers * d * d + 2 * d * layers + d
        assert n["total"] == n["nonembed"] + 512 * d + 64 * d
        assert set(g["params"]) == {n["total"]} and set(g["params_nonembed"]) == {n["nonembed"]}
        assert set(g["recipe"]) == {recipe} and set(g["seed"]) == {seed}
        assert set(g["lr"]) == {3e-3} and set(g["batch_tokens"]) == {512}
        assert len(g) == rows
    small = f.loc["small"].sort_values(["metric", "tokens"])
    assert list(zip(small["metric"], small["tokens"], small["value"])) == [
        ("train", 5120.0, 4.0), ("train", 10240.0, 3.5), ("train", 15360.0, 3.25),
        ("val/c4", 15360.0, 3.5)]
    big = f.loc["big"].sort_values(["metric", "tokens"])
    assert list(zip(big["metric"], big["tokens"], big["value"])) == [
        ("train", 5120.0, 3.5), ("train", 15360.0, 2.75), ("val/c4", 15360.0, 3.0)]
    assert dict(obs.set_aside) == {"values NaN or infinite": 1}


def test_wandb_folder_with_one_bare_params_exits_2_naming_the_runs(tmp_path, offline):
    offline("a-125m", gpt(2, 32), [(10, {"train/loss": 4.0})])
    offline("b-350m", gpt(4, 64), [(10, {"train/loss": 3.0})])
    res = cli("import", "wandb", tmp_path / "wandb", "--params", "1e8", "-o", tmp_path / "r.csv")
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "a-125m" in line and "b-350m" in line
    assert "--params RUN=N" in line and "--same-size" in line
    res = cli("import", "wandb", tmp_path / "wandb", "--params", "a-*=1.25e8",
              "--params", "b-*=3.5e8", "--tokens-per-step", "a-*=1000", "--seed", "a-125m=7",
              "--recipe", "b-350m=code", "-o", tmp_path / "r.csv", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    runs = {r["run"]: r for r in out["run_list"]}
    assert runs["a-125m"]["params"] == 125_000_000 and runs["b-350m"]["params"] == 350_000_000
    assert runs["a-125m"]["tokens"] == [10_000.0, 10_000.0]  # the flag beats the config
    assert runs["b-350m"]["tokens"] == [5120.0, 5120.0]  # config: 8 x 64 a step
    assert runs["a-125m"]["recipe"] == "web" and runs["b-350m"]["recipe"] == "code"
    assert runs["a-125m"]["seed"] == 7 and runs["b-350m"]["seed"] == 0  # else the config's
    assert out["params"] == [125_000_000, 350_000_000] and out["metrics"] == ["train"]


def test_json_and_json_lines_histories_written_by_pandas(tmp_path):
    history = pd.DataFrame({"_step": [100, 200, 300], "tokens_seen": [1e6, 2e6, 3e6],
                            "train/loss": [3.5, None, 3.0], "eval/c4_loss": [None, 3.4, 3.1]})
    history.to_json(tmp_path / "run-a.json", orient="records")
    history.to_json(tmp_path / "run-a.jsonl", orient="records", lines=True)
    api = [{"_step": 100, "tokens_seen": 1e6, "train/loss": float("nan")},  # API records
           {"_step": 200, "tokens_seen": 2e6, "train/loss": 3.25}]
    (tmp_path / "api.json").write_text(json.dumps(api))
    mapping = "tokens=tokens_seen,train=train/loss,val/c4=eval/c4_loss"
    for name in ("run-a.json", "run-a.jsonl"):
        obs = read_wandb(tmp_path / name, mapping=mapping, params=1e8)
        f = obs.frame.sort_values(["metric", "tokens"])
        assert list(zip(f["run"], f["metric"], f["tokens"], f["value"], f["step"])) == [
            ("run-a", "train", 1e6, 3.5, 100), ("run-a", "train", 3e6, 3.0, 300),
            ("run-a", "val/c4", 2e6, 3.4, 200), ("run-a", "val/c4", 3e6, 3.1, 300)]
        assert set(f["params"]) == {100_000_000}
    obs = read_wandb(tmp_path / "api.json", mapping="tokens=tokens_seen,train=train/loss",
                     params=1e8, run="r7")
    assert list(obs.frame["value"]) == [3.25] and set(obs.frame["run"]) == {"r7"}
    assert obs.set_aside == (("values NaN or infinite", 1),)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_step": 1, "loss": 3.0}\n{"_step": 2, "loss": "x"}\n')
    res = cli("import", "wandb", bad, "--map", "train=loss", "--params", "1e8",
              "--tokens-per-step", "10", "-o", tmp_path / "o.csv")
    assert res.exit_code == 2 and 'bad.jsonl, line 2, column "loss"' in res.output


def test_panel_export_with_mixed_sizes_needs_params_per_run(tmp_path):
    panel = tmp_path / "panel.csv"
    panel.write_text("Step,gpt-125m - train/loss,gpt-350m - train/loss\n"
                     "100,4.0,3.5\n200,3.5,3.0\n")
    base = ["import", "wandb", panel, "--tokens-per-step", "1000", "-o", tmp_path / "o.csv"]
    res = cli(*base, "--params", "1.2e8")
    assert res.exit_code == 2
    assert "2 runs (gpt-125m, gpt-350m) would all get the one --params value" in res.output
    assert cli(*base, "--params", "1.2e8", "--same-size").exit_code == 0
    res = cli(*base, "--params", "gpt-125m=1.2e8", "--params", "*350m=3.5e8", "--json", "-")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {r["run"]: r["params"] for r in out["run_list"]} == {
        "gpt-125m": 120_000_000, "gpt-350m": 350_000_000}
    assert out["tokens"] == [100_000.0, 200_000.0] and out["rows"] == 4
    res = cli(*base, "--params", "gpt-1b=1e9", "--params", "gpt-*=1e8")
    assert res.exit_code == 2 and "--params gpt-1b=... matches no run" in res.output
    res = cli("import", "wandb", panel, "--params", "1e8", "--same-size", "-o",
              tmp_path / "o.csv")
    assert res.exit_code == 2 and "--tokens-per-step" in res.output
    assert "tokens_per_step" not in res.output


def test_tensorboard_add_hparams_gives_its_run_the_model_size(tmp_path):
    pytest.importorskip("tensorboard")
    writer_cls = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    for name, layers, d in (("125m", 2, 32), ("350m", 4, 64)):
        writer = writer_cls(str(tmp_path / "logs" / name))
        for step in (1, 2, 3):
            writer.add_scalar("train/loss", 4.0 / step + layers, step)
        config = {**gpt(layers, d)["model"], "batch_size": 4, "seq_len": 64, "lr": 1e-3,
                  "recipe": "web"}
        writer.add_hparams(config, {"hparam/final": 1.0})  # a subfolder of its own
        writer.close()
    obs = read_tensorboard(tmp_path / "logs", params_from="config")
    f = obs.frame
    assert sorted(f["run"].unique()) == ["125m", "350m"]  # the hparams subfolders: no runs
    for run, layers, d in (("125m", 2, 32), ("350m", 4, 64)):
        g = f[f["run"] == run].sort_values("tokens")
        assert set(g["params"]) == {count_params(gpt(layers, d)["model"])["total"]}
        assert list(g["tokens"]) == [256.0, 512.0, 768.0]
        assert list(g["value"]) == pytest.approx([4.0 + layers, 2.0 + layers,
                                                  4.0 / 3 + layers])
        assert set(g["lr"]) == {1e-3} and set(g["recipe"]) == {"web"}
        assert set(g["metric"]) == {"train"}


def test_count_params_matches_published_counts():
    gpt2 = {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12,
            "vocab_size": 50257, "n_positions": 1024, "activation_function": "gelu_new"}
    assert count_params(gpt2) == {"total": 124_439_808, "nonembed": 85_056_000}
    llama = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
             "intermediate_size": 11008, "num_attention_heads": 32, "vocab_size": 32000,
             "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
    assert count_params(llama)["total"] == 6_738_415_616
    gqa = {**llama, "num_hidden_layers": 80, "hidden_size": 8192, "intermediate_size": 28672,
           "num_attention_heads": 64, "num_key_value_heads": 8}
    assert count_params(gqa)["total"] == 68_976_648_192  # Llama-2-70B
    from scaling_ladder.plan.sizes import Shape

    shape = Shape(64, 4, 4)  # this project's trainer: SwiGLU, RMSNorm, rotary, tied
    ours = {"d_model": 64, "n_layers": 4, "n_heads": 4, "vocab_size": 257,
            "mlp_hidden": shape.mlp_hidden, "hidden_act": "swiglu", "norm_type": "rmsnorm",
            "rope_base": 1e4}
    assert count_params(ours) == {"total": shape.params(257),
                                  "nonembed": shape.params(257, convention="non_embedding")}
    with pytest.raises(KeyError, match="vocab_size"):
        count_params({"n_layer": 2, "d_model": 8})


def test_missing_wandb_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "wandb" / "run-x").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "wandb.proto.wandb_internal_pb2", None)
    with pytest.raises(LadderError, match=r'pip install "scaling-ladder\[wandb\]"'):
        read_wandb(tmp_path / "wandb", params_from="config")


@pytest.mark.slow
def test_twenty_offline_runs_import_and_fit_in_one_pipeline(tmp_path, offline):
    """5 sizes x 2 recipes x 2 seeds, a handful of steps each: import, then fit by recipe."""
    sizes = [(2, 32), (2, 48), (3, 64), (4, 96), (4, 128)]
    for layers, d in sizes:
        n = count_params(gpt(layers, d)["model"])["total"]
        for recipe, gain in (("web", 0.0), ("code", 0.05)):
            for seed in (0, 1):
                history = []
                for step in (200, 400, 600, 800, 1000):
                    tokens = step * 512
                    loss = 1.7 + 400 / n ** 0.34 + 900 / tokens ** 0.28 - gain + 0.002 * seed
                    history.append((step, {"train/loss": loss, "val/c4": loss + 0.05}))
                offline(f"{recipe}-d{d}-l{layers}-s{seed}", gpt(layers, d, recipe, seed),
                        history)
    out = tmp_path / "runs.csv"
    res = cli("import", "wandb", tmp_path / "wandb", "--params-from", "config", "-o", out,
              "--json", "-")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["runs"] == 20 and summary["rows"] == 200
    assert summary["metrics"] == ["train", "val/c4"]
    f = pd.read_csv(out)
    assert f.groupby("run")["params"].nunique().eq(1).all()
    assert f["params"].nunique() == 5 and sorted(f["recipe"].unique()) == ["code", "web"]
    assert f.groupby("recipe")["run"].nunique().to_dict() == {"code": 10, "web": 10}
    res = cli("fit", out, "--metric", "val/c4", "--by", "recipe", "--bootstrap", "20",
              "--json", "-")
    assert res.exit_code == 0, res.output
    fits = json.loads(res.stdout)
    assert fits and "code" in json.dumps(fits) and "web" in json.dumps(fits)
