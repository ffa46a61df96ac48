"""Bundles made elsewhere: their spec, and a folder someone gave you taken in.

``trained_spec`` is the one place a trained network becomes a ``ModelSpec``, for a saved
bundle (``Bundle.spec``) and for one still in memory (the wizard's "Try it"), so both
classify alike. ``import_bundle`` checks a folder as loading would (manifest, the
weights' SHA-256, every tensor's name and shape) before copying it into the models
folder the way ``save_bundle`` writes: a part folder beside the target, synced, renamed.
``bundle`` re-exports both; import them from there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

from .. import fsutil, paths
from ..errors import ModelError
from . import zoo
from .zoo import ModelSpec, Preprocess


def trained_spec(
    base: str,
    classes,
    preprocess: Preprocess,
    temperature: float,
    unknown_threshold: float | None,
    *,
    key: str,
    name: str,
    bundle_path: Path | None = None,
    file_size_mb: float | None = None,
) -> ModelSpec:
    """A network of ``base`` with a head for ``classes``, calibrated, as a runnable model."""
    spec = zoo.get_spec(base)
    n = len(classes)
    head = spec.feature_dim + 1  # weights and bias per class
    return ModelSpec(
        key=key,
        name=name,
        family="trained",
        preprocess=preprocess,
        categories=tuple(classes),
        params=spec.params + (n - spec.num_classes) * head,
        gflops=spec.gflops,
        file_size_mb=file_size_mb,
        top1=None,
        top5=None,
        width_mult=spec.width_mult,
        depth_mult=spec.depth_mult,
        dropout=spec.dropout,
        feature_dim=spec.feature_dim,
        temperature=temperature,
        unknown_threshold=unknown_threshold,
        bundle_path=bundle_path,
        builder=functools.partial(spec.builder, num_classes=n) if spec.builder else None,
    )


def import_bundle(folder, *, name: str | None = None, replace: bool = False, models=None):
    """Copy the bundle in ``folder`` into the models folder (``models``) as ``name``.

    The source is checked first, fully (``read_bundle`` and ``load_state_dict``), so a
    damaged folder is refused with a sentence naming it and nothing is copied. The
    copy's weights are hashed again before the rename: what lands is what was checked.
    """
    from . import bundle

    source = bundle.read_bundle(folder)
    bundle.load_state_dict(source)
    manifest = bundle._read_json(source.path)
    models = Path(models) if models is not None else paths.models_dir()
    new_name = bundle.validate_name(name if name is not None else source.name)
    target = models / new_name
    if os.path.lexists(target):
        if os.path.samefile(target, source.path):
            raise ModelError(f'"{new_name}" is already one of your trained models.')
        if not replace:
            raise bundle._exists(new_name)
    manifest["name"] = new_name
    part = bundle._scratch(models, new_name, "part")
    with fsutil.disk_errors(target, ModelError):
        try:
            part.mkdir(parents=True)
            _copy_weights(source, part / bundle.WEIGHTS)
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            bundle._write_synced(part / bundle.MANIFEST, text.encode("utf-8"))
            bundle._sync(part)
            bundle._move_into_place(part, target, replace)
        finally:
            shutil.rmtree(part, ignore_errors=True)
    bundle.clean_stale(models)
    return bundle.read_bundle(target)


def _copy_weights(source, target: Path) -> None:
    """Copy the weights file, synced, refusing a copy whose hash is not the checked one."""
    from . import bundle

    shutil.copyfile(source.path / bundle.WEIGHTS, target)
    with open(target, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    if digest != source.weights_sha256:
        raise ModelError(
            f"{bundle.WEIGHTS} in {source.path} changed while it was being copied; "
            "nothing was imported. Try again."
        )
    bundle._sync(target)
