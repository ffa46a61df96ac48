"""A labelled dataset for training: found, read once, checked, and split deterministically.

``scan(source)`` is a job that accepts a class-per-folder tree (nested folders belong to
their top-level class), a folder with ``train/`` and ``val/`` (each class-per-folder,
used as it is) or a CSV of ``path,label`` rows. Every file is read once on a small
thread pool: its SHA-256 finds exact duplicates and the same image under two classes,
and a draft decode through ``images.load_image`` (the very decode training will do)
catches truncated, corrupt and non-image files. What is wrong becomes ``DataCheck`` rows;
only a source with nothing to check (missing, unreadable, no images at all) raises
``DatasetError``, from the job's first step.
``near_duplicate_groups`` and ``split`` (from ``dataset_checks``) keep near-copies on one
side of a stratified train/validation split.
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import os
import stat
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError
from ..jobs import NEVER, CancelToken, Progress, RateMeter
from . import dataset_checks as checks
from .dataset_checks import DataCheck, Split, near_duplicate_groups, split  # noqa: F401
from .folders import Found, _is_hidden, expand_paths, natural_key
from .images import ImageProblem, is_image_path
from .pipeline import DecodePipeline
from .subset import without  # noqa: F401 (re-exported: the dataset after edits)

READ_THREADS = 3  # reading is mostly I/O and hashing (GIL released); decoding is a draft
SCAN_TARGET = 64  # draft-decode to this shorter side when no model input size is given
_PROGRESS_EVERY = 32
_VAL_NAMES = ("val", "valid", "validation")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # index into Dataset.classes
    digest: str  # SHA-256 hex of the file's bytes


@dataclass(frozen=True)
class ClassReport:
    name: str
    count: int  # usable images (after dropping exact duplicates within the class)
    unreadable: tuple[tuple[Path, str], ...]  # (file, reason)
    duplicates: int  # exact duplicates dropped in this class
    small: int  # images far smaller than the model's input
    folder: Path | None
    examples: tuple[Path, ...]  # up to 3 usable files, for thumbnails


@dataclass(frozen=True)
class Dataset:
    source: Path
    layout: str  # "folders" | "train_val" | "csv"
    classes: tuple[str, ...]  # sorted naturally; index = label
    samples: tuple[Sample, ...]  # every usable image, in a stable order
    reports: tuple[ClassReport, ...]  # one per class, same order as classes
    conflicts: tuple[tuple[Path, ...], ...]  # the same bytes under two or more classes
    checks: tuple[DataCheck, ...]
    fixed_val: frozenset[int] | None = None  # train_val: indices into samples in val/

    @property
    def errors(self) -> tuple[DataCheck, ...]:
        return tuple(check for check in self.checks if check.level == "error")

    @property
    def warnings(self) -> tuple[DataCheck, ...]:
        return tuple(check for check in self.checks if check.level == "warning")

    @property
    def usable(self) -> bool:
        return not self.errors

    def summary(self) -> dict:
        """Plain JSON data for a bundle manifest: where, how many, and what was wrong."""
        return {
            "source": str(self.source),
            "layout": self.layout,
            "classes": list(self.classes),
            "counts": {report.name: report.count for report in self.reports},
            "images": len(self.samples),
            "validation_images": None if self.fixed_val is None else len(self.fixed_val),
            "problems": {
                "unreadable": sum(len(report.unreadable) for report in self.reports),
                "duplicates": sum(report.duplicates for report in self.reports),
                "conflicts": sum(len(group) for group in self.conflicts),
                "small": sum(report.small for report in self.reports),
            },
            "checks": [
                {"level": c.level, "code": c.code, "sentence": c.sentence, "class": c.class_name}
                for c in self.checks
            ],
        }


# ---------------------------------------------------------------------------------------
# Listing: which files belong to which class


@dataclass
class _Listing:
    layout: str
    entries: list[tuple[Found, str, bool]]  # (file or folder problem, class name, in val/)
    folders: dict[str, Path]  # class name -> its folder (the train/ one in train_val)
    checks: list[DataCheck]


def scan(
    source: str | os.PathLike, *, min_side: int | None = None, cancel: CancelToken = NEVER
) -> Generator[Progress, None, Dataset]:
    """Find, read and check a labelled dataset; returns the ``Dataset``.

    ``min_side`` is the model's input size: images whose shorter side is under a quarter
    of it count as small. Raises ``DatasetError`` at the first step, before any image is
    read, when ``source`` does not exist, cannot be read or holds no images at all.
    """
    root = Path(os.path.abspath(source))
    listing = _list_source(root, cancel)
    if not listing.entries and not any(check.level == "error" for check in listing.checks):
        found = "\n".join(check.sentence for check in listing.checks) or None
        raise DatasetError(f"No images were found in '{root}'; {_HOW}", found)
    records = yield from _read_all(listing.entries, min_side, cancel)
    return _assemble(root, listing, records, min_side)


_HOW = "choose a folder with one sub-folder of images per class, or a CSV of path,label rows."


def _list_source(root: Path, cancel: CancelToken) -> _Listing:
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".tsv", ".txt"):
            raise DatasetError(f"'{root.name}' is not a folder or a CSV file; {_HOW}")
        return _list_csv(root, cancel)
    if not root.is_dir():
        raise DatasetError(f"'{root}' does not exist; {_HOW}")
    parts, loose, link_checks = _subfolders(root)
    if not parts and not link_checks:
        why = "holds images but no class folders" if loose else "is empty"
        raise DatasetError(f"The folder '{root}' {why}; {_HOW}")
    names = {name.casefold(): name for name in parts}
    val = next((names[n] for n in _VAL_NAMES if n in names), None)
    if "train" in names and val is not None:
        return _list_train_val(parts, parts[names["train"]], parts[val], cancel)
    listing = _Listing("folders", [], {}, link_checks)
    _add_classes(listing, parts, False, cancel)
    if loose:
        listing.checks.append(checks.loose_files(loose))
    return listing


def _subfolders(folder: Path) -> tuple[dict[str, Path], int, list[DataCheck]]:
    """Class folders by name (natural order), loose images, and links we left out."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: natural_key(e.name))
    except OSError as exc:
        raise DatasetError(
            f"The folder '{folder}' could not be read ({exc.strerror or exc}); "
            "check that it exists and that you may open it."
        ) from exc
    real = os.path.realpath(folder)
    parts: dict[str, Path] = {}
    loose, problems = 0, []
    for entry in entries:
        if _is_hidden(entry):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:  # a link that loops onto itself
            problems.append(checks.link_problem(entry.name, loop=True))
            continue
        if is_dir:
            target = os.path.realpath(entry.path)
            if real == target or real.startswith(target.rstrip(os.sep) + os.sep):
                problems.append(checks.link_problem(entry.name, loop=True))  # leads back up
            else:
                parts[entry.name] = Path(entry.path)
        elif entry.is_symlink() and not os.path.exists(entry.path):
            problems.append(checks.link_problem(entry.name, loop=False))
        elif is_image_path(entry.name):
            loose += 1
    return parts, loose, problems


