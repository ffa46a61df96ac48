"""What ONNX Runtime and OpenVINO share: an exported model file run on the CPU.

The file is trusted by its hash, not its name: given the SHA-256 recorded when the
export was made and verified, ``load`` refuses a file whose contents differ (a damaged
or replaced copy) with a sentence, before any runtime reads it. Batches are numpy in,
numpy out; out of memory, a run goes on in halves exactly as ``TorchBackend`` does.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import logging
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ExportError, ModelError
from ..jobs import NEVER, CancelToken
from . import cpu
from .backend import Backend, RunState, as_numpy

log = logging.getLogger(__name__)

_HASH_CHUNK = 4 * 1024 * 1024

# What the runtimes say when an allocation fails: ONNX Runtime's arena ("Available memory
# of N is smaller than requested bytes of M") and its plain allocator ("Failed to allocate
# memory"), OpenVINO's std::bad_alloc, and the C library's ENOMEM text.
_MEMORY_WORDS = (
    "out of memory",
    "failed to allocate",
    "is smaller than requested bytes",
    "bad_alloc",
    "bad allocation",
    "cannot allocate memory",
    "can't allocate memory",
)


def is_memory_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(word in text for word in _MEMORY_WORDS)


def file_sha256(path: Path, cancel: CancelToken = NEVER) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            cancel.raise_if_cancelled()
            digest.update(chunk)
    return digest.hexdigest()


def damaged(path: Path, detail: str) -> ExportError:
    return ExportError(
        f"The optimised copy of this model ({path.name} in {path.parent}) is damaged, so it "
        "is not used. It has to be made again from the original model.",
        detail=detail,
    )


def check_model_file(path: Path, sha256: str | None, cancel: CancelToken = NEVER) -> None:
    """Raise ``ExportError`` unless ``path`` is a file whose SHA-256 is ``sha256`` (if given)."""
    if not path.is_file():
        raise ExportError(
            f"The optimised copy of this model is missing ({path}). It has to be made again "
            "from the original model."
        )
    if sha256 is None:
        return
    try:
        found = file_sha256(path, cancel)
    except OSError as exc:
        raise damaged(path, f"reading it failed: {exc!r}") from exc
    if found != sha256.strip().lower():
        raise damaged(path, f"SHA-256 {found}, expected {sha256}")


class ExportBackend(Backend):
    """A model file (``model_path``) run by a CPU runtime with ``threads`` threads.

    ``threads`` defaults to the physical cores (``cpu.inference_threads``); ``sha256``,
    when given, is checked at ``load``; ``name_for_messages`` names the model in
    sentences (the file's folder otherwise). Subclasses open the file in ``_open``,
    which returns the function that runs one float32 NCHW array: ``forward(batch,
    alone)``, ``alone`` saying the batch is one image run by itself (``RunState.alone``).
    """

    wants = "numpy"

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        sha256: str | None = None,
        name_for_messages: str | None = None,
    ) -> None:
        super().__init__("cpu")
        self.model_path = Path(model_path)
        self.threads = max(1, int(threads or cpu.inference_threads()))
        self.sha256 = sha256
        self.model_name = name_for_messages or self.model_path.parent.name or "the model"
        self._forward: Callable[[np.ndarray, bool], np.ndarray] | None = None

    @property
    def loaded(self) -> bool:
        return self._forward is not None

    def load(self, cancel: CancelToken = NEVER) -> None:
        if self._forward is not None:
            return
        check_model_file(self.model_path, self.sha256, cancel)
        cancel.raise_if_cancelled()
        self._forward = self._open()

    def default_batch_size(self) -> int:
        # Measured end to end on 2 cores, 200 12-MP JPEGs, B0 on ONNX Runtime: batches of 4
        # gave 16 % more images per second than 16 (the decoded images wait less, and a
        # batch of 4 costs 24 ms of CPU per image against 29 ms at 16). A batch is split
        # over the cores (streams, one image or more each), so never fewer than cores.
        return max(4, self.threads)

    @abstractmethod
    def _open(self) -> Callable[[np.ndarray, bool], np.ndarray]:
        """Read ``model_path`` into the runtime; return (batch, alone) -> float32 logits."""

    def run(self, batch, state: RunState | None = None) -> np.ndarray:
        """Logits in pieces of at most ``state.batch_size``; out of memory, halve and go on."""
        if self._forward is None:
            raise ModelError(f"{self.model_name} was used before it was loaded.")
        array = np.ascontiguousarray(as_numpy(batch), dtype=np.float32)
        state = state or RunState.whole(array)
        if len(array) == 0:
            return self._forward(array, False)
        pieces, start = [], 0
        while start < len(array):
            piece = array[start : start + state.batch_size]
            try:
                logits = self._forward(piece, state.alone and len(piece) == 1)
                pieces.append(np.asarray(logits, dtype=np.float32))
            except Exception as exc:  # noqa: BLE001 - only memory failures are kept
                self._out_of_memory(exc, len(piece), state)
                continue
            start += len(piece)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _out_of_memory(self, exc: BaseException, size: int, state: RunState) -> None:
        if not is_memory_failure(exc):
            raise exc
        if size == 1:
            raise ModelError(
                f"{self.model_name} does not fit in this computer's memory with "
                f"{self.title}, even one image at a time. Close other programs, or choose "
                "a smaller model.",
                detail=repr(exc),
            ) from exc
        note = f"Out of memory in {self.title}: batch size lowered to {size // 2}."
        state.lower_batch_size(size // 2, note)
        log.warning(note)
