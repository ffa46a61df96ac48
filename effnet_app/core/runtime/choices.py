"""Which runtime is fastest for a model on this computer: measured once, remembered.

The first time a model runs on a CPU, ``measure`` times each runtime that is installed
(ONNX Runtime, OpenVINO, PyTorch) on the model's verified export, for about a second
each, on a batch and on a single image, and the fastest for each is kept in
``engine_choices.json`` in the cache folder. Batches and single images are different
work: a runtime set up to split batches over streams, one per core (ONNX Runtime's
single-threaded runs side by side, OpenVINO's THROUGHPUT), runs one image on one core
only, so each runtime runs single images its own single-image way and is timed doing
that. The choice is keyed by the export's SHA-256, the runtimes' versions, the CPU, the
precision and how the runtimes are set up, so a new model file, an upgraded runtime or
another computer measures again. Nothing here
imports torch: the torch-free classify path reads the remembered choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata, util
from pathlib import Path

from .. import fsutil, paths
from ..jobs import NEVER, Cancelled, CancelToken
from . import cpu

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16")
RUNTIMES = ("onnxruntime", "openvino")  # the ones that run an export (torch runs the model)
LABELS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
CHOICES_FILE = "engine_choices.json"
ENGINE_ENV = "EFFNET_APP_ENGINE"  # sets the engine when none is chosen (scripts, tests)
TRIAL_SECONDS = 0.9  # timed per runtime, after a warm-up run, in TRIAL_ROUNDS turns
TRIAL_ROUNDS = 3
TRIAL_MAX_BATCH = 16
# Single images go to another runtime than batches only when it was this much faster on
# one image: a second runtime costs its start-up and memory (OpenVINO: ~0.2 s, 180 MB of
# libraries), and on a 2-core machine (2026-12-03) ONNX Runtime's one-image rate ran
# from 11 % below OpenVINO's to 25 % above it in four runs: a closer win is often noise.
SPLIT_MARGIN = 1.15
# How the runtimes are set up: a choice measured under another set-up is made again
# (before single images were timed apart; before ONNX Runtime ran batches in streams;
# before SPLIT_MARGIN).
SETUP = "single-timed|onnxruntime-streams|split-margin"


def default_backend() -> str:
    """The engine when none is chosen: ``$EFFNET_APP_ENGINE`` when it names one, else "auto"."""
    wanted = os.environ.get(ENGINE_ENV, "").strip().lower()
    return wanted if wanted in BACKENDS else "auto"


def installed_runtimes() -> dict[str, str]:
    """Runtime name -> version, for the runtimes installed here (read without importing)."""
    found = {}
    for name in RUNTIMES:
        try:
            if util.find_spec(name) is None:
                continue
            found[name] = metadata.version(name)
        except (ValueError, ImportError, metadata.PackageNotFoundError):
            continue  # blocked on purpose (sys.modules[name] = None) or half-installed
    return found


def choice_key(sha256: str, precision: str, backend: str = "auto") -> str:
    """What a remembered choice depends on: the model file, the engines allowed to
    compete (``backend``), the runtimes' versions and the CPU."""
    parts = [sha256, precision, backend, cpu.cpu_signature(), str(cpu.inference_threads())]
    parts.append(SETUP)
    parts += [f"{k}={v}" for k, v in sorted(installed_runtimes().items())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Choice:
    """The runtime picked for one model here, with what each candidate measured (img/s).

    ``backend`` runs batches (``rates``, timed on ``batch`` images), ``single`` runs
    batches of one (``single_rates``); "" means ``backend`` does both.
    """

    backend: str
    precision: str = "fp32"
    rates: dict[str, float] = field(default_factory=dict)
    batch: int = 1
    measured: str = ""
    reason: str = ""
    single: str = ""
    single_rates: dict[str, float] = field(default_factory=dict)

    @property
    def single_backend(self) -> str:
        return self.single or self.backend

    def describe(self) -> str:
        text = f"{LABELS.get(self.backend, self.backend)} {self.precision}"
        if self.single_backend != self.backend:
            text += f", one image on {LABELS.get(self.single, self.single)}"
        measured = "; ".join(
            f"{what} {_rates_text(rates)}"
            for what, rates in ((f"batch of {self.batch}", self.rates), ("one", self.single_rates))
            if rates
        )
        return f"{text} (measured img/s, {measured})" if measured else text

    @classmethod
    def from_dict(cls, data: dict) -> Choice:
        return cls(
            str(data["backend"]),
            str(data.get("precision", "fp32")),
            {str(k): float(v) for k, v in dict(data.get("rates", {})).items()},
            int(data.get("batch", 1)),
            str(data.get("measured", "")),
            str(data.get("reason", "")),
            str(data.get("single", "")),
            {str(k): float(v) for k, v in dict(data.get("single_rates", {})).items()},
        )


def _rates_text(rates: dict[str, float]) -> str:
    return ", ".join(
        f"{LABELS.get(name, name)} {rate:.0f}"
        for name, rate in sorted(rates.items(), key=lambda kv: -kv[1])
    )


def _choices_path() -> Path:
    return paths.cache_dir() / CHOICES_FILE


def _read_all() -> dict:
    try:
        data = json.loads(_choices_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # damaged: measuring again is all it costs
        log.warning("ignoring unreadable %s: %s", _choices_path(), exc)
        return {}
    return data if isinstance(data, dict) else {}


def remembered(key: str) -> Choice | None:
    entry = _read_all().get(key)
    if not isinstance(entry, dict):
        return None
    try:
        choice = Choice.from_dict(entry)
    except (KeyError, TypeError, ValueError):
        return None
    return choice if {choice.backend, choice.single_backend} <= set(LABELS) else None


def remember(key: str, choice: Choice) -> None:
    """Keep ``choice`` under ``key``; a cache that cannot be written only costs a re-measure."""
    data = _read_all()
    data[key] = asdict(choice)
    try:
        fsutil.atomic_write(_choices_path(), json.dumps(data, indent=1, sort_keys=True))
    except Exception as exc:  # noqa: BLE001 - a read-only cache must not stop a classification
        log.warning("could not remember the engine choice: %s", exc)


def forget_all() -> None:
    _choices_path().unlink(missing_ok=True)


def time_backend(backend, batch, cancel: CancelToken = NEVER, seconds: float = TRIAL_SECONDS):
    """Images per second of a loaded ``backend`` on ``batch`` for about ``seconds``."""
    runs, images, start = 0, 0, time.perf_counter()
    while runs < 1 or time.perf_counter() - start < seconds:
        cancel.raise_if_cancelled()
        backend.run(batch)
        runs, images = runs + 1, images + len(batch)
    return images / (time.perf_counter() - start)


def trial_batch(backend, sample, cancel: CancelToken = NEVER):
    """A batch sized so a round runs it about three times (2 to 16 images, as folders)."""
    from .backend import RunState

    one = RunState(1)  # timed as part of a batch, not as an image run alone
    backend.run(sample[:1], one)  # the first run of a backend pays for its set-up
    start = time.perf_counter()
    backend.run(sample[:1], one)
    per_image = max(1e-4, time.perf_counter() - start)
    cancel.raise_if_cancelled()
    per_round = TRIAL_SECONDS / TRIAL_ROUNDS / 3
    size = int(max(2, min(TRIAL_MAX_BATCH, per_round / per_image)))
    return sample[: min(size, len(sample))]


def timed_rounds(candidates: dict, batch_for, cancel: CancelToken = NEVER) -> dict[str, float]:
    """Name -> best img/s of each backend in ``candidates`` on ``batch_for(backend)``.

    The candidates take turns, ``TRIAL_ROUNDS`` times for a third of the trial each, and
    each keeps its best round: another program that wakes up during one runtime's turn
    slows that turn only, and never makes a runtime faster than it is. A candidate that
    fails is left out, with the reason logged. ``batch_for`` is asked once.
    """
    rates: dict[str, float] = {}
    failed: set[str] = set()
    batch = None
    for _ in range(TRIAL_ROUNDS):
        for name, backend in candidates.items():
            if name in failed:
                continue
            try:
                if batch is None:
                    batch = batch_for(backend)
                if name not in rates:
                    cancel.raise_if_cancelled()
                    backend.run(batch)  # a warm-up run, untimed
                rate = time_backend(backend, batch, cancel, TRIAL_SECONDS / TRIAL_ROUNDS)
                rates[name] = max(rate, rates.get(name, 0.0))
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - a runtime that fails is not chosen
                log.warning("%s failed its timed trial and is not used: %s", name, exc)
                failed.add(name)
                rates.pop(name, None)
    return rates


def measure(
    candidates: dict, sample, precision: str, cancel: CancelToken = NEVER, single=None
) -> Choice:
    """Time each loaded backend in ``candidates`` (name -> Backend) on the same batch, then
    those of ``single`` (names; default all) that compute like the fastest on one image.
    Single images go to another runtime only when it is ``SPLIT_MARGIN`` times faster.

    ``ValueError`` when no candidate ran. ``sample`` is a numpy batch of reference images
    (N, 3, H, W). Only candidates computing in the batch winner's precision are timed on
    one image, so both halves of a choice compute alike.
    """
    sizes = []

    def batch_for(backend):
        sizes.append(len(trial := trial_batch(backend, sample, cancel)))
        return trial

    rates = timed_rounds(candidates, batch_for, cancel)
    if not rates:
        raise ValueError("no runtime could run the model")
    best = max(rates, key=rates.__getitem__)
    names = set(candidates) if single is None else set(single)
    alone = {
        name: backend
        for name, backend in candidates.items()
        if name in names and name in rates and same_precision(name, best)
    }
    single_rates = timed_rounds(alone, lambda _: sample[:1], cancel) if len(alone) > 1 else {}
    fastest_alone = max(single_rates, key=single_rates.__getitem__) if single_rates else best
    if best in single_rates and single_rates[fastest_alone] < SPLIT_MARGIN * single_rates[best]:
        fastest_alone = best  # not clearly faster: one runtime for both (SPLIT_MARGIN)
    return Choice(
        best,
        precision,
        {k: round(v, 1) for k, v in rates.items()},
        sizes[0] if sizes else 1,
        datetime.now(UTC).isoformat(timespec="seconds"),
        f"fastest of {len(rates)} measured on {cpu.cpu_name()}",
        "" if fastest_alone == best else fastest_alone,
        {k: round(v, 1) for k, v in single_rates.items()},
    )


def same_precision(a: str, b: str) -> bool:
    """Whether candidates ``a`` and ``b`` compute alike ("openvino-bf16" is bf16)."""
    return a.endswith("-bf16") == b.endswith("-bf16")
