"""Getting a model's weights: download them (with progress and Cancel) or import a file.

Each is one job at a time; the window shows progress and outcomes from the signals.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ...core.runtime import session
from .single_job import SingleJob


class WeightsController(QObject):
    download_progressed = Signal(object)  # Progress, in bytes once the size is known
    download_finished = Signal(str, object)  # model key, Path of the saved weights
    download_failed = Signal(str, object)  # model key, the exception
    download_cancelled = Signal(str)  # model key; the partial file is removed
    import_started = Signal(str, object)  # model key, the file being checked
    import_finished = Signal(str, object)  # model key, the file imported
    import_failed = Signal(str, object, object)  # model key, the file, the exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._download = SingleJob(self)
        self._import = SingleJob(self)
        self._downloading: str = ""  # the key of the running download
        self._next_download: tuple[str, str | None] | None = None
        self._importing: tuple[str, str] = ("", "")  # key and file of the running import

    @property
    def downloading(self) -> bool:
        return self._download.running

    @property
    def importing(self) -> bool:
        return self._import.running

    # ------------------------------------------------------------------ download

    def download(self, key: str, mirror: str | None) -> None:
        """Download ``key``'s weights. A download still running (one whose Cancel closed
        its dialog, stuck on a stalled connection) is cancelled and this one starts as
        soon as it has ended."""
        if self._download.running:
            self._next_download = (key, mirror)
            self._download.cancel()
            return
        self._downloading = key
        self._download.start(
            session.download,
            key,
            mirror,
            on={
                "yielded": self.download_progressed.emit,
                "returned": self._on_download_returned,
                "errored": self._on_download_errored,
                "cancelled": self._on_download_cancelled,
                "ended": self._on_download_ended,
            },
        )

    def cancel_download(self) -> None:
        """The download stops at its next chunk (or when a stalled connection times out);
        the engine removes the partial file on the job's thread. A download waiting for
        that one to stop is dropped too: the user cancelled it as well."""
        self._next_download = None
        self._download.cancel()

    def _on_download_returned(self, path: object) -> None:
        self.download_finished.emit(self._downloading, path)

    def _on_download_errored(self, exc: object) -> None:
        self.download_failed.emit(self._downloading, exc)

    def _on_download_cancelled(self, _exc: object) -> None:
        if self._next_download is None:  # else the next download speaks for this key
            self.download_cancelled.emit(self._downloading)

    def _on_download_ended(self) -> None:
        if self._next_download is not None:
            key, mirror = self._next_download
            self._next_download = None
            self.download(key, mirror)

    # ------------------------------------------------------------------ import

    def import_file(self, key: str, file: str) -> bool:
        """Check ``file`` and copy it into the cache as ``key``'s weights; False while
        another import is still being checked."""
        worker = self._import.start(
            session.import_file,
            key,
            file,
            on={"returned": self._on_import_returned, "errored": self._on_import_errored},
        )
        if worker is None:
            return False
        self._importing = (key, file)
        self.import_started.emit(key, file)
        return True

    def _on_import_returned(self, _path: object) -> None:
        self.import_finished.emit(*self._importing)

    def _on_import_errored(self, exc: object) -> None:
        self.import_failed.emit(*self._importing, exc)
