"""A model, a device and an engine setting in; a ready ``Classifier`` out.

The engine setting is one of ``choices.BACKENDS``: "auto" (the default), "torch",
"onnxruntime" or "openvino", with a precision ("fp32", or "bf16" for Fast mode).

- ``fast_plan`` is the torch-free way in. When the model has a verified export in the
  cache whose source file is unchanged, and the engine for it is known (chosen
  explicitly, or measured before on this computer), it returns a ``Plan`` whose
  classifier decodes with Pillow and NumPy and runs ONNX Runtime or OpenVINO: torch is
  never imported.
- ``classifier_job`` is the way in the first time. On a CUDA device it is PyTorch (fp16
  autocast, checked against fp32). On the CPU it exports and verifies the model, times
  each installed runtime ("Optimising for this computer…"), remembers the fastest, and
  hands back that classifier. Whatever fails on the way falls back to PyTorch, with the
  reason logged and said in ``classifier.notes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import AppError, ExportError, ExportRefused, sentence_of
from ..jobs import NEVER, Cancelled, CancelToken, Progress
from . import choices, cpu
from .choices import LABELS, Choice
from .classifier import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Run ``info``'s export on ``backend`` at ``precision`` (``choice``: why, when measured)."""

    info: object  # export.sidecar.ExportInfo
    backend: str
    precision: str = "fp32"
    choice: Choice | None = None

    @property
    def slot(self) -> tuple:
        """What a loaded classifier of this plan is kept under."""
        return ("export", self.info.key, self.backend, self.precision, self.info.sha256)

    @property
    def single_backend(self) -> str:
        """The runtime for batches of one (measured apart; else the batches' one)."""
        return self.choice.single_backend if self.choice is not None else self.backend

    @property
    def one_file_backend(self) -> str:
        """The runtime for a process that classifies one file and exits.

        Starting a runtime costs far more than one image: here ``import onnxruntime`` took
        0.15 s and ``import openvino`` 0.30 s, against about 10 ms for Lite0's one image
        on either. So when auto measured ONNX Runtime (fp32) and it passed the check, it
        runs the one file, whichever was faster per image; a runtime chosen by hand stays.
        """
        choice = self.choice
        competed = choice is not None and "onnxruntime" in {**choice.rates, **choice.single_rates}
        if competed and self.precision == "fp32" and "onnxruntime" in checked_runtimes(self.info):
            return "onnxruntime"
        return self.single_backend

    def make_backend(self, single: bool = False):
        """The backend; ``single``: one file to classify, in a process that then exits."""
        if single or self.single_backend == self.backend:
            name = self.one_file_backend if single else self.backend
            return runtime_backend(name, self.info, self.precision, single)
        from .backend import SplitBackend

        batches = runtime_backend(self.backend, self.info, self.precision)
        return SplitBackend(
            batches,
            lambda: runtime_backend(self.single_backend, self.info, self.precision, True),
            LABELS.get(self.single_backend, self.single_backend),
        )

    def classifier(self, spec=None, batch_size: int | None = None, single: bool = False):
        """Its classifier (not loaded yet); ``spec`` defaults to the export's own.

        ``single``: the caller classifies one file and exits, so the runtime quickest to
        start is set up for one image from the start (``one_file_backend``).
        """
        made = Classifier(
            spec or self.info.spec(), batch_size=batch_size, backend=self.make_backend(single)
        )
        made.notes = ()
        return made


def runtime_backend(name: str, info, precision: str = "fp32", single: bool = False):
    """The backend running ``info``'s export file with runtime ``name``.

    ``single``: only batches of one will come, so ONNX Runtime opens just its spinning
    session and OpenVINO compiles just its LATENCY model (a larger batch still runs, on
    that one). Otherwise each opens its batch set-up, and the single-image one when the
    first image run alone comes (``RunState.alone``).
    """
    if name == "onnxruntime":
        from .onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(info.model_path, sha256=info.sha256, single_images=single)
    if name == "openvino":
        from .openvino_backend import OpenVinoBackend

        hint = "LATENCY" if single else None
        return OpenVinoBackend(
            info.model_path, precision=precision, sha256=info.sha256, performance_hint=hint
        )
    raise ValueError(f"{name} does not run exports")


def reference_count(spec) -> int | None:
    """Reference inputs an export is checked on: all of them up to 240 px, 64 above.

    PyTorch on a CPU runs B7's 600 px inputs at about one a second, so checking all 208
    would take minutes; 64 (every photo, whole and cropped) still covers each one.
    """
    return None if spec.resolution <= 240 else 64


