"""The base network of a training run: loaded once, its pooled features, a new head on it."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from ..errors import ModelError
from ..models import registry, weights, zoo

log = logging.getLogger(__name__)


def base_spec(key: str) -> zoo.ModelSpec:
    """The zoo model a run trains on; only pretrained zoo models can be a base."""
    spec = registry.resolve(key)
    if spec.family not in ("efficientnet", "lite"):
        raise ModelError(f"{spec.name} cannot be the base of a new model: choose a zoo model.")
    return spec


def weights_file(spec) -> Path | None:
    path = registry.weights_path(spec)
    return Path(path) if path is not None else None


def load_pretrained(spec):
    """The spec's network with its weights, in eval mode, on the CPU (not folded)."""
    loader = getattr(registry, "load_network", None)
    if loader is not None:
        return loader(spec).eval()
    return weights.load_model(spec, weights_file(spec)).eval()


def feature_extractor(model, device: str):
    """A folded, channels_last copy of ``model`` on ``device`` whose output is its pooled features.

    Folding BatchNorm is what inference does too (TorchBackend), so cached features are
    what a trained bundle sees when it classifies.
    """
    import torch
    from torch import nn

    from ..runtime.torch_backend import fold_batch_norms

    class Pooled(nn.Module):
        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return zoo.pooled_features(self.net, x)

    folded = fold_batch_norms(copy.deepcopy(model).eval())
    return Pooled(folded).eval().to(device, memory_format=torch.channels_last)


def head_layer(model):
    """The Linear at the end of ``classifier`` (Dropout, Linear) of every zoo network."""
    from torch import nn

    layers = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ModelError("This network has no linear classifier to replace.")
    return layers[-1]


def with_new_head(spec, pretrained, weight, bias):
    """``spec.build(num_classes=N)`` with the pretrained backbone and the given head."""
    import torch

    num_classes = int(weight.shape[0])
    model = spec.build(num_classes=num_classes)
    head = head_layer(model)
    state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise ModelError(f"The {spec.name} backbone does not match its network definition.")
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return model.eval()


def cpu_state_dict(model) -> dict:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
