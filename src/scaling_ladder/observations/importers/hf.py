"""Hugging Face Trainer output folders -> observations.

A run is a folder holding ``checkpoint-*/trainer_state.json`` (or a ``trainer_state.json`` of
its own, from ``trainer.save_state()``); a folder of such folders imports every run, each
named by its path below the folder::

    out/run-125m/checkpoint-3000/{trainer_state.json, config.json, training_args.bin}
    out/run-350m/...

The latest state's ``log_history`` (it holds the whole run) gives ``loss`` -> ``train``,
``eval_loss`` -> ``val/<eval_name>``, ``eval_<name>_loss`` -> ``val/<name>``, at its ``step``.
Tokens: ``num_input_tokens_seen`` where the trainer logged it (``include_num_input_tokens_seen``),
else step x tokens per step: ``--tokens-per-step``, or per-device batch x gradient
accumulation x processes (from ``training_args.bin``) x ``--seq-len``; ``tokens_from`` says
which. N: ``--params``, or counted from ``config.json`` as the trainer counts it
(``num_parameters()`` of the model built on the meta device: no weights are read or
allocated; exact for every architecture transformers knows, MoE included, where a formula
from the config is not). ``params`` is the total (``--params-from config-nonembed``: without
the embedding matrices, as ``num_parameters(exclude_embeddings=True)``), with
``params_total`` and ``params_nonembed`` beside it. ``tokenizer``: the one the run saved
(``tokenizer_config.json``), so losses of runs with different tokenizers are compared in
bits/byte and never in nats/token.

>>> obs = read_hf("out/", seq_len=2048)                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ..table import Observations
from .common import MissingExtraError, finish
from .meta import Meta, with_meta

STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_EVAL = re.compile(r"eval_(?:(.+)_)?loss")
_FIX = "name a Trainer output folder (checkpoint-*/trainer_state.json) or a folder of them"


def read_hf(path: str | Path, *, params=None, params_from: str | None = None,
            same_size: bool = False, tokens_per_step=None, seq_len: int | None = None,
            experiment: str | None = None, recipe=None, seed=None, lr=None,
            eval_name: str = "eval") -> Observations:
    """Read a Trainer output folder (or a folder of them) as observations.

    ``params``, ``tokens_per_step``, ``recipe``, ``seed`` and ``lr`` as in :mod:`.meta` (one
    value, ``{run or glob: value}`` or ``["RUN=VALUE", ...]``). Without a ``params`` for a run
    (or with ``params_from`` ``config`` / ``config-nonembed``), N is counted from its
    ``config.json`` (the ``hf`` extra). ``seq_len`` turns the batch of ``training_args.bin``
    into tokens per step where the trainer logged no tokens; seed and lr come from there too.
    """
    root = Path(path)
    meta = Meta.from_args(params=params, params_from=params_from, same_size=same_size,
                          tokens_per_step=tokens_per_step, seed=seed, lr=lr, recipe=recipe)
    runs = find_runs(root)
    parts = [(run_dir, _run_rows(run_dir, name, meta, seq_len, eval_name))
             for name, run_dir in runs.items()]
    meta.check_shared(str(root), list(runs))
    frames, aside = [], Counter()
    for run_dir, raw in parts:
        obs = finish(raw, str(run_dir), "step", experiment or root.name)
        frames.append(obs.frame)
        aside.update(dict(obs.set_aside))
    return Observations(pd.concat(frames, ignore_index=True), tuple(aside.items()), (str(root),))


def find_runs(root: Path) -> dict[str, Path]:
    """Run name -> run folder, for every folder below ``root`` holding trainer states."""
    if not root.is_dir():
        raise InputError(str(root), "folder not found", fix=_FIX)
    dirs = set()
    for state in root.rglob(STATE):
        parent = state.parent
        up = _CHECKPOINT.fullmatch(parent.name) and parent != root
        dirs.add(parent.parent if up else parent)
    if not dirs:
        raise InputError(str(root), f"holds no {STATE} (in checkpoint-*/ or at the top)",
                         fix=_FIX)
    # one checkpoint folder given: its run is named by the folder above it
    top = root.resolve().parent.name if _CHECKPOINT.fullmatch(root.name) else root.name
    return {(d.relative_to(root).as_posix() if d != root else top): d for d in sorted(dirs)}


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot be read as JSON ({exc})",
                         fix="copy the file again, or remove it") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "is not a JSON object", fix="pass the file the tool wrote")
    return data


def _latest_state(run_dir: Path) -> tuple[Path, dict]:
    """The state with the most steps: its log_history holds every earlier entry too."""
    best = None
    for path in sorted(run_dir.glob(f"checkpoint-*/{STATE}")) + [run_dir / STATE]:
        if path.is_file():
            state = _load_json(path)
            if not isinstance(state.get("log_history"), list):
                raise InputError(str(path), "has no log_history list",
                                 fix=f"pass the {STATE} the Trainer wrote")
            step = state.get("global_step") or 0
            if best is None or step > best[0]:
                best = (step, path, state)
    return best[1], best[2]


def _run_rows(run_dir: Path, name: str, meta: Meta, seq_len, eval_name) -> pd.DataFrame:
    state_path, state = _latest_state(run_dir)
    folder = state_path.parent
    args = _training_args(folder / "training_args.bin")
    config = {k: args[k] for k in ("seed", "lr") if args and args[k] is not None}
    m = meta.of(name, config, str(run_dir), {"params": "", "tokens": ""})  # seed, lr, recipe
    value, source = meta.params.of(name)
    if not source or (source == "bare" and meta.params_from):
        config_json = next((p for p in (folder / "config.json", *sorted(
            run_dir.glob("checkpoint-*/config.json"), reverse=True)) if p.is_file()), None)
        if config_json is None:
            raise InputError(str(run_dir), "has no config.json to count N from",
                             fix=f"give --params {name}=N")
        total, nonembed, _ = count_hf_params(config_json)
        m.update(params_total=total, params_nonembed=nonembed)
        value = nonembed if meta.params_from == "config-nonembed" else total
    elif source == "bare":
        meta.shared.append(name)
    history = state["log_history"]
    per_step, tokens_from = None, "num_input_tokens_seen"
    if any("num_input_tokens_seen" not in e for e in history if "step" in e):
        per_step, tokens_from = _tokens_per_step(state_path, folder, name, args,
                                                 meta.tokens_per_step.of(name)[0], seq_len)
        m["tokens_per_step"] = per_step
    latest: dict[tuple[str, int], tuple] = {}
    for entry in history:
        step = entry.get("step")
        if not isinstance(step, int | float):
            continue
        seen = entry.get("num_input_tokens_seen", step * (per_step or 0))
        for key, x in entry.items():
            metric = _metric(key, eval_name)
            if metric and isinstance(x, int | float):
                latest[metric, step] = (seen, x)  # a step logged twice: its last entry
    rows = [(name, value, seen, metric, "loss", float(x), step, step)
            for (metric, step), (seen, x) in latest.items()]
    raw = pd.DataFrame(rows, columns=["run", "params", "tokens", "metric", "kind", "value",
                                      "step", "_line"])
    out = with_meta(raw, m).assign(tokens_from=tokens_from)
    tokenizer = _tokenizer_name(folder, run_dir)
    return out.assign(tokenizer=tokenizer) if tokenizer else out


def _tokenizer_name(folder: Path, run_dir: Path) -> str | None:
    """The tokenizer a run saved beside its checkpoints (``tokenizer_config.json``): the last
    part of its ``name_or_path`` (else its class, ``Fast`` dropped), with the vocabulary size
    of ``tokenizer.json`` or the model's ``config.json`` (``gpt2-50257``). A loss compared
    across tokenizers needs it: :mod:`scaling_ladder.compare.tokenizers`. None when no
    tokenizer was saved."""
    places = [folder, run_dir, *sorted(run_dir.glob("checkpoint-*"), reverse=True)]
    found = next((d for d in places if (d / "tokenizer_config.json").is_file()), None)
    if found is None:
        return None
    cfg = _load_json(found / "tokenizer_config.json")
    # a fast and a slow tokenizer of one vocabulary are one tokenizer
    name = Path(str(cfg.get("name_or_path") or "")).name or re.sub(
        r"Fast$", "", str(cfg.get("tokenizer_class") or "tokenizer"))
    vocab = None
    if (found / "tokenizer.json").is_file():  # ids of the vocabulary and the added tokens
        t = _load_json(found / "tokenizer.json")
        words = (t.get("model") or {}).get("vocab")
        ids = [*(words.values() if isinstance(words, dict) else []),
               *(a.get("id") for a in t.get("added_tokens") or [] if isinstance(a, dict))]
        ids = [i for i in ids if isinstance(i, int)]
        vocab = max(ids) + 1 if ids else None
    if vocab is None and (found / "config.json").is_file():
        vocab = _load_json(found / "config.json").get("vocab_size")
    return f"{name}-{vocab}" if isinstance(vocab, int) else name


def _metric(key: str, eval_name: str) -> str | None:
    if key == "loss":
        return "train"
    match = _EVAL.fullmatch(key)
    return f"val/{match.group(1) or eval_name}" if match else None


def _tokens_per_step(state_path, folder, name, args, tokens_per_step, seq_len):
    if tokens_per_step is not None:
        return tokens_per_step, f"step x {tokens_per_step:g} (--tokens-per-step)"
    if seq_len is not None and args:
        batch = args["batch"] * args["accumulation"] * (args["processes"] or 1)
        processes = args["processes"] or "1 (not recorded, assumed)"
        return batch * seq_len, (f"step x {args['batch']} x {args['accumulation']} x "
                                 f"{processes} x {seq_len} (per-device batch x accumulation x "
                                 "processes from training_args.bin, x --seq-len)")
    why = ("give --seq-len to multiply the batch in training_args.bin" if args
           else f"training_args.bin is not in {folder}")
    raise InputError(str(state_path), "logs no num_input_tokens_seen",
                     fix=f"give --tokens-per-step {name}=T, or {why} (or train with "
                     "include_num_input_tokens_seen=True)")


class _Stub:
    """Whatever class a pickle names: records its state and runs no code."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):  # never imports: reading a file runs no code from it
        return type(name, (_Stub,), {})

    def persistent_load(self, pid):  # tensor storages: none are wanted
        return None


