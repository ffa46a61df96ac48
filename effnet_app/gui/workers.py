"""One generic Worker: runs a core job (a generator) on a background thread.

The job is called as ``job_fn(*args, cancel=token, **kwargs)`` on the worker thread. Its
signals, all delivered on the GUI thread, say what happened (napari's names):

``started()``
    the job began running on its thread.
``yielded(value)``
    the job yielded ``value`` (progress, a batch of rows); never after a cancel.
``returned(value)``
    the job ran to its end and returned ``value``.
``errored(exc)``
    the job raised ``exc``.
``cancelled(exc)``
    the job stopped because it was cancelled; ``exc`` is the ``Cancelled`` that stopped
    it (the job's own may carry what was done until then, like ``SortCancelled.summary``).
    A job that returns or fails after its cancel is reported as cancelled too, with
    None: its owner has moved on.
``ended()``
    after exactly one of returned / errored / cancelled, always last.

Nothing here touches a widget: views connect to the signals.

Lifetime: a Worker deletes itself (``deleteLater``) once it has emitted ``ended``; its
owner drops its reference in the ``ended`` handler. The QThread is kept alive by a
module-level registry until its ``run`` ends, so a Worker (and the window that owns it)
can be deleted while its job still runs; the job is cancelled and its late signals go
nowhere. ``live_workers()`` counts the Workers not deleted yet.

Connect a Worker's signals to bound methods (``self.sender()`` says which Worker sent
one), not to lambdas that capture the owner: PySide holds a lambda strongly, and when the
Worker is deleted, freeing the last reference to an owner that nothing else holds would
delete that owner, and with it the Worker again, inside the Worker's destructor.
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
        been closed, so its clean-up (partial files, open handles) is done by then.

        A job cancelled while it waits at a ``yield`` is resumed once more, so that its own
        cancel check can raise a ``Cancelled`` that carries what it did until then (the
        files a sort has moved); one that yields again instead is stopped right there.
        """
        job = None
        started, resumes_left = False, 1
        try:
            job = self._job_fn(*self._args, cancel=self._token, **self._kwargs)
            while True:
                if self._token.cancelled:
                    if not started or resumes_left == 0:
                        raise Cancelled()
                    resumes_left -= 1
                try:
                    item = next(job)
                except StopIteration as stop:
                    self._token.raise_if_cancelled()
                    return "returned", stop.value
                started = True
                if not self._token.cancelled:
                    self.event.emit("yielded", item)
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
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    cancelled = Signal(object)  # the job's Cancelled, or None
    ended = Signal()  # after any of returned / errored / cancelled; then deleted

    _live = 0  # Workers created and not destroyed yet

    def __init__(self, job_fn: Callable[..., Any], *args, parent: QObject | None = None, **kwargs):
        super().__init__(parent)
        self.token = CancelToken()
        self._thread = _JobThread(job_fn, args, kwargs, self.token)
        self._thread.event.connect(self._on_thread_event)
        self._done = False
        Worker._live += 1
        # A deleted owner must not receive results: cancel and cut the connection first.
        self.destroyed.connect(self._forget_thread(self._thread, self.token))

    @staticmethod
    def _forget_thread(thread: _JobThread, token: CancelToken):
        def forget(*_):
            Worker._live -= 1
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
        """Ask the job to stop at its next step; ``cancelled`` follows, never ``returned``
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
        elif kind == "yielded":
            if not self.token.cancelled:
                self.yielded.emit(payload)
        else:
            self._end(kind, payload)

    def _end(self, kind: str, payload: object) -> None:
        self._done = True
        if kind in ("returned", "errored") and self.token.cancelled:
            # The owner has moved on (a newer selection, a new run): a late failure of
            # the job it gave up on must not overwrite what it shows now.
            if kind == "errored":
                log.info("ignoring an error of a cancelled job: %s", payload)
            kind, payload = "cancelled", None
        if kind == "returned":
            self.returned.emit(payload)
        elif kind == "errored":
            self.errored.emit(payload)
        else:
            self.cancelled.emit(payload if isinstance(payload, Cancelled) else None)
        self.ended.emit()
        self.deleteLater()


def live_workers() -> int:
    """Workers created and not yet deleted (deletion happens in the event loop)."""
    return Worker._live


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
