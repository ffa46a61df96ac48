"""Files written whole or not at all, names that never replace a file, safe folder names.

Every save in the app goes through ``atomic_file`` / ``atomic_write`` (or, for a file
written bit by bit, ``OutputFile``): the data goes to a ``.part`` file beside the target
(same file system, so the rename is atomic), is synced, and only then takes the target's
name; on any error, cancel or interrupt the part file is removed and an existing target
is left as it was. An existing file keeps its mode; a link is followed and its target
written, the link kept; a device, a FIFO or ``/dev/stdout`` is written through, never
replaced. Failures of the file system become an ``AppError`` (or the subclass the caller
names) with a sentence about the folder.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from . import filelocks
from .errors import AppError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
_MAGIC_LINK_ROOTS = ("/proc/", "/dev/fd/")  # links that name an open file, not a path
MAX_FOLDER_NAME = 100  # characters; well under every file system's 255-byte limit


# --------------------------------------------------------------------------- errors
def disk_error(exc: OSError, target: Path, error_type: type[AppError] = AppError) -> AppError:
    """A sentence about a failed write of ``target``: disk full, or no permission."""
    target = Path(target)
    if exc.errno in _DISK_FULL and _is_special(target):
        what = f"Could not write to {target}: the device is full (no space left on it). "
        return error_type(what + "Choose another output.", detail=repr(exc))
    if exc.errno in _DISK_FULL:
        what = f"The disk is full: {target.name} does not fit in {target.parent}. Free some "
        return error_type(what + "space there and try again.", detail=repr(exc))
    what = f"Could not write {target.name} in {target.parent} ({exc.strerror or exc}). "
    return error_type(what + "Check that you may write there and try again.", repr(exc))


def _is_special(path: Path) -> bool:
    """Whether ``path`` is there and is neither a regular file nor a folder (a device)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextmanager
def disk_errors(target: Path, error_type: type[AppError] = AppError) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into ``disk_error``'s sentence."""
    try:
        yield
    except OSError as exc:
        raise disk_error(exc, target, error_type) from exc


# --------------------------------------------------------------------------- identity
def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of what ``path`` names, links followed; None when nothing is there."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def same_file_among(path: str | os.PathLike, files: Iterable[str | os.PathLike]) -> Path | None:
    """The first of ``files`` that is the very file ``path`` names (a link, a hard link)."""
    wanted = file_identity(path)
    if wanted is None:
        return None
    return next((Path(f) for f in files if file_identity(f) == wanted), None)


