"""Who is writing a part file: a lock held while it is written, and its identity.

A run that writes ``FILE.part`` for a long time locks it (``flock``), so a second run
with the same output sees a live writer and stays away, while a part file that a killed
run left (its lock went with the process) is free to replace. Where there are no such
locks (Windows, some network shares) nothing is refused, and ``OutputFile`` still checks
at the end that its part file is the one it wrote (``identity``) before renaming it.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

Identity = tuple[int, int]  # (device, inode)


def lock(stream: IO) -> None:
    """Hold ``stream``'s file for this process until the stream is closed (where possible)."""
    if fcntl is not None:
        with suppress(OSError):  # a file system without locks
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX)


def held_by_another(path: Path) -> bool:
    """Whether a live writer holds the regular file ``path`` locked."""
    if fcntl is None or os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # given back when fd is closed
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def identity(stream: IO) -> Identity | None:
    """(device, inode) of the file an open stream writes."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def still_names(path: Path, wanted: Identity | None) -> bool:
    """Whether ``path`` (not followed) is still the file of that identity."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return wanted is None or (info.st_dev, info.st_ino) == wanted


def try_lock(stream: IO) -> bool:
    """Hold ``stream``'s file for this process unless a live writer holds it: whether held.

    Where there are no locks (Windows, a file system without them) it says True.
    """
    if fcntl is None:
        return True
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks
        return True
    return True
