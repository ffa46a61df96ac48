"""Batched classification: the decode pipeline, a backend and top-k.

``Classifier(spec, device)`` loads its network once (``load()``, a job that reports
progress) and reuses it for every ``predict(paths)``. ``predict`` is a generator of
``PredictionBatch``: every input file, and every folder that could not be read, comes
back exactly once, classified or with the problem it had, in the order the paths were
expanded.

The input pipeline makes what the backend wants (``Backend.wants``): torch tensors
through torchvision for ``TorchBackend``, numpy arrays through Pillow and NumPy for ONNX
Runtime and OpenVINO. Softmax, top-k and the "not sure" threshold are numpy, so a
numpy backend classifies without importing torch at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.folders import expand_paths
from ..data.images import ImageProblem
from ..data.pipeline import DecodePipeline, default_threads, draft_target
from ..jobs import NEVER, CancelToken, Progress, RateMeter
from ..models.zoo import ModelSpec
from .backend import Backend, RunState, as_numpy
from .torch_backend import TorchBackend


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    index: int


@dataclass(frozen=True)
class ImageResult:
    """One file: its top-k predictions, or the problem that kept it from being classified."""

    path: Path
    predictions: tuple[Prediction, ...] = ()
    problem: str | None = None
    unsure: bool = False  # top-1 below the trained model's unknown threshold: "not sure"

    @property
    def top1(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None


@dataclass(frozen=True)
class PredictionBatch:
    """The one event ``Classifier.predict`` (and ``Session.classify``) yields.

    ``stage`` is "loading" while the network is being loaded (``results`` is empty and
    ``progress`` counts steps) and "classifying" after that (``results`` holds the rows of
    one batch, possibly none, and ``progress`` counts images). ``notes`` carries what the
    user should know about this run, such as a batch size lowered after running out of
    memory.
    """

    results: tuple[ImageResult, ...]
    progress: Progress
    stage: str = "classifying"
    notes: tuple[str, ...] = ()
    engine: str = ""  # the runtime and precision that classified ("ONNX Runtime fp32")
    stored: bool = False  # the rows are in the run's output already (Ray workers' shards)


class Classifier:
    """A loaded network on one device, ready to classify any number of files.

    ``batch_size`` is where every run starts; a run that runs out of memory lowers its
    own batch size, says so in its notes, and leaves this one alone. ``backend``
    replaces the default ``TorchBackend`` (another runtime, or a network in memory).
    """

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "auto",
        batch_size: int | None = None,
        decode_threads: int | None = None,
        weights_path: Path | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.spec = spec
        self.backend = backend or TorchBackend(spec, device, weights_path)
        self.batch_size = batch_size or self.backend.default_batch_size()
        self.decode_threads = decode_threads or default_threads()
        self.weights_path = weights_path
        self.notes: tuple[str, ...] = ()  # what choosing its engine found (engines.py)
        self._load_lock = threading.Lock()

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def loaded(self) -> bool:
        return self.backend.loaded

    @property
    def model(self):
        """The backend's torch network (Grad-CAM needs one), once loaded."""
        return getattr(self.backend, "model", None)

    def load(self, cancel: CancelToken = NEVER):
        """Job: load the weights (already on disk) onto the device. Returns self.

        Safe when two jobs ask at once (a classification and a heatmap): one loads.
        """
        if self.loaded:
            return self
        where = f"{self.device}, {self.describe()}"
        yield Progress(0, 1, f"Loading {self.spec.name} onto {where}…", "steps")
        cancel.raise_if_cancelled()
        with self._load_lock:
            if not self.loaded:
                self.backend.load(cancel)
        yield Progress(1, 1, f"{self.spec.name} ready on {self.device}", "steps")
        return self

    def ensure_loaded(self) -> None:
        if not self.loaded:
            for _ in self.load():
                pass

    def describe(self) -> str:
        """The runtime and precision classifying ("ONNX Runtime fp32")."""
        return self.backend.describe()

    def pipeline(self) -> DecodePipeline:
        """The decode pipeline making this backend's input, sized for this batch size."""
        preprocess = self.spec.preprocess
        numpy = self.backend.wants == "numpy"
        return DecodePipeline(
            preprocess.apply_numpy if numpy else preprocess.apply,
            target_size=draft_target(preprocess),
            threads=self.decode_threads,
            look_ahead=max(2 * self.batch_size, 2 * self.decode_threads),
        )

    def _stack(self, items: list):
        if self.backend.wants == "numpy":
            return np.stack(items)
        import torch

        return torch.stack(items)

    def _results(self, pending: list, top_k: int, state: RunState) -> list[ImageResult]:
        ok = [(p, t) for p, t in pending if not isinstance(t, ImageProblem)]
        ranked: dict[Path, tuple[Prediction, ...]] = {}
        unsure: set[Path] = set()
        if ok:
            logits = as_numpy(self.backend.run(self._stack([t for _, t in ok]), state))
            probs = probabilities(logits, self.spec.temperature)
            indices = top_indices(probs, top_k)
            if self.spec.unknown_threshold is not None:
                low = probs.max(axis=1) < self.spec.unknown_threshold
                unsure = {path for (path, _), flag in zip(ok, low.tolist(), strict=True) if flag}
            for row, ((path, _), idxs) in enumerate(zip(ok, indices.tolist(), strict=True)):
                ranked[path] = tuple(
                    Prediction(self.spec.categories[i], float(probs[row, i]), int(i)) for i in idxs
                )
        return [
            ImageResult(path, problem=t.reason)
            if isinstance(t, ImageProblem)
            else ImageResult(path, ranked[path], unsure=path in unsure)
            for path, t in pending
        ]

    def predict(
        self,
        paths: Iterable[str | os.PathLike],
        top_k: int = 5,
        cancel: CancelToken = NEVER,
    ) -> Iterator[PredictionBatch]:
        """Job: classify every file given or found; the cancel token is checked per batch."""
        if not self.loaded:
            for step in self.load(cancel):
                yield PredictionBatch((), step, stage="loading")
        found = expand_paths(paths, cancel)
        meter = RateMeter(len(found), "images")
        if not found:
            yield PredictionBatch((), meter.progress(0, "No images found."))
            return 0
        # This run's own: a lowered size ends with it. One file alone runs its own way.
        state = RunState(self.batch_size, alone=len(found) == 1)
        done, pending = 0, []
        with closing(self.pipeline().run(found, cancel)) as decoded:
            for item in decoded:
                pending.append(item)
                if len(pending) >= self.batch_size or done + len(pending) == len(found):
                    cancel.raise_if_cancelled()
                    results = self._results(pending, top_k, state)
                    done, pending = done + len(results), []
                    notes = state.take_notes()
                    message = " ".join(notes) or f"Classified {done} of {len(found)}"
                    yield PredictionBatch(
                        tuple(results),
                        meter.progress(done, message),
                        notes=notes,
                        engine=self.describe(),
                    )
        return done


def probabilities(logits, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` per row, in float64 (what the app shows).

    A temperature other than 1 belongs to calibrated trained models only.
    """
    z = np.asarray(logits, dtype=np.float64)
    if temperature != 1.0:
        z = z / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest classes per row, largest first (ties: the lower index first)."""
    k = max(0, min(int(k), probs.shape[1]))
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def classify_all(classifier: Classifier, paths, top_k: int = 5, cancel: CancelToken = NEVER):
    """All results as a list (for tests and scripts)."""
    out: list[ImageResult] = []
    for event in classifier.predict(paths, top_k, cancel):
        out.extend(event.results)
    return out
