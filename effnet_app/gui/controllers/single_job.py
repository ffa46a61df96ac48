"""At most one Worker at a time for a controller, forgotten as soon as it ends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QObject

from ..workers import Worker


class SingleJob:
    """Starts a job in a Worker unless one is still running; drops it once it has ended
    (the Worker deletes itself then)."""

    def __init__(self, owner: QObject) -> None:
        self._owner = owner
        self.worker: Worker | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(
        self, job_fn: Callable[..., Any], *args, on: Mapping[str, Callable], **kwargs
    ) -> Worker | None:
        """``on`` maps Worker signal names ("yielded", "returned", ...) to handlers.
        None, and nothing started, while the last job is still running."""
        if self.worker is not None:
            return None
        worker = Worker(job_fn, *args, parent=self._owner, **kwargs)
        worker.ended.connect(self._on_worker_ended)  # first: an "ended" handler may start anew
        for name, handler in on.items():
            getattr(worker, name).connect(handler)
        self.worker = worker
        return worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_worker_ended(self) -> None:
        self.worker = None
