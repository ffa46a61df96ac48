"""The loaded models of one app session, shared by classification and explanations.

Loading a network takes seconds, so a ``Session`` keeps the most recently used ones
(per model, device and weights file) and hands the same ``Classifier`` to every job
that asks; a model whose file was replaced since (trained again under the same name)
is loaded again.
Safe to call from several worker threads.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from ..devices import resolve_device
from ..errors import WeightsError
from ..jobs import NEVER, CancelToken, Progress
from ..models import registry
from ..models.registry import ModelSpec
from .classifier import Classifier

KEEP_LOADED = 2  # models kept in memory; a B7 alone is ~270 MB


class Session:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._classifiers: OrderedDict[tuple, Classifier] = OrderedDict()

    def spec(self, key: str) -> ModelSpec:
        return registry.resolve(key)

    def classifier(self, key: str, device: str) -> Classifier:
        """The loaded-or-loadable classifier for (model, device); raises AppErrors early."""
        spec = self.spec(key)
        key = spec.key  # "B0" and "b0" share one loaded model
        resolved = resolve_device(device)
        path = registry.weights_path(spec)
        if path is None:
            raise WeightsError(
                f"The weights for {spec.name} are not on this computer yet. Choose the model "
                "again to download them, or import a file you already have."
            )
        slot = (key, resolved, _identity(path))
        with self._lock:
            found = self._classifiers.get(slot)
            if found is None:
                for stale in [s for s in self._classifiers if s[:2] == slot[:2]]:
                    del self._classifiers[stale]  # its file was replaced: a retrained model
                found = Classifier(spec, resolved, weights_path=path)
                self._classifiers[slot] = found
                while len(self._classifiers) > KEEP_LOADED:
                    self._classifiers.popitem(last=False)
            self._classifiers.move_to_end(slot)
            return found

    def classify(self, key: str, device: str, paths, top_k: int = 5, cancel: CancelToken = NEVER):
        """Job: load the model if needed, then classify; yields PredictionBatch only."""
        classifier = self.classifier(key, device)
        return (yield from classifier.predict(paths, top_k, cancel))

    def explain(self, key: str, device: str, path, class_index=None, cancel: CancelToken = NEVER):
        """Job: a Grad-CAM heatmap for one image with this session's model."""
        from .explain import explain_job

        classifier = self.classifier(key, device)
        if not classifier.loaded:
            yield from classifier.load(cancel)
        return (yield from explain_job(classifier, path, class_index, cancel))


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
