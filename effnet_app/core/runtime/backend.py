"""What runs a network: load once, then batches in, logits out, on one device.

``Classifier`` is a decode pipeline + a ``Backend`` + top-k, so another runtime (ONNX
Runtime, OpenVINO) is one more subclass and nothing else changes.

Arrays crossing this interface: a batch is float32, shape (N, 3, H, W), on the CPU,
given as either a ``torch.Tensor`` or a ``numpy.ndarray``. Every backend accepts both
and converts to what it runs on with ``as_torch`` / ``as_numpy`` (for CPU data these
share memory, so accepting either costs no copy). Logits come back on the CPU as
float32, shape (N, classes), as whichever kind the backend has; callers convert with
the same two functions.

Out of memory, a backend runs what it was given in smaller pieces and lowers
``RunState.batch_size`` with a note. A ``RunState`` belongs to one run (one
``Classifier.predict`` call), so a lowered size never carries into the next run.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..jobs import NEVER, CancelToken


@dataclass
class RunState:
    """What one run learns as it goes; made per run, never shared between runs.

    ``batch_size`` is the most images the backend may run at once: it starts at the
    caller's batch size and is lowered after running out of memory. ``notes`` are
    sentences for the user; the caller takes them after each batch with ``take_notes``.
    ``alone``: the run is one image with nothing decoded beside it (one file dropped or
    given), so a runtime may run it its single-image way (``Backend.run`` without a
    state takes a batch of one as alone too). A folder's last batch of one is not.
    """

    batch_size: int
    notes: list[str] = field(default_factory=list)
    alone: bool = False

    @classmethod
    def whole(cls, batch) -> RunState:
        """The state of a run given no state: the whole batch at once, alone if it is one."""
        return cls(max(1, len(batch)), alone=len(batch) == 1)

    def lower_batch_size(self, size: int, note: str) -> None:
        self.batch_size = max(1, min(self.batch_size, size))
        self.notes.append(note)

    def take_notes(self) -> tuple[str, ...]:
        taken, self.notes = tuple(self.notes), []
        return taken


class Backend(ABC):
    """A network on one device. Subclasses set ``name`` ("torch", "onnxruntime"...).

    ``wants`` is the array kind its input should be made as ("torch" or "numpy"): the
    classifier's pipeline makes that kind, so a numpy backend never imports torch.
    ``precision`` is what the network computes in ("fp32", "bf16"); ``title`` is the
    runtime's name as people read it, and ``describe`` says both ("OpenVINO bf16").
    """

    name: str = "backend"
    title: str = "Backend"
    wants: str = "torch"
    precision: str = "fp32"

    def __init__(self, device: str) -> None:
        self.device = device

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def load(self, cancel: CancelToken = NEVER) -> None:
        """Load the network onto the device (blocking); callers make this happen once."""

    @abstractmethod
    def run(self, batch, state: RunState | None = None):
        """Logits for one batch (see the module docstring for the array kinds).

        ``state`` carries this run's batch-size limit; a batch larger than it runs in
        pieces. Without one, the whole batch is the limit.
        """

    def default_batch_size(self) -> int:
        return 16

    def describe(self) -> str:
        """The runtime and precision in use, for the status bar and the logs."""
        return f"{self.title} {self.precision}"


def as_torch(array):
    """A torch tensor for a tensor or numpy array; CPU numpy data is shared, not copied."""
    import torch

    return array if isinstance(array, torch.Tensor) else torch.from_numpy(array)


def as_numpy(array):
    """A numpy array for a tensor or numpy array; a CPU tensor's data is shared."""
    import numpy as np

    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


class SplitBackend(Backend):
    """Batches on one backend, batches of one on another, each measured the faster at it.

    ``batches`` is loaded by ``load``; ``make_single`` makes the other, which is loaded
    when the first run of one image alone comes (``RunState.alone``), so folders never
    pay for it. Both run numpy on the CPU.
    """

    wants = "numpy"

    def __init__(self, batches: Backend, make_single, single_title: str) -> None:
        super().__init__(batches.device)
        self.single_title = single_title
        self.batches = batches
        self.name, self.title, self.precision = batches.name, batches.title, batches.precision
        self._make_single = make_single
        self.single: Backend | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self.batches.loaded

    def load(self, cancel: CancelToken = NEVER) -> None:
        self.batches.load(cancel)

    def _single(self) -> Backend:
        with self._lock:
            if self.single is None:
                made = self._make_single()
                made.load()
                self.single = made
            return self.single

    def run(self, batch, state: RunState | None = None):
        state = state or RunState.whole(batch)
        if state.alone:
            return self._single().run(batch, state)
        return self.batches.run(batch, state)

    def default_batch_size(self) -> int:
        return self.batches.default_batch_size()

    def describe(self) -> str:
        return f"{self.batches.describe()} (one image: {self.single_title})"
