"""Trained bundles: saved atomically, listed, resolved, classified, refused when damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from effnet_app.core import paths
from effnet_app.core.errors import ModelError
from effnet_app.core.models import bundle, registry, weights, zoo
from effnet_app.core.runtime import catalog
from effnet_app.core.runtime.classifier import Classifier, classify_all

CLASSES = ("cat", "dog", "other")


def _save(state, name="pets", **kw) -> bundle.Bundle:
    kw.setdefault("classes", CLASSES)
    kw.setdefault("preprocess", zoo.get_spec("lite0").preprocess)
    return bundle.save_bundle(name, state, base="lite0", **kw)


def _rewrite_manifest(b: bundle.Bundle, **changes) -> None:
    file = b.path / bundle.MANIFEST
    manifest = json.loads(file.read_text()) | changes
    file.write_text(json.dumps(manifest))


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_writes_a_manifest_and_safetensors_and_lists_it(lite_state):
    b = _save(lite_state, metrics={"accuracy": 0.9}, dataset={"counts": [1, 2, 3]})
    assert b.path == paths.models_dir() / "pets"
    assert _visible(paths.models_dir()) == ["pets"]  # no scratch folders left
    assert _visible(b.path) == [bundle.MANIFEST, bundle.WEIGHTS]
    manifest = json.loads((b.path / bundle.MANIFEST).read_text())
    assert manifest["format_version"] == bundle.FORMAT_VERSION
    assert manifest["classes"] == list(CLASSES) and manifest["base"] == "lite0"
    assert manifest["preprocess"] == zoo.get_spec("lite0").preprocess.to_dict()
    assert manifest["metrics"] == {"accuracy": 0.9}
    assert set(manifest["versions"]) == {"app", "torch", "torchvision"}
    digest = hashlib.sha256((b.path / bundle.WEIGHTS).read_bytes()).hexdigest()
    assert manifest["weights_sha256"] == digest == b.weights_sha256
    assert bundle.list_bundles() == [b] == [bundle.read_bundle(b.path)]
    state = bundle.load_state_dict(b)
    assert state.keys() == lite_state.keys()
    assert all(torch.equal(state[k], lite_state[k]) for k in state)


def test_spec_is_a_trained_model_on_the_base_architecture(lite_state):
    spec = _save(lite_state, temperature=1.5, unknown_threshold=0.4).spec()
    base = zoo.get_spec("lite0")
    assert (spec.key, spec.name, spec.family) == ("user:pets", "pets", "trained")
    assert spec.categories == CLASSES and spec.num_classes == 3
    assert (spec.temperature, spec.unknown_threshold) == (1.5, 0.4)
    assert spec.preprocess == base.preprocess and spec.feature_dim == base.feature_dim
    model = spec.build()
    assert model.classifier[1].out_features == 3
    assert spec.params == sum(p.numel() for p in model.parameters())
    assert registry.weights_path(spec) == spec.bundle_path / bundle.WEIGHTS
    assert zoo.get_spec("lite0").temperature == 1.0 and base.unknown_threshold is None


def test_registry_lists_after_the_zoo_and_resolves_name_key_and_path(lite_state):
    b = _save(lite_state)
    keys = [s.key for s in registry.list_models()]
    assert keys[-1] == "user:pets" and keys[: len(zoo.pretrained_specs())] == [
        s.key for s in zoo.pretrained_specs()
    ]
    for text in ("pets", "user:pets", str(b.path), b.path, str(b.path / bundle.WEIGHTS)):
        assert registry.resolve(text).key == "user:pets"
    model = registry.load_network(registry.resolve("pets"))
    assert not model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in lite_state.items())
    with pytest.raises(ModelError, match="user:pets"):
        registry.resolve("kittens")  # the choices include the trained models


def test_catalog_lists_a_bundle_as_available_with_its_classes(lite_state):
    _save(lite_state, metrics={"accuracy": 0.875, "baseline": 0.5})
    info = catalog.model_info(registry.resolve("user:pets"))
    assert (info.family, info.available, info.bundled) == ("trained", True, False)
    assert "cat, dog, other" in info.about and "87.5" in info.about


def test_a_second_save_needs_replace_and_replacing_leaves_no_scratch(lite_state):
    first = _save(lite_state, metrics={"round": 1})
    with pytest.raises(ModelError, match="already exists"):
        _save(lite_state)
    second = _save(lite_state, metrics={"round": 2}, replace=True)
    assert bundle.read_bundle(second.path).metrics == {"round": 2} != first.metrics
    assert _visible(paths.models_dir()) == ["pets"]


def test_a_failed_replace_puts_the_old_bundle_back(lite_state, monkeypatch):
    old = _save(lite_state, metrics={"round": 1})
    real_rename = os.rename

    def rename(src, dst):
        if str(src).endswith(".part"):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(bundle.os, "rename", rename)
        with pytest.raises(ModelError, match="disk is full"):
            _save(lite_state, metrics={"round": 2}, replace=True)
    assert bundle.read_bundle(old.path).metrics == {"round": 1}
    assert _visible(old.path.parent) == ["pets"]
    bundle.load_state_dict(bundle.read_bundle(old.path))


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a\\b", ".hidden", "..", " pad", "x:y"])
def test_bad_names_are_refused_with_a_sentence(name, lite_state):
    with pytest.raises(ModelError):
        bundle.validate_name(name)
    with pytest.raises(ModelError):
        _save(lite_state, name=name)
    assert _visible(paths.models_dir()) == []


def test_default_name_is_readable_folder_safe_and_free(lite_state):
    assert bundle.default_name(["Cats", "Dogs"], "lite0") == "cats-dogs-lite0"
    name = bundle.default_name(["a/b", "c:d", "e", "f"], "b0")
    assert bundle.validate_name(name) == name and "etc" in name
    _save(lite_state, name="cats-dogs-lite0")
    assert bundle.default_name(["cats", "dogs"], "lite0") == "cats-dogs-lite0-2"


def test_rename_moves_the_folder_and_rewrites_the_name(lite_state):
    _save(lite_state)
    _save(lite_state, name="other")
    with pytest.raises(ModelError, match="already exists"):
        bundle.rename_bundle("pets", "other")
    renamed = bundle.rename_bundle("pets", "animals")
    assert renamed.name == "animals" and renamed.path == paths.models_dir() / "animals"
    assert json.loads((renamed.path / bundle.MANIFEST).read_text())["name"] == "animals"
    assert [b.name for b in bundle.list_bundles()] == ["animals", "other"]
    bundle.load_state_dict(bundle.read_bundle(renamed.path))


def test_delete_removes_the_folder_whole(lite_state):
    _save(lite_state)
    bundle.delete_bundle("user:pets")
    assert _visible(paths.models_dir()) == [] and bundle.list_bundles() == []
    with pytest.raises(ModelError, match="no trained model"):
        bundle.delete_bundle("pets")


def test_leftovers_of_a_kill_are_ignored_then_tidied(lite_state):
    b = _save(lite_state)
    folder = paths.models_dir()
    part = folder / f".pets.{'a' * 32}.part"
    shutil.copytree(b.path, part)
    old = folder / f".gone.{'b' * 32}.old"  # a replace killed between its two renames
    shutil.copytree(b.path, old)
    assert [x.name for x in bundle.list_bundles()] == ["gone", "pets"]  # .old came back
    assert part.exists()  # a recent part may be a save under way
    assert bundle.clean_stale(folder, older_than=0) == 1
    assert _visible(folder) == ["gone", "pets"]


def test_a_pickle_is_refused_and_never_run(lite_state, tmp_path, monkeypatch):
    b = _save(lite_state)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    data = pickle.dumps(Payload())
    (b.path / bundle.WEIGHTS).write_bytes(data)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(ModelError, match="checksum"):
        bundle.load_state_dict(bundle.read_bundle(b.path))
    _rewrite_manifest(b, weights_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(ModelError, match="not a safetensors file"):
        registry.load_network(registry.resolve("pets"))
    assert not marker.exists()


def test_a_flipped_byte_is_refused_by_the_checksum(lite_state):
    b = _save(lite_state)
    file = b.path / bundle.WEIGHTS
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="changed since it was saved"):
        bundle.load_state_dict(bundle.read_bundle(b.path))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format_version": 2}, "format 2"),
        ({"format_version": None}, "format None"),
        ({"classes": "cat"}, '"classes"'),
        ({"classes": ["cat", "cat", "dog"]}, "repeated"),
        ({"base": "b99"}, "b99"),
        ({"temperature": -1}, "temperature"),
        ({"unknown_threshold": 3}, "threshold"),
        ({"weights_sha256": "abc"}, "weights_sha256"),
        ({"preprocess": {"crop_size": 1}}, "preprocessing"),
    ],
)
def test_a_bad_manifest_is_refused_with_a_sentence(lite_state, changes, match):
    b = _save(lite_state)
    _rewrite_manifest(b, **changes)
    with pytest.raises(ModelError, match=match):
        bundle.read_bundle(b.path)
    assert bundle.list_bundles() == []  # skipped, not fatal


def test_a_garbled_or_missing_manifest_or_weights_file_is_refused(lite_state):
    b = _save(lite_state)
    (b.path / bundle.MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        bundle.read_bundle(b.path)
    (b.path / bundle.MANIFEST).unlink()
    with pytest.raises(ModelError, match="no manifest.json"):
        bundle.read_bundle(b.path)
    with pytest.raises(ModelError, match="not a model"):
        registry.resolve(str(b.path))
    other = _save(lite_state, name="other")
    (other.path / bundle.WEIGHTS).unlink()
    with pytest.raises(ModelError, match="missing"):
        bundle.read_bundle(other.path)


def _broken(state: dict, how: str) -> dict:
    state = dict(state)
    if how == "head":
        state["classifier.1.weight"] = torch.zeros(5, 1280)
    elif how == "shape":
        key = next(k for k in state if k.endswith("conv.weight") or k.endswith(".weight"))
        state[key] = torch.zeros(3, 3)
    elif how == "unknown":
        state["extra.weight"] = torch.zeros(2)
    else:
        state.pop(next(iter(state)))
    return state


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("head", "names 3 classes, its weights 5"),
        ("shape", "has shape"),
        ("unknown", "unknown extra.weight"),
        ("missing", "lack"),
    ],
)
def test_weights_that_do_not_fit_the_architecture_are_refused(lite_state, how, match):
    b = _save(_broken(lite_state, how))
    with pytest.raises(ModelError, match=match):
        bundle.load_state_dict(b)


def test_a_copied_bundle_loads_from_its_path_with_an_empty_home(lite_state, tmp_path, monkeypatch):
    b = _save(lite_state)
    copy = tmp_path / "elsewhere" / "pets-copy"
    shutil.copytree(b.path, copy)
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "empty-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: pytest.fail("needs no weights"))
    spec = registry.resolve(str(copy))
    assert spec.key == "user:pets-copy" and spec.bundle_path == copy
    model = registry.load_network(spec)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in lite_state.items())
    assert bundle.list_bundles() == []  # the empty home has none of its own


@pytest.mark.slow
def test_real_photos_get_three_class_predictions_with_temperature_and_threshold(
    lite_state, sample_photos
):
    spec = _save(lite_state).spec()
    plain = Classifier(spec, device="cpu")
    photos = list(sample_photos.values())
    rows = classify_all(plain, photos, top_k=5)
    assert len(rows) == len(photos)
    for row in rows:
        assert {p.label for p in row.predictions} == set(CLASSES)
        assert sum(p.probability for p in row.predictions) == pytest.approx(1.0, abs=1e-5)
        assert not row.unsure
    hot = dataclasses.replace(spec, temperature=4.0, unknown_threshold=2.0)
    warm_rows = classify_all(Classifier(hot, backend=plain.backend), photos, top_k=3)
    for row, warm in zip(rows, warm_rows, strict=True):
        assert warm.unsure  # nothing reaches a threshold above 1
        assert warm.top1.probability < row.top1.probability  # a higher temperature flattens
    zoo_rows = classify_all(Classifier(zoo.get_spec("lite0"), device="cpu"), photos)
    assert not any(r.unsure for r in zoo_rows)


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from safetensors.torch import load_file
    from effnet_app.core.models import bundle, zoo
    folder, source = Path(sys.argv[1]), sys.argv[2]
    state = load_file(source)
    preprocess = zoo.get_spec("lite0").preprocess
    print("ready", flush=True)
    for n in range(10_000):
        state["classifier.1.bias"][0] = n
        bundle.save_bundle("pets", state, base="lite0", classes=["cat", "dog", "other"],
                           preprocess=preprocess, metrics={"round": n}, folder=folder,
                           replace=True)
    """
)


