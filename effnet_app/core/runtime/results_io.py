"""Classification results on disk (CSV, JSON) and sorted into one folder per label.

Shared by the command line and the GUI. Without a ``RunInfo`` the formats are the CLI's:
JSON is a list of ``{"path", "predictions": [{"label", "probability"}], "problem"}``; CSV
has the columns ``path, problem, label_1, probability_1, …``. With one, each JSON row also
has ``"model"`` and ``"device"``, and CSV ends with ``model, device`` columns. Both read
back with ``read_results``; the class index is not stored, so it reads back as -1.
``RowWriter`` writes either format a row at a time (the CLI streams long runs with it).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
import textwrap
import uuid
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AppError
from ..fsutil import atomic_write, rename_no_clobber, safe_folder_name
from ..jobs import NEVER, Cancelled, CancelToken, Progress, RateMeter
from .classifier import ImageResult, Prediction

UNKNOWN_INDEX = -1  # a Prediction read back from a file: its class index was not saved
FORMATS = ("csv", "json")


class ResultsFileError(AppError):
    """A results file could not be read back."""


@dataclass(frozen=True)
class RunInfo:
    """Which model, on which device, produced the results (written into exports)."""

    model_key: str
    model_name: str
    device: str

    @property
    def model(self) -> str:
        return self.model_name or self.model_key


# --------------------------------------------------------------------------- writing
def _json_row(result: ImageResult, info: RunInfo | None) -> dict:
    row = {
        "path": str(result.path),
        "predictions": [
            {"label": p.label, "probability": round(p.probability, 6)} for p in result.predictions
        ],
        "problem": result.problem,
    }
    if info is not None:
        row.update(model=info.model, device=info.device)
    return row


class RowWriter:
    """A results file as text, a piece at a time, for writing rows as they come.

    ``start()``, then ``row(result)`` for each file, then ``end()``: joined, the same text
    as ``to_csv`` / ``to_json`` of all the rows. Nothing of a row is kept after it is
    written, so memory does not grow with the number of files.
    """

    def __init__(self, fmt: str, top_k: int | None = None, info: RunInfo | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"results are saved as csv or json, not {fmt!r}")
        if fmt == "csv" and not top_k:
            raise ValueError("CSV written row by row needs its number of label columns")
        self.fmt, self.top_k, self.info = fmt, top_k or 0, info
        self.rows = 0

    def start(self) -> str:
        if self.fmt == "json":
            return ""  # "[" comes with the first row: an empty list is written "[]"
        header = ["path", "problem"]
        for i in range(1, self.top_k + 1):
            header += [f"label_{i}", f"probability_{i}"]
        return _csv_line(header + (["model", "device"] if self.info else []))

    def row(self, result: ImageResult) -> str:
        self.rows += 1
        if self.fmt == "json":
            text = json.dumps(_json_row(result, self.info), indent=2)
            return ("[\n" if self.rows == 1 else ",\n") + textwrap.indent(text, "  ")
        top_k, info = self.top_k, self.info
        row = [str(result.path), result.problem or ""]
        for p in (*result.predictions[:top_k], *([None] * (top_k - len(result.predictions)))):
            row += [p.label, f"{p.probability:.6f}"] if p else ["", ""]
        return _csv_line(row + ([info.model, info.device] if info else []))

    def end(self) -> str:
        if self.fmt == "json":
            return "\n]\n" if self.rows else "[]\n"
        return ""


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue()


def _written(writer: RowWriter, results: Iterable[ImageResult]) -> str:
    return writer.start() + "".join(writer.row(r) for r in results) + writer.end()


def to_json(results: Iterable[ImageResult], info: RunInfo | None = None) -> str:
    """The results as a JSON list, one object per file, ending with a newline."""
    return _written(RowWriter("json", info=info), results)


def _widest(results: Sequence[ImageResult]) -> int:
    return max((len(r.predictions) for r in results), default=0) or 1


def to_csv(
    results: Iterable[ImageResult], top_k: int | None = None, info: RunInfo | None = None
) -> str:
    """The results as CSV with ``top_k`` label/probability pairs (default: as many as any has)."""
    results = list(results)
    return _written(RowWriter("csv", top_k or _widest(results), info), results)


def write_results(
    path: str | os.PathLike,
    results: Iterable[ImageResult],
    fmt: str = "csv",
    top_k: int | None = None,
    info: RunInfo | None = None,
) -> Path:
    """Save the results as ``fmt`` ("csv" or "json") all at once; returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"results are saved as csv or json, not {fmt!r}")
    text = to_json(results, info) if fmt == "json" else to_csv(results, top_k, info)
    return atomic_write(path, text)


# --------------------------------------------------------------------------- reading
def _unreadable(path: Path, why: object) -> ResultsFileError:
    return ResultsFileError(
        f"{path.name} is not a results file this app can read. Choose a CSV or JSON file "
        "saved by effnet-app (Export results, or `effnet-app classify --format csv|json`).",
        detail=f"{path}: {why}",
    )


def _from_json_row(row: dict) -> ImageResult:
    predictions = tuple(
        Prediction(str(p["label"]), float(p["probability"]), int(p.get("index", UNKNOWN_INDEX)))
        for p in row.get("predictions") or ()
    )
    return ImageResult(Path(row["path"]), predictions, row.get("problem") or None)


def _from_csv_row(row: dict) -> ImageResult:
    predictions = []
    for i in itertools.count(1):
        label = row.get(f"label_{i}")
        if label is None:
            break
        if label:
            predictions.append(Prediction(label, float(row[f"probability_{i}"]), UNKNOWN_INDEX))
    return ImageResult(Path(row["path"]), tuple(predictions), row.get("problem") or None)


def _parse(text: str, as_json: bool) -> list[ImageResult]:
    if as_json:
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"a JSON {type(rows).__name__}, not a list of rows")
        return [_from_json_row(row) for row in rows]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise ValueError("no 'path' column")
    return [_from_csv_row(row) for row in reader]


def read_results(path: str | os.PathLike) -> list[ImageResult]:
    """Results saved by ``write_results`` or the CLI, CSV or JSON (told apart by content)."""
    path = Path(path).expanduser()
    try:
        # utf-8-sig tolerates a BOM a spreadsheet added; surrogateescape reads back file
        # names that are not UTF-8 the way atomic_write wrote them.
        # newline="": a CR inside a quoted name is data, left for the csv module to read.
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            text = f.read()
    except FileNotFoundError as exc:
        raise ResultsFileError(f"There is no file at {path}. Choose the file again.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, repr(exc)) from exc
    try:
        return _parse(text, text.lstrip().startswith("["))
    except (ValueError, KeyError, TypeError, AttributeError, csv.Error) as exc:
        raise _unreadable(path, repr(exc)) from exc


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
