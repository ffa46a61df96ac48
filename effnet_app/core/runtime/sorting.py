"""Sorting classified images into one folder per label (``results_io`` re-exports it)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AppError
from ..fsutil import rename_no_clobber, safe_folder_name
from ..jobs import NEVER, Cancelled, CancelToken, Progress, RateMeter
from .classifier import ImageResult


# --------------------------------------------------------------------------- sorting
@dataclass(frozen=True)
class SortSummary:
    """What ``sort_into_folders`` did; ``errors`` pairs each failed file with the reason."""

    destination: Path
    move: bool = False
    copied: int = 0
    moved: int = 0
    renamed: int = 0
    skipped_low_confidence: int = 0
    skipped_problems: int = 0
    errors: tuple[tuple[Path, str], ...] = ()
    folders: tuple[Path, ...] = ()
    min_confidence: float | None = None
    placed: tuple[tuple[Path, Path], ...] = ()  # (where it was, where it is now)

    def sentence(self) -> str:
        verb = "moved" if self.move else "copied"
        done = self.moved if self.move else self.copied
        parts = [
            f"{verb.capitalize()} {_count(done, 'image')} into "
            f"{_count(len(self.folders), 'folder')} in {self.destination}"
        ]
        if self.renamed:
            parts.append(f"{self.renamed} renamed to avoid overwriting")
        if self.skipped_low_confidence:
            below = f"{(self.min_confidence or 0) * 100:g}%"
            parts.append(f"{self.skipped_low_confidence} below {below} left in place")
        if self.skipped_problems:
            parts.append(f"{_count(self.skipped_problems, 'image')} with problems left out")
        if self.errors:
            parts.append(f"{len(self.errors)} could not be {verb}: {_listed(self.errors)}")
        return "; ".join(parts) + "."


class SortCancelled(Cancelled):
    """The sort was cancelled between files; ``summary`` says what was done until then."""

    def __init__(self, summary: SortSummary) -> None:
        super().__init__(summary.sentence())
        self.summary = summary


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _listed(errors: Sequence[tuple[Path, str]], shown: int = 3) -> str:
    text = ", ".join(f"{Path(p).name} ({why})" for p, why in errors[:shown])
    return text + (f" and {len(errors) - shown} more" if len(errors) > shown else "")


def _same_device(src: Path, folder: Path) -> bool:
    return os.stat(src).st_dev == os.stat(folder).st_dev


def _already_in(src: Path, folder: Path) -> bool:
    try:
        return src.parent.samefile(folder)
    except OSError:
        return False


def _place(src: Path, folder: Path, move: bool) -> Path:
    """Copy or move ``src`` into ``folder`` under a name no file has; returns the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = folder / src.name
    if move and _same_device(src, folder):
        return rename_no_clobber(src, wanted)
    # Copy beside the final name first, so a half-copied file never takes a real name.
    part = folder / f".{src.name[:100]}.{uuid.uuid4().hex[:8]}.part"
    try:
        shutil.copy2(src, part)
        final = rename_no_clobber(part, wanted)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if move:
        os.unlink(src)
    return final


class _Sorter:
    """Sorts one file at a time and keeps the tally for the summary."""

    def __init__(self, destination: Path, move: bool, min_confidence: float | None) -> None:
        self.destination, self.move, self.min_confidence = destination, move, min_confidence
        self.counts: Counter[str] = Counter()
        self.errors: list[tuple[Path, str]] = []
        self.folders: dict[Path, None] = {}  # an ordered set: folders in order of first use
        self.placed: list[tuple[Path, Path]] = []

    def sort(self, result: ImageResult) -> str:
        """Handle one result; returns a line for the progress message."""
        src, top = Path(result.path), result.top1
        if result.problem or top is None:
            self.counts["skipped_problems"] += 1
            return f"Left out {src.name}: it could not be classified"
        if self.min_confidence is not None and top.probability < self.min_confidence:
            self.counts["skipped_low_confidence"] += 1
            return f"Left {src.name} in place: {top.probability:.0%} {top.label}"
        folder = self.destination / safe_folder_name(top.label)
        try:
            final = src if _already_in(src, folder) else _place(src, folder, self.move)
        except OSError as exc:
            self.errors.append((src, _reason(src, exc)))
            return f"Could not sort {src.name}: {self.errors[-1][1]}"
        self.folders[folder] = None
        self.placed.append((src, final))
        self.counts["moved" if self.move else "copied"] += 1
        self.counts["renamed"] += int(final.name != src.name)
        return f"{src.name} → {folder.name}"

    def summary(self) -> SortSummary:
        return SortSummary(
            self.destination,
            self.move,
            errors=tuple(self.errors),
            folders=tuple(self.folders),
            min_confidence=self.min_confidence,
            placed=tuple(self.placed),
            **self.counts,
        )


def _reason(src: Path, exc: OSError) -> str:
    if not os.path.lexists(src):
        return f"no longer at {src}"
    return str(exc.strerror or exc)


def sort_into_folders(
    results: Iterable[ImageResult],
    destination: str | os.PathLike,
    *,
    move: bool = False,
    min_confidence: float | None = None,
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, SortSummary]:
    """Job: copy (or move) each classified image into ``destination/<top-1 label>/``.

    Never overwrites: a clashing name becomes "name (2).jpg". Problem rows, and images
    whose top-1 probability is below ``min_confidence``, are counted and left where they
    are. A file that vanished or cannot be copied is recorded in ``errors`` and the job
    goes on. An image already in its label folder is counted as done and not touched
    (sorting a sorted folder again changes nothing). Cancel is checked between files: what was done stays done, and the
    ``SortCancelled`` raised (a ``Cancelled``) carries the summary up to then.
    """
    results = list(results)
    root = Path(destination).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AppError(
            f"Could not create the folder {root} ({exc.strerror or exc}). "
            "Choose another destination folder.",
            detail=repr(exc),
        ) from exc
    sorter = _Sorter(root, move, min_confidence)
    meter = RateMeter(len(results), "images")
    verb = "Moving" if move else "Copying"
    yield meter.progress(0, f"{verb} {_count(len(results), 'image')} into {root}…")
    for done, result in enumerate(results, 1):
        if cancel.cancelled:
            raise SortCancelled(sorter.summary())
        message = sorter.sort(result)
        yield meter.progress(done, message)
    return sorter.summary()
