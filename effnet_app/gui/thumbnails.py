"""Thumbnails for the results table, made off the GUI thread and cached twice.

``ThumbnailCache.request(path)`` answers with ``thumbnail_ready(path, QImage)``:
at once from an in-memory LRU, otherwise later from one background job that reads the
disk cache (``paths.thumbnails_dir()``) or decodes the image with
``images.make_thumbnail`` and writes the disk cache. Everything slow (stat, decode,
encode, file writes) happens on the job's threads; the GUI thread only does dictionary
look-ups and emits signals.

One job drains a shared queue with a small thread pool, newest request first (the rows on
screen now are the ones asked for last), in small batches, and ends when the queue is
empty; the next request starts another. A file that cannot be read is reported once through
``thumbnail_failed`` and never tried again by this cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QImage

from ..core import paths
from ..core.data import images
from ..core.jobs import NEVER
from .workers import Worker

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 128  # pixels: 64 logical pixels on the table at 200% scaling
MEMORY_CAPACITY = 2000  # about 40 KB each at 128 px
JPEG_QUALITY = 90
BATCH_PER_THREAD = 4  # files per thread in one batch: about 20 ms of work at 128 px


@dataclass(frozen=True)
class ThumbnailMade:
    """What the job yields per file: an image, or why there is none."""

    path: str
    image: QImage | None
    problem: str | None = None


class _RequestQueue:
    """Paths waiting for the job; shared by the GUI thread and the job's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[str] = []

    def put(self, path: str) -> None:
        with self._lock:
            self._items.append(path)

    def take(self, count: int) -> list[str]:
        """Up to ``count`` paths, newest first."""
        with self._lock:
            taken = self._items[-count:][::-1]
            del self._items[len(self._items) - len(taken) :]
            return taken

    def clear(self) -> list[str]:
        with self._lock:
            dropped, self._items = self._items, []
            return dropped

    def snapshot(self) -> set[str]:
        with self._lock:
            return set(self._items)


# ---------------------------------------------------------------------------------------
# The job (runs on a worker thread; no widgets, no QPixmap)


def thumbnail_job(queue: _RequestQueue, size: int, folder: Path, threads: int, cancel=NEVER):
    """Yield a tuple of ``ThumbnailMade`` per batch of queued paths until none are left.

    Batches rather than single thumbnails: one cross-thread signal per few files keeps the
    GUI thread's event queue short while hundreds of rows scroll past.
    """
    pool = ThreadPoolExecutor(threads, thread_name_prefix="thumbnail")
    try:
        while True:
            cancel.raise_if_cancelled()
            batch = queue.take(threads * BATCH_PER_THREAD)
            if not batch:
                return
            yield tuple(pool.map(lambda path: load_or_make(path, size, folder), batch))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load_or_make(path: str, size: int, folder: Path) -> ThumbnailMade:
    """The disk-cached thumbnail of ``path``, made and cached if missing. Never raises."""
    try:
        cached = _cache_file(path, size, folder)
        image = _read_cached(cached) if cached is not None else None
        if image is not None:
            return ThumbnailMade(path, image)
        made = images.make_thumbnail(path, size)
        if isinstance(made, images.ImageProblem):
            return ThumbnailMade(path, None, made.reason)
        if cached is not None:
            _write_cached(cached, made)
        return ThumbnailMade(path, to_qimage(made))
    except Exception as exc:  # one odd file must not end the job for every other file
        log.debug("no thumbnail for %s", path, exc_info=True)
        return ThumbnailMade(path, None, images.describe(exc))


def _cache_file(path: str, size: int, folder: Path) -> Path | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None  # make_thumbnail says why, in the words the results table uses
    return folder / f"{cache_key(path, info, size)}.jpg"


def cache_key(path: str, info: os.stat_result, size: int) -> str:
    """Changes whenever the file does (time or size) or another size is wanted."""
    # The name's bytes as the file system holds them: a name that is not UTF-8 is fine.
    name = os.fsencode(os.path.abspath(path))
    text = f"\0{info.st_mtime_ns}\0{info.st_size}\0{size}".encode()
    return hashlib.sha1(name + text).hexdigest()


def to_qimage(image: Image.Image) -> QImage:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    view = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return view.copy()  # owns its pixels; ``data`` may go


def _read_cached(file: Path) -> QImage | None:
    try:
        with Image.open(file) as cached:
            cached.load()
            return to_qimage(cached)
    except FileNotFoundError:
        return None
    except Exception:  # a damaged cache file is simply made again
        log.debug("ignoring damaged thumbnail cache file %s", file, exc_info=True)
        return None


