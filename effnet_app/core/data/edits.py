"""Changes the user makes to their dataset from the results, with undo.

A move is real: the file goes to the other class's folder on disk (created when
missing), so the folder stays the truth and a later scan agrees. It never replaces a
file ("name (2).jpg" instead), and a failed move leaves the file where it was. An
exclusion only leaves a file out of the next training run; nothing on disk changes.
``apply(dataset)`` is the dataset as those edits make it, without a scan.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import fsutil
from ..errors import DatasetError
from . import subset


@dataclass(frozen=True)
class Edit:
    kind: str  # "move" | "exclude"
    path: Path  # the file as it was (source)
    target: Path | None  # where a move put it
    given: str  # class before
    to: str | None  # class after (move)

    def describe(self) -> str:
        if self.kind == "move":
            return f"Moved {self.path.name} from {self.given} to {self.to}"
        return f"Excluded {self.path.name} from training"


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(path))


class DataEdits:
    """The edits of one dataset, oldest first; ``undo`` takes back the last one."""

    def __init__(self, dataset) -> None:
        self.source = Path(dataset.source)
        self.layout = dataset.layout
        self.edits: list[Edit] = []
        self._class_of = {_key(s.path): dataset.classes[s.label] for s in dataset.samples}
        self._origin: dict[str, tuple[Path, Path]] = {}  # now -> (path in the dataset, now)
        self._excluded: dict[str, Path] = {}

    @property
    def excluded(self) -> frozenset[Path]:
        return frozenset(self._excluded.values())

    def can_move(self) -> bool:
        """False for a CSV dataset: its labels are in the CSV, not in folders."""
        return self.layout != "csv"

    def class_of(self, path) -> str:
        """The class a file of this dataset is in now; DatasetError for another file."""
        try:
            return self._class_of[_key(path)]
        except KeyError:
            raise DatasetError(
                f"'{Path(path).name}' is not one of the images of this dataset; "
                "scan the folder again if it was added since."
            ) from None

    # ------------------------------------------------------------------ edits
    def move_to_class(self, path, class_name: str) -> Edit:
        """Move a file into ``class_name``'s folder (same side in train/ + val/)."""
        path = Path(os.path.abspath(path))
        if not self.can_move():
            raise DatasetError(
                f"The labels of this dataset are in the CSV file '{self.source.name}', so "
                f"'{path.name}' cannot be moved; change its label there, or exclude it."
            )
        given = self.class_of(path)
        if class_name == given:
            raise DatasetError(f"'{path.name}' is already in the class '{given}'.")
        if not class_name or fsutil.safe_folder_name(class_name) != class_name:
            raise DatasetError(
                f"'{class_name}' cannot be a class folder's name; choose a name without "
                '/ \\ : * ? " < > | and not starting or ending with a dot or a space.'
            )
        target = _move_file(path, self._class_folder(path) / class_name / path.name)
        self._moved(path, target, class_name)
        edit = Edit("move", path, target, given, class_name)
        self.edits.append(edit)
        return edit

    def _class_folder(self, path: Path) -> Path:
        """Where class folders are for ``path``: the source, or its train/ or val/ side."""
        try:
            parts = path.relative_to(self.source).parts
        except ValueError:
            parts = ()
        if len(parts) < 2 or (self.layout == "train_val" and len(parts) < 3):
            raise DatasetError(
                f"'{path.name}' is not inside a class folder of '{self.source}', so it "
                "cannot be moved to another class; move it yourself and scan again."
            )
        return self.source / parts[0] if self.layout == "train_val" else self.source

    def _moved(self, old: Path, new: Path, class_name: str) -> None:
        name = self._class_of.pop(_key(old))
        origin = self._origin.pop(_key(old), (old, old))[0]
        self._class_of[_key(new)] = class_name or name
        if _key(origin) != _key(new):
            self._origin[_key(new)] = (origin, new)
        if self._excluded.pop(_key(old), None) is not None:  # the exclusion follows the file
            self._excluded[_key(new)] = new

    def exclude(self, path) -> Edit:
        """Leave a file out of training; excluding it again returns the earlier edit."""
        path = Path(os.path.abspath(path))
        given = self.class_of(path)
        if _key(path) in self._excluded:
            earlier = [e for e in self.edits if e.kind == "exclude" and _key(e.path) == _key(path)]
            if earlier:
                return earlier[-1]
        self._excluded[_key(path)] = path
        edit = Edit("exclude", path, None, given, None)
        self.edits.append(edit)
        return edit

    def undo(self) -> Edit | None:
        """Take back the last edit (a move is moved back); None when there is none."""
        if not self.edits:
            return None
        edit = self.edits[-1]
        if edit.kind == "exclude":
            self._excluded.pop(_key(edit.path), None)
        else:
            self._move_back(edit)
        self.edits.pop()
        return edit

    def _move_back(self, edit: Edit) -> None:
        if os.path.lexists(edit.path):
            raise DatasetError(
                f"Moving '{edit.path.name}' back cannot be undone: another file is at "
                f"'{edit.path}' now. Move or rename that file first."
            )
        if not os.path.lexists(edit.target):
            raise DatasetError(
                f"'{edit.target.name}' is no longer in '{edit.target.parent}', so it cannot "
                "be moved back; scan the folder again."
            )
        back = _move_file(edit.target, edit.path)
        self._moved(edit.target, back, edit.given)

    def apply(self, dataset):
        """``dataset`` (the one these edits began from) with the moves and exclusions."""
        moves = {
            origin: (current, self._class_of[key])
            for key, (origin, current) in self._origin.items()
        }
        moved = subset.relabelled(dataset, moves) if moves else dataset
        return subset.without(moved, self.excluded)


# ---------------------------------------------------------------------------------------
# Moving one file without ever losing or replacing one


def _move_file(src: Path, wanted: Path) -> Path:
    """Move ``src`` to ``wanted`` or its next free "name (2)" form; returns where it went.

    Within a file system a link-then-unlink rename (no replace is possible); across file
    systems a synced copy beside the target, then the original removed. Any failure
    leaves ``src`` as it was and no copy behind, and raises DatasetError.
    """
    folder = wanted.parent
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return fsutil.rename_no_clobber(src, wanted)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        return _copy_across(src, wanted)
    except OSError as exc:
        _drop_extra_links(src, wanted)
        if made:
            _remove_empty(folder)
        raise DatasetError(
            f"Could not move '{src.name}' to '{folder}' ({exc.strerror or exc}); it was "
            "left where it was. Check that you may change both folders.",
            detail=repr(exc),
        ) from exc


def _copy_across(src: Path, wanted: Path) -> Path:
    part = wanted.parent / f".{wanted.name}.{uuid.uuid4().hex}.part"
    placed = None
    try:
        shutil.copy2(src, part)
        with open(part, "rb") as stream:
            os.fsync(stream.fileno())
        placed = fsutil.rename_no_clobber(part, wanted)
        os.unlink(src)
        return placed
    except BaseException:
        if placed is not None and os.path.lexists(src):
            os.unlink(placed)  # the original is still there: the copy goes
        raise
    finally:
        if os.path.lexists(part):
            os.unlink(part)


def _drop_extra_links(src: Path, wanted: Path) -> None:
    """After a failed unlink of ``src``, remove the new name a link gave it."""
    if not os.path.lexists(src):
        return
    for n in itertools.count(1):
        candidate = wanted if n == 1 else wanted.with_name(f"{wanted.stem} ({n}){wanted.suffix}")
        if not os.path.lexists(candidate):
            return
        try:
            if os.path.samefile(candidate, src):
                os.unlink(candidate)
                return
        except OSError:
            return


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
