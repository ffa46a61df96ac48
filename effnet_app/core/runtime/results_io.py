"""Classification results on disk: CSV, JSON, JSON Lines and (read) Parquet.

Shared by the command line and the GUI. Without a ``RunInfo`` the formats are the CLI's:
JSON is a list of ``{"path", "predictions": [{"label", "probability"}], "problem"}``; CSV
has the columns ``path, problem, label_1, probability_1, …``. With one, each JSON row also
has ``"model"`` and ``"device"``, and CSV ends with ``model, device`` columns. The CLI's
rows also carry the file's ``bytes`` and ``modified`` (and a trained model's ``unsure``).
All read back with ``read_results``; the class index is not stored, so it reads back as -1.
``RowWriter`` writes a row at a time (the CLI streams long runs with it); sorting into
label folders lives in ``sorting`` and is re-exported here.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AppError
from ..fsutil import atomic_write
from .classifier import ImageResult, Prediction
from .sorting import SortCancelled, SortSummary, sort_into_folders

__all__ = [
    "ResultsFileError",
    "RowWriter",
    "RunInfo",
    "SortCancelled",
    "SortSummary",
    "read_results",
    "sort_into_folders",
    "to_csv",
    "to_json",
    "write_results",
]

UNKNOWN_INDEX = -1  # a Prediction read back from a file: its class index was not saved
FORMATS = ("csv", "json")  # saved whole (the GUI's export)
STREAM_FORMATS = ("csv", "json", "jsonl")  # written a row at a time


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
def file_stat(path: str | os.PathLike) -> tuple[int | None, float | None]:
    """(size in bytes, mtime in seconds) of the file a row is about; (None, None) if gone."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None, None
    return info.st_size, info.st_mtime


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
    as ``to_csv`` / ``to_json`` of all the rows ("jsonl": one JSON object a line, nothing
    around them). Nothing of a row is kept after it is written, so memory does not grow
    with the number of files. ``unsure`` adds the trained model's "not sure" flag after
    the labels; ``file_info`` adds the file's ``bytes`` and ``modified`` (mtime) last, so
    that a resumed run can tell a file already written from one changed since.
    """

    def __init__(
        self,
        fmt: str,
        top_k: int | None = None,
        info: RunInfo | None = None,
        *,
        unsure: bool = False,
        file_info: bool = False,
    ) -> None:
        if fmt not in STREAM_FORMATS:
            raise ValueError(f"results are written as csv, json or jsonl, not {fmt!r}")
        if fmt == "csv" and not top_k:
            raise ValueError("CSV written row by row needs its number of label columns")
        self.fmt, self.top_k, self.info = fmt, top_k or 0, info
        self.unsure, self.file_info = unsure, file_info
        self.rows = 0

    def header(self) -> list[str]:
        """The CSV columns, in order."""
        header = ["path", "problem"]
        for i in range(1, self.top_k + 1):
            header += [f"label_{i}", f"probability_{i}"]
        header += ["model", "device"] if self.info else []
        header += ["unsure"] if self.unsure else []
        return header + (["bytes", "modified"] if self.file_info else [])

    def start(self) -> str:
        if self.fmt != "csv":
            return ""  # JSON's "[" comes with the first row: an empty list is written "[]"
        return _csv_line(self.header())

    def row(self, result: ImageResult) -> str:
        self.rows += 1
        if self.fmt != "csv":
            return self._json(result)
        top_k, info = self.top_k, self.info
        row = [str(result.path), result.problem or ""]
        for p in (*result.predictions[:top_k], *([None] * (top_k - len(result.predictions)))):
            row += [p.label, f"{p.probability:.6f}"] if p else ["", ""]
        row += [info.model, info.device] if info else []
        row += [("true" if result.unsure else "false")] if self.unsure else []
        if self.file_info:
            size, modified = file_stat(result.path)
            row += ["" if size is None else str(size), "" if modified is None else repr(modified)]
        return _csv_line(row)

    def fields(self, result: ImageResult) -> dict:
        """The row as a JSON object (what ``row`` writes for JSON and JSON Lines)."""
        fields = _json_row(result, self.info)
        if self.unsure:
            fields["unsure"] = bool(result.unsure)
        if self.file_info:
            fields["bytes"], fields["modified"] = file_stat(result.path)
        return fields

    def _json(self, result: ImageResult) -> str:
        fields = self.fields(result)
        if self.fmt == "jsonl":
            return json.dumps(fields) + "\n"
        text = json.dumps(fields, indent=2)
        return ("[\n" if self.rows == 1 else ",\n") + textwrap.indent(text, "  ")

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


def to_json(
    results: Iterable[ImageResult], info: RunInfo | None = None, *, file_info: bool = False
) -> str:
    """The results as a JSON list, one object per file, ending with a newline."""
    return _written(RowWriter("json", info=info, file_info=file_info), results)


def _widest(results: Sequence[ImageResult]) -> int:
    return max((len(r.predictions) for r in results), default=0) or 1


def to_csv(
    results: Iterable[ImageResult],
    top_k: int | None = None,
    info: RunInfo | None = None,
    *,
    file_info: bool = False,
) -> str:
    """The results as CSV with ``top_k`` label/probability pairs (default: as many as any has)."""
    results = list(results)
    writer = RowWriter("csv", top_k or _widest(results), info, file_info=file_info)
    return _written(writer, results)


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
    unsure = bool(row.get("unsure"))
    return ImageResult(Path(row["path"]), predictions, row.get("problem") or None, unsure)


def _from_csv_row(row: dict) -> ImageResult:
    predictions = []
    for i in itertools.count(1):
        label = row.get(f"label_{i}")
        if label is None:
            break
        if label:
            predictions.append(Prediction(label, float(row[f"probability_{i}"]), UNKNOWN_INDEX))
    unsure = row.get("unsure") == "true"
    return ImageResult(Path(row["path"]), tuple(predictions), row.get("problem") or None, unsure)


def _parse(text: str) -> list[ImageResult]:
    start = text.lstrip()[:1]
    if start == "[":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"a JSON {type(rows).__name__}, not a list of rows")
        return [_from_json_row(row) for row in rows]
    if start == "{":  # JSON Lines: one object a line, each with its predictions
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [_from_json_row(row) for row in rows if row["predictions"] is not None]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise ValueError("no 'path' column")
    return [_from_csv_row(row) for row in reader]


def _read_parquet(path: Path) -> list[ImageResult]:
    from .results_parquet import iter_json_rows

    return [_from_json_row(row) for row in iter_json_rows(path)]


def _read_shards(folder: Path) -> list[ImageResult]:
    from .results_shards import is_shard_folder, iter_rows

    if not is_shard_folder(folder):
        raise ResultsFileError(f"{folder} is a folder, not a results file. Choose the file.")
    try:
        return [_from_json_row(row) for row in iter_rows(folder)]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise _unreadable(folder, repr(exc)) from exc


def read_results(path: str | os.PathLike) -> list[ImageResult]:
    """Results saved by ``write_results`` or the CLI: CSV, JSON, JSON Lines or Parquet
    (one file, or the folder of shards a Ray job writes)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _read_shards(path)
    try:
        with open(path, "rb") as f:
            parquet = f.read(4) == b"PAR1"
        # utf-8-sig tolerates a BOM a spreadsheet added; surrogateescape reads back file
        # names that are not UTF-8 the way atomic_write wrote them.
        # newline="": a CR inside a quoted name is data, left for the csv module to read.
        if not parquet:
            with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                text = f.read()
    except FileNotFoundError as exc:
        raise ResultsFileError(f"There is no file at {path}. Choose the file again.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, repr(exc)) from exc
    try:
        return _read_parquet(path) if parquet else _parse(text)
    except (ValueError, KeyError, TypeError, AttributeError, csv.Error, OSError) as exc:
        raise _unreadable(path, repr(exc)) from exc
