"""Results as Parquet: a JSON Lines journal turned into a Parquet file, and read back.

A long run writes its rows to a JSON Lines journal (whole rows, appended as they come);
only when it completes is the journal converted, a chunk of rows at a time so memory
stays flat, into one Parquet file with the CSV's columns: ``path``, ``problem``,
``label_i``/``probability_i``, then ``unsure`` (trained models) and ``bytes``/``modified``.
pyarrow is imported only here, and only when Parquet is asked for: it comes with the
``cluster`` extra (Ray Data), and without it ``require_pyarrow`` says how to install it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import AppError
from ..fsutil import atomic_file

CHUNK_ROWS = 8192  # rows per Parquet row group, and per read


def require_pyarrow():
    """The pyarrow module, or an ``AppError`` that says how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401 - the part this module uses
    except ImportError as exc:
        raise AppError(
            "Parquet output needs pyarrow, which comes with the cluster extra: "
            "pip install 'effnet_app[cluster]' (or make cluster-deps), or use "
            "--format csv or jsonl.",
            detail=repr(exc),
        ) from exc
    return pyarrow


def arrow_text(text: str | None) -> str | None:
    """Text Arrow can store (UTF-8): a name that is not UTF-8 keeps its bytes as escapes."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def schema(top_k: int, unsure: bool):
    pa = require_pyarrow()
    fields = [pa.field("path", pa.string()), pa.field("problem", pa.string())]
    for i in range(1, top_k + 1):
        fields += [pa.field(f"label_{i}", pa.string()), pa.field(f"probability_{i}", pa.float64())]
    fields += [pa.field("unsure", pa.bool_())] if unsure else []
    fields += [pa.field("bytes", pa.int64()), pa.field("modified", pa.float64())]
    return pa.schema(fields)


def _columns(rows: list[dict], top_k: int, unsure: bool) -> dict[str, list]:
    """JSON rows (as the journal holds them) as Parquet columns."""
    columns: dict[str, list] = {"path": [], "problem": []}
    for i in range(1, top_k + 1):
        columns[f"label_{i}"], columns[f"probability_{i}"] = [], []
    if unsure:
        columns["unsure"] = []
    columns["bytes"], columns["modified"] = [], []
    for row in rows:
        columns["path"].append(arrow_text(row["path"]))
        columns["problem"].append(arrow_text(row.get("problem")))
        ranked = row.get("predictions") or ()
        for i in range(top_k):
            p = ranked[i] if i < len(ranked) else None
            columns[f"label_{i + 1}"].append(p["label"] if p else None)
            columns[f"probability_{i + 1}"].append(p["probability"] if p else None)
        if unsure:
            columns["unsure"].append(bool(row.get("unsure")))
        columns["bytes"].append(row.get("bytes"))
        columns["modified"].append(row.get("modified"))
    return columns


def journal_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a JSON Lines file, one at a time (a line without its newline is torn)."""
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n") and line.strip():
                yield json.loads(line)


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_parquet(
    rows: Iterable[dict],
    target: str | os.PathLike,
    top_k: int,
    unsure: bool,
    *,
    error_type: type[AppError] = AppError,
) -> Path:
    """Write JSON rows to ``target`` as Parquet, a chunk at a time; the file appears whole."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    shape = schema(top_k, unsure)
    with atomic_file(target, "wb", error_type=error_type) as stream:
        with pq.ParquetWriter(stream, shape) as writer:
            for chunk in _chunks(rows, CHUNK_ROWS):
                table = pa.Table.from_pydict(_columns(chunk, top_k, unsure), schema=shape)
                writer.write_table(table)
    return Path(target)


def journal_to_parquet(
    journal: str | os.PathLike,
    target: str | os.PathLike,
    top_k: int,
    unsure: bool,
    *,
    error_type: type[AppError] = AppError,
) -> Path:
    """Convert a finished run's journal to ``target`` (Parquet), streamed in chunks."""
    return write_parquet(journal_rows(journal), target, top_k, unsure, error_type=error_type)


def _json_row(record: dict) -> dict:
    """A Parquet row as the JSON row the journal (and ``read_results``) uses."""
    predictions = []
    for i in range(1, 10_000):
        if f"label_{i}" not in record:
            break
        if record[f"label_{i}"] is not None:
            label, p = record[f"label_{i}"], record[f"probability_{i}"]
            predictions.append({"label": label, "probability": p})
    row = {"path": record["path"], "predictions": predictions, "problem": record.get("problem")}
    if "unsure" in record:
        row["unsure"] = bool(record["unsure"])
    row["bytes"], row["modified"] = record.get("bytes"), record.get("modified")
    return row


def iter_records(path: str | os.PathLike, columns: list[str] | None = None) -> Iterator[dict]:
    """The rows of any Parquet file as dicts, a chunk at a time (memory stays flat)."""
    require_pyarrow()
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            yield from batch.to_pylist()


def iter_json_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a results Parquet file as JSON rows (path, predictions, problem, …)."""
    for record in iter_records(path):
        yield _json_row(record)