def checked_runtimes(info) -> set[str]:
    """The installed runtimes this export agreed with PyTorch on (the only ones used)."""
    agreed = {a.backend for a in info.agreements if a.passes() and a.precision == "fp32"}
    return agreed & set(choices.installed_runtimes())


def cpu_only(device: str) -> bool:
    """Whether ``device`` surely means the CPU, found out without importing torch."""
    device = (device or "auto").strip().lower()
    return device == "cpu" or (device == "auto" and not cpu.cuda_may_be_present())


def _precision_for(backend: str, precision: str) -> str:
    # Fast mode (bf16) exists only on OpenVINO; an explicit other runtime runs fp32.
    return precision if backend in ("auto", "openvino") else "fp32"


def fast_plan(model: str, device: str, backend: str = "auto", precision: str = "fp32"):
    """The torch-free ``Plan`` for this request, or None when torch is needed first."""
    from ..export import cache as export_cache

    if backend == "torch" or not cpu_only(device):
        return None
    info = export_cache.find_current(model)
    if info is None:
        return None
    runtimes = checked_runtimes(info)
    precision = _precision_for(backend, precision)
    if backend == "auto" or precision != "fp32":
        choice = choices.remembered(choices.choice_key(info.sha256, precision, backend))
        if choice is None or not {choice.backend, choice.single_backend} <= runtimes:
            return None  # measured as torch, or not measured yet: the slow path knows
        if backend not in ("auto", choice.backend):
            return None
        return Plan(info, choice.backend, choice.precision, choice)
    return Plan(info, backend, "fp32") if backend in runtimes else None


def _torch_classifier(spec, device, weights_path, batch_size, notes=(), backend=None):
    made = Classifier(spec, device, batch_size, weights_path=weights_path, backend=backend)
    made.notes = tuple(notes)
    return made


def classifier_job(
    spec,
    weights_path,
    device: str = "auto",
    backend: str = "auto",
    precision: str = "fp32",
    batch_size: int | None = None,
    cancel: CancelToken = NEVER,
):
    """Job: the classifier for this request, loaded; see the module docstring."""
    from .. import native_libs
    from ..devices import resolve_device

    native_libs.preload()  # torch comes next: its libraries load without holding the GIL

    resolved = resolve_device(device)
    runtimes = choices.installed_runtimes()
    notes: list[str] = []
    if backend not in choices.BACKENDS:
        raise AppError(
            f'"{backend}" is not an engine. Choose one of: {", ".join(choices.BACKENDS)}.'
        )
    if backend not in ("auto", "torch") and resolved != "cpu":
        notes.append(f"{LABELS[backend]} runs on the CPU only here; using PyTorch on {resolved}.")
    elif backend not in ("auto", "torch") and backend not in runtimes:
        notes.append(f"{LABELS[backend]} is not installed; using PyTorch.")
    if resolved != "cpu" or backend == "torch" or notes or not runtimes:
        return _torch_classifier(spec, resolved, weights_path, batch_size, notes)
    if precision != _precision_for(backend, precision):
        notes.append("Fast mode (bf16) runs only on OpenVINO; using fp32.")
    return (
        yield from _optimised(
            spec,
            weights_path,
            backend,
            _precision_for(backend, precision),
            batch_size,
            notes,
            cancel,
        )
    )


def _optimised(spec, weights_path, backend, precision, batch_size, notes, cancel):
    from ..export import cache as export_cache
    from ..export import refusals
    from .torch_backend import TorchBackend

    refused = refusals.refusal(spec.key, weights_path, choices.installed_runtimes())
    if refused is not None:
        notes.append(f"The faster engines were refused for {spec.name} before: {refused}")
        return _torch_classifier(spec, "cpu", weights_path, batch_size, notes)
    torch_backend = TorchBackend(spec, "cpu", weights_path)
    try:
        yield Progress(0, 3, "Optimising for this computer: loading the model…", "steps")
        torch_backend.load(cancel)
        yield Progress(1, 3, "Optimising for this computer: making a checked copy…", "steps")
        info = yield from export_cache.ensure_export(
            spec, weights_path, cancel, limit=reference_count(spec), isolated=True
        )
        yield Progress(2, 3, "Optimising for this computer: timing each engine…", "steps")
        plan = _choose(spec, info, torch_backend, backend, precision, notes, cancel)
        if plan is None:
            return _torch_classifier(spec, "cpu", weights_path, batch_size, notes, torch_backend)
        made = plan.classifier(spec, batch_size)
        yield from made.load(cancel)
        made.notes = tuple(notes)
        yield Progress(3, 3, f"{spec.name} runs on {made.describe()}", "steps")
        return made
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here still leaves PyTorch
        return _fall_back(spec, weights_path, batch_size, notes, torch_backend, exc)


