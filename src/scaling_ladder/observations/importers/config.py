"""A run's metadata from its config: N counted from the architecture, tokens per step, seed,
learning rate and recipe, for every importer that has a config (W&B ``config.yaml`` or the
run record, TensorBoard hparams, a Hugging Face ``config.json``).

Keys are looked up in a flattened config (``{"model": {"n_layer": 4}}`` gives ``model.n_layer``
and is found as ``n_layer``); the first key of each list that the config holds wins.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

LAYERS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
WIDTH = ("hidden_size", "d_model", "n_embd", "dim", "model_dim")
VOCAB = ("vocab_size", "n_vocab", "padded_vocab_size")
FFN = ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "mlp_hidden", "ffn_hidden_size")
FFN_RATIO = ("mlp_ratio", "ffn_ratio", "ffn_mult")
COUNT = ("n_params", "num_params", "num_parameters", "params", "model_params", "n_parameters")
BATCH = ("batch_size", "global_batch_size", "train_batch_size", "total_batch_size")
SEQ = ("seq_len", "sequence_length", "max_seq_len", "block_size", "context_length", "seq_length",
       "max_seq_length")
BATCH_TOKENS = ("tokens_per_step", "batch_tokens", "tokens_per_batch", "global_batch_tokens")
SEED = ("seed", "random_seed", "data_seed")
LR = ("lr", "learning_rate", "max_lr", "peak_lr", "optimizer.lr")
RECIPE = ("recipe", "data_recipe", "mixture", "data_mix", "dataset")
TOKENIZER = ("tokenizer", "tokenizer_name", "tokenizer.name", "tokenizer_name_or_path")
BYTES_PER_TOKEN = ("bytes_per_token", "data.bytes_per_token", "tokenizer.bytes_per_token")
# of the training stream (D in bytes = tokens x this); no "train." prefix: a key ending in
# ".bytes_per_token" is read as the evaluated slice's
TRAIN_BYTES_PER_TOKEN = ("train_bytes_per_token", "data.train_bytes_per_token")
GATED = ("silu", "swiglu", "swish", "geglu", "reglu")
LEARNED_POSITIONS = ("gpt2", "gpt_neo", "opt", "gpt_bigcode", "biogpt")
QKV_BIAS = ("qwen2",)
BIASED = ("gpt2", "gpt_neo", "gpt_neox", "gptj", "opt", "gpt_bigcode", "bloom", "pythia")


def flatten(config: Mapping, prefix: str = "") -> dict:
    """Nested dicts as dotted keys; W&B's ``{"value": x, "desc": ...}`` entries as ``x``."""
    flat: dict = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and set(value) <= {"value", "desc"} and "value" in value:
            value = value["value"]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def lookup(config: Mapping, keys) -> object | None:
    """The value of the first of ``keys`` the (flattened) config holds, matched on the whole
    dotted key or its last parts; None when it holds none of them."""
    flat = flatten(config)
    for key in keys:
        if key in flat and flat[key] is not None:
            return flat[key]
        hits = [v for k, v in flat.items() if k.endswith("." + key) and v is not None]
        if hits:
            return hits[0]
    return None


