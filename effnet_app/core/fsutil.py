"""Files written whole or not at all, names that never replace a file, safe folder names.

Every save in the app goes through ``atomic_file`` / ``atomic_write``: the data goes to a
hidden ``.part`` file beside the target (same file system, so the rename is atomic), is
synced, and only then takes the target's name; on any error, cancel or interrupt the part
file is removed and an existing target is left as it was. Failures of the file system
become an ``AppError`` (or the subclass the caller names) with a sentence about the folder.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .errors import AppError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
MAX_FOLDER_NAME = 100  # characters; well under every file system's 255-byte limit


# --------------------------------------------------------------------------- errors
def disk_error(exc: OSError, target: Path, error_type: type[AppError] = AppError) -> AppError:
    """A sentence about a failed write of ``target``: disk full, or no permission."""
    target = Path(target)
    if exc.errno in _DISK_FULL:
        what = f"The disk is full: {target.name} does not fit in {target.parent}. Free some "
        return error_type(what + "space there and try again.", detail=repr(exc))
    what = f"Could not write {target.name} in {target.parent} ({exc.strerror or exc}). "
    return error_type(what + "Check that you may write there and try again.", repr(exc))


@contextmanager
def disk_errors(target: Path, error_type: type[AppError] = AppError) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into ``disk_error``'s sentence."""
    try:
        yield
    except OSError as exc:
        raise disk_error(exc, target, error_type) from exc


# --------------------------------------------------------------------------- atomic saves
def _part_path(target: Path) -> Path:
    return target.with_name(f".{target.name[:100]}.{uuid.uuid4().hex[:8]}.part")


def remove_stale_parts(target: Path, older_than: float = 600.0) -> int:
    """Delete part files of ``target`` left by a process that was killed mid-write.

    A live writer touches its part file continuously, so one untouched for
    ``older_than`` seconds belongs to nobody. Returns how many were removed.
    """
    import time

    removed = 0
    pattern = f".{target.name[:100]}.*.part"
    for part in target.parent.glob(pattern) if target.parent.is_dir() else ():
        try:
            if time.time() - part.stat().st_mtime > older_than:
                part.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _open_part(part: Path, mode: str) -> IO:
    # `open` is looked up in this module, so a test can replace it to simulate a full disk.
    if mode == "wb":
        return open(part, "xb")
    return open(part, "x", encoding="utf-8", newline="")


def _sync_folder(folder: Path) -> None:
    with suppress(OSError):  # makes the rename durable; not every platform opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "wb", *, error_type: type[AppError] = AppError
) -> Iterator[IO]:
    """A new file that takes ``path``'s name only if the block ends without an exception.

    ``mode`` is "wb" (bytes) or "w" (UTF-8 text, newlines written as given). Parent folders
    are created. Errors raised by the block pass through unchanged (the part file is
    removed); errors of opening, syncing and renaming become ``error_type``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes new files: mode 'wb' or 'w', not {mode!r}")
    target = Path(path).expanduser()
    part = _part_path(target)
    with disk_errors(target, error_type):
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with disk_errors(target, error_type):
            out = _open_part(part, mode)
        with out:
            yield out
            with disk_errors(target, error_type):
                out.flush()
                os.fsync(out.fileno())
        with disk_errors(target, error_type):
            os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def atomic_write(
    path: str | os.PathLike, data: bytes | str, *, error_type: type[AppError] = AppError
) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` all at once; returns the path written.

    File names that are not UTF-8 reach Python as lone surrogates; they are written back
    as the bytes they stand for, so a listed name still names its file.
    """
    payload = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    target = Path(path).expanduser()
    with atomic_file(target, "wb", error_type=error_type) as out:
        with disk_errors(target, error_type):
            out.write(payload)
    return target


# --------------------------------------------------------------------------- names
def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.stem} ({n}){path.suffix}")


def unique_path(path: str | os.PathLike) -> Path:
    """``path`` if nothing is there, else the first free "name (2).jpg", "name (3).jpg"…"""
    path = Path(path)
    candidate = path
    for n in itertools.count(2):
        if not os.path.lexists(candidate):
            return candidate
        candidate = _numbered(path, n)
    raise AssertionError("unreachable")


def _link_then_unlink(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, raising FileExistsError rather than replacing ``dst``."""
    try:
        os.link(src, dst)  # fails if dst exists: no window in which a file could be replaced
    except FileExistsError:
        raise
    except OSError:
        if not os.path.lexists(src):
            raise
        # No hard links on this file system (FAT, some shares): check, then rename. Windows
        # refuses to rename onto a file; elsewhere the check is the guard.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def rename_no_clobber(src: str | os.PathLike, wanted: str | os.PathLike) -> Path:
    """Give ``src`` the name ``wanted``, or ``unique_path``'s next free one; returns it.

    Never replaces an existing file. Both must be on the same file system.
    """
    src, wanted = Path(src), Path(wanted)
    candidate = wanted
    for n in itertools.count(2):
        try:
            _link_then_unlink(src, candidate)
            return candidate
        except FileExistsError:
            candidate = _numbered(wanted, n)
    raise AssertionError("unreachable")


def safe_folder_name(label: str) -> str:
    """A label as a folder name valid everywhere: no separators, reserved names or dots first."""
    name = _UNSAFE_CHARS.sub("_", str(label)).strip()
    name = name.lstrip(". ").rstrip(". ")  # hidden on Unix; trailing dots vanish on Windows
    name = name[:MAX_FOLDER_NAME].rstrip(". ")
    if name.split(".", 1)[0].strip().upper() in _RESERVED:
        name = "_" + name
    return name or "unnamed"
