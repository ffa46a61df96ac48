"""A trained model as a folder: ``manifest.json`` and ``model.safetensors``.

The weights are the whole network's state dict in safetensors (which cannot carry code);
the manifest holds the rest and the weights' SHA-256, so a copied folder works offline
anywhere. Saves write ``.NAME.<uuid>.part`` beside the target, sync and rename it into
place; a replaced bundle waits as ``.old`` and comes back on failure; deletes go through
``.del``. Hidden folders are never listed; ``clean_stale`` tidies what a kill left.
``import_bundle`` and ``trained_spec`` live in ``bundle_io`` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from ... import __version__
from .. import fsutil, paths
from ..errors import AppError, ModelError
from . import zoo
from .bundle_io import import_bundle, trained_spec  # noqa: F401 (import_bundle: re-exported)
from .zoo import ModelSpec, Preprocess

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
KEY_PREFIX = "user:"
STALE_AFTER = 600.0  # seconds before an abandoned part folder is removed
_SCRATCH = re.compile(r"^\.(?P<name>.+)\.(?P<id>[0-9a-f]{32})\.(?P<kind>part|old|del)$")
_HEAD = "classifier.1.weight"  # every network here ends in classifier = (Dropout, Linear)


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    base: str  # zoo key of the base model, e.g. "lite0", "b0"
    classes: tuple[str, ...]
    preprocess: Preprocess
    temperature: float  # divide logits by this before softmax
    unknown_threshold: float | None  # top-1 probability below this -> "not sure"
    metrics: dict = field(compare=False)
    training: dict = field(compare=False)
    dataset: dict = field(compare=False)
    created: str = ""
    versions: dict = field(default_factory=dict, compare=False)
    weights_sha256: str = ""

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.name

    def spec(self) -> ModelSpec:
        """The bundle as a model the registry, classifier and catalog can run."""
        try:  # a folder renamed or deleted meanwhile (by another window) has no size
            size_mb = (self.path / WEIGHTS).stat().st_size / 1e6
        except OSError:
            size_mb = None
        return trained_spec(
            self.base, self.classes, self.preprocess, self.temperature, self.unknown_threshold,
            key=self.key, name=self.name, bundle_path=self.path, file_size_mb=size_mb,
        )  # fmt: skip


def validate_name(name: str) -> str:
    """``name`` if it can be a bundle's folder name on every system, else ModelError."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError("A trained model needs a name. Type one, such as cats-dogs.")
    safe = fsutil.safe_folder_name(name)  # no separators, not hidden, valid on Windows
    if safe != name:
        raise ModelError(
            f'"{name}" cannot be a model name: names cannot hold / \\ : * ? " < > | or '
            f'start or end with spaces or dots. Try "{safe}".'
        )
    return name


