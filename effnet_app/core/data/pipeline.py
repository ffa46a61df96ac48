"""Paths in, tensors (or problems) out, in order: the one decode pipeline every job uses.

Classification, feature extraction, training, evaluation and cluster workers all read
images through ``DecodePipeline``, so a fix to decoding lands everywhere at once::

    pipeline = DecodePipeline.for_preprocess(spec.preprocess)
    for path, item in pipeline.run(expand_paths(paths), cancel):
        ...  # item is what the transform made, or an ImageProblem

Decoding runs on a thread pool with a bounded look-ahead, so memory holds at most
``look_ahead`` finished items; a shared ``PixelBudget`` bounds how many pixels are being
decoded at once, so a folder of huge PNGs decodes them one or two at a time instead of
all together.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar

from ..jobs import NEVER, CancelToken
from . import images
from .images import ImageProblem

log = logging.getLogger(__name__)

T = TypeVar("T")

# JPEGs are draft-decoded (DCT scaling) to at least 1.4x the resize target, so the final
# antialiased resize still smooths what the coarse decode leaves; a 12 MP photo then
# decodes at 1/8 scale (8x the images per second of the naive loop instead of 6x at 2x
# margin). Checked on five sample photos enlarged 3-10x: top-1 matched a full decode in
# 33 of 35 cases; the two misses were `chelsea`'s near-tie (tiger cat vs Egyptian cat,
# 0.5 % apart), which flips at margin 2 too.
DRAFT_MARGIN = 1.4

# Pixels decoding at once in the whole process. An RGBA decode holds 4 bytes a pixel,
# and an image under images.EARLY_SHRINK_PIXELS up to about 11 while its colours are
# converted, so this keeps decoding under about 1 GB however many threads there are.
# An image larger than the budget still decodes, alone. Camera JPEGs are draft-decoded
# to a fraction of a megapixel, so they never wait.
DEFAULT_PIXEL_BUDGET = 96_000_000


class PixelBudget:
    """At most ``limit`` pixels held at once by the decodes that share this budget.

    ``acquire`` waits until the pixels fit and returns what it took (never more than
    ``limit``, so any single image can proceed once it is alone); give that back with
    ``release``. Only decodes in progress hold pixels, never finished items waiting to
    be consumed, so in-order consumption cannot deadlock against it.
    """

    def __init__(self, limit: int = DEFAULT_PIXEL_BUDGET) -> None:
        if limit < 1:
            raise ValueError("a pixel budget must be at least one pixel")
        self.limit = int(limit)
        self._held = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        return self._held

    @property
    def peak(self) -> int:
        """The most pixels ever held at once (for tests and benchmarks)."""
        return self._peak

    def acquire(self, pixels: int) -> int:
        amount = max(0, min(int(pixels), self.limit))
        with self._changed:
            self._changed.wait_for(lambda: self._held + amount <= self.limit)
            self._held += amount
            self._peak = max(self._peak, self._held)
        return amount

    def release(self, amount: int) -> None:
        with self._changed:
            self._held -= amount
            self._changed.notify_all()


SHARED_BUDGET = PixelBudget()  # memory is per process, so by default every pipeline shares one


def default_threads() -> int:
    return min(8, max(2, os.cpu_count() or 2))


def draft_target(preprocess) -> int:
    """The shorter side to decode at for a ``zoo.Preprocess``: its resize plus a margin."""
    return round(preprocess.resize_size * DRAFT_MARGIN)


class DecodePipeline(Generic[T]):
    """Decode files on a thread pool and hand back ``(path, item)`` in input order.

    Parameters:
        transform: PIL RGB image -> item (a normalised tensor for inference; training
            passes its augmentation). An exception in it becomes that file's problem.
        target_size: the shorter side the transform resizes to, or None for a full
            decode; JPEGs are draft-decoded and huge images shrunk to no less than it.
        threads: decode threads (default: the CPU count, between 2 and 8).
        look_ahead: files decoded ahead of the consumer at most (default 2 x threads);
            this bounds the finished items held in memory.
        budget: the ``PixelBudget`` bounding pixels decoded at once (default: the
            process-wide ``SHARED_BUDGET``).
        max_pixels: larger images are refused from their header, as a problem.
    """

    def __init__(
        self,
        transform: Callable[..., T],
        target_size: int | None = None,
        threads: int | None = None,
        look_ahead: int | None = None,
        budget: PixelBudget | None = None,
        max_pixels: int = images.MAX_PIXELS,
    ) -> None:
        self.transform = transform
        self.target_size = target_size
        self.threads = threads or default_threads()
        self.look_ahead = max(1, look_ahead or 2 * self.threads)
        self.budget = budget or SHARED_BUDGET
        self.max_pixels = max_pixels

    @classmethod
    def for_preprocess(cls, preprocess, **options) -> DecodePipeline:
        """A pipeline making a model's input tensors (``preprocess.apply``)."""
        return cls(preprocess.apply, target_size=draft_target(preprocess), **options)

    def decode(self, path: str | os.PathLike) -> T | ImageProblem:
        """One file -> the transform's item, or its problem; on the calling thread."""
        path = Path(path)
        held = 0

        def reserve(pixels: int) -> None:
            nonlocal held
            held = self.budget.acquire(pixels)

        try:
            loaded = images.load_image(path, self.target_size, self.max_pixels, reserve)
            if isinstance(loaded, ImageProblem):
                return loaded
            try:
                return self.transform(loaded)
            except Exception as exc:  # a decoder surprise is this image's problem, not the run's
                log.warning("preparing %s failed", path, exc_info=True)
                return ImageProblem(path, f"could not be prepared ({type(exc).__name__})")
            finally:
                loaded.close()
        finally:
            self.budget.release(held)

    def run(
        self, items: Iterable[Path | ImageProblem], cancel: CancelToken = NEVER
    ) -> Iterator[tuple[Path, T | ImageProblem]]:
        """``(path, item or problem)`` for every input, in order; checks ``cancel`` per item.

        An ``ImageProblem`` among the inputs (a folder that could not be read) passes
        through as that path's problem. Closing the generator early stops the decodes
        that have not started and waits for the running ones.
        """
        with ThreadPoolExecutor(self.threads, thread_name_prefix="decode") as pool:
            queue: deque[tuple[Path, Future | ImageProblem]] = deque()
            feed = iter(items)

            def submit() -> bool:
                item = next(feed, None)
                if item is None:
                    return False
                if isinstance(item, ImageProblem):
                    queue.append((item.path, item))
                else:
                    queue.append((Path(item), pool.submit(self.decode, item)))
                return True

            try:
                while len(queue) < self.look_ahead and submit():
                    pass
                while queue:
                    cancel.raise_if_cancelled()
                    path, pending = queue.popleft()
                    submit()
                    yield path, pending if isinstance(pending, ImageProblem) else pending.result()
            finally:
                for _, pending in queue:
                    if isinstance(pending, Future):
                        pending.cancel()
