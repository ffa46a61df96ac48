"""Where classify's rows go, as they come: stdout, or a file that takes its name at the end.

CSV, JSON and JSON Lines are written a batch at a time (nothing of a row is kept once it
is out), to stdout or to ``FILE.part`` beside the output file, which becomes ``FILE`` only
when the run completes. Parquet is written to ``FILE.part`` as JSON Lines (a journal of
whole rows) and converted into ``FILE`` at the end; a Ray job's Parquet is a folder of
shards its workers write (``core.runtime.results_shards``), named ``FILE`` at the end. The table is aligned, so it is kept
(as text) and written at the end. When a run stops early (Ctrl+C, SIGTERM, a late error)
what was written stays, and ``abort`` says how many rows and where; a resumed run
(``resumed``: rows already in the part) appends to that part and never removes it.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from ..core import fsutil
from ..core.errors import AppError
from .common import OutputError, flush_stdout, table_text, write_stdout

TABLE_HEADER = ("file", "top-1", "confidence", "also")
NOT_SURE = "not sure"  # the table's top-1 for a row below the model's unknown threshold


class _Stdout:
    def write(self, text: str) -> None:
        write_stdout(text)
        flush_stdout()

    def commit(self) -> None:
        flush_stdout()

    def keep(self) -> str:
        return "standard output"

    def drop(self) -> None:
        pass


class _File:
    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        self.out = fsutil.OutputFile(
            path, "wb", visible_part=True, append=append, error_type=OutputError
        )

    def write(self, text: str) -> None:
        """Write whole rows or none: a piece that does not fit (disk full) is taken back."""
        # Names that are not UTF-8 arrive as surrogates: written back as their own bytes.
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        fd = self.out.stream.fileno()  # unbuffered, so a failed write leaves nothing pending
        with fsutil.disk_errors(self.out.target, OutputError):
            start = os.lseek(fd, 0, os.SEEK_CUR) if self.out.part else None
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError:
                if start is not None:  # a part file (not a device or FIFO): cut it back
                    with suppress(OSError):
                        os.ftruncate(fd, start)
                        os.lseek(fd, start, os.SEEK_SET)
                raise

    def commit(self) -> None:
        self.out.commit()

    def keep(self) -> str:
        self.out.close(keep_part=True)
        return str(self.out.written_to)

    def drop(self) -> None:
        self.out.close()


class _ParquetFile(_File):
    """``FILE.part`` is a JSON Lines journal; the commit converts it into ``FILE``."""

    def __init__(self, path, top_k: int, unsure: bool, append: bool = False) -> None:
        super().__init__(path, append)
        if self.out.part is None:
            self.out.close()
            raise OutputError(
                f"Parquet is written to a regular file, not to {self.out.target}. "
                "Choose an --output file, or use --format jsonl."
            )
        self.top_k, self.unsure = top_k, unsure

    def commit(self) -> None:
        from ..core.runtime.results_parquet import journal_to_parquet

        journal = self.out.part
        self.out.stream.flush()
        self.out._check_ours()
        journal_to_parquet(
            journal, self.out.target, self.top_k, self.unsure, error_type=OutputError
        )
        self.out.close()  # the journal is removed: FILE holds every row now


def table_row(result) -> tuple[str, str, str, str]:
    if result.problem:
        return (str(result.path), "PROBLEM: " + result.problem, "", "")
    top, rest = result.predictions[0], result.predictions[1:]
    if getattr(result, "unsure", False):  # below a trained model's threshold: its candidates
        also = ", ".join(f"{p.label} {p.probability:.0%}" for p in result.predictions[:3])
        return (str(result.path), NOT_SURE, f"{top.probability:.1%}", also)
    also = ", ".join(f"{p.label} {p.probability:.0%}" for p in rest[:2])
    return (str(result.path), top.label, f"{top.probability:.1%}", also)


def refuse_inputs(path: str | os.PathLike, given) -> None:
    """Refuse an output (or its part file) that is one of the files the run reads.

    Only an output that exists can be an input, so only then are the paths walked again
    (the way the classifier walks them) to compare files by device and inode.
    """
    from ..core.data.folders import expand_paths

    real = Path(os.path.realpath(Path(path).expanduser()))
    outputs = [Path(path).expanduser(), fsutil.visible_part_path(real)]
    if not any(fsutil.file_identity(p) for p in outputs):
        return
    files = [f for f in expand_paths(given) if isinstance(f, os.PathLike)]
    for candidate in outputs:
        match = fsutil.same_file_among(candidate, files)
        if match is not None:
            same = "" if match == candidate else f" (the same file as {match})"
            raise AppError(
                f"The output {candidate}{same} is one of the files being classified; "
                "writing the results there would destroy it. Choose another --output file."
            )


STREAMED = ("csv", "json", "jsonl")  # written to the destination as they are
FORMATS = ("table", *STREAMED, "parquet")
RESUMABLE = ("csv", "jsonl", "parquet")


class ResultsOutput:
    """Rows of one run in one of ``FORMATS`` on their way to a destination."""

    def __init__(
        self,
        fmt: str,
        top_k: int,
        path: str | os.PathLike | None,
        given,
        unsure: bool = False,
        resumed: int | None = None,
        shards: bool = False,
        about: dict | None = None,
    ) -> None:
        from ..core.runtime.results_io import RowWriter

        self.top_k, self.unsure, self.about = top_k, unsure, about
        self.shards = None  # a Ray job's folder of Parquet shards, written by the workers
        if fmt == "parquet":
            from ..core.runtime.results_parquet import require_pyarrow

            require_pyarrow()
            if path is None:
                raise OutputError("Parquet is written to a file: add --output FILE.")
        kind = "jsonl" if fmt == "parquet" else fmt
        self.writer = None
        if fmt != "table":
            self.writer = RowWriter(kind, top_k, unsure=unsure, file_info=True)
        self.table: list[tuple[str, ...]] = [TABLE_HEADER]
        self.written = 0  # rows that reached the destination (in this run)
        self.resumed = resumed  # rows an earlier run left in the part, when resuming
        self._started = resumed is not None  # a resumed part has its header already
        self._failed = False
        append = resumed is not None
        if path is not None:
            refuse_inputs(path, given)
        if fmt == "parquet" and shards:
            from ..core.runtime.results_shards import ShardFolder

            self.shards = ShardFolder(path, append=append, about=about, error_type=OutputError)
            self.destination = self.shards
            return
        if path is None:
            self.destination = _Stdout()
        elif fmt == "parquet":
            self.destination = _ParquetFile(path, top_k, unsure, append)
        else:
            self.destination = _File(path, append)

    def _write(self, text: str) -> None:
        try:
            self.destination.write(text)
        except BaseException:
            self._failed = True
            raise

    def _start(self) -> str:
        if self._started or self.writer is None:
            return ""
        self._started = True
        return self.writer.start()

    def shard_options(self) -> dict | None:
        """Where and how Ray's workers write this run's shards (None: rows come here)."""
        return None if self.shards is None else self.shards.options(self.top_k, self.unsure)

    def add(self, results, stored: bool = False) -> None:
        """Write rows; ``stored``: the workers wrote them already (a Ray job's shards)."""
        if not results:
            return
        if self.shards is not None:
            if not stored:
                self.shards.store(results, self.top_k, self.unsure)
            self.written += len(results)
            return
        if self.writer is None:
            self.table.extend(table_row(r) for r in results)
            return
        self._write(self._start() + "".join(self.writer.row(r) for r in results))
        self.written += len(results)

    def finish(self) -> None:
        if self.shards is not None:
            self.shards.commit(self.written + (self.resumed or 0), self.about)
            return
        if self.writer is None:
            self._write(table_text(self.table))
        else:
            self._write(self._start() + self.writer.end())
        self.destination.commit()

    def abort(self) -> str | None:
        """End a run that stopped early; a sentence saying where its rows are, if any."""
        if self.writer is None and len(self.table) > 1 and not self._failed:
            try:
                self._write(table_text(self.table))
                self.written = len(self.table) - 1
            except (AppError, OSError):
                pass
        if not self.written and self.resumed is None:
            kept = self.destination.drop()  # a shard folder is kept if a worker wrote to it
            if kept is None:
                return None
            return f"Rows were written to {kept} before the run stopped; --resume goes on."
        where = self.destination.keep()
        if self.shards is not None:  # the workers may have written batches not seen here
            self.written = max(self.written, self.shards.rows() - (self.resumed or 0))
        rows = "1 row was" if self.written == 1 else f"{self.written} rows were"
        if self.resumed is None:
            return f"{rows} written to {where} before the run stopped."
        total = self.written + self.resumed
        return (
            f"{rows} added to {where} before the run stopped ({total} in all); "
            "run again with --resume to go on."
        )
