"""A compact decoder-only transformer for proxy runs, in one file (after nanoGPT's ``model.py``).

Pre-norm blocks with RMSNorm (Zhang & Sennrich 2019), rotary position embeddings (Su et al.
2021), causal ``scaled_dot_product_attention`` and a SwiGLU MLP (Shazeer 2020), as in LLaMA
(Touvron et al. 2023). No biases and no dropout: proxies train for less than an epoch, and
fewer moving parts make the parameter count a closed formula (``sizes.Shape.params``) that the
tests check against this module.

Parameter conventions (DESIGN.md: every count says which one it is):

- ``total``: every trainable parameter, the tied head counted once;
- ``non_embedding``: without the input embedding and the output head (Kaplan et al. 2020);
- ``no_input_embedding``: without the input embedding only, i.e. every weight that takes part
  in a matmul per token, the head included, tied or not (Porian et al. 2024; Pearce & Song
  2024): this N times 6 is the matmul part of the training FLOPs.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a model. ``mlp_hidden`` is explicit so the planner's formula is exact."""

    vocab_size: int = 257
    seq_len: int = 128
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: int = 176
    tied: bool = True
    rope_base: float = 10_000.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"The 'd_model' of ModelConfig must be a multiple of n_heads "
                             f"({self.n_heads}). Got {self.d_model}.")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("The head dimension d_model / n_heads must be even for RoPE. Got "
                             f"{self.d_model // self.n_heads}.")
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"The '{name}' of ModelConfig must be >= 1. "
                                 f"Got {getattr(self, name)}.")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    """``x / rms(x) * g`` (Zhang & Sennrich 2019): one gain vector, no bias, no mean."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # computed in float32 even under bf16 autocast: the mean of squares loses digits
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_tables(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary angles' ``cos`` and ``sin`` (Su et al. 2021) for q and k side by side,
    each (seq_len, 2 d_model): ``[cos, cos]`` and ``[-sin, sin]`` over the two halves of
    every head's features, so a rotation is ``x * cos + swap_halves(x) * sin``. Full tables,
    not broadcast ones: a CPU multiply runs ~2x faster when only the batch dim broadcasts."""
    half = cfg.head_dim // 2
    inv_freq = cfg.rope_base ** (-torch.arange(half, dtype=torch.float64) / half)
    angles = torch.outer(torch.arange(cfg.seq_len, dtype=torch.float64), inv_freq)
    cos, sin = angles.cos(), angles.sin()
    heads = 2 * cfg.n_heads  # q's heads, then k's
    return (torch.cat((cos, cos), -1).repeat(1, heads).float(),
            torch.cat((-sin, sin), -1).repeat(1, heads).float())


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.proj.residual = True  # scaled init, see GPT._init

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h, hd = self.n_heads, self.head_dim
        # RoPE needs swap_halves(q), swap_halves(k): the same matmul with the rows of W_q, W_k
        # swapped gives them, so the projection makes [q k v swap(q) swap(k)] (B, T, 5D) in
        # one call and the rotation is two elementwise ops on whole rows, forward and
        # backward (copying halves of 8-16 features around cost more than the wider matmul)
        w = self.qkv.weight  # (3D, D)
        w_swap = w[:2 * d].view(2 * h, 2, hd // 2, d).flip(1).reshape(2 * d, d)
        y = F.linear(x, torch.cat((w, w_swap)))
        cpu_autocast = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        qk, v, qk_swap = y.split([2 * d, d, 2 * d], dim=-1)
        # in float32 (the tables are), and so q and k come out under CPU autocast
        qk = torch.addcmul(qk * cos[:t], qk_swap, sin[:t])
        if cpu_autocast:
            # CPU autocast runs attention in bf16, whose flash-attention backward is ~5x
            # slower than float32's on one thread (d96-l4 and d256-l6, torch 2.13): this op
            # stays in float32, the matmuls around it in bf16
            v = v.float()
        else:
            qk = qk.to(v.dtype)
        # (B, T, D) -> (B, H, T, hd)
        q, k, v = (z.view(b, t, h, hd).transpose(1, 2) for z in (*qk.split(d, -1), v))
        with torch.autocast("cpu", enabled=False) if cpu_autocast else nullcontext():
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    """``W2 (silu(W1 x) * W3 x)`` (Shazeer 2020, "GLU Variants Improve Transformer")."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.mlp_hidden, bias=False)  # W1 and W3
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)
        self.down.residual = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.mlp_norm, self.mlp = RMSNorm(cfg.d_model), SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """The decoder: embedding, ``n_layers`` blocks, final RMSNorm, head (tied or untied)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tied:
            self.head.weight = self.embed.weight  # Press & Wolf (2017)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)

    def _init(self, module: nn.Module) -> None:
        # GPT-2 init: N(0, 0.02); residual projections scaled by 1/sqrt(2 n_layers) so the
        # residual stream's variance does not grow with depth (Radford et al. 2019).
        std = self.cfg.init_std
        if isinstance(module, nn.Linear):
            scale = (2 * self.cfg.n_layers) ** -0.5 if getattr(module, "residual", False) else 1
            nn.init.normal_(module.weight, mean=0.0, std=std * scale)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
        """Logits (B, T, V) without targets; else the cross-entropy in nats/token."""
        x = self.embed(idx)  # (B, T, D)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        logits = self.head(self.norm(x))  # (B, T, V)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               reduction=reduction)

    def num_params(self, non_embedding: bool = False, *, convention: str | None = None) -> int:
        """Parameters counted by ``convention`` (``total``, ``non_embedding``,
        ``no_input_embedding``; see the module docstring). ``non_embedding=True`` is
        nanoGPT's spelling of ``convention="non_embedding"``."""
        convention = convention or ("non_embedding" if non_embedding else "total")
        total = sum(p.numel() for p in self.parameters())  # shared tensors counted once
        emb = self.embed.weight.numel()
        head = 0 if self.cfg.tied else self.head.weight.numel()
        if convention == "total":
            return total
        if convention == "non_embedding":
            return total - emb - head
        if convention == "no_input_embedding":
            return total - emb + (emb if self.cfg.tied else 0)
        raise ValueError("The 'convention' of num_params must be total, non_embedding or "
                         f"no_input_embedding. Got {convention!r}.")

    def flops_per_token(self, *, causal: bool = True) -> float:
        """Training FLOPs per token: ``6 N + 6 n_layers T d_model`` (causal) or ``+ 12 ...``.

        ``N`` is the ``no_input_embedding`` count: every weight in a per-token matmul costs
        2 FLOPs forward and 4 backward (Kaplan et al. 2020, Table 1); the embedding lookup is
        free but the head is not, which is why 6ND with non-embedding N understates tiny
        models with a large vocabulary. Attention scores and the weighted sum cost
        ``2 * 2 T d`` per layer forward over the full T x T square (PaLM, Chowdhery et al.
        2022, appendix B: ``12 L T d`` for training, what MFU conventionally counts);
        ``causal=True`` counts the half a causal mask needs, ``6 L T d``, Kaplan's term and
        :func:`scaling_ladder.compute.training_flops`. The RMSNorm gains are in N as in every
        6N count (under 1%); RoPE and softmax are ignored.
        """
        cfg = self.cfg
        attn = (6.0 if causal else 12.0) * cfg.n_layers * cfg.seq_len * cfg.d_model
        return 6.0 * self.num_params(convention="no_input_embedding") + attn

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay the matrices (and the embedding), not the norm gains."""
        decay, keep = [], []
        for p in self.parameters():
            (decay if p.dim() >= 2 else keep).append(p)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": keep, "weight_decay": 0.0}]
