"""The loaded models of one app session, shared by classification and explanations.

Loading a network takes seconds, so a ``Session`` keeps the most recently used ones
(per model, device, engine and weights file) and hands the same ``Classifier`` to every
job that asks; a model whose file was replaced since (trained again under the same
name) is loaded again.

``classify`` runs on the session's engine (``set_engine``; "auto" by default): when a
verified export and a measured choice exist, the classifier is made without importing
torch (``engines.fast_plan``); otherwise ``engines.classifier_job`` optimises for this
computer first, or uses PyTorch. Heatmaps need gradients, so ``explain`` always uses
the PyTorch classifier from ``classifier``.
Safe to call from several worker threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

from ..devices import resolve_device
from ..errors import ExportError, WeightsError
from ..jobs import NEVER, Cancelled, CancelToken, Progress, relay
from ..models import registry
from ..models.registry import ModelSpec
from . import choices, engines
from .classifier import Classifier, PredictionBatch

log = logging.getLogger(__name__)

KEEP_LOADED = 2  # models kept in memory; a B7 alone is ~270 MB


class Session:
    def __init__(self, backend: str | None = None, precision: str = "fp32") -> None:
        self._lock = threading.Lock()
        self._making = threading.Lock()  # one optimisation at a time
        self._classifiers: OrderedDict[tuple, Classifier] = OrderedDict()
        self.backend = backend or choices.default_backend()
        self.precision = precision

    def set_engine(self, backend: str, precision: str = "fp32") -> None:
        """The engine later classifications use; loaded models stay until evicted."""
        if backend not in choices.BACKENDS or precision not in choices.PRECISIONS:
            raise ValueError(f"unknown engine {backend} {precision}")
        self.backend, self.precision = backend, precision

    def _keep(self, slot: tuple, make) -> Classifier:
        """The classifier kept under ``slot``, made with ``make()`` when there is none."""
        with self._lock:
            found = self._classifiers.get(slot)
            if found is None:
                for stale in [s for s in self._classifiers if s[:-1] == slot[:-1]]:
                    del self._classifiers[stale]  # its file was replaced: a retrained model
                found = make()
                self._classifiers[slot] = found
                while len(self._classifiers) > KEEP_LOADED:
                    self._classifiers.popitem(last=False)
            self._classifiers.move_to_end(slot)
            return found

    def _drop(self, slot: tuple) -> None:
        with self._lock:
            self._classifiers.pop(slot, None)

    def spec(self, key: str) -> ModelSpec:
        return registry.resolve(key)

    def classifier(self, key: str, device: str) -> Classifier:
        """The loaded-or-loadable classifier for (model, device); raises AppErrors early."""
        spec = self.spec(key)
        key = spec.key  # "B0" and "b0" share one loaded model
        resolved = resolve_device(device)
        path = self._weights(spec)
        slot = ("torch", key, resolved, _identity(path))
        return self._keep(slot, lambda: Classifier(spec, resolved, weights_path=path))

    def classify(self, key: str, device: str, paths, top_k: int = 5, cancel: CancelToken = NEVER):
        """Job: get the model ready on the session's engine, then classify.

        Yields PredictionBatch only: "loading" ones while the model loads (or is
        optimised for this computer), then the results.
        """
        classifier = yield from self.ready_classifier(key, device, cancel)
        return (yield from classifier.predict(paths, top_k, cancel))

    def ready_classifier(self, key: str, device: str, cancel: CancelToken = NEVER):
        """Job: the loaded classifier for (model, device) on the session's engine."""
        backend, precision = self.backend, self.precision
        plan = engines.fast_plan(key, device, backend, precision)
        if plan is not None:
            found = self._keep(plan.slot, plan.classifier)
            try:
                yield from _loading(found.load(cancel))
                return found
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - damaged or unloadable: PyTorch this time
                self._drop(plan.slot)
                if isinstance(exc, ExportError):
                    _discard_export(plan.info.key)
                    note = f"{exc} It was removed and will be made again; using PyTorch now."
                else:
                    note = f"{found.describe()} failed to start ({exc}); using PyTorch now."
                log.warning(note)
                yield PredictionBatch((), Progress(0, 1, note, "steps"), "loading", (note,))
                backend = "torch"
        if backend == "torch":
            return self.classifier(key, device)
        return (yield from self._optimised(key, device, backend, precision, cancel))

    def _optimised(self, key, device, backend, precision, cancel):
        spec = self.spec(key)
        resolved = resolve_device(device)
        path = self._weights(spec)
        slot = ("engine", spec.key, resolved, backend, precision, _identity(path))
        while not self._making.acquire(timeout=0.1):  # another run is optimising
            cancel.raise_if_cancelled()
        try:
            with self._lock:
                found = self._classifiers.get(slot)
                if found is not None:
                    self._classifiers.move_to_end(slot)
            if found is None:
                job = engines.classifier_job(
                    spec, path, resolved, backend, precision, cancel=cancel
                )
                found = yield from _loading(job)
                if found.notes:
                    message = " ".join(found.notes)
                    yield PredictionBatch(
                        (), Progress(1, 1, message, "steps"), "loading", found.notes
                    )
                slot = self._slot_of(found, key, device, backend, precision, slot)
                found = self._keep(slot, lambda: found)
        finally:
            self._making.release()
        if not found.loaded:
            yield from _loading(found.load(cancel))
        return found

    def _slot_of(self, made, key, device, backend, precision, slot) -> tuple:
        """Where a classifier just optimised is kept: where the fast path will look for it."""
        plan = engines.fast_plan(key, device, backend, precision)
        if plan is not None and made.backend.name == plan.backend:
            return plan.slot
        return slot

    def _weights(self, spec: ModelSpec):
        path = registry.weights_path(spec)
        if path is None:
            raise WeightsError(
                f"The weights for {spec.name} are not on this computer yet. Choose the model "
                "again to download them, or import a file you already have."
            )
        return path

    def explain(self, key: str, device: str, path, class_index=None, cancel: CancelToken = NEVER):
        """Job: a Grad-CAM heatmap for one image with this session's model."""
        from .explain import explain_job

        classifier = self.classifier(key, device)
        if not classifier.loaded:
            yield from classifier.load(cancel)
        return (yield from explain_job(classifier, path, class_index, cancel))


def _loading(job):
    """Run a loading job, passing its progress on as "loading" PredictionBatches."""
    return relay(job, _as_loading)


def _as_loading(step):
    return PredictionBatch((), step, stage="loading") if isinstance(step, Progress) else None


def _discard_export(key: str) -> None:
    from ..export import cache as export_cache

    export_cache.discard(key)


def _identity(path) -> tuple:
    """Which file a loaded model came from: a model saved again under its name is new."""
    try:
        info = os.stat(path)
    except OSError:
        return (str(path),)
    return (os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino)


def download(key: str, mirror: str | None = None, cancel: CancelToken = NEVER):
    """Job: download a variant's weights by its key; returns the file's path."""
    spec = registry.resolve(key)
    return (yield from registry.download_weights(spec, cancel, mirror))


def import_file(key: str, file: str, cancel: CancelToken = NEVER):
    """Job: check a weights file the user picked and copy it into the cache."""
    spec = registry.resolve(key)
    yield Progress(0, 1, f"Checking {file} for {spec.name}…", "files")
    return registry.import_weights(spec, file)
