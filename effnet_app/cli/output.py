"""Where classify's rows go, as they come: stdout, or a file that takes its name at the end.

CSV and JSON are written a batch at a time (nothing of a row is kept once it is out), to
stdout or to ``FILE.part`` beside the output file, which becomes ``FILE`` only when the
run completes. The table is aligned, so it is kept (as text) and written at the end. When
a run stops early (Ctrl+C, SIGTERM, a late error) what was written stays, and ``abort``
says how many rows and where.
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
    def __init__(self, path: str | os.PathLike) -> None:
        self.out = fsutil.OutputFile(path, "wb", visible_part=True, error_type=OutputError)

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


class UnsureRows:
    """CSV and JSON rows with an ``unsure`` column (true/false) or key, after the others.

    Only for models with an unknown threshold (trained ones), so zoo output is unchanged:
    ``label_1`` stays the most likely class; ``unsure`` says the model calls it "not sure".
    """

    def __init__(self, writer) -> None:
        self.writer = writer

    def start(self) -> str:
        text = self.writer.start()
        return text[: -len(_EOL)] + ",unsure" + _EOL if text else text

    def row(self, result) -> str:
        import json
        import textwrap

        text = self.writer.row(result)
        flag = bool(getattr(result, "unsure", False))
        if self.writer.fmt == "csv":
            return text[: -len(_EOL)] + ("," + ("true" if flag else "false")) + _EOL
        head = text[:2]  # "[\n" or ",\n"
        fields = json.loads(text[2:])
        fields["unsure"] = flag
        return head + textwrap.indent(json.dumps(fields, indent=2), "  ")

    def end(self) -> str:
        return self.writer.end()


_EOL = "\r\n"  # what csv.writer ends each line with


class ResultsOutput:
    """Rows of one run in one format (table, csv or json) on their way to a destination."""

    def __init__(
        self, fmt: str, top_k: int, path: str | os.PathLike | None, given, unsure: bool = False
    ) -> None:
        from ..core.runtime.results_io import RowWriter

        self.writer = None if fmt == "table" else RowWriter(fmt, top_k)
        if self.writer is not None and unsure:
            self.writer = UnsureRows(self.writer)
        self.table: list[tuple[str, ...]] = [TABLE_HEADER]
        self.written = 0  # rows that reached the destination
        self._started = self._failed = False
        if path is not None:
            refuse_inputs(path, given)
        self.destination = _Stdout() if path is None else _File(path)

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

    def add(self, results) -> None:
        if not results:
            return
        if self.writer is None:
            self.table.extend(table_row(r) for r in results)
            return
        self._write(self._start() + "".join(self.writer.row(r) for r in results))
        self.written += len(results)

    def finish(self) -> None:
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
        if not self.written:
            self.destination.drop()
            return None
        where = self.destination.keep()
        rows = "1 row was" if self.written == 1 else f"{self.written} rows were"
        return f"{rows} written to {where} before the run stopped."