def _fall_back(spec, weights_path, batch_size, notes, torch_backend, exc):
    from ..export import cache as export_cache
    from ..export import refusals

    log.warning("the faster engines are not used for %s", spec.name, exc_info=exc)
    if isinstance(exc, ExportError):
        export_cache.discard(spec.key)
    if isinstance(exc, ExportRefused):  # not made again until the file or a runtime changes
        runtimes = choices.installed_runtimes()
        refusals.remember(spec.key, weights_path, runtimes, sentence_of(exc))
    notes.append(
        f"The faster engines could not be used for {spec.name}: {sentence_of(exc)} Using PyTorch."
    )
    backend = torch_backend if torch_backend.loaded else None
    return _torch_classifier(spec, "cpu", weights_path, batch_size, notes, backend)


def _choose(spec, info, torch_backend, backend, precision, notes, cancel):
    """The plan to run, measuring when the choice is not known; None means PyTorch."""
    if backend != "auto" and backend not in checked_runtimes(info):
        notes.append(f"{LABELS[backend]} was not checked against PyTorch here; using PyTorch.")
        return None
    if backend != "auto" and precision == "fp32":
        return Plan(info, backend, "fp32")
    key = choices.choice_key(info.sha256, precision, backend)
    choice = choices.remembered(key)
    if choice is None:
        choice = _measure(spec, info, torch_backend, backend, precision, notes, cancel)
        choices.remember(key, choice)
        log.info("engine for %s: %s", spec.name, choice.describe())
    if choice.backend == "torch":
        return None
    return Plan(info, choice.backend, choice.precision, choice)


def _candidates(info, backend, precision, reference, torch_backend, notes):
    """Name -> loaded backend, for every runtime that may be timed for this request."""
    from .reference import reference_batch

    names = checked_runtimes(info) if backend == "auto" else {backend} & checked_runtimes(info)
    found = {"torch": torch_backend} if backend == "auto" else {}
    for name in names:
        try:
            found[name] = runtime_backend(name, info, "fp32")
            found[name].load()
        except Exception as exc:  # noqa: BLE001 - this runtime is left out
            found.pop(name, None)
            log.warning("%s could not load %s: %s", name, info.name, exc)
    if precision == "bf16" and "openvino" in names:
        try:
            reference = reference_batch(info.preprocess, limit=reference_count(info.spec()))
            fast = _checked_bf16(info, reference, torch_backend, notes)
        except Exception as exc:  # noqa: BLE001 - Fast mode is left out, fp32 goes on
            log.warning("bf16 could not be checked for %s: %s", info.name, exc)
            notes.append(f"Fast mode (bf16) could not be checked ({sentence_of(exc)}); fp32 runs.")
            fast = None
        if fast is not None:
            found["openvino-bf16"] = fast
    return found


def _checked_bf16(info, reference, torch_backend, notes):
    """OpenVINO at bf16, when this CPU has it and it agrees with fp32 (>= 99.5 % top-1)."""
    from .backend import RunState, as_numpy
    from .openvino_backend import OpenVinoBackend

    if not OpenVinoBackend.bf16_supported():
        notes.append(f"This CPU ({cpu.cpu_name()}) has no bf16 support; Fast mode runs fp32.")
        return None
    fast = runtime_backend("openvino", info, "bf16")
    fast.load()
    exact = as_numpy(torch_backend.run(reference, RunState(16)))
    agreed = top1_agreement(exact, as_numpy(fast.run(reference, RunState(16))))
    if agreed < 0.995:
        notes.append(
            f"Fast mode (bf16) agreed with fp32 on only {agreed:.1%} of the reference photos "
            "(99.5 % needed); it is not used."
        )
        return None
    return fast


def top1_agreement(reference_logits, logits) -> float:
    """The share of rows whose top-1 class is the same in both."""
    return float((reference_logits.argmax(1) == logits.argmax(1)).mean())


def _measure(spec, info, torch_backend, backend, precision, notes, cancel) -> Choice:
    from .reference import reference_batch

    sample = reference_batch(info.preprocess, limit=choices.TRIAL_MAX_BATCH)
    found = _candidates(info, backend, precision, sample, torch_backend, notes)
    runtimes = [name for name in found if name != "torch"]  # one image: torch-free
    measured = choices.measure(found, sample, precision, cancel, single=runtimes)
    name, used = measured.backend, "fp32"
    if name == "openvino-bf16":
        name, used = "openvino", "bf16"
    single = "openvino" if measured.single == "openvino-bf16" else measured.single
    return Choice(
        name,
        used,
        measured.rates,
        measured.batch,
        measured.measured,
        measured.reason,
        "" if single == name else single,
        measured.single_rates,
    )
