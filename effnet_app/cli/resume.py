"""classify --resume: go on with an interrupted run against the same --output.

The rows already written (in ``FILE.part``, or in a complete ``FILE`` when more inputs
came since) are read a row at a time; a file counts as done when a row has its path,
size and mtime. A torn last row (the run was killed mid-write) is cut off; a file that
changed since its row was written is classified again, its old row dropped first (the
part is rewritten without it), so no file ever has two rows. Only the keys of the rows
are held, never the rows.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core import filelocks, fsutil
from ..core.data.images import ImageProblem
from ..core.runtime.results_io import RowWriter, file_stat
from ..core.runtime.results_parquet import arrow_text
from .common import OutputError

Key = tuple[int | None, float | None]  # (bytes, modified) of a file, as its row says


@dataclass
class Record:
    """One row already written: whose it is, and its bytes as they are in the file."""

    path: str
    stat: Key
    problem: bool
    raw: bytes


@dataclass
class Resume:
    """What is left to do: ``todo`` (files, and folders that could not be read)."""

    todo: list = field(default_factory=list)
    done: int = 0  # inputs whose rows are written already
    rows: int | None = None  # rows in the part now; None: nothing to resume, start anew
    problems: int = 0  # problem rows among them
    complete: Path | None = None  # the finished FILE, when nothing is left to do

    def sentence(self) -> str:
        return f"{self.done} done before, {len(self.todo)} to go"


def key_of(path) -> str:
    """How a path is matched: absolute, case as the system compares, Arrow-storable."""
    return arrow_text(os.path.normcase(os.path.abspath(os.fspath(path))))


# --------------------------------------------------------------------------- reading
def _damaged(path: Path, line: int, why: str) -> OutputError:
    return OutputError(
        f"{path.name} cannot be resumed: its row {line} is damaged ({why}). Move it aside "
        "and run again without --resume, or choose another --output."
    )


def _csv_records(path: Path, header: str) -> Iterator[Record | int]:
    """Rows of a CSV, then the offset its whole rows end at (a torn last row is left out)."""
    pending: list[bytes] = []

    def lines():
        with open(path, "rb") as f:
            for line in f:
                pending.append(line)
                yield line.decode("utf-8", "surrogateescape")

    reader, end = csv.reader(lines()), 0
    columns = len(next(csv.reader([header])))
    try:
        for number, row in enumerate(reader):
            raw = b"".join(pending)
            pending.clear()
            if not raw.endswith(b"\n"):
                break  # torn (it can only be the last): ends where the whole rows end
            if number == 0:
                if raw.decode("utf-8", "surrogateescape") != header:
                    raise _wrong_columns(path, raw, header)
            elif len(row) != columns:
                break  # not a row of this file: it and what follows are done again
            else:
                stat = (int(row[-2]) if row[-2] else None, float(row[-1]) if row[-1] else None)
                yield Record(row[0], stat, bool(row[1]), raw)
            end += len(raw)
    except (csv.Error, ValueError):
        pass  # a quoted name cut in two at the end of the file: torn as well
    yield end


def _wrong_columns(path: Path, raw: bytes, header: str) -> OutputError:
    got = raw.decode("utf-8", "replace").strip()
    return OutputError(
        f"{path.name} has the columns {got}, not those of this run ({header.strip()}). "
        "Resume with the same --model and --top-k as the first run, or choose another "
        "--output."
    )


def _json_record(row: dict, raw: bytes) -> Record:
    return Record(row["path"], (row.get("bytes"), row.get("modified")), bool(row["problem"]), raw)


def _jsonl_records(path: Path) -> Iterator[Record | int]:
    end = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                row = json.loads(raw)
                if not raw.endswith(b"\n"):
                    raise ValueError("torn")
                record = _json_record(row, raw)
            except (ValueError, KeyError, TypeError) as exc:
                if f.read(1):  # not the last line: damaged, not torn
                    raise _damaged(path, number, str(exc)) from exc
                break
            yield record
            end += len(raw)
    yield end


def _parquet_records(path: Path) -> Iterator[Record | int]:
    from ..core.runtime.results_parquet import iter_json_rows

    for row in iter_json_rows(path):
        yield _json_record(row, (json.dumps(row) + "\n").encode("utf-8", "surrogateescape"))
    yield -1  # nothing is cut from a finished file


def _records(path: Path, fmt: str, header: str, finished: bool) -> Iterator[Record | int]:
    if fmt == "parquet" and finished:
        return _parquet_records(path)
    return _csv_records(path, header) if fmt == "csv" else _jsonl_records(path)


# --------------------------------------------------------------------------- planning
@dataclass
class _Scan:
    written: dict[str, Key] = field(default_factory=dict)
    problems: dict[str, bool] = field(default_factory=dict)
    duplicates: int = 0
    end: int = 0
    relative: int = 0  # rows naming their file relative to where the first run started

    def add(self, path: str, stat: Key, problem: bool) -> bool:
        """Take a row's key; False when the file has a row already."""
        key = key_of(path)
        if key in self.written:
            self.duplicates += 1
            return False
        self.written[key], self.problems[key] = stat, problem
        self.relative += not os.path.isabs(path)
        return True


