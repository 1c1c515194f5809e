"""``ladder data build · check``: thin verbs over :mod:`scaling_ladder.data`.

 Exit status: 0 done; 1 (check only) a sample
document does not survive the tokenizer round trip; 2 bad input or usage, one line on stderr
(for ``check``, also a token file missing, truncated or changed since the build: one line each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ..data.builder import build as build_tokens
from ..data.builder import build_each
from ..data.checks import CheckResult
from ..data.checks import check as check_tokens
from ..data.default import default_recipes
from ..data.filters import code_filters
from ..data.recipes import load_recipes
from .common import (
    DataTable,
    JsonOut,
    app,
    emit_json,
    err,
    handle,
    out,
    output,
    phase_progress,
    print_notes,
    write_json,
)

data_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                       help="Data: sources, tokenizers, recipe mixtures and stage-0 smoke checks.")



@data_app.command()
@handle
def build(
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Directory to fill (reused files are "
                                          "verified by SHA-256).", show_default=False,
                                          callback=output(folder=True))],
    recipes: Annotated[Path | None, typer.Argument(help="Recipe file (TOML).",
                                                   show_default=False)] = None,
    default: Annotated[bool, typer.Option("--default", help="Use the bundled default corpus "
                                          "(made in the user cache, no network).")] = False,
    tokenizer: Annotated[list[str] | None, typer.Option(
        help="byte, bpe or bpe:VOCAB (overrides the file). Repeat it for a tokenizer "
        "experiment: each tokenizer is built into OUT/<byte|bpe-VOCAB>, its recipes named "
        "RECIPE.<byte|bpe-VOCAB>.")] = None,
    vocab: Annotated[int | None, typer.Option(help="BPE vocabulary size (overrides the file).")
                     ] = None,
    recipe: Annotated[list[str] | None, typer.Option(help="Build only this recipe "
                                                     "(repeatable).")] = None,
    allow_code: Annotated[bool, typer.Option("--allow-code", help="Run the callable filters "
                                             "(module:function) the recipe file names: code it "
                                             "chooses. Only for a file you trust.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Build token files for every recipe of a recipe file; a re-run skips finished shards.

    Recipe file (TOML): \\[sources.NAME] with paths = \\["files", "folders/", "globs*"] and, for JSON Lines or Parquet, field = "text"; \\[recipes.NAME] with weights = { NAME = 1, ... }, optionally tokens = N and filters = \\[{ source = "NAME", kind = "min_length", chars = 200 }] (kinds: min_length, max_non_alpha, exact_dedup, near_dedup, callable: module:function, run only with --allow-code or when registered in the entry point group scaling_ladder.filters).

    --default: the bundled corpus (Python's standard library and generated text).

    Example: ladder data build recipes.toml --out tokens --tokenizer bpe --vocab 4096

    Tokenizer experiment: ladder data build recipes.toml --out tokens --recipe balanced --tokenizer byte --tokenizer bpe:4096 (then train each of tokens/byte and tokens/bpe-4096 and compare the two ladders: in bits/byte).
    """  # noqa: E501 - typer rewraps the help; a paragraph is one line
    if default == (recipes is not None):
        raise ValueError("Give a recipe file or --default, not both and not neither.")
    cfg = load_recipes(default_recipes() if default else recipes)
    code = code_filters(cfg, recipe, allow_code=allow_code)
    if code:
        err.print(f"running code named by {cfg.path}: " + ", ".join(
            f"{fn} ({'registered filter' if registered else '--allow-code'})"
            for fn, registered in code.items()), markup=False, highlight=False, soft_wrap=True)
    if tokenizer and len(tokenizer) > 1:
        with phase_progress(quiet=json_out == "-") as progress:
            results = build_each(cfg, out_dir, tokenizer, vocab=vocab, only=recipe,
                                 progress=progress, allow_code=allow_code)
        if emit_json(json_out, {"tokenizers": {k: r.to_dict() for k, r in results.items()}}):
            return
        for label, result in results.items():
            _print_build(result, out_dir / label)
        return
    with phase_progress(quiet=json_out == "-") as progress:
        result = build_tokens(cfg, out_dir, tokenizer=tokenizer[0] if tokenizer else None,
                              vocab=vocab, only=recipe,
                              progress=progress, allow_code=allow_code)
    if emit_json(json_out, result.to_dict()):
        return
    _print_build(result, out_dir)


