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
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from .. import filelocks, fsutil
from ..errors import AppError
from .results_io import RowWriter
from .results_parquet import iter_json_rows, require_pyarrow, schema, write_parquet

SHARD_GLOB = "shard-*.parquet"
SUMMARY = "_summary.json"
JOB = "_job.json"  # the model and engine of the job that made the folder
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
    """Shards, and what every Parquet reader skips (names starting with "_" or ".": the
    summary, part files, a Finder's .DS_Store, Spark's _SUCCESS)."""
    return name.startswith(("_", ".")) or (name.startswith("shard-") and name.endswith(".parquet"))


def iter_rows(folder) -> Iterator[dict]:
    """The JSON rows of every shard of a folder (one shard in memory at a time)."""
    for shard in shard_files(folder):
        yield from iter_json_rows(shard)


@contextmanager
def reading(shard: Path, error_type=AppError) -> Iterator[None]:
    """A shard that cannot be read (cut short, not Parquet) as a sentence naming it."""
    try:
        yield
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise error_type(
            f"The shard {shard.name} in {shard.parent} cannot be read ({exc}). Remove it "
            "and run again with --resume: its rows are done again.",
            detail=repr(exc),
        ) from exc


def _table(shard: Path, columns: list[str] | None, error_type=AppError):
    import pyarrow.parquet as pq

    with reading(shard, error_type):
        return pq.read_table(shard, columns=columns)


def shard_keys(shard: Path, error_type=AppError) -> list[tuple[str, tuple, bool]]:
    """(path, (bytes, modified), is a problem) of each row of one shard."""
    require_pyarrow()
    columns = _table(shard, ["path", "problem", "bytes", "modified"], error_type).to_pydict()
    stats = zip(columns["bytes"], columns["modified"], strict=True)
    return [
        (path, stat, bool(problem))
        for path, stat, problem in zip(columns["path"], stats, columns["problem"], strict=True)
    ]


def same_columns(shard: Path, top_k: int, unsure: bool, error_type=AppError) -> bool:
    import pyarrow.parquet as pq

    with reading(shard, error_type):
        return pq.read_schema(shard).names == schema(top_k, unsure).names


def drop_rows(shard: Path, unwanted, error_type=AppError) -> int:
    """Write ``shard`` anew without the rows whose key ``unwanted(path)`` says; rows left."""
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _table(shard, None, error_type)
    keep = pa.array([not unwanted(p) for p in table.column("path").to_pylist()])
    table = table.filter(keep)
    if not table.num_rows:
        shard.unlink(missing_ok=True)
        return 0
    with fsutil.atomic_file(shard, "wb", error_type=error_type) as stream:
        pq.write_table(table, stream)
    return table.num_rows