def _add_classes(
    listing: _Listing, parts: dict[str, Path], in_val: bool, cancel: CancelToken
) -> None:
    """Walk each class folder; an empty one is a warning and not a class."""
    for name, folder in parts.items():
        found = expand_paths([folder], cancel)
        if not found:
            if name not in listing.folders:
                listing.checks.append(checks.empty_class(name))
            continue
        listing.folders.setdefault(name, folder)
        listing.entries += [(item, name, in_val) for item in found]


def _list_train_val(
    others: dict[str, Path], train: Path, val: Path, cancel: CancelToken
) -> _Listing:
    train_parts, train_loose, train_links = _subfolders(train)
    val_parts, val_loose, val_links = _subfolders(val)
    listing = _Listing("train_val", [], {}, train_links + val_links)
    _add_classes(listing, train_parts, False, cancel)
    _add_classes(listing, val_parts, True, cancel)
    listing.checks = [  # a class with images on either side is not an empty class
        check
        for check in listing.checks
        if check.code != "empty_class" or check.class_name not in listing.folders
    ]
    if train_loose + val_loose:
        listing.checks.append(checks.loose_files(train_loose + val_loose))
    unused = [name for name, path in others.items() if path not in (train, val)]
    if unused:
        listing.checks.append(checks.unused_folders(unused))
    return listing


_HEADERS = [
    [path, label]
    for path in ("path", "file", "filename", "file_name", "filepath", "image", "image_path")
    for label in ("label", "class", "class_name", "category", "target")
]


def _list_csv(path: Path, cancel: CancelToken) -> _Listing:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"The CSV file '{path.name}' could not be read ({exc}); save it as UTF-8 text."
        ) from exc
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in ",\t;" if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    listing = _Listing("csv", [], {}, [])
    missing, bad, rows = [], [], 0
    for cells in reader:
        if reader.line_num % 256 == 0:
            cancel.raise_if_cancelled()
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        rows += 1
        if rows == 1 and [cell.casefold() for cell in cells[:2]] in _HEADERS:
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            bad.append(reader.line_num)
            continue
        file = Path(cells[0]) if os.path.isabs(cells[0]) else path.parent / cells[0]
        if os.path.exists(file):
            listing.entries.append((file, cells[1], False))
        else:
            missing.append(Path(cells[0]))
    if not listing.entries and not missing:
        raise DatasetError(f"The CSV file '{path.name}' lists no images; {_HOW}")
    if bad:
        listing.checks.append(checks.bad_rows(bad))
    if missing:
        listing.checks.append(checks.missing_files(missing, usable=bool(listing.entries)))
    return listing