def _print_build(result, out_dir: Path) -> None:
    m = result.manifest
    t = DataTable(title=f"Sources -> {out_dir}", caption=f"tokenizer {m['tokenizer']['kind']}, "
                  f"vocabulary {m['vocab_size']}, EOS id {m['eos_id']}, {m['dtype']}")
    for col in ("source", "documents train/val", "tokens train/val", "bytes/token",
                "set aside"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for s, e in m["sources"].items():
        aside = ", ".join(f"{k} {v}" for k, v in e["set_aside"].items()) or "—"
        t.add_row(s, f"{e['train']['documents']:,}/{e['val']['documents']:,}",
                  f"{e['train']['tokens']:,}/{e['val']['tokens']:,}",
                  f"{e['val']['bytes_per_token']:.3f}", aside)
    out.print(t)
    names = list(m["sources"])
    t = DataTable(title="Recipes (train streams)", caption=f"weights in % of {'/'.join(names)}; "
                  f"{result.written} files written, {result.reused} reused (SHA-256 verified) in "
                  f"{result.seconds:.1f} s")
    for col in ("recipe", "weights %", "tokens", "documents", "bytes/token", "epochs",
                "shards"):
        t.add_column(col, justify="left" if col == "recipe" else "right")
    for r, e in m["recipes"].items():
        weights = "/".join(f"{100 * e['weights'].get(s, 0):.0f}" for s in names)
        epochs = max(s["epochs"] for s in e["sources"].values())
        t.add_row(r, weights, f"{e['tokens']:,}", f"{e['documents']:,}",
                  f"{e['bytes_per_token']:.3f}", f"{epochs:.2f}", str(len(e["shards"])))
    out.print(t)


@data_app.command()
@handle
def check(
    directory: Annotated[Path, typer.Argument(help="A directory made by ladder data build.",
                                              show_default=False)],
    eval_sets: Annotated[list[str] | None, typer.Option(
        "--eval", help="An eval set to check for contamination: NAME=PATH (repeatable).")
    ] = None,
    field: Annotated[str, typer.Option(help="Text field of JSON Lines / Parquet eval sets.")
                     ] = "text",
    ngram: Annotated[int, typer.Option(help="Words per n-gram for contamination.")] = 13,
    near_threshold: Annotated[float, typer.Option(help="Jaccard similarity of near-"
                                                  "duplicates.")] = 0.8,
    examples: Annotated[int, typer.Option(help="Example matches per pair.")] = 3,
    json_out: JsonOut = None,
) -> None:
    """Stage-0 smoke checks: round trip, duplicates, lengths, diversity, contamination.

    Token files are verified first (size, SHA-256, ids in the vocabulary): exit status 2 and
    one line per bad file when one is missing, truncated or modified. Exit status 1 when a
    sample document does not survive decode(encode(x)).
    Example: ladder data check tokens --eval qa=evals/qa.jsonl
    """
    evals = {}
    for item in eval_sets or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"The --eval option takes NAME=PATH. Got {item!r}.")
        evals[name] = path
    with phase_progress(quiet=json_out == "-") as progress:
        result = check_tokens(directory, evals=evals, field=field, ngram=ngram,
                              near_threshold=near_threshold, examples=examples,
                              progress=progress)
    if json_out:
        write_json(json_out, result.to_dict())
    if json_out != "-":
        _print_check(result)
    if any(s.roundtrip_failures for s in result.sources):
        raise typer.Exit(1)


def _print_check(result: CheckResult) -> None:
    t = DataTable(title=f"Smoke checks: {result.directory}", caption="round trip: sample documents "
                  "with decode(encode(x)) == x; near dup (exact ones included): MinHash LSH, "
                  f"Jaccard >= {result.near_threshold}")
    for col in ("source", "documents", "MB", "round trip", "U+FFFD", "exact dup", "near dup"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for s in result.sources:
        trip = f"{s.roundtrip_checked - s.roundtrip_failures}/{s.roundtrip_checked}"
        t.add_row(s.source, f"{s.documents:,}", f"{s.bytes / 1e6:.2f}",
                  Text(trip, style="red" if s.roundtrip_failures else ""),
                  f"{s.replacement_rate:.3%}", f"{s.exact_dup_rate:.1%}",
                  f"{s.near_dup_rate:.1%}")
    out.print(t)
    t = DataTable(title="Shape and diversity", caption=f"distinct-n over "
                  f"{result.sources[0].diversity_words:,} words of each source; gzip: compressed "
                  "over raw size of 1 MB")
    for col in ("source", "bytes p5/p50/p95/max", "distinct-1", "distinct-4", "gzip",
                "set aside"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for s in result.sources:
        lb = s.length_bytes
        aside = ", ".join(f"{k} {v}" for k, v in s.set_aside.items()) or "—"
        t.add_row(s.source, "/".join(f"{lb[k]:,.0f}" for k in ("p5", "p50", "p95", "max")),
                  f"{s.distinct_1:.3f}", f"{s.distinct_4:.3f}", f"{s.gzip_ratio:.3f}", aside)
    out.print(t)
    spec = result.tokenizer
    t = DataTable(title=f"Tokenizer: {spec.get('kind')} ({spec.get('vocab_size')} ids)",
                  caption="on each source's validation tokens: UTF-8 bytes per token, the share "
                  "of the vocabulary used, tokens standing for one byte (byte fallback), "
                  "unknown tokens, and the round trip decode(encode(x)) == x")
    for col in ("source", "bytes/token", "vocab used", "1-byte tokens", "unknown",
                "round trip"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for s in result.sources:
        t.add_row(s.source, f"{s.bytes_per_token:.3f}", f"{s.vocab_used:.1%}",
                  f"{s.byte_token_share:.1%}", f"{s.unknown_rate:.2%}",
                  "exact" if not s.roundtrip_failures else
                  f"{s.roundtrip_failures} of {s.roundtrip_checked} fail")
    out.print(t)
    listed = [(s.source, e) for s in result.sources for e in s.set_aside_examples]
    if listed:
        out.print("[bold]Documents set aside at build time[/] (the first 20 of each source):")
        for source, e in listed:
            out.print(f"  {source}: {e['origin']}: {e['problem']}", markup=False,
                      highlight=False, soft_wrap=True)
    t = DataTable(title=f"Contamination: {result.ngram}-grams of each slice found in each "
                  "recipe's train stream", caption="Brown et al. 2020, appendix C")
    for col in ("recipe", "slice", "n-grams", "matched", "docs hit", "example"):
        t.add_column(col, justify="right" if col in ("n-grams", "matched", "docs hit")
                     else "left")
    for c in result.contamination:
        t.add_row(c.recipe, c.slice, f"{c.ngrams:,}", f"{c.rate:.2%}",
                  f"{c.contaminated_documents}/{c.documents}",
                  (" ".join(c.examples[0].split())[:48] if c.examples else "—"))
    out.print(t)
    print_notes(result.notes)


app.add_typer(data_app, name="data")
