"""One writer per output folder: ``ladder train`` holds ``OUT/ladder.lock`` while it runs.

The lock is ``fcntl.flock`` on an open file descriptor of the lock file, so the kernel drops it
when the holder exits, however it exits (``kill -9`` included): a lock left by a dead process is
simply taken by the next ``ladder train``, with no stale-lock guesswork. The file holds the
holder's pid, host and start time, read back to say who is in the way. It is the one file not
written by :func:`scaling_ladder.files.open_atomic`: a lock must stay the same inode, so its
text is rewritten in place (a reader may see it empty for a moment, and then says so).

Workers do not inherit the descriptor (``subprocess`` closes it), and they die with the holder
(see :mod:`.executors`), so while the lock is free nothing writes to the folder. ``flock`` is
advisory and local to one machine on some network file systems: two hosts training into one
shared folder are not caught there.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

NAME = "ladder.lock"


@contextmanager
def folder_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``out_dir`` (made if missing) for the ``with`` block.

    Raises :class:`InputError` at once, naming the folder, the holder's pid, host and start
    time and the fix, when another process holds it.
    """
    import fcntl  # POSIX; imported here so that importing the package works elsewhere

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(str(out_dir), f"another ladder train is writing to this folder "
                             f"({holder(path)})", fix="wait for it to finish, or train into "
                             "another --out folder") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a new holder)


def holder(path: str | Path) -> str:
    """Who holds the lock at ``path``, in words (from the file's pid, host and start time)."""
    try:
        info = json.loads(Path(path).read_text())
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its holder is just starting and has not written its pid yet"
