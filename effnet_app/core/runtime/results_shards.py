"""Results as a folder of Parquet shards: what Ray's workers write, and one summary.

A Ray job asked for ``--format parquet -o OUT`` makes ``OUT`` a folder, a Parquet dataset
that pyarrow, pandas, DuckDB or Spark read as one table (``read_results`` reads it too).
While the job runs the folder is ``OUT.part``. Each batch of rows is one shard,
``shard-<hash of its paths>.parquet``, written whole (a hidden part file, then renamed)
by the worker that classified the batch; a batch that Ray runs again after its actor
died writes the same shard again, never a second one. When the job completes, the
driver checks that the shards hold every row it was told of, writes ``_summary.json``
(rows, problems, counts per label) and renames the folder ``OUT``. Readers skip names
that start with ``_`` or ``.``, so the summary and part files are not read as data.

The folder must be on storage every worker writes to: on a local Ray it is simply here;
on a cluster, a shared folder. A shard a worker could not write comes back unwritten and
the driver writes it; shards written where the driver cannot see them are caught by the
row count before the folder takes its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from .. import filelocks, fsutil
from ..errors import AppError
from .results_io import RowWriter
from .results_parquet import iter_json_rows, require_pyarrow, schema, write_parquet

SHARD_GLOB = "shard-*.parquet"
SUMMARY = "_summary.json"
LOCK = ".lock"  # held by the driver of the job writing the folder


def shard_name(paths: Iterable) -> str:
    """The shard of a batch, named by its paths: the same batch always gets the same name."""
    text = "\n".join(os.fspath(p) for p in paths)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return f"shard-{digest}.parquet"


def write_shard(folder, results, top_k: int, unsure: bool, error_type=AppError) -> Path | None:
    """Write one batch's rows (``ImageResult``) as a shard in ``folder``; None if no rows."""
    results = list(results)
    if not results:
        return None
    writer = RowWriter("jsonl", top_k, unsure=unsure, file_info=True)
    rows = [writer.fields(r) for r in results]
    target = Path(folder) / shard_name(r.path for r in results)
    return write_parquet(rows, target, top_k, unsure, error_type=error_type)


def shard_files(folder) -> list[Path]:
    return sorted(Path(folder).glob(SHARD_GLOB))


