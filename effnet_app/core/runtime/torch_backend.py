"""PyTorch as a ``Backend``: folded BatchNorms, channels_last, inference_mode, OOM halving."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

from ..devices import resolve_device
from ..errors import ModelError
from ..jobs import NEVER, CancelToken
from ..models import registry
from ..models.zoo import ModelSpec
from .backend import Backend, RunState, as_torch

log = logging.getLogger(__name__)


def fold_batch_norms(model):
    """Fold each eval-mode BatchNorm into the convolution before it, in place.

    A BatchNorm after a convolution is an affine map per channel, so it can live in the
    convolution's weights and bias: the same outputs (to float rounding) with one pass
    over each feature map instead of two, about 1.5x the images per second on a CPU.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        names = list(module._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and type(norm) is nn.BatchNorm2d:
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
    return model


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    # The CPU allocator raises a plain RuntimeError ("DefaultCPUAllocator: can't allocate
    # memory"), CUDA an OutOfMemoryError or a RuntimeError saying "out of memory".
    text = str(exc).lower()
    return (
        isinstance(exc, torch.cuda.OutOfMemoryError)
        or "out of memory" in text
        or "can't allocate memory" in text
    )


class TorchBackend(Backend):
    """A ``ModelSpec``'s network in PyTorch on ``device`` ("auto", "cpu", "cuda:N").

    ``model`` is the loaded ``nn.Module`` (Grad-CAM uses it too). Pass ``model`` to run
    a network already in memory as it is (no folding, no move): one just trained, or
    one wrapped for a test.
    """

    name = "torch"
    title = "PyTorch"

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "auto",
        weights_path: Path | None = None,
        model=None,
    ) -> None:
        super().__init__(resolve_device(device))
        self.spec = spec
        self.weights_path = weights_path
        self.model = model

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, cancel: CancelToken = NEVER) -> None:
        if self.model is not None:
            return
        import torch

        model = registry.load_network(self.spec, self.weights_path, cancel).eval()
        cancel.raise_if_cancelled()
        self.model = fold_batch_norms(model).to(self.device, memory_format=torch.channels_last)
        if self.device.startswith("cuda"):
            try:
                self.precision = "fp16" if self._fp16_agrees() else "fp32"
            except BaseException:
                self.precision = "fp32"  # never left at a precision that was not checked
                raise

    def _fp16_agrees(self) -> bool:
        """Whether fp16 autocast gives fp32's top-1 on >= 99.5 % of the reference inputs."""
        from .reference import reference_batch

        batch = as_torch(reference_batch(self.spec.preprocess, limit=64))
        self.precision = "fp32"
        exact = self.run(batch, RunState(16)).argmax(1)
        self.precision = "fp16"
        fast = self.run(batch, RunState(16)).argmax(1)
        agreed = float((exact == fast).float().mean())
        if agreed < 0.995:
            log.warning(
                "fp16 agreed with fp32 on %.1f %% only: %s runs fp32", 100 * agreed, self.spec.name
            )
        return agreed >= 0.995

    def default_batch_size(self) -> int:
        return 32 if self.device.startswith("cuda") else 16

    def describe(self) -> str:
        """Runtime and precision, and the device unless it is the CPU: "PyTorch fp32 on cuda:0"."""
        text = f"{self.title} {self.precision}"
        return text if self.device == "cpu" else f"{text} on {self.device}"

    def run(self, batch, state: RunState | None = None):
        """Logits in pieces of at most ``state.batch_size``; out of memory, halve and go on.

        The lowered size stays in ``state`` for the rest of this run, so later batches
        start at what fitted instead of failing again.
        """
        import torch

        tensor = as_torch(batch)
        state = state or RunState.whole(tensor)
        pieces, start = [], 0
        while start < len(tensor):
            piece = tensor[start : start + state.batch_size]
            try:
                pieces.append(self._forward(piece))
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                self._out_of_memory(exc, len(piece), state)
                continue
            start += len(piece)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def _forward(self, batch):
        import torch

        cuda = self.device.startswith("cuda")
        if cuda:  # pinned pages copy asynchronously, overlapping the copy with compute
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        batch = batch.to(self.device, memory_format=torch.channels_last)
        half = cuda and self.precision == "fp16"
        autocast = torch.autocast("cuda", torch.float16) if half else nullcontext()
        with torch.inference_mode(), autocast:
            return self.model(batch).float().cpu()

    def _out_of_memory(self, exc: BaseException, size: int, state: RunState) -> None:
        """Halve this run's batch size after ``exc``, or raise when nothing is left to halve."""
        import torch

        if not is_out_of_memory(exc):
            raise exc
        if size == 1:
            raise ModelError(
                f"{self.spec.name} does not fit in the memory of {self.device}, even one "
                "image at a time. Close other programs, or choose a smaller model or "
                "another device.",
                detail=repr(exc),
            ) from exc
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        note = f"Out of memory on {self.device}: batch size lowered to {size // 2}."
        state.lower_batch_size(size // 2, note)
        log.warning(note)