def number(value) -> float | None:
    """A config value as a float, or None (bools, text that is not a number, NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            return None
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def count_params(config: Mapping) -> dict[str, int]:
    """N of a GPT-style decoder from its config: ``{"total": ..., "nonembed": ...}``.

    Reads the layers (``n_layer``/``num_hidden_layers``), the width (``d_model``/
    ``hidden_size``/``n_embd``), ``vocab_size``, the MLP width (``intermediate_size`` ..., else
    ``mlp_ratio`` x d, else 4 d), grouped-query attention (``num_key_value_heads``), a gated MLP
    (SwiGLU: ``hidden_act`` silu, 3 matrices instead of 2), biases and LayerNorm (GPT-2
    family, or ``bias``), learned positions (GPT-2's ``n_positions``, nanoGPT's ``block_size``)
    and tied embeddings (``tie_word_embeddings``, default tied). ``nonembed`` leaves out the
    token and position embeddings and an untied head: with a 4 d MLP and no biases it is
    Kaplan et al. (2020)'s ``12 L d^2`` plus the norms. Counts every weight as
    ``model.num_parameters()`` does (GPT-2 small: 124,439,808; Llama-2-7B: 6,738,415,616);
    the Hugging Face importer counts by building the model instead (:mod:`.hf`), which also
    covers architectures this formula does not. Raises KeyError naming the missing key, and
    for a mixture of experts.
    """
    flat = flatten(config)
    get = {name: number(lookup(flat, keys)) for name, keys in (
        ("layers", LAYERS), ("d", WIDTH), ("vocab", VOCAB))}
    for name, keys in (("layers", LAYERS), ("d", WIDTH), ("vocab", VOCAB)):
        if not get[name]:
            raise KeyError(f"no {' / '.join(keys[:3])} in the config")
    layers, d, vocab = int(get["layers"]), int(get["d"]), int(get["vocab"])
    kind = str(lookup(flat, ("model_type",)) or "").lower()
    experts = number(lookup(flat, ("num_local_experts", "num_experts", "n_routed_experts")))
    if experts and experts > 1:  # a mixture of experts: N is not one dense count
        raise KeyError("a mixture-of-experts config (num_local_experts): its N is not counted "
                       "here; give --params")
    act = str(lookup(flat, ("hidden_act", "activation_function", "activation", "act_fn"))
              or "").lower()
    hidden = number(lookup(flat, FFN))
    if not hidden:
        ratio = number(lookup(flat, FFN_RATIO)) or 4.0
        hidden = ratio * d
    hidden = int(hidden)
    heads = number(lookup(flat, ("num_attention_heads", "n_head", "n_heads"))) or 1
    kv_heads = number(lookup(flat, ("num_key_value_heads", "n_kv_heads", "n_kv_head"))) or heads
    kv = int(d * kv_heads / heads)
    bias_flag = lookup(flat, ("bias", "use_bias", "attention_bias"))
    bias = bool(bias_flag) if bias_flag is not None else kind in BIASED
    gated = any(g in act for g in GATED) or bool(lookup(flat, ("gated_mlp", "glu")))
    rms = (lookup(flat, ("rms_norm_eps",)) is not None or "rms" in str(
        lookup(flat, ("norm_type", "normalization")) or "").lower())
    tied_flag = lookup(flat, ("tie_word_embeddings", "tie_embeddings", "tied", "weight_tying"))
    tied = True if tied_flag is None else bool(tied_flag)

    qkv_bias = kind in QKV_BIAS and not bias  # Qwen2: biases on q, k and v only
    attn = 2 * d * d + 2 * d * kv + (2 * d + 2 * kv if bias else 0) + (
        d + 2 * kv if qkv_bias else 0)
    mlp = (3 if gated else 2) * d * hidden + ((hidden + d) if bias else 0)
    norm = d if rms or not bias else 2 * d
    nonembed = layers * (attn + mlp + 2 * norm) + norm
    positions = 0
    if kind in LEARNED_POSITIONS or (not kind and lookup(flat, ("rope_theta", "rotary_dim",
                                                                "rope_base")) is None):
        positions = int(number(lookup(flat, ("n_positions", "max_position_embeddings",
                                             "block_size"))) or 0) * d
    total = nonembed + vocab * d * (1 if tied else 2) + positions
    return {"total": total, "nonembed": nonembed}


def params_from(config: Mapping, convention: str = "total") -> int | None:
    """N from a config: a count it states (``n_params`` ...), else counted from the
    architecture (:func:`count_params`, by ``convention``: total or nonembed); None if neither."""
    stated = number(lookup(config, COUNT))
    if stated and stated == round(stated):
        return int(stated)
    try:
        return count_params(config)[convention]
    except KeyError:
        return None


def tokens_per_step_from(config: Mapping) -> float | None:
    """Tokens per optimiser step: a stated count, else batch size x sequence length (x
    gradient accumulation steps where stated)."""
    stated = number(lookup(config, BATCH_TOKENS))
    if stated:
        return stated
    batch, seq = number(lookup(config, BATCH)), number(lookup(config, SEQ))
    if not (batch and seq):
        return None
    return batch * seq * (number(lookup(config, ("gradient_accumulation_steps",
                                                 "grad_accum_steps", "accumulate"))) or 1)


def meta_from(config: Mapping) -> dict:
    """Seed, learning rate, recipe, tokenizer, bytes per token (of the evaluated slice) and
    train bytes per token (of the training stream) the config states (keys absent where it
    does not): a loss compared across tokenizers needs the tokenizer and bytes per token, a
    fit with D in bytes the training stream's."""
    out = {}
    for field, keys in (("seed", SEED), ("lr", LR)):
        value = number(lookup(config, keys))
        if value is not None:
            out[field] = value
    recipe = lookup(config, RECIPE)
    if isinstance(recipe, str | int) and not isinstance(recipe, bool) and str(recipe).strip():
        out["recipe"] = str(recipe).strip()
    tokenizer = lookup(config, TOKENIZER)
    if isinstance(tokenizer, str) and tokenizer.strip():
        out["tokenizer"] = tokenizer.strip()
    for field, keys in (("bytes_per_token", BYTES_PER_TOKEN),
                        ("train_bytes_per_token", TRAIN_BYTES_PER_TOKEN)):
        bpt = number(lookup(config, keys))
        if bpt is not None and bpt > 0:
            out[field] = bpt
    return out