def summary(folder, about: dict | None = None, error_type=AppError) -> dict:
    """Counts over every shard: rows, problems, and rows per top label ("not sure" too)."""
    require_pyarrow()
    import pyarrow.parquet as pq

    labels: Counter = Counter()
    rows = problems = 0
    shards = shard_files(folder)
    for shard in shards:
        with reading(shard, error_type):
            names = pq.read_schema(shard).names
        wanted = ["path", "problem", "label_1"] + (["unsure"] if "unsure" in names else [])
        columns = _table(shard, wanted, error_type).to_pydict()  # not the other labels
        unsure = columns.get("unsure") or [False] * len(columns["path"])
        rows += len(columns["path"])
        for problem, label, low in zip(columns["problem"], columns["label_1"], unsure, strict=True):
            if problem:
                problems += 1
            else:
                labels["not sure" if low else label] += 1
    counts = {
        "rows": rows,
        "classified": rows - problems,
        "problems": problems,
        "not_sure": labels.get("not sure", 0),
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


def busy(part: Path, error_type=AppError) -> AppError:
    return error_type(
        f"Another run is writing {part.name} in {part.parent} right now. Wait for it "
        "to finish, or choose another output."
    )


def refuse_if_busy(part: Path, error_type=AppError) -> None:
    """Refuse a part folder another live run holds (its driver's lock file)."""
    if filelocks.held_by_another(part / LOCK):
        raise busy(part, error_type)


def real_target(target) -> Path:
    """The output folder a path names: absolute, a link followed (the link stays)."""
    return Path(os.path.realpath(Path(target).expanduser()))


def read_job(folder: Path) -> dict:
    try:
        return json.loads((folder / JOB).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class ShardFolder:
    """``OUT.part``, the folder a job's shards go to, and its rename to ``OUT``.

    ``about`` (model, engine) is written to ``_job.json`` when the folder is made, so
    that a resume with another model is refused rather than mixed in.
    """

    def __init__(self, target, *, append=False, about=None, error_type=AppError) -> None:
        self.error_type = error_type
        self.target = real_target(target)
        self.part = fsutil.visible_part_path(self.target)
        self._refuse_foreign()
        with fsutil.disk_errors(self.part, error_type):
            self.part.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.part / LOCK, "ab")  # noqa: SIM115 - held to the end
        if not filelocks.try_lock(self._lock):
            self._lock.close()
            raise busy(self.part, error_type)
        with fsutil.disk_errors(self.part, error_type):
            for old in self.target.parent.glob(f".{self.target.name}.old-*"):
                _remove(old)  # a swap that a crash cut short left it; OUT is whole
            remove_leftovers(self.part)
            if not append:  # a run from the start: what an older run left goes
                for old in [*shard_files(self.part), self.part / SUMMARY, self.part / JOB]:
                    old.unlink(missing_ok=True)
            if about and not (self.part / JOB).exists():
                fsutil.atomic_write(self.part / JOB, json.dumps(about) + "\n")

    def _refuse_foreign(self) -> None:
        for folder in (self.target, self.part):
            if folder.is_dir() and not is_shard_folder(folder):
                raise self.error_type(
                    f"{folder} is a folder with other files in it, not results of this app. "
                    "Choose another --output for the Parquet shards."
                )
            if folder.exists() and not folder.is_dir():
                raise self.error_type(
                    f"{folder} is a file, and a Ray job's Parquet output is a folder of "
                    "shards. Move the file, or choose another --output."
                )

    def options(self, top_k: int, unsure: bool) -> dict:
        """What the workers need to write this folder's shards themselves."""
        return {"folder": str(self.part), "top_k": top_k, "unsure": unsure}

    def store(self, results, top_k: int, unsure: bool) -> None:
        """Write rows the workers did not (problems found here, shards not seen here)."""
        write_shard(self.part, results, top_k, unsure, self.error_type)

    def commit(self, expected: int, about: dict | None = None) -> Path:
        """Check the rows, write the summary, and rename the folder to ``OUT``."""
        facts = summary(self.part, about, self.error_type)
        if facts["rows"] != expected:
            raise self.error_type(_miscount(self.part, facts["rows"], expected))
        text = json.dumps(facts, indent=2, ensure_ascii=False) + "\n"
        fsutil.atomic_write(self.part / SUMMARY, text, error_type=self.error_type)
        with fsutil.disk_errors(self.target, self.error_type):
            self._swap()
        self._release()
        (self.target / LOCK).unlink(missing_ok=True)
        return self.target

    def _swap(self) -> None:
        aside = None
        if self.target.exists() or self.target.is_symlink():
            aside = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, aside)
        os.replace(self.part, self.target)
        if aside is not None:
            _remove(aside)

    def _release(self) -> None:
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            with suppress(OSError):
                lock.close()  # the lock goes with it; the file stays (no unlink race)

    def keep(self) -> str:
        return f"{self.part}{os.sep}"  # locked until this process ends, or ``close``

    def rows(self) -> int:
        """Rows in the part folder now (from each shard's footer, not its data)."""
        import pyarrow.parquet as pq

        total = 0
        for shard in shard_files(self.part):
            with suppress(OSError, ValueError):
                total += pq.ParquetFile(shard).metadata.num_rows
        return total

    def close(self) -> None:
        """Let go of the folder (once the job's workers have stopped), keeping it."""
        self._release()

    def drop(self) -> str | None:
        """End without rows of this run: the folder goes unless a worker wrote a shard."""
        if shard_files(self.part):
            return self.keep()
        self._release()
        shutil.rmtree(self.part, ignore_errors=True)
        return None


def _miscount(part: Path, rows: int, expected: int) -> str:
    if rows > expected:
        return (
            f"{part} holds {rows - expected} rows more than the {expected} of this run: a "
            "batch was written twice. Run again with --resume, which removes the repeats."
        )
    return (
        f"{part} holds {rows} rows, not the {expected} of this run: a shard was removed "
        "while it ran. Run again with --resume to do what is missing."
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()
