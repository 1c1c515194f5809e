"""W&B local run folders -> observations (the ``wandb`` extra).

``wandb/run-*`` and ``wandb/offline-run-*`` folders, found anywhere under the path given (or the
path itself): each is one run, named by its display name (its id where W&B had none). The run's
history, config and summary come from its transaction log ``run-<id>.wandb``: records of
W&B's own protobuf ``Record`` (``wandb.proto.wandb_internal_pb2``), framed as a LevelDB log
(32 KiB blocks; each piece a CRC-32, a length, a type: whole, first, middle or last). W&B >= 0.22
reads the log in its Go core only and ships no Python reader, so the framing is read here and
every record is parsed by W&B's own message class. ``files/config.yaml`` and
``files/wandb-summary.json``, where a synced run has them, are read too (the config file wins).

    ladder import wandb wandb/ --params-from config -o runs.csv
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from ...errors import InputError
from .common import (
    MissingExtraError,
)
from .config import flatten

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


def record_class():
    try:
        from wandb.proto.wandb_internal_pb2 import Record
    except ImportError:
        raise MissingExtraError('reading W&B run folders needs wandb: '
                                'pip install "scaling-ladder[wandb]"') from None
    return Record


def read_log(path: Path):
    """The records of a ``.wandb`` transaction log, in order; a last record cut short (a run
    still writing, or killed) ends the log and is counted in ``read_log.cut``."""
    record = record_class()
    data = path.read_bytes()
    if len(data) < HEADER or data[:4] != b":W&B":
        raise InputError(str(path), "is not a W&B transaction log (no :W&B header)",
                         fix="pass the run folder W&B wrote (wandb/run-* or offline-run-*)")
    pos, pieces, records, cut = HEADER, [], [], False
    while pos < len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # a block's trailer: zeros
            pos += room
            continue
        if pos + HEADER > len(data):
            cut = True
            break
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if length == 0 and kind == 0:  # zero padding after a flush
            pos += room
            continue
        body = data[pos + HEADER: pos + HEADER + length]
        if len(body) < length:
            cut = True
            break
        if kind not in _CRC or zlib.crc32(body, _CRC[kind]) != crc:
            raise InputError(str(path), f"is corrupt at byte {pos:,} (checksum)",
                             fix="copy the run folder again; W&B cannot read it either")
        pos += HEADER + length
        pieces.append(body)
        if kind in (FULL, LAST):
            rec = record()
            rec.ParseFromString(b"".join(pieces))
            records.append(rec)
            pieces = []
    return records, cut or bool(pieces)


def _value(item) -> object:
    return json.loads(item.value_json)


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def read_run(folder: Path) -> dict:
    """One run folder: ``name``, ``id``, ``config`` (flat), ``summary``, ``history`` (records),
    ``where`` (its log) and ``cut`` (the log ended mid-record)."""
    logs = sorted(folder.glob("*.wandb"))
    if not logs:
        raise InputError(str(folder), "holds no .wandb transaction log",
                         fix="pass the run folder W&B wrote (wandb/run-* or offline-run-*)")
    run = {"name": None, "id": folder.name.rpartition("-")[2], "config": {}, "summary": {},
           "history": [], "where": str(logs[-1]), "cut": False}
    for log in logs:
        records, cut = read_log(log)
        run["cut"] |= cut
        for rec in records:
            what = rec.WhichOneof("record_type")
            if what == "run":
                run["name"] = rec.run.display_name or rec.run.run_id or run["name"]
                run["id"] = rec.run.run_id or run["id"]
                run["config"].update({_key(i): _value(i) for i in rec.run.config.update})
            elif what == "config":
                run["config"].update({_key(i): _value(i) for i in rec.config.update})
                for item in rec.config.remove:
                    run["config"].pop(_key(item), None)
            elif what == "history":
                row = {_key(i): _value(i) for i in rec.history.item}
                row.setdefault("_step", rec.history.step.num)
                run["history"].append(row)
            elif what == "summary":
                run["summary"].update({_key(i): _value(i) for i in rec.summary.update})
    files = folder / "files"
    if (files / "config.yaml").is_file():
        import yaml  # a dependency of wandb

        with open(files / "config.yaml", encoding="utf-8") as fh:
            run["config"].update(yaml.safe_load(fh) or {})
    if (files / "wandb-summary.json").is_file():
        run["summary"].update(json.loads((files / "wandb-summary.json").read_text("utf-8")))
    run["config"] = {k: v for k, v in flatten(run["config"]).items()
                     if not k.startswith("_wandb")}
    run["name"] = run["name"] or run["id"]
    return run


def run_folders(path: Path) -> list[Path]:
    """``run-*`` / ``offline-run-*`` folders at or under ``path`` (``latest-run`` skipped)."""
    if not path.is_dir():
        raise InputError(str(path), "folder not found", fix="name the wandb/ folder")

    def is_run(p: Path) -> bool:
        return (p.name.startswith(("run-", "offline-run-")) and not p.is_symlink()
                and p.is_dir() and any(p.glob("*.wandb")))

    found = [path] if is_run(path) else sorted(p for p in path.rglob("*run-*") if is_run(p))
    if not found:
        raise InputError(str(path), "holds no W&B run folders (run-* or offline-run-* with a "
                         ".wandb log)", fix="name the wandb/ folder the runs wrote")
    return found
