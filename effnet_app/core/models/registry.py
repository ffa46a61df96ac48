"""The one place that turns a key or a path into a ModelSpec and its weights.

Pickers, the command line, ``Session`` and the catalog ask here and nowhere else, so a
new source of models (a trained bundle folder, an exported ONNX file) is added once:

- ``list_models()``: what pickers and ``effnet-app models`` list.
- ``resolve(key_or_path)``: "b0", "B0", "EfficientNet-B0", "lite0", "user:NAME", a
  trained bundle's NAME or folder... -> ModelSpec.
- ``weights_path(spec)`` / ``is_bundled(spec)``: where its weights are on this computer.
- ``load_network(spec)``: the network with its weights, for every kind of model.
- ``fetch_weights(spec)``: a job that returns the weights file, downloading if needed.

Nothing here imports torch until a spec is built; ``weights_path`` and ``is_bundled``
stay cheap enough for the GUI thread once the specs exist.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

from .. import paths
from ..errors import AppError, ModelError
from ..jobs import NEVER, CancelToken, Progress
from . import bundle, weights, zoo
from .zoo import ModelSpec  # re-exported: callers take the type from here too

DEFAULT_MODEL = zoo.DEFAULT_MODEL


def list_models() -> tuple[ModelSpec, ...]:
    """Lite0 first (it works offline), B0 to B7, Lite1/Lite2 when installed, then bundles."""
    return (*zoo.pretrained_specs(), *(b.spec() for b in bundle.list_bundles()))


def resolve(key_or_path: str | os.PathLike) -> ModelSpec:
    """The spec a user means by a key in any common spelling; ModelError names the choices.

    A zoo key wins; then "user:NAME" or a bare NAME of a trained bundle; a path (a
    ``Path``, or text with a separator) must be a bundle folder.
    """
    text = os.fspath(key_or_path)
    found = _resolve_path(key_or_path)
    if found is not None:
        return found
    if text.strip().startswith(bundle.KEY_PREFIX):
        return bundle.find_bundle(text.strip()).spec()
    try:
        return zoo.get_spec(text)
    except ModelError:
        if _is_bundle_name(text.strip()):
            return bundle.find_bundle(text.strip()).spec()
        known = ", ".join(s.key for s in list_models())
        raise ModelError(f'There is no model called "{text}". Choose one of: {known}.') from None


def _is_bundle_name(text: str) -> bool:
    try:
        return (paths.models_dir() / bundle.validate_name(text)).is_dir()
    except AppError:
        return False


def _resolve_path(key_or_path: str | os.PathLike) -> ModelSpec | None:
    """A trained bundle's folder (or a file in it); other paths are refused with a sentence."""
    text = os.fspath(key_or_path)
    if isinstance(key_or_path, str) and not (os.sep in text or (os.altsep and os.altsep in text)):
        return None
    path = Path(text).expanduser()
    folder = path.parent if path.name in (bundle.MANIFEST, bundle.WEIGHTS) else path
    if not (folder / bundle.MANIFEST).is_file():
        what = "is not a model this version can open" if path.exists() else "does not exist"
        raise ModelError(
            f"{path} {what}. Choose a trained model's folder, or one of: "
            + ", ".join(s.key for s in list_models())
            + "."
        )
    return bundle.read_bundle(folder).spec()


def weights_path(spec: ModelSpec) -> Path | None:
    """The weights file on this computer (bundled, downloaded or imported), else None."""
    if spec.bundle_path is not None:
        file = Path(spec.bundle_path) / bundle.WEIGHTS
        return file if file.is_file() else None
    return weights.cached_path(spec)


def load_network(spec: ModelSpec, path: str | os.PathLike | None = None, cancel=NEVER):
    """The spec's network with its weights, in eval mode: the one way networks are loaded.

    Pretrained variants load ``path`` (default: the cached file) through
    ``weights.load_model``; a trained bundle loads its own folder (``path`` may name
    the folder or its weights file) from safetensors, checked, strictly.
    """
    if spec.bundle_path is None:
        return weights.load_model(spec, path, cancel)
    folder = Path(path) if path is not None else Path(spec.bundle_path)
    found = bundle.read_bundle(folder)
    state = bundle.load_state_dict(found)
    cancel.raise_if_cancelled()
    model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelError(
            f"The trained model {found.name} does not fit its base {found.base}: its layers "
            "do not match. Train it again.",
            detail=str(exc)[:2000],
        ) from exc
    cancel.raise_if_cancelled()
    return model.eval()


def is_bundled(spec: ModelSpec) -> bool:
    """Whether the weights ship with the app (in a pip package) and so work offline."""
    return spec.bundled_weights() is not None


def fetch_weights(
    spec: ModelSpec, cancel: CancelToken = NEVER, mirror: str | None = None
) -> Generator[Progress, None, Path]:
    """Job: the weights file on disk, downloaded first when it is not here yet."""
    if spec.bundle_path is not None:  # a trained model has nothing to download
        found = weights_path(spec)
        if found is None:
            raise ModelError(f"The trained model {spec.name} has lost its weights file.")
        return found
    return (yield from weights.ensure(spec, cancel=cancel, mirror=mirror or None))


def download_weights(
    spec: ModelSpec, cancel: CancelToken = NEVER, mirror: str | None = None
) -> Generator[Progress, None, Path]:
    """Job: download the weights even when a copy is cached (to replace a bad one)."""
    return (yield from weights.download(spec, cancel=cancel, mirror=mirror or None))


def import_weights(spec: ModelSpec, file: str | os.PathLike) -> Path:
    """Check a weights file the user picked and copy it into the cache; returns its path."""
    return weights.import_weights(spec, file)
