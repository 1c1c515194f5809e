"""Data: sources, tokenizers, recipe mixtures, token files and stage-0 smoke checks.

A **source** is a named body of text (text files, folders, globs; JSON Lines or Parquet with a
text field), split by document hash into train and a held-out validation slice
``val/<source>``. A **recipe** is a named set of weights over sources, with optional filters.
Both are declared in a TOML recipe file (format in :mod:`.recipes`).

Layout of a directory made by :func:`build` (``ladder data build recipes.toml --out DIR``)::

    DIR/manifest.json           written last; absent while a build is unfinished
    DIR/tokenizer.json          BPE only (HF tokenizers format)
    DIR/recipes.toml            copy of the recipe file built from
    DIR/state.json              build keys and SHA-256 of finished files (resume)
    DIR/<recipe>/train-00000.bin ...   a recipe's train stream, in shards
    DIR/<recipe>/documents.npy  its documents in order: (source index, train doc index)
    DIR/val/<source>.bin, .idx  a source's validation slice, and its document ends
    DIR/sources/<source>/{train,val}-00000.bin, .idx   every document of the source,
                                tokenized once (recipes gather from these)
    DIR/sources/<source>/sample.jsonl  raw text sample for the tokenizer round-trip check

Every ``.bin`` is a raw little-endian array of token ids, ``uint16`` when the vocabulary has
at most 65,536 entries (else ``uint32``), in which every document is followed by the EOS id
(``manifest["eos_id"]``); an ``.idx`` holds the cumulative end offset of each document
(``int64``, EOS included). The manifest holds: ``format``, ``version``, ``tokenizer`` (kind,
vocab_size, eos_id, sha256, file), ``dtype``; per source ``sha256`` of its content, ``paths``,
``set_aside`` counts and examples, ``train`` (documents, bytes, tokens, bytes_per_token,
shards with sha256) and ``val`` (file, documents, bytes, tokens, bytes_per_token); per recipe
normalised ``weights``, ``filters``, ``tokens``, ``documents``, ``bytes``, ``bytes_per_token``,
per-source ``epochs`` and ``removed_by_filters``, and ``shards`` (file, sha256, tokens).
Bytes are UTF-8 bytes of the text; tokens count EOS, so ``bytes_per_token`` converts a loss
averaged over every token of a file to bits per byte exactly.

Reading it (the trainer's API)::

    from scaling_ladder.data import open_tokens, bits_per_byte
    ds = open_tokens("DIR")
    ds.vocab_size, ds.eos_id                 # 257, 256 for the byte tokenizer
    stream = ds.train("balanced")            # TokenStream: len(), slicing across shards
    window = stream[i : i + 1025]            # np.ndarray of ids
    val = ds.val("stdlib-code")              # np.memmap
    bpb = bits_per_byte(loss_nats_per_token, ds.bytes_per_token("val/stdlib-code"))
"""

from .builder import BuildResult, build, build_each
from .checks import CheckResult, Contamination, SourceCheck, check, contamination
from .default import default_corpus, default_recipes
from .filters import FilterChain, NearDuplicates, exact_duplicates, near_duplicates
from .recipes import RecipeFile, SourceSpec, load_recipes, mixture_plan, parse_recipes
from .sources import Document, SourceReader
from .tokenfiles import TokenDataset, TokenStream, bits_per_byte, open_tokens
from .tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer, make_tokenizer

__all__ = [
    "BPETokenizer", "BuildResult", "ByteTokenizer", "CheckResult", "Contamination",
    "Document", "FilterChain", "NearDuplicates", "RecipeFile", "SourceCheck", "SourceReader",
    "SourceSpec", "TokenDataset", "TokenStream", "bits_per_byte", "build", "build_each", "check",
    "contamination", "default_corpus", "default_recipes", "exact_duplicates", "load_recipes",
    "load_tokenizer", "make_tokenizer", "mixture_plan", "near_duplicates", "open_tokens",
    "parse_recipes",
]
