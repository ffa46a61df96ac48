"""The one place that turns a key (or, later, a path) into a ModelSpec and its weights.

Pickers, the command line, ``Session`` and the catalog ask here and nowhere else, so a
new source of models (a trained bundle folder, an exported ONNX file) is added once:

- ``list_models()``: what pickers and ``effnet-app models`` list.
- ``resolve(key_or_path)``: "b0", "B0", "EfficientNet-B0", "lite0"... -> ModelSpec.
- ``weights_path(spec)`` / ``is_bundled(spec)``: where its weights are on this computer.
- ``fetch_weights(spec)``: a job that returns the weights file, downloading if needed.

Nothing here imports torch until a spec is built; ``weights_path`` and ``is_bundled``
stay cheap enough for the GUI thread once the specs exist.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

from ..errors import ModelError
from ..jobs import NEVER, CancelToken, Progress
from . import weights, zoo
from .zoo import ModelSpec  # re-exported: callers take the type from here too

DEFAULT_MODEL = zoo.DEFAULT_MODEL


def list_models() -> tuple[ModelSpec, ...]:
    """Lite0 first (it works offline), B0 to B7, then Lite1/Lite2 when their packages are in."""
    return zoo.pretrained_specs()


def resolve(key_or_path: str | os.PathLike) -> ModelSpec:
    """The spec a user means by a key in any common spelling; ModelError names the choices.

    Trained bundles (a folder on disk) come in a later issue: ``_resolve_path`` is where
    they will be recognised, before the key lookup.
    """
    text = os.fspath(key_or_path)
    found = _resolve_path(text)
    if found is not None:
        return found
    return zoo.get_spec(text)


def _resolve_path(text: str) -> ModelSpec | None:
    """A model saved on disk (a trained bundle folder); none are recognised yet."""
    if os.sep in text or (os.altsep and os.altsep in text):
        path = Path(text).expanduser()
        if path.exists():
            raise ModelError(
                f"{path} is not a model this version can open. Choose one of: "
                + ", ".join(s.key for s in list_models())
                + "."
            )
    return None


def weights_path(spec: ModelSpec) -> Path | None:
    """The weights file on this computer (bundled, downloaded or imported), else None."""
    return weights.cached_path(spec)


def is_bundled(spec: ModelSpec) -> bool:
    """Whether the weights ship with the app (in a pip package) and so work offline."""
    return spec.bundled_weights() is not None


def fetch_weights(
    spec: ModelSpec, cancel: CancelToken = NEVER, mirror: str | None = None
) -> Generator[Progress, None, Path]:
    """Job: the weights file on disk, downloaded first when it is not here yet."""
    return (yield from weights.ensure(spec, cancel=cancel, mirror=mirror or None))


def download_weights(
    spec: ModelSpec, cancel: CancelToken = NEVER, mirror: str | None = None
) -> Generator[Progress, None, Path]:
    """Job: download the weights even when a copy is cached (to replace a bad one)."""
    return (yield from weights.download(spec, cancel=cancel, mirror=mirror or None))


def import_weights(spec: ModelSpec, file: str | os.PathLike) -> Path:
    """Check a weights file the user picked and copy it into the cache; returns its path."""
    return weights.import_weights(spec, file)