def default_name(classes, base: str, folder: Path | None = None) -> str:
    """A sensible free name such as "cats-dogs-lite0" (first classes, then the base)."""
    shown = "-".join(str(c) for c in list(classes)[:3]) + ("-etc" if len(classes) > 3 else "")
    stem = fsutil.safe_folder_name(f"{shown}-{base}".replace(" ", "-").lower())
    stem = stem[: fsutil.MAX_FOLDER_NAME - 6]
    folder = Path(folder) if folder is not None else paths.models_dir()
    candidate, n = stem, 2
    while os.path.lexists(folder / candidate):
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_weights(state_dict: dict, target: Path) -> str:
    import torch
    from safetensors.torch import save

    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ModelError("The weights to save are not all tensors; nothing was saved.")
    tensors = {str(k): v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    data = save(tensors, metadata={"format": "effnet_app.bundle"})
    _write_synced(target, data)
    return hashlib.sha256(data).hexdigest()


def _write_synced(target: Path, data: bytes) -> None:
    with open(target, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _manifest_text(b: Bundle) -> str:
    saved = {f.name: getattr(b, f.name) for f in dataclasses.fields(b) if f.name != "path"}
    manifest = {"format_version": FORMAT_VERSION, **saved, "weights_file": WEIGHTS}
    manifest |= {"classes": list(b.classes), "preprocess": b.preprocess.to_dict()}
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def _exists(name: str) -> ModelError:
    return ModelError(f'A trained model called "{name}" already exists. Choose another name.')


def _scratch(folder: Path, name: str, kind: str) -> Path:
    return folder / f".{name}.{uuid.uuid4().hex}.{kind}"


def save_bundle(
    name: str, state_dict: dict, *, base: str, classes, preprocess: Preprocess,
    temperature: float = 1.0, unknown_threshold: float | None = None,
    metrics: dict | None = None, training: dict | None = None, dataset: dict | None = None,
    folder: Path | None = None, replace: bool = False,
) -> Bundle:  # fmt: skip
    """Write a bundle folder atomically; ``replace`` swaps out one of the same name."""
    folder = Path(folder) if folder is not None else paths.models_dir()
    target = folder / validate_name(name)
    if os.path.lexists(target) and not replace:
        raise _exists(name)
    versions = {"app": __version__, **{d: metadata.version(d) for d in ("torch", "torchvision")}}
    bundle = Bundle(
        target, name, zoo.get_spec(base).key, tuple(str(c) for c in classes), preprocess,
        float(temperature), None if unknown_threshold is None else float(unknown_threshold),
        dict(metrics or {}), dict(training or {}), dict(dataset or {}),
        datetime.now(UTC).isoformat(timespec="seconds"), versions,
    )  # fmt: skip
    _check(bundle)
    part = _scratch(folder, name, "part")
    with fsutil.disk_errors(target, ModelError):
        try:
            part.mkdir(parents=True)
            digest = _write_weights(state_dict, part / WEIGHTS)
            bundle = dataclasses.replace(bundle, weights_sha256=digest)
            _write_synced(part / MANIFEST, _manifest_text(bundle).encode("utf-8"))
            _sync(part)
            _move_into_place(part, target, replace)
        finally:
            shutil.rmtree(part, ignore_errors=True)
    clean_stale(folder)
    return bundle


def _move_into_place(part: Path, target: Path, replace: bool) -> None:
    """Rename ``part`` to ``target``; an old target is set aside and restored on failure."""
    old = None
    if replace and os.path.lexists(target):
        old = _scratch(target.parent, target.name, "old")
        os.rename(target, old)
    try:
        os.rename(part, target)
    except BaseException as exc:
        if old is not None:
            os.rename(old, target)
        elif isinstance(exc, OSError) and os.path.lexists(target):
            raise _exists(target.name) from exc
        raise
    _sync(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _damaged(path: Path, what: str) -> ModelError:
    again = "Train it again, or copy the folder again from where it came from."
    return ModelError(f"The trained model in {path} cannot be opened: {what}. {again}")


def _read_json(path: Path) -> dict:
    file = path / MANIFEST
    if not path.is_dir() or not file.is_file():
        raise ModelError(f"{path} is not a trained model folder: it has no {MANIFEST}.")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _damaged(path, f"its {MANIFEST} is damaged ({exc})") from exc
    if not isinstance(manifest, dict):
        raise _damaged(path, f"its {MANIFEST} is not a JSON object")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelError(
            f"The trained model in {path} is in format {version!r}; this version of the app "
            f"opens format {FORMAT_VERSION}. Use the app that made it, or train it again."
        )
    return manifest


_TYPES = {"base": str, "classes": list, "preprocess": dict, "temperature": int | float}
_TYPES |= {"unknown_threshold": int | float | None, "weights_sha256": str}


def _invalid(m: dict) -> str | None:
    """The first manifest field that is missing or of the wrong kind, if any."""
    for key, kind in _TYPES.items():
        if not isinstance(m.get(key), kind) or isinstance(m.get(key), bool):
            return key
    if not all(isinstance(c, str) and c for c in m["classes"]):
        return "classes"
    return None if re.fullmatch(r"[0-9a-f]{64}", m["weights_sha256"]) else "weights_sha256"


def _check(bundle: Bundle) -> None:
    """Values that would make the bundle unusable; ModelError with a sentence."""
    t, u = bundle.temperature, bundle.unknown_threshold
    if not bundle.classes or len(set(bundle.classes)) != len(bundle.classes):
        what = "its class names are missing or repeated"
    elif not (math.isfinite(t) and t > 0):
        what = f"its temperature {t} is not a positive number"
    elif u is not None and not (0.0 <= u <= 1.0):
        what = f"its unknown threshold {u} is not between 0 and 1"
    else:
        return
    raise ModelError(f"The trained model {bundle.name} cannot be used: {what}.")


def read_bundle(path: str | os.PathLike) -> Bundle:
    """The bundle in a folder, from its manifest only; ModelError says what is wrong."""
    path = Path(path).expanduser()
    if path.is_file() and path.name in (MANIFEST, WEIGHTS):
        path = path.parent
    m = _read_json(path)
    if (key := _invalid(m)) is not None:
        raise _damaged(path, f'its {MANIFEST} has no valid "{key}"')
    try:
        preprocess = Preprocess.from_dict(m["preprocess"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(path, f"its preprocessing is not readable ({exc!r})") from exc
    try:
        base = zoo.get_spec(m["base"]).key
    except ModelError as exc:
        raise _damaged(path, f'its base "{m["base"]}" is not a model this version knows') from exc
    threshold = m["unknown_threshold"]
    bundle = Bundle(
        path, path.name, base, tuple(m["classes"]), preprocess, float(m["temperature"]),
        None if threshold is None else float(threshold),
        m.get("metrics") or {}, m.get("training") or {}, m.get("dataset") or {},
        str(m.get("created") or ""), m.get("versions") or {}, m["weights_sha256"],
    )  # fmt: skip
    _check(bundle)
    if not (path / WEIGHTS).is_file():
        raise _damaged(path, f"its weights file {WEIGHTS} is missing")
    return bundle


def _check_tensors(bundle: Bundle, state: dict) -> None:
    import torch

    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        model = bundle.spec().build()
    expected = {k: (tuple(v.shape), v.is_floating_point()) for k, v in model.state_dict().items()}
    path, head = bundle.path, state.get(_HEAD)
    if head is not None and head.ndim == 2 and head.shape[0] != len(bundle.classes):
        raise _damaged(path, f"it names {len(bundle.classes)} classes, its weights {len(head)}")
    missing, unknown = set(expected) - set(state), set(state) - set(expected)
    if missing or unknown:
        what = f"lack {min(missing)}" if missing else f"have an unknown {min(unknown)}"
        raise _damaged(path, f"its weights {what} ({len(missing)} missing, {len(unknown)} unknown)")
    for key, (shape, floating) in expected.items():
        got = state[key]
        if tuple(got.shape) != shape or got.dtype.is_floating_point != floating:
            raise _damaged(
                path, f"its tensor {key} has shape {tuple(got.shape)}, not the {shape} expected"
            )


def load_state_dict(bundle: Bundle) -> dict:
    """The bundle's tensors on the CPU: safetensors only, hash, names and shapes checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = (bundle.path / WEIGHTS).read_bytes()  # the bytes hashed are the bytes loaded
    except OSError as exc:
        raise _damaged(bundle.path, f"its weights file cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != bundle.weights_sha256:
        raise _damaged(bundle.path, f"{WEIGHTS} has changed since it was saved (checksum)")
    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise _damaged(bundle.path, f"{WEIGHTS} is not a safetensors file") from exc
    _check_tensors(bundle, state)
    return state


def clean_stale(folder: Path | None = None, older_than: float = STALE_AFTER) -> int:
    """Tidy what killed saves left; returns how many folders were removed or restored."""
    folder = Path(folder) if folder is not None else paths.models_dir()
    done, now = 0, time.time()
    for entry in sorted(folder.glob(".*")):
        match = _SCRATCH.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        home = folder / match["name"]
        try:
            if match["kind"] == "old" and not os.path.lexists(home):
                os.rename(entry, home)  # a replace killed between its two renames
            elif match["kind"] == "part" and now - entry.stat().st_mtime < older_than:
                continue  # perhaps a save still under way
            else:
                shutil.rmtree(entry)
            done += 1
        except OSError as exc:
            log.warning("Could not tidy %s: %s", entry, exc)
    return done


def list_bundles(folder: Path | None = None) -> list[Bundle]:
    """Every readable bundle in the models folder, by name; damaged ones are logged."""
    try:
        folder = Path(folder) if folder is not None else paths.models_dir()
    except AppError as exc:
        log.warning("No models folder: %s", exc)
        return []
    clean_stale(folder)
    found = []
    for entry in sorted(folder.glob("*")):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            found.append(read_bundle(entry))
        except ModelError as exc:
            log.warning("Skipped %s: %s", entry, exc)
    return found


def find_bundle(name_or_path, folder: Path | None = None) -> Bundle:
    """A bundle by its name (in the models folder), ``user:NAME`` or its folder's path."""
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or "/" in text or os.sep in text:
        return read_bundle(text)
    name = text[len(KEY_PREFIX) :] if text.startswith(KEY_PREFIX) else text
    folder = Path(folder) if folder is not None else paths.models_dir()
    path = folder / validate_name(name)
    if not path.is_dir():
        raise ModelError(f'There is no trained model called "{name}".')
    return read_bundle(path)


def delete_bundle(name_or_path, folder: Path | None = None) -> None:
    """Remove a bundle: renamed away first (atomic), then deleted."""
    bundle = find_bundle(name_or_path, folder)
    aside = _scratch(bundle.path.parent, bundle.path.name, "del")
    with fsutil.disk_errors(bundle.path, ModelError):
        os.rename(bundle.path, aside)
        _sync(bundle.path.parent)
    shutil.rmtree(aside, ignore_errors=True)


def rename_bundle(old: str, new: str, folder: Path | None = None) -> Bundle:
    """Give a bundle a new name: the folder is renamed, then its manifest rewritten."""
    bundle = find_bundle(old, folder)
    target = bundle.path.parent / validate_name(new)
    if os.path.lexists(target):
        raise _exists(new)
    renamed = dataclasses.replace(bundle, path=target, name=new)
    with fsutil.disk_errors(target, ModelError):
        os.rename(bundle.path, target)  # the folder moves whole; a kill leaves either name
        _sync(target.parent)
        fsutil.atomic_write(target / MANIFEST, _manifest_text(renamed), error_type=ModelError)
    return renamed
