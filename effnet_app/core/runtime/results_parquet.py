"""Results as Parquet: a JSON Lines journal turned into a Parquet file, and read back.

A long run writes its rows to a JSON Lines journal (whole rows, appended as they come);
only when it completes is the journal converted into one Parquet file with the CSV's
columns: ``path``, ``problem``, ``label_i``/``probability_i``, then ``unsure`` (trained
models) and ``bytes``/``modified``. Rows go into Arrow ``BATCH_ROWS`` at a time and into
the file a row group of ``CHUNK_ROWS`` at a time, so memory stays flat and small: no
row's dict is kept once its values are in the columns.
pyarrow is imported only here, and only when Parquet is asked for: it comes with the
``cluster`` extra (Ray Data), and without it ``require_pyarrow`` says how to install it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import AppError
from ..fsutil import atomic_file, disk_errors

CHUNK_ROWS = 8192  # rows per Parquet row group, and per read
BATCH_ROWS = 1024  # rows held as Python objects at a time while writing (divides CHUNK_ROWS)


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


def _empty_columns(width: int) -> list[list]:
    return [[] for _ in range(width)]


def _add_row(columns: list[list], row: dict, top_k: int, unsure: bool) -> None:
    """Append one JSON row (as the journal holds it) to the columns, in ``schema`` order."""
    columns[0].append(arrow_text(row["path"]))
    columns[1].append(arrow_text(row.get("problem")))
    ranked = row.get("predictions") or ()
    for i in range(top_k):
        p = ranked[i] if i < len(ranked) else None
        columns[2 + 2 * i].append(p["label"] if p else None)
        columns[3 + 2 * i].append(p["probability"] if p else None)
    if unsure:
        columns[-3].append(bool(row.get("unsure")))
    columns[-2].append(row.get("bytes"))
    columns[-1].append(row.get("modified"))


def _batch(columns: list[list], shape):
    """The column lists as one Arrow record batch, typed by the schema."""
    pa = require_pyarrow()
    arrays = [
        pa.array(column, type=field.type) for column, field in zip(columns, shape, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=shape)


def _batches(rows: Iterable[dict], top_k: int, unsure: bool, shape) -> Iterator:
    """The rows as Arrow record batches of ``BATCH_ROWS``, each row's dict dropped once added.

    Only one batch's column lists are Python objects at any time; the rows already
    turned into Arrow wait in compact buffers (outside Python's heap) to be written.
    """
    columns = _empty_columns(len(shape))
    for row in rows:
        _add_row(columns, row, top_k, unsure)
        if len(columns[0]) >= BATCH_ROWS:
            batch, columns = _batch(columns, shape), _empty_columns(len(shape))
            yield batch
    if columns[0]:
        yield _batch(columns, shape)


def journal_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a JSON Lines file, one at a time (a line without its newline is torn)."""
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n") and line.strip():
                yield json.loads(line)


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
        with disk_errors(Path(target), error_type), pq.ParquetWriter(stream, shape) as writer:
            pending, held = [], 0
            for batch in _batches(rows, top_k, unsure, shape):
                pending.append(batch)
                held += batch.num_rows
                if held >= CHUNK_ROWS:  # a whole row group's worth
                    writer.write_table(pa.Table.from_batches(pending, schema=shape))
                    pending, held = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema=shape))
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