# --------------------------------------------------------------------------- targets
def _through_magic_link(path: Path) -> bool:
    """Whether ``path`` is, or leads by links to, a name for an open file (``/dev/stdout``)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links in a row
        if current.startswith(_MAGIC_LINK_ROOTS):
            return True
        if not os.path.islink(current):
            return False
        link = os.readlink(current)
        current = os.path.normpath(os.path.join(os.path.dirname(current), link))
    return False


def write_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """(the file to write for ``path``, whether to write through it rather than replace it).

    A link is followed to the file it names, so the link stays. Anything that exists and
    is not a regular file (a device, a FIFO, a terminal, ``/dev/stdout``) is written
    through: renaming over it would put a plain file where it was.
    """
    path = Path(path).expanduser()
    if _through_magic_link(path):
        return path, True
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return target, False
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    return target, not stat.S_ISREG(mode)


# --------------------------------------------------------------------------- atomic saves
def _part_path(target: Path) -> Path:
    return target.with_name(f".{target.name[:100]}.{uuid.uuid4().hex[:8]}.part")


def visible_part_path(target: str | os.PathLike) -> Path:
    """``FILE.part``: where a long run keeps what it wrote so far, for the user to see."""
    target = Path(target)
    return target.with_name(target.name + ".part")


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


def _open(path: Path, mode: str, how: str) -> IO:
    """Bytes ("wb") or UTF-8 text with newlines as given ("w"), opened ``how`` ("x", "a")."""
    # `open` is looked up in this module, so a test can replace it to simulate a full disk.
    if mode == "wb":
        return open(path, how + "b")
    return open(path, how, encoding="utf-8", newline="")


def _open_part(part: Path, mode: str) -> IO:
    return _open(part, mode, "x")  # a new file only: never one another writer made


def _open_visible_part(part: Path, mode: str) -> IO:
    """Open ``FILE.part``, replacing one an earlier, interrupted run left (a regular file)."""
    try:
        return _open_part(part, mode)
    except FileExistsError:
        if not stat.S_ISREG(os.lstat(part).st_mode):
            raise  # a link, a folder or a device by that name is not ours to replace
        part.unlink()
        return _open_part(part, mode)


def _open_to_append(part: Path, mode: str) -> IO:
    """Open ``FILE.part`` that a resumed run goes on writing, at its end (a new one if none)."""
    try:
        if not stat.S_ISREG(os.lstat(part).st_mode):
            raise FileExistsError(errno.EEXIST, "not a regular file", str(part))
    except FileNotFoundError:
        return _open_part(part, mode)
    stream = _open(part, mode, "r+")  # not "a": the position must be where writes go
    stream.seek(0, os.SEEK_END)
    return stream


def _open_through(target: Path, mode: str) -> IO:
    # Append: a device ignores it, and a file behind /dev/stdout keeps what it holds.
    return _open(target, mode, "a")


def _copy_owner_and_mode(part: Path, target: Path) -> None:
    try:
        info = os.stat(target)
    except OSError:
        return  # a new file: the umask decides, as for any file
    with suppress(OSError):  # only root may give a file away; the mode is what matters
        os.chown(part, info.st_uid, info.st_gid)
    os.chmod(part, stat.S_IMODE(info.st_mode))


def _sync_folder(folder: Path) -> None:
    with suppress(OSError):  # makes the rename durable; not every platform opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class OutputFile:
    """A file written over time that takes its name only at ``commit()``.

    ``stream`` is open from the start (bytes for mode "wb", UTF-8 text for "w"); it
    writes into a part file beside the target (hidden, or ``FILE.part`` with
    ``visible_part``), or straight into a device, FIFO or ``/dev/stdout``. ``close``
    without a commit removes the part file unless asked to keep it. With ``append`` (and
    ``visible_part``) an existing ``FILE.part`` is written on at its end, not replaced.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mode: str = "wb",
        *,
        visible_part: bool = False,
        append: bool = False,
        error_type: type[AppError] = AppError,
    ) -> None:
        if mode not in ("wb", "w"):
            raise ValueError(f"files are written new: mode 'wb' or 'w', not {mode!r}")
        self.error_type = error_type
        given = Path(path).expanduser()
        with disk_errors(given, error_type):
            self.target, through = write_target(given)
        self.part: Path | None = None
        if through:
            with disk_errors(self.target, error_type):
                self.stream = _open_through(self.target, mode)
            return
        part = visible_part_path(self.target) if visible_part else _part_path(self.target)
        if filelocks.held_by_another(part):
            raise error_type(
                f"Another run is writing {part.name} in {part.parent} right now. Wait for it "
                "to finish, or choose another output file."
            )
        with disk_errors(self.target, error_type):
            self.target.parent.mkdir(parents=True, exist_ok=True)
            opener = _open_to_append if append else _open_visible_part
            self.stream = (opener if visible_part else _open_part)(part, mode)
        filelocks.lock(self.stream)
        self.part, self._identity = part, filelocks.identity(self.stream)
        try:
            with disk_errors(self.target, error_type):
                _copy_owner_and_mode(part, self.target)
        except BaseException:
            self.close()
            raise

    @property
    def written_to(self) -> Path:
        """Where the data is now: the part file until the commit, else the target."""
        return self.part or self.target

    def commit(self) -> Path:
        """Flush, sync and give the part file the target's name; returns the target."""
        with disk_errors(self.target, self.error_type):
            self.stream.flush()
            if self.part is not None:
                os.fsync(self.stream.fileno())
                self._check_ours()
            self.stream.close()
            if self.part is not None:
                os.replace(self.part, self.target)
        if self.part is not None:
            self.part = None
            _sync_folder(self.target.parent)
        return self.target

    def _check_ours(self) -> None:
        """Refuse to rename (or remove) a part file another program put in our part's place."""
        if self.part is not None and not filelocks.still_names(self.part, self._identity):
            part, self.part = self.part, None
            with suppress(OSError):
                self.stream.close()
            raise self.error_type(
                f"{part.name} was replaced by another program while this run wrote it, so "
                f"it was not renamed to {self.target.name}. Run again, with an output file "
                "of its own."
            )

    def close(self, keep_part: bool = False) -> None:
        """End without a commit: the part file is removed unless ``keep_part``."""
        with suppress(OSError):
            self.stream.close()
        if self.part is not None and not keep_part:
            if filelocks.still_names(self.part, self._identity):  # never another's file
                self.part.unlink(missing_ok=True)


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "wb", *, error_type: type[AppError] = AppError
) -> Iterator[IO]:
    """A new file that takes ``path``'s name only if the block ends without an exception.

    ``mode`` is "wb" (bytes) or "w" (UTF-8 text, newlines written as given). Parent folders
    are created. Errors raised by the block pass through unchanged (the part file is
    removed); errors of opening, syncing and renaming become ``error_type``.
    """
    out = OutputFile(path, mode, error_type=error_type)
    try:
        yield out.stream
        out.commit()
    except BaseException:
        out.close()
        raise


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