# ---------------------------------------------------------------------------------------
# Reading: one hash and one draft decode per file, on a few threads, in order


@dataclass(frozen=True)
class _Read:
    digest: str | None
    size: tuple[int, int] | None  # decoded (drafted) size; None when unreadable
    problem: str | None  # why the file cannot be used


class _Reader(DecodePipeline):
    """The shared decode pipeline, hashing each file just before its draft decode."""

    def decode(self, path: str | os.PathLike) -> _Read:
        digest = _sha256(Path(path))
        item = super().decode(path)
        if isinstance(item, ImageProblem):
            return _Read(digest, None, item.reason)
        if digest is None:
            return _Read(None, None, "could not be read")
        return _Read(digest, item, None)


def _sha256(path: Path) -> str | None:
    """The file's SHA-256, or None when it is not a regular file that can be read."""
    try:  # non-blocking open: a FIFO among the files must not hang the scan
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError):
        return None
    with os.fdopen(fd, "rb") as fp:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return hashlib.file_digest(fp, "sha256").hexdigest()
        except OSError:
            return None


def _read_all(
    entries: list[tuple[Found, str, bool]], min_side: int | None, cancel: CancelToken
) -> Generator[Progress, None, list[_Read]]:
    reader = _Reader(
        operator.attrgetter("size"), target_size=min_side or SCAN_TARGET, threads=READ_THREADS
    )
    meter = RateMeter(len(entries), "images")
    yield meter.progress(0, "Checking images")
    records: list[_Read] = []
    for _path, item in reader.run([found for found, _, _ in entries], cancel):
        if isinstance(item, ImageProblem):  # a folder that could not be listed
            item = _Read(None, None, item.reason)
        records.append(item)
        if len(records) % _PROGRESS_EVERY == 0 or len(records) == len(entries):
            yield meter.progress(len(records), "Checking images")
    cancel.raise_if_cancelled()
    return records


# ---------------------------------------------------------------------------------------
# Assembling: duplicates, conflicts and counts per class, then the checks


@dataclass
class _Tally:
    paths: list[Path] = field(default_factory=list)  # usable, in order
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: int = 0
    conflicted: int = 0
    small: int = 0
    val: int = 0


def _assemble(root: Path, listing: _Listing, records: list[_Read], min_side: int | None) -> Dataset:
    classes = tuple(sorted({name for _, name, _ in listing.entries}, key=natural_key))
    index = {name: i for i, name in enumerate(classes)}
    rows = sorted(
        (
            (index[name], in_val, found.path if isinstance(found, ImageProblem) else found, read)
            for (found, name, in_val), read in zip(listing.entries, records, strict=True)
        ),
        key=lambda row: (row[0], row[1], tuple(natural_key(part) for part in row[2].parts)),
    )
    labels_of: dict[str | None, set[int]] = {}
    for label, _, _, read in rows:
        labels_of.setdefault(read.digest, set()).add(label)
    samples, val, seen, tallies = [], set(), set(), [_Tally() for _ in classes]
    conflicts: dict[str, list[tuple[Path, str]]] = {}
    for label, in_val, path, read in rows:
        tally = tallies[label]
        if read.problem is not None:
            tally.unreadable.append((path, read.problem))
        elif len(labels_of[read.digest]) > 1:
            conflicts.setdefault(read.digest, []).append((path, classes[label]))
            tally.conflicted += 1
        elif (label, read.digest) in seen:
            tally.duplicates += 1  # train/ sorts first, so a train copy is the one kept
        else:
            seen.add((label, read.digest))
            if in_val:
                val.add(len(samples))
                tally.val += 1
            tally.small += bool(min_side and min(read.size) < min_side / checks.SMALL_FRACTION)
            tally.paths.append(path)
            samples.append(Sample(path, label, read.digest))
    fixed_val = frozenset(val) if listing.layout == "train_val" else None
    return _dataset(root, listing, classes, samples, tallies, conflicts, fixed_val, min_side)


def _dataset(root, listing, classes, samples, tallies, conflicts, fixed_val, min_side) -> Dataset:
    reports = tuple(
        ClassReport(
            name, len(t.paths), tuple(t.unreadable), t.duplicates, t.small,
            listing.folders.get(name), tuple(t.paths[: checks.EXAMPLES]),
        )
        for name, t in zip(classes, tallies, strict=True)
    )  # fmt: skip
    vals = None if fixed_val is None else [t.val for t in tallies]
    found = listing.checks + checks.class_checks(
        reports, min_side, [t.conflicted for t in tallies], vals
    )
    groups = list(conflicts.values())
    found += [check for check in [checks.conflicts(groups)] if check is not None]
    return Dataset(
        root, listing.layout, classes, tuple(samples), reports,
        tuple(tuple(path for path, _ in group) for group in groups), tuple(found), fixed_val,
    )  # fmt: skip