def _training_args(path: Path) -> dict | None:
    """Batch, accumulation, processes, seed and lr from ``training_args.bin`` (a
    ``torch.save``d TrainingArguments), read with stub classes: nothing in it is executed."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            args = _StubUnpickler(archive.open(pkl)).load().__dict__["state"]
        dist = getattr(args.get("distributed_state"), "__dict__", {}).get("state")
        processes = dist.get("num_processes") if isinstance(dist, dict) else None
        return {"batch": int(args["per_device_train_batch_size"]) * max(1, args["_n_gpu"]),
                "accumulation": int(args["gradient_accumulation_steps"]),
                "processes": int(processes) if processes else None,
                "seed": args.get("seed"), "lr": args.get("learning_rate")}
    except (OSError, StopIteration, KeyError, TypeError, ValueError, AttributeError,
            zipfile.BadZipFile, pickle.UnpicklingError, EOFError):
        return None


_COUNTS: dict[str, tuple[int, int, str]] = {}


def count_hf_params(config_path: Path) -> tuple[int, int, str]:
    """(total, non-embedding, architecture) of the model ``config.json`` describes, counted as
    the Trainer counts it (``num_parameters``; tied weights once), built on the meta device."""
    text = config_path.read_text()
    if text in _COUNTS:
        return _COUNTS[text]
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingExtraError('counting N from config.json needs transformers: pip install '
                                '"scaling-ladder[hf]" (or give --params RUN=N)') from None
    fix = "give --params RUN=N for this run"
    try:
        config = transformers.AutoConfig.from_pretrained(str(config_path.parent))
    except (ValueError, KeyError, OSError) as exc:
        raise InputError(str(config_path), f"transformers cannot read it ({exc})".replace(
            "\n", " "), fix=fix) from None
    arch = next(iter(getattr(config, "architectures", None) or []), None)
    cls = getattr(transformers, arch, None) if arch else None
    with torch.device("meta"):
        model = (cls(config) if cls is not None
                 else transformers.AutoModelForCausalLM.from_config(config))
    _COUNTS[text] = (model.num_parameters(), model.num_parameters(exclude_embeddings=True),
                     type(model).__name__)
    return _COUNTS[text]
