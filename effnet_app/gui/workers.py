"""One generic Worker: runs a core job (a generator) on a background thread.

The job is called as ``job_fn(*args, cancel=token, **kwargs)`` on the worker thread; each
value it yields arrives on the GUI thread as ``progressed``; its return value as
``finished``; an exception as ``errored``; a cancel as ``cancelled``. Nothing here touches
a widget: views connect to the signals.

Lifetime: the QThread is kept alive by a module-level registry until its ``run`` ends, so
a Worker (and the window that owns it) can be deleted while its job still runs; the job
is cancelled and its late signals go nowhere.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from ..core.jobs import Cancelled, CancelToken

log = logging.getLogger(__name__)


class _Registry(QObject):
    """Keeps each job thread alive until its ``run`` has ended, on the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[QThread] = set()

    def add(self, thread: QThread) -> None:
        self.threads.add(thread)
        thread.finished.connect(self._on_thread_finished)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        if isinstance(thread, QThread):
            thread.wait()  # ``finished`` is emitted just before run() returns
            self.threads.discard(thread)


_registry: _Registry | None = None


def _threads() -> _Registry:
    global _registry
    if _registry is None:
        _registry = _Registry()
        app = QCoreApplication.instance()
        if app is not None:
            _registry.moveToThread(app.thread())
    return _registry


class _JobThread(QThread):
    """Runs the generator; emits (kind, payload) to the Worker on the GUI thread."""

    event = Signal(str, object)

    def __init__(self, job_fn: Callable[..., Any], args, kwargs, token: CancelToken):
        super().__init__()
        self._job_fn = job_fn
        self._args = args
        self._kwargs = kwargs
        self._token = token

    @property
    def cancel_token(self) -> CancelToken:
        return self._token

    def run(self) -> None:  # noqa: D401 - Qt's name
        self.event.emit("started", None)
        kind, payload = self._drive()
        self.event.emit(kind, payload)

    def _drive(self) -> tuple[str, object]:
        """Run the job to its end; the outcome is reported only after the generator has
        been closed, so its clean-up (partial files, open handles) is done by then."""
        job = None
        try:
            job = self._job_fn(*self._args, cancel=self._token, **self._kwargs)
            while True:
                self._token.raise_if_cancelled()
                try:
                    item = next(job)
                except StopIteration as stop:
                    self._token.raise_if_cancelled()
                    return "finished", stop.value
                self.event.emit("progressed", item)
        except Cancelled as exc:  # may carry what was done before the cancel
            return "cancelled", exc
        except BaseException as exc:  # the GUI decides how to show it
            name = getattr(self._job_fn, "__name__", self._job_fn)
            log.debug("job %s failed", name, exc_info=True)
            return "errored", exc
        finally:
            if job is not None:
                try:
                    job.close()  # run the generator's finally blocks on this thread
                except BaseException:  # a clean-up that fails must not hide the outcome
                    log.warning("closing job %s failed", self._job_fn, exc_info=True)


class Worker(QObject):
    """Runs ``job_fn`` once on a background thread; signals arrive on the GUI thread."""

    started = Signal()
    progressed = Signal(object)
    finished = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    ended = Signal()  # after any of finished / errored / cancelled

    def __init__(self, job_fn: Callable[..., Any], *args, parent: QObject | None = None, **kwargs):
        super().__init__(parent)
        self.token = CancelToken()
        self._thread = _JobThread(job_fn, args, kwargs, self.token)
        self._thread.event.connect(self._on_thread_event)
        self._done = False
        self.cancelled_with: Cancelled | None = None  # the job's Cancelled, when it raised one
        # A deleted owner must not receive results: cancel and cut the connection first.
        self.destroyed.connect(self._thread_forget_owner(self._thread, self.token))

    @staticmethod
    def _thread_forget_owner(thread: _JobThread, token: CancelToken):
        def forget(*_):
            token.cancel()
            try:
                thread.event.disconnect()
            except (RuntimeError, TypeError):
                pass

        return forget

    def start(self) -> Worker:
        _threads().add(self._thread)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop at its next step; ``cancelled`` follows, never ``finished``
        or ``errored``."""
        self.token.cancel()

    @property
    def running(self) -> bool:
        return not self._done and self._thread.isRunning()

    @property
    def is_done(self) -> bool:
        return self._done

    def wait(self, ms: int = 5000) -> bool:
        return self._thread.wait(ms)

    def _on_thread_event(self, kind: str, payload: object) -> None:
        if self._done:
            return
        if kind == "started":
            self.started.emit()
        elif kind == "progressed":
            if not self.token.cancelled:
                self.progressed.emit(payload)
        else:
            self._done = True
            if kind in ("finished", "errored") and self.token.cancelled:
                # The owner has moved on (a newer selection, a new run): a late failure of
                # the job it gave up on must not overwrite what it shows now.
                if kind == "errored":
                    log.info("ignoring an error of a cancelled job: %s", payload)
                kind = "cancelled"
            if kind == "finished":
                self.finished.emit(payload)
            elif kind == "errored":
                self.errored.emit(payload)
            else:
                self.cancelled_with = payload if isinstance(payload, Cancelled) else None
                self.cancelled.emit()
            self.ended.emit()


def _wait_at_exit() -> None:
    """Interpreter exit: a QThread destroyed while running aborts the process, so cancel
    every job and let each reach its next cancel point (an import in progress finishes
    first). The app's main() does this itself; this catches scripts and test runs."""
    if _registry is not None:
        stop_all(timeout_ms=60_000)


atexit.register(_wait_at_exit)


def running_count() -> int:
    return sum(1 for t in _threads().threads if t.isRunning())


def stop_all(timeout_ms: int = 5000) -> bool:
    """Cancel every running job and wait for them, ``timeout_ms`` in all.

    True when every thread ended. A job inside a long call that cannot see its token
    (``import torch`` at start-up) may not end in time; the caller then exits the
    process without tearing down the interpreter under that thread.
    """
    threads = list(_threads().threads)
    for thread in threads:
        thread.cancel_token.cancel()
    deadline = time.monotonic() + timeout_ms / 1000
    for thread in threads:
        thread.wait(max(0, int((deadline - time.monotonic()) * 1000)))
    return not any(t.isRunning() for t in threads)