def is_shard_folder(folder) -> bool:
    """Whether ``folder`` is a folder this app wrote: shards, the summary, part files."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    return all(_ours(p.name) for p in folder.iterdir())


def _ours(name: str) -> bool:
    return (
        name in (SUMMARY, LOCK)
        or name.startswith(".shard-")
        or (name.startswith("shard-") and name.endswith(".parquet"))
    )


def iter_rows(folder) -> Iterator[dict]:
    """The JSON rows of every shard of a folder (one shard in memory at a time)."""
    for shard in shard_files(folder):
        yield from iter_json_rows(shard)


def shard_keys(shard: Path) -> list[tuple[str, tuple, bool]]:
    """(path, (bytes, modified), is a problem) of each row of one shard."""
    require_pyarrow()
    import pyarrow.parquet as pq

    table = pq.read_table(shard, columns=["path", "problem", "bytes", "modified"])
    columns = table.to_pydict()
    stats = zip(columns["bytes"], columns["modified"], strict=True)
    return [
        (path, stat, bool(problem))
        for path, stat, problem in zip(columns["path"], stats, columns["problem"], strict=True)
    ]


def same_columns(shard: Path, top_k: int, unsure: bool) -> bool:
    import pyarrow.parquet as pq

    return pq.read_schema(shard).names == schema(top_k, unsure).names


def drop_rows(shard: Path, unwanted, error_type=AppError) -> int:
    """Write ``shard`` anew without the rows whose key ``unwanted(path)`` says; rows left."""
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    keep = pa.array([not unwanted(p) for p in table.column("path").to_pylist()])
    table = table.filter(keep)
    if not table.num_rows:
        shard.unlink(missing_ok=True)
        return 0
    with fsutil.atomic_file(shard, "wb", error_type=error_type) as stream:
        pq.write_table(table, stream)
    return table.num_rows


def summary(folder, about: dict | None = None) -> dict:
    """Counts over every shard: rows, problems, "not sure" rows, and rows per top label."""
    require_pyarrow()
    import pyarrow.parquet as pq

    labels: Counter = Counter()
    rows = problems = unsure = 0
    shards = shard_files(folder)
    for shard in shards:
        names = pq.read_schema(shard).names
        wanted = ["problem", "label_1"] + (["unsure"] if "unsure" in names else [])
        columns = pq.read_table(shard, columns=wanted).to_pydict()
        rows += len(columns["problem"])
        problems += sum(1 for p in columns["problem"] if p)
        unsure += sum(1 for u in columns.get("unsure", ()) if u)
        labels.update(
            lab for p, lab in zip(columns["problem"], columns["label_1"], strict=True) if not p
        )
    counts = {
        "rows": rows,
        "classified": rows - problems,
        "problems": problems,
        "not_sure": unsure,
        "shards": len(shards),
        "labels": dict(labels.most_common()),
    }
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    return {**(about or {}), **counts, "finished": finished}


def remove_leftovers(folder: Path) -> None:
    """Part files of shards whose writer was killed mid-write (never whole rows)."""
    for leftover in folder.glob(".shard-*"):
        with suppress(OSError):
            leftover.unlink()


def refuse_if_busy(part: Path, error_type=AppError) -> None:
    """Refuse a part folder another live run holds (its driver's lock file)."""
    if filelocks.held_by_another(part / LOCK):
        raise error_type(
            f"Another run is writing {part.name} in {part.parent} right now. Wait for it "
            "to finish, or choose another output."
        )


class ShardFolder:
    """``OUT.part``, the folder a job's shards go to, and its rename to ``OUT``."""

    def __init__(self, target, *, append: bool = False, error_type=AppError) -> None:
        self.error_type = error_type
        self.target = Path(os.path.abspath(Path(target).expanduser()))
        self.part = fsutil.visible_part_path(self.target)
        self._refuse_foreign()
        refuse_if_busy(self.part, error_type)
        lock = self.part / LOCK
        with fsutil.disk_errors(self.part, error_type):
            if not append and self.part.is_dir():
                shutil.rmtree(self.part)  # a run from the start: an older part goes
            self.part.mkdir(parents=True, exist_ok=True)
            self._lock = open(lock, "ab")  # noqa: SIM115 - held until commit or close
        filelocks.lock(self._lock)
        remove_leftovers(self.part)

    def _refuse_foreign(self) -> None:
        for folder in (self.target, self.part):
            if folder.is_dir() and not is_shard_folder(folder):
                raise self.error_type(
                    f"{folder} is a folder with other files in it, not results of this app. "
                    "Choose another --output for the Parquet shards."
                )
            if folder == self.part and folder.exists() and not folder.is_dir():
                raise self.error_type(f"{folder} is a file. Move it, or choose another --output.")

    def options(self, top_k: int, unsure: bool) -> dict:
        """What the workers need to write this folder's shards themselves."""
        return {"folder": str(self.part), "top_k": top_k, "unsure": unsure}

    def store(self, results, top_k: int, unsure: bool) -> None:
        """Write rows the workers did not (problems found on this computer)."""
        write_shard(self.part, results, top_k, unsure, self.error_type)

    def commit(self, expected: int, about: dict | None = None) -> Path:
        """Check the rows, write the summary, and rename the folder to ``OUT``."""
        facts = summary(self.part, about)
        if facts["rows"] != expected:
            raise self.error_type(
                f"{self.part} holds {facts['rows']} rows, not the {expected} of this run: "
                "the workers wrote their shards where this computer cannot see them, or a "
                "shard was removed. Give an --output on storage every worker shares, or run "
                "again with --resume to do what is missing."
            )
        text = json.dumps(facts, indent=2, ensure_ascii=False) + "\n"
        fsutil.atomic_write(self.part / SUMMARY, text, error_type=self.error_type)
        self._unlock()
        with fsutil.disk_errors(self.target, self.error_type):
            self._swap()
        return self.target

    def _swap(self) -> None:
        aside = None
        if self.target.exists() or self.target.is_symlink():
            aside = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, aside)
        os.replace(self.part, self.target)
        if aside is not None:
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                aside.unlink(missing_ok=True)

    def _unlock(self) -> None:
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            with suppress(OSError):
                lock.close()
            with suppress(OSError):
                (self.part / LOCK).unlink()

    def keep(self) -> str:
        self._unlock()
        return f"{self.part}{os.sep}"

    def drop(self) -> str | None:
        """End without rows of this run: the folder goes unless a worker wrote a shard."""
        self._unlock()
        if shard_files(self.part):
            return f"{self.part}{os.sep}"
        shutil.rmtree(self.part, ignore_errors=True)
        return None
