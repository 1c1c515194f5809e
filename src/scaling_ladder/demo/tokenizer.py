"""A tokenizer experiment on a tiny ladder: byte-level against BPE on one mixture, on a CPU.

Builds the bundled default corpus's ``balanced`` mixture twice, with the byte tokenizer and
with a 4,096-token byte-level BPE (``ladder data build --tokenizer byte --tokenizer bpe:4096``),
trains the same model shapes on each, and compares ``balanced.bpe-4096`` against
``balanced.byte`` on the mean validation loss. Per-token loss cannot decide this: a BPE token
carries about 3.6 bytes of this corpus, so its loss per token is the larger even when it
predicts the text better. The comparison is made in bits per byte (``compare`` converts when
the recipes' tokenizers differ) and the report shows the ranking per token beside it, the
trap the conversion avoids.

Budgets are matched by tokens (every run sees the same number of tokens, so the BPE runs read
more text) and N counts non-embedding parameters (Kaplan et al. 2020), so one shape is one N
whatever the vocabulary; the comparison says both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import DemoResult, compare_and_report

RECIPE = "balanced"
TOKENIZERS = ("byte", "bpe:4096")
BASELINE = f"{RECIPE}.byte"
METRIC = "val/mean"
# smaller sizes sit on a plateau (plan.spec.tiny_spec); the gain here is large (about 1.4
# bits/byte at every size), so three sizes of 150k tokens decide it; a BPE run (a 4,096-row
# embedding and head) costs about twice a byte run of the same shape
SIZES = ("d96-l4", "d112-l4", "d128-l4")
TOKENS = 1.5e5
TARGET = (8e6, 1.6e8)  # non-embedding N, tokens: ~10x the largest proxy's N
LAW = "kaplan"  # proxies this small do not identify Chinchilla's E (see demo.LAW)


def build_data(out: str | Path, *, progress: Callable | None = None) -> dict[str, Path]:
    """The default corpus's ``balanced`` mixture under each tokenizer: folders by label."""
    from ..data import build_each, default_recipes

    built = build_each(default_recipes(Path(out) / "corpus"), Path(out) / "data", TOKENIZERS,
                       only=[RECIPE], progress=progress)
    return {label: r.directory for label, r in built.items()}


def train(out: str | Path, data: dict[str, Path], *, progress: Callable | None = None) -> Path:
    """Train the same shapes on each tokenizer's tokens; returns the joined observations."""
    from ..files import write_atomic
    from ..plan.plan import build_plan
    from ..plan.spec import tiny_spec
    from ..train import TrainOptions, train_ladder

    parts = []
    for label, data_dir in data.items():
        spec = tiny_spec([f"{RECIPE}.{label}"], sizes=SIZES, tokens=TOKENS,
                         experiment="tokenizer-demo")
        spec["params_convention"] = "non_embedding"
        spec["hparams"].update(schedule="wsd", cooldowns=[0.5])
        plan = build_plan(spec, data_dir=data_dir)
        ladder = train_ladder(plan, data_dir, Path(out) / "ladder" / label,
                              options=TrainOptions(eval_tokens=4096), progress=progress)
        if ladder.failed:
            names = ", ".join(r["name"] for r in ladder.failed)
            raise RuntimeError(f"demo runs failed: {names}; run the demo again to resume them")
        parts.append(Path(ladder.observations).read_bytes())
    path = Path(out) / "observations.jsonl"
    write_atomic(path, b"".join(parts))
    return path


def decide_and_report(out: str | Path, observations: Path, data: dict[str, Path], *,
                      progress: Callable[[int, int], None] | None = None) -> DemoResult:
    """Compare BPE against bytes in bits/byte, then write the report with the data checks."""
    return compare_and_report(out, observations, Path(out) / "data", data["byte"],
                              baseline=BASELINE, metric=METRIC, target=TARGET, law=LAW,
                              title="scaling-ladder tokenizer demo", progress=progress)
