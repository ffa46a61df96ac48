"""What every subcommand shares: exit codes, stdout that fails with a sentence, signals.

``run_command`` runs one subcommand's function and turns what can go wrong into an exit
code and one line on stderr: an ``AppError`` (2), results that could not be written (3),
a reader that closed the pipe (141), Ctrl+C (130) or SIGTERM (143). SIGTERM is made to
behave as Ctrl+C does: it raises ``Interrupted`` (a ``KeyboardInterrupt``) where the
program is, so every job's ``finally`` runs, part files are removed (or, for classify's
results, kept and named) and the exit is clean.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

from ..core.errors import AppError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports Ctrl+C
EXIT_PIPE = 141  # as a shell reports a command ended by SIGPIPE
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success: every file classified"),
    (EXIT_PROBLEMS, "some files had problems (listed on stderr), or no images were found"),
    (EXIT_USAGE, "bad usage, a missing or damaged model, an unusable device"),
    (EXIT_OUTPUT, "the results could not be written (stdout or --output closed or full)"),
    (EXIT_INTERRUPTED, "interrupted with Ctrl+C"),
    (EXIT_PIPE, "the reader of the output went away (`effnet-app ... | head`)"),
    (EXIT_TERMINATED, "stopped by SIGTERM (cleanly, as with Ctrl+C)"),
)


def exit_codes_text() -> str:
    """The exit-code table for ``--help``."""
    return "exit codes:\n" + "".join(f"  {code:<4} {what}\n" for code, what in EXIT_CODES)


class OutputError(AppError):
    """The results could not be written: stdout is closed or full, the output file failed."""


class Interrupted(KeyboardInterrupt):
    """Ctrl+C or SIGTERM, raised where the program was, so cleanup runs as for Ctrl+C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(line: str) -> None:
    """One line on stderr (nothing when stderr is closed)."""
    if sys.stderr is not None:
        with suppress(OSError, ValueError):
            print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- signals
_received: list[int] = []  # the signal whose Interrupted was raised, while one is caught


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` once; more during cleanup are ignored.

    Loops that run a job call ``raise_if_interrupted`` at each step, so a raise that was
    lost on its way (see there) still stops the run.
    """
    raised = _received

    def handler(signum: int, frame) -> None:
        if not raised:
            raised.append(signum)
            raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # as `cmd &` in a script sets it
                previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals stay as they are
            break
    if previous:  # what is recorded belongs to the handlers installed here
        raised.clear()
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        if previous:
            raised.clear()


def raise_if_interrupted() -> None:
    """Raise ``Interrupted`` again when a signal came but its raise never got here.

    Python runs a signal's handler wherever the main thread happens to be: in a
    ``__del__``, a weakref callback or a library's ``except BaseException: pass``, the
    exception is swallowed, and as further signals are ignored, Ctrl+C would do nothing.
    A job's loop is back at its step only if no raise reached it, so here it was lost.
    """
    if _received:
        raise Interrupted(_received[0])


# --------------------------------------------------------------------------- stdout
def _stdout_error(exc: BaseException | None) -> OutputError:
    if exc is None:
        return OutputError(
            "Standard output is closed, so the results have nowhere to go. Leave it open, "
            "or give --output FILE."
        )
    if getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what = "the disk or device it leads to is full"
    else:
        what = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return OutputError(
        f"Could not write to standard output ({what}). Free some space, or send the "
        "results to a file with --output FILE.",
        detail=repr(exc),
    )


def require_stdout() -> None:
    if sys.stdout is None:
        raise _stdout_error(None)


def write_stdout(text: str) -> None:
    """Write to stdout, escaping what its encoding cannot show; failures are OutputError."""
    stream = sys.stdout
    if stream is None:
        raise _stdout_error(None)
    try:
        try:
            stream.write(text)
        except UnicodeEncodeError:
            # A name the terminal's encoding cannot show (bytes that are not UTF-8 arrive
            # as surrogates; a legacy code page lacks most scripts): escape it, never crash.
            encoding = stream.encoding or "utf-8"
            stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        raise _stdout_error(exc) from exc


def flush_stdout() -> None:
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise _stdout_error(exc) from exc


def _silence_stdout() -> None:
    """Point a failed stdout at devnull, so the flush at exit does not complain again."""
    if sys.stdout is not None and sys.stdout is sys.__stdout__:
        with suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def _fill_closed_std_fds() -> None:
    """Put devnull on a closed fd 0, 1 or 2, so no file we open lands there by chance."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            spare = os.open(os.devnull, os.O_RDWR)
            if spare != fd:
                os.dup2(spare, fd)
                os.close(spare)


def table_text(rows: Sequence[Sequence[object]]) -> str:
    """Rows as left-aligned columns two spaces apart, trailing spaces trimmed."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


# --------------------------------------------------------------------------- running
def run_command(func: Callable[..., int], args) -> int:
    """Run a subcommand; what goes wrong becomes a sentence on stderr and an exit code."""
    _fill_closed_std_fds()
    with signals_as_interrupts():
        try:
            code = int(func(args))
            flush_stdout()  # here, so a full or closed stdout is caught, not at exit
            return code
        except OutputError as exc:
            _silence_stdout()
            say(f"effnet-app: {exc.sentence}")
            return EXIT_OUTPUT
        except AppError as exc:
            say(f"effnet-app: {exc.sentence}")
            return EXIT_USAGE
        except BrokenPipeError:
            # The reader stopped early (`effnet-app classify DIR | head`): as other tools
            # do, stop quietly.
            _silence_stdout()
            return EXIT_PIPE
        except KeyboardInterrupt as exc:
            if getattr(exc, "signum", signal.SIGINT) == signal.SIGTERM:
                say("effnet-app: stopped by SIGTERM")
                return EXIT_TERMINATED
            say("effnet-app: interrupted")
            return EXIT_INTERRUPTED
