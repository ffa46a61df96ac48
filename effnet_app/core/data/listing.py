"""Lists of paths to classify (``classify --from-list FILE``): text, CSV or Parquet.

A text list has one path a line (blank lines are skipped; nothing else is trimmed, as a
name may end in a space). A CSV list takes its ``path`` column (a header naming ``path``,
``file``, ``filename`` or ``filepath``), else the first column of every row; a results
file of an earlier run is such a list. A Parquet list takes its ``path`` column, read a
chunk at a time. Paths are kept as written: a relative one is relative to the folder the
command runs in, as for the paths on the command line.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import AppError

PATH_COLUMNS = ("path", "file", "filename", "filepath")


class ListError(AppError):
    """A list of paths could not be read."""


def _text_paths(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line:
                yield line


def _csv_paths(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            return
        names = [name.strip().lower() for name in first]
        column = next((names.index(n) for n in PATH_COLUMNS if n in names), None)
        if column is None:  # no header: every row's first cell is a path
            column = 0
            if first and first[0]:
                yield first[0]
        for row in reader:
            if len(row) > column and row[column]:
                yield row[column]


def _parquet_paths(path: Path) -> Iterator[str]:
    from ..runtime.results_parquet import iter_records, require_pyarrow

    require_pyarrow()
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    if "path" not in names:
        raise ListError(
            f"{path.name} has no 'path' column (it has {', '.join(names) or 'none'}). "
            "Give a Parquet list with the paths in a column named path."
        )
    for record in iter_records(path, columns=["path"]):
        if record["path"]:
            yield str(record["path"])


def _kind(path: Path) -> str:
    with open(path, "rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet"
    return "csv" if path.suffix.lower() == ".csv" else "text"


def read_path_list(path: str | os.PathLike) -> list[str]:
    """The paths a list file names, in its order (duplicates are left to the caller)."""
    path = Path(path).expanduser()
    try:
        kind = _kind(path)
        read = {"parquet": _parquet_paths, "csv": _csv_paths, "text": _text_paths}[kind]
        return list(read(path))
    except FileNotFoundError as exc:
        raise ListError(f"There is no list of paths at {path}.", detail=repr(exc)) from exc
    except (OSError, ValueError, csv.Error) as exc:
        raise ListError(
            f"The list of paths {path} could not be read ({exc}). Give a text file with "
            "one path a line, a CSV with a path column, or a Parquet file with one.",
            detail=repr(exc),
        ) from exc