@pytest.mark.slow
def test_a_kill_during_saves_leaves_the_old_bundle_or_none(lite_state, tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "models"
    _save(lite_state, folder=folder)
    source = tmp_path / "state.safetensors"
    save_file(lite_state, str(source))
    rng, interrupted = random.Random(9), 0
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(folder), str(source)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        interrupted += any(p.name.endswith(".part") for p in folder.iterdir())
        target = folder / "pets"
        if target.exists():
            bundle.load_state_dict(bundle.read_bundle(target))
        bundle.clean_stale(folder, older_than=0)
        (found,) = bundle.list_bundles(folder)  # a missing one comes back from its .old
        assert bundle.load_state_dict(found).keys() == lite_state.keys()
        assert _visible(folder) == ["pets"]
    assert interrupted  # at least one kill landed in the middle of writing


def test_a_session_loads_a_model_saved_again_under_its_name_afresh(lite_state):
    from effnet_app.core.runtime.session import Session

    _save(lite_state, "pets")
    session = Session()
    first = session.classifier("pets", "cpu")
    assert session.classifier("user:pets", "cpu") is first  # unchanged: the same one
    changed = dict(lite_state)
    changed["classifier.1.bias"] = lite_state["classifier.1.bias"] + 1.0
    _save(changed, "pets", replace=True)
    second = session.classifier("pets", "cpu")
    assert second is not first
    assert second.weights_path == first.weights_path  # same place, new file
    bundle.delete_bundle("pets")
    with pytest.raises(ModelError, match="no model called"):
        session.classifier("pets", "cpu")
