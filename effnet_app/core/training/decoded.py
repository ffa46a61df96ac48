"""Training images decoded once, at the model's resize size, kept for every epoch.

Fine-tuning augments the same images epoch after epoch; decoding the original files again
each time would cost more than the network on a CPU. Each image is decoded through the
shared ``DecodePipeline``, resized (shorter side = ``preprocess.resize_size``) and kept as
uint8 (3, H, W): in memory up to a budget, then in a private folder of ``.npy`` files that
``close()`` removes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from .. import paths
from ..data.images import ImageProblem
from ..data.pipeline import DecodePipeline, draft_target
from ..jobs import NEVER, CancelToken, Progress, RateMeter


def resized_uint8(preprocess):
    """PIL image -> uint8 tensor (3, H, W), shorter side ``resize_size``, as ``apply`` resizes."""

    def transform(image):
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        mode = InterpolationMode(preprocess.interpolation)
        image = F.resize(image, [preprocess.resize_size], mode, antialias=True)
        return F.pil_to_tensor(image).numpy()

    return transform


class DecodedImages:
    """``store[i]`` is image i as a uint8 array; memory first, then disk."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self.used = 0
        self._memory: dict[int, np.ndarray] = {}
        self._folder: Path | None = None
        self.problems: dict[int, str] = {}

    def add(self, index: int, array: np.ndarray) -> None:
        if self.used + array.nbytes <= self.budget:
            self._memory[index] = array
            self.used += array.nbytes
            return
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="decoded-", dir=paths.cache_dir()))
        np.save(self._folder / f"{index}.npy", array, allow_pickle=False)

    def __getitem__(self, index: int) -> np.ndarray:
        if index in self._memory:
            return self._memory[index]
        return np.load(self._folder / f"{index}.npy", allow_pickle=False)  # type: ignore[operator]

    @property
    def on_disk(self) -> bool:
        return self._folder is not None

    def close(self) -> None:
        self._memory.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def decode_all(
    preprocess, files: Sequence[Path], budget_bytes: int, cancel: CancelToken = NEVER
) -> Generator[Progress, None, DecodedImages]:
    """Job: every file decoded once into a ``DecodedImages`` (closed again on cancel)."""
    store = DecodedImages(budget_bytes)
    pipeline = DecodePipeline(resized_uint8(preprocess), target_size=draft_target(preprocess))
    meter = RateMeter(len(files), "images")
    try:
        with closing(pipeline.run(files, cancel)) as decoded:
            for index, (_, item) in enumerate(decoded):
                if isinstance(item, ImageProblem):
                    store.problems[index] = item.reason
                else:
                    store.add(index, item)
                if index % 16 == 15 or index == len(files) - 1:
                    yield meter.progress(index + 1, f"Decoded {index + 1} of {len(files)} images")
    except BaseException:
        store.close()
        raise
    return store
