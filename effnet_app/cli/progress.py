"""Progress on stderr while a job runs, and lines said beside it."""

from __future__ import annotations

import sys
from contextlib import suppress

from .common import raise_if_interrupted, say


class ProgressBar:
    """A one-line bar on stderr; on a pipe, a line every 10 %, so logs stay short."""

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_decile = -1
        self._drawn = False

    def update(self, progress) -> None:
        total = progress.total or 0
        done = progress.done
        if progress.unit == "bytes":
            amount = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            rate = f"{progress.rate / 1e6:.1f} MB/s" if progress.rate else ""
        else:
            amount = f"{done}/{total}" if total else str(done)
            rate = f"{progress.rate:.1f} {progress.unit}/s" if progress.rate else ""
        eta = f"ETA {progress.eta:.0f}s" if progress.eta is not None and total else ""
        fraction = progress.fraction or 0.0
        bar = "#" * int(fraction * self.width)
        line = f"[{bar:<{self.width}}] {amount} {rate} {eta}".rstrip()
        if self.tty:
            self.stream.write("\r" + line.ljust(79))
            self._drawn = True
        else:
            decile = int(fraction * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, line: str) -> None:
        """A line of its own; on a terminal the bar is wiped first and drawn again later."""
        if self.tty and self._drawn:
            self.stream.write("\r" + " " * 79 + "\r")
            self._drawn = False
        say(line)

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def progress_bar(quiet: bool) -> ProgressBar | None:
    """A bar on stderr, or None when asked for quiet or stderr is closed."""
    if quiet or sys.stderr is None:
        return None
    return ProgressBar()


def run_job(job, quiet: bool = False, describe=None):
    """Run a job to its end with a bar for its Progress events; returns its result.

    ``describe(event)`` gives the line (or None) said for an event without a Progress,
    such as training's phases and epochs; nothing is said when quiet.
    """
    from ..core.jobs import Progress

    bar = progress_bar(quiet)
    try:
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value
            raise_if_interrupted()
            progress = getattr(event, "progress", event)
            if isinstance(progress, Progress):
                if bar:
                    bar.update(progress)
            elif bar and describe and (line := describe(event)):
                bar.say(line)
    finally:
        job.close()
        if bar:
            with suppress(OSError, ValueError):
                bar.close()