def _write_cached(file: Path, image: Image.Image) -> None:
    # Temp file + os.replace: a reader never sees half a file. No fsync: this is a cache,
    # and a file damaged by a crash is detected on reading and made again.
    temp = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        image.save(temp, "JPEG", quality=JPEG_QUALITY)
        os.replace(temp, file)
    except OSError:
        log.debug("cannot write thumbnail cache %s", file, exc_info=True)
        temp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# The GUI-thread side


class ThumbnailCache(QObject):
    """Ask for thumbnails by path; they come back by signal, on the GUI thread."""

    # Paths as object: a QString would drop the bytes of a name that is not UTF-8.
    thumbnail_ready = Signal(object, QImage)  # path (str), thumbnail
    thumbnail_failed = Signal(object, str)  # path (str), reason: once per file
    pending_cleared = Signal()  # requests were dropped unanswered: ask again if still needed

    def __init__(
        self,
        size: int = THUMBNAIL_SIZE,
        capacity: int = MEMORY_CAPACITY,
        folder: Path | None = None,
        threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self.folder = folder if folder is not None else paths.thumbnails_dir()
        # Thumbnails share the CPU with classification, which matters more.
        self.threads = threads or min(4, max(1, (os.cpu_count() or 2) // 2))
        self._memory: OrderedDict[str, QImage] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._pending: set[str] = set()  # queued or being made
        self._queue = _RequestQueue()
        self._worker: Worker | None = None
        self._stopped = False
        self.jobs_started = 0
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)

    # ------------------------------------------------------------------ asking

    def request(self, path: str | os.PathLike) -> None:
        """Emit ``thumbnail_ready`` now if in memory, else soon; never blocks."""
        key = str(path)
        image = self.cached(key)
        if image is not None:
            self.thumbnail_ready.emit(key, image)
            return
        if self._stopped or key in self._pending or key in self._failed:
            return
        self._pending.add(key)
        self._queue.put(key)
        self._ensure_worker()

    def cached(self, path: str | os.PathLike) -> QImage | None:
        image = self._memory.get(str(path))
        if image is not None:
            self._memory.move_to_end(str(path))
        return image

    def failure(self, path: str | os.PathLike) -> str | None:
        """Why ``path`` has no thumbnail, once that is known."""
        return self._failed.get(str(path))

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    # ------------------------------------------------------------------ stopping

    def clear_pending(self) -> None:
        """Forget requests not started yet (a new job replaced the rows asking for them)."""
        self._pending.difference_update(self._queue.clear())
        self.pending_cleared.emit()

    def stop(self) -> None:
        """For good (the app is quitting): drop every request and cancel the job."""
        self._stopped = True
        self.clear_pending()
        if self._worker is not None:
            self._worker.cancel()

    def wait(self, ms: int = 5000) -> bool:
        return self._worker is None or self._worker.wait(ms)

    # ------------------------------------------------------------------ the job

    def _ensure_worker(self) -> None:
        if self._worker is not None or self._stopped:
            return
        args = (self._queue, self.size, self.folder, self.threads)
        worker = Worker(thumbnail_job, *args, parent=self)
        worker.yielded.connect(self._on_worker_yielded)
        worker.errored.connect(self._on_worker_errored)
        worker.ended.connect(self._on_worker_ended)
        self._worker = worker
        self.jobs_started += 1
        worker.start()

    def _on_worker_yielded(self, batch: tuple[ThumbnailMade, ...]) -> None:
        for made in batch:
            self._pending.discard(made.path)
            if made.image is None or made.image.isNull():
                self._failed[made.path] = made.problem or "no thumbnail"
                self.thumbnail_failed.emit(made.path, self._failed[made.path])
            else:
                self._remember(made.path, made.image)
                self.thumbnail_ready.emit(made.path, made.image)

    def _on_worker_errored(self, exc: object) -> None:
        # A bug, not a bad file (those are data): no thumbnails rather than the same failure
        # again for every row that is painted.
        log.error("thumbnail job failed, thumbnails are off: %s", exc)
        self.stop()

    def _on_worker_ended(self) -> None:
        self._worker = None  # it deletes itself
        # Results arrive before ``ended``: anything pending and not queued was in flight
        # when the job was cancelled or failed, and will never come.
        lost = self._pending - self._queue.snapshot()
        self._pending -= lost
        if lost:
            self.pending_cleared.emit()
        if self._pending and not self._stopped:
            self._ensure_worker()  # requests that came after the job found its queue empty

    def _remember(self, path: str, image: QImage) -> None:
        self._memory[path] = image
        self._memory.move_to_end(path)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)