def _scan(path: Path, fmt: str, header: str, finished: bool) -> _Scan:
    scan = _Scan()
    for item in _records(path, fmt, header, finished):
        if isinstance(item, int):
            scan.end = item
        else:
            scan.add(item.path, item.stat, item.problem)
    return scan


def _found_key(item) -> str:
    return key_of(item.path if isinstance(item, ImageProblem) else item)


def _inputs(found: list) -> dict[str, Key]:
    inputs: dict[str, Key] = {}
    for item in found:
        path = item.path if isinstance(item, ImageProblem) else item
        inputs.setdefault(key_of(path), file_stat(path))
    return inputs


def _plan(scan: _Scan, found: list) -> tuple[Resume, set[str]]:
    """What is left of ``found`` after the rows ``scan`` read; and the stale rows' keys."""
    inputs = _inputs(found)
    if scan.relative and inputs and not any(k in inputs for k in scan.written):
        raise OutputError(
            "The rows already written name their files relative to the folder the first "
            f"run started in, and none of them is among the files found from here "
            f"({os.getcwd()}). Run --resume from that folder, with the same paths."
        )
    stale = {k for k, stat in scan.written.items() if k in inputs and inputs[k] != stat}
    todo = [f for f in found if (k := _found_key(f)) not in scan.written or k in stale]
    kept = {k: p for k, p in scan.problems.items() if k not in stale}
    plan = Resume(todo, len(inputs) - len({_found_key(f) for f in todo}))
    plan.rows, plan.problems = len(kept), sum(kept.values())
    return plan, stale


def _rewrite(source: Path, part: Path, fmt: str, header: str, finished: bool, drop) -> None:
    """Write ``part`` anew (atomically) from ``source``, without the rows of ``drop``."""
    seen: set[str] = set()
    with fsutil.atomic_file(part, "wb", error_type=OutputError) as out:
        out.write(header.encode("utf-8") if fmt == "csv" else b"")
        for item in _records(source, fmt, header, finished):
            if isinstance(item, Record):
                key = key_of(item.path)
                if key not in drop and key not in seen:
                    seen.add(key)
                    out.write(item.raw)


def _target(output) -> tuple[Path, Path]:
    with fsutil.disk_errors(Path(output), OutputError):
        target, through = fsutil.write_target(output)
    part = fsutil.visible_part_path(target)
    if target.is_dir() or part.is_dir():
        from ..core.runtime.results_shards import is_shard_folder

        what = "a Ray job's folder of Parquet shards: resume it with --ray (and --format "
        what += "parquet)" if is_shard_folder(target if target.is_dir() else part) else "a folder"
        raise OutputError(f"{target.name} is {what}, or choose another --output.")
    if through:
        raise OutputError(f"--resume needs a regular --output file, not {target}.")
    if filelocks.held_by_another(part):
        raise OutputError(
            f"Another run is writing {part.name} in {part.parent} right now. Wait for it "
            "to finish, or choose another output file."
        )
    return target, part


