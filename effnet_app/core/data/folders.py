"""Find the images a user pointed at: files as given, folders walked in natural order.

A folder that cannot be read is not left out quietly: it comes back as an
``ImageProblem`` in the place its images would have had, so it becomes a row with its
reason like any unreadable file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..jobs import NEVER, CancelToken
from .images import ImageProblem, is_image_path

Found = Path | ImageProblem  # an image to decode, or a folder we could not look into


def expand_paths(paths: Iterable[str | os.PathLike], cancel: CancelToken = NEVER) -> list[Found]:
    """Files as given (each becomes a row, maybe a problem); folders walked for images.

    Folders are walked recursively in natural order ("img2" before "img10"), skipping
    hidden names and following symlinks without looping. Duplicates keep their first
    place. A folder that cannot be listed (no permission, removed meanwhile) is an
    ``ImageProblem`` for that folder, where its contents would have been.
    """
    seen: set[str] = set()
    visited_dirs: set[tuple[int, int]] = set()
    out: list[Found] = []
    for given in paths:
        cancel.raise_if_cancelled()
        path = Path(given)
        found = _walk(path, visited_dirs, cancel) if path.is_dir() else iter([path])
        for item in found:
            where = item.path if isinstance(item, ImageProblem) else item
            key = os.path.normcase(os.path.abspath(where))
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def _walk(folder: Path, visited: set[tuple[int, int]], cancel: CancelToken) -> Iterator[Found]:
    try:
        info = folder.stat()
        identity = (info.st_dev, info.st_ino)
        if identity in visited:  # a symlink loop, or a folder reached twice
            return
        visited.add(identity)
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: natural_key(e.name))
    except OSError as exc:
        yield ImageProblem(folder, f"folder could not be read ({_why(exc)})", repr(exc))
        return
    for count, entry in enumerate(entries):
        if count % 256 == 0:
            cancel.raise_if_cancelled()
        if _is_hidden(entry):
            continue
        child = folder / entry.name
        if _is_dir(entry):
            yield from _walk(child, visited, cancel)
        elif is_image_path(entry.name) and _is_file(entry):
            yield child
        elif is_image_path(entry.name) and entry.is_symlink():
            # A link whose target is gone is still a file the user sees in the folder:
            # a row that says why, never a silent gap.
            yield ImageProblem(child, "broken link (the file it points to is missing)")


def _why(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "it no longer exists"
    return exc.strerror or type(exc).__name__


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key where digit runs compare as numbers; the raw name breaks ties."""
    parts: list[str | int] = re.split(r"(\d+)", name.casefold())
    # re.split alternates text, number, text, ...: odd slots are always digit runs,
    # so two keys only ever compare str with str and int with int.
    parts[1::2] = [int(p) for p in parts[1::2]]
    return parts, name


def _is_hidden(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    # Windows marks hidden files with an attribute rather than a dot; there the
    # attributes come with the directory listing, so this costs no extra system call.
    try:
        attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False