def prepare(fmt: str, output, top_k: int, unsure: bool, found: list) -> Resume:
    """Ready ``FILE.part`` for appending, and say what is left of ``found`` to do."""
    header = RowWriter(fmt if fmt == "csv" else "jsonl", top_k, unsure=unsure, file_info=True)
    header = header.start()
    target, part = _target(output)
    finished = not part.is_file()
    source = target if finished else part
    if finished and not target.is_file():
        return Resume(todo=found)  # nothing to resume: a run from the start
    scan = _scan(source, fmt, header, finished)
    plan, stale = _plan(scan, found)
    if finished and not plan.todo and not stale:
        plan.complete = target
        return plan
    with fsutil.disk_errors(part, OutputError):
        if finished or stale or scan.duplicates:
            _rewrite(source, part, fmt, header, finished, stale)
        elif scan.end < part.stat().st_size:
            os.truncate(part, scan.end)  # the torn last row goes
        if fmt == "csv" and part.stat().st_size == 0:
            part.write_bytes(header.encode("utf-8"))
    return plan


# --------------------------------------------------------------------------- shards
def _shard_source(output) -> tuple[Path | None, Path]:
    """(the shard folder to go on from, or None: start anew; and the part folder)."""
    from ..core.runtime import results_shards as shards

    target = shards.real_target(output)
    part = fsutil.visible_part_path(target)
    shards.refuse_if_busy(part, OutputError)
    for folder in (part, target):
        if folder.is_dir() and shards.is_shard_folder(folder):
            return folder, part
    if target.is_file():
        raise OutputError(
            f"{target.name} is a file, not a Ray job's folder of Parquet shards. Resume the "
            "run that wrote it without --ray, or choose another --output."
        )
    return None, part


def _same_job(folder: Path, model: str | None) -> None:
    from ..core.runtime.results_shards import read_job

    made_with = read_job(folder).get("model")
    if model and made_with and made_with != model:
        raise OutputError(
            f"The shards in {folder.name} were made with {made_with}, not {model}. Resume "
            "with the first run's --model, or choose another --output."
        )


def _scan_shards(folder: Path, top_k: int, unsure: bool) -> tuple[_Scan, dict[str, set]]:
    """The rows of every shard; and, per shard name, the keys it repeats from another."""
    from ..core.runtime import results_shards as shards

    scan, repeats = _Scan(), {}
    for shard in shards.shard_files(folder):
        if not shards.same_columns(shard, top_k, unsure, OutputError):
            raise OutputError(
                f"The shards in {folder.name} have other columns than this run's. Resume "
                "with the same --model and --top-k as the first run, or choose another --output."
            )
        for path, stat, problem in shards.shard_keys(shard, OutputError):
            if not scan.add(path, stat, problem):
                repeats.setdefault(shard.name, set()).add(key_of(path))
    return scan, repeats


def _link_into(source: Path, part: Path) -> None:
    """A complete ``OUT`` stays whole until the resumed run completes: its files are
    linked (copied where links cannot be made) into ``OUT.part``, which is changed."""
    from ..core.runtime.results_shards import LOCK, SUMMARY

    part.mkdir(exist_ok=True)
    for item in source.iterdir():
        if item.name in (SUMMARY, LOCK) or not item.is_file():
            continue
        try:
            os.link(item, part / item.name)
        except OSError:
            shutil.copy2(item, part / item.name)


def prepare_shards(output, top_k: int, unsure: bool, found: list, model=None) -> Resume:
    """Ready a Ray job's shard folder (``OUT.part``) to go on; what is left of ``found``."""
    from ..core.runtime import results_shards as shards

    source, part = _shard_source(output)
    if source is None:
        return Resume(todo=found)
    finished = source != part
    _same_job(source, model)
    scan, repeats = _scan_shards(source, top_k, unsure)
    plan, stale = _plan(scan, found)
    if finished and not plan.todo and not stale:
        plan.complete = source
        return plan
    with fsutil.disk_errors(part, OutputError):
        if finished:
            _link_into(source, part)
        shards.remove_leftovers(part)
        for shard in shards.shard_files(part):
            drop = stale | repeats.get(shard.name, set())
            if drop and drop & {key_of(p) for p, _, _ in shards.shard_keys(shard, OutputError)}:
                shards.drop_rows(shard, lambda p, d=drop: key_of(p) in d, OutputError)
    return plan
