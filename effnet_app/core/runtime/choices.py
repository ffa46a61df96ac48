"""Which runtime is fastest for a model on this computer: measured once, remembered.

The first time a model runs on a CPU, ``measure`` times each runtime that is installed
(ONNX Runtime, OpenVINO, PyTorch) on the model's verified export, for about a second
each, and the fastest is kept in ``engine_choices.json`` in the cache folder. The choice
is keyed by the export's SHA-256, the runtimes' versions, the CPU and the precision, so a
new model file, an upgraded runtime or another computer measures again. Nothing here
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
    parts += [f"{k}={v}" for k, v in sorted(installed_runtimes().items())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Choice:
    """The runtime picked for one model here, with what each candidate measured (img/s)."""

    backend: str
    precision: str = "fp32"
    rates: dict[str, float] = field(default_factory=dict)
    batch: int = 1
    measured: str = ""
    reason: str = ""

    def describe(self) -> str:
        label = LABELS.get(self.backend, self.backend)
        others = ", ".join(
            f"{LABELS.get(name, name)} {rate:.0f}"
            for name, rate in sorted(self.rates.items(), key=lambda kv: -kv[1])
        )
        text = f"{label} {self.precision}"
        return f"{text} (measured img/s: {others})" if others else text

    @classmethod
    def from_dict(cls, data: dict) -> Choice:
        return cls(
            str(data["backend"]),
            str(data.get("precision", "fp32")),
            {str(k): float(v) for k, v in dict(data.get("rates", {})).items()},
            int(data.get("batch", 1)),
            str(data.get("measured", "")),
            str(data.get("reason", "")),
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
    return choice if choice.backend in LABELS else None


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
    while runs < 2 or time.perf_counter() - start < seconds:
        cancel.raise_if_cancelled()
        backend.run(batch)
        runs, images = runs + 1, images + len(batch)
    return images / (time.perf_counter() - start)


def trial_batch(backend, sample, cancel: CancelToken = NEVER):
    """A batch sized so one run takes about a tenth of the trial (at most 16 images)."""
    backend.run(sample[:1])  # the first run of a backend pays for its set-up
    start = time.perf_counter()
    backend.run(sample[:1])
    per_image = max(1e-4, time.perf_counter() - start)
    cancel.raise_if_cancelled()
    size = int(max(1, min(TRIAL_MAX_BATCH, len(sample), TRIAL_SECONDS / 8 / per_image)))
    return sample[:size]


def measure(candidates: dict, sample, precision: str, cancel: CancelToken = NEVER) -> Choice:
    """Time each loaded backend in ``candidates`` (name -> Backend) on the same batch.

    The candidates take turns, ``TRIAL_ROUNDS`` times for a third of the trial each, and
    each keeps its best round: another program that wakes up during one runtime's turn
    slows that turn only, and never makes a runtime faster than it is. A candidate that
    fails is left out, with the reason logged; ``ValueError`` when none is left.
    ``sample`` is a numpy batch of reference images (N, 3, H, W).
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
                    batch = trial_batch(backend, sample, cancel)
                if name not in rates:
                    backend.run(batch)  # a warm-up run, untimed
                rate = time_backend(backend, batch, cancel, TRIAL_SECONDS / TRIAL_ROUNDS)
                rates[name] = max(rate, rates.get(name, 0.0))
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - a runtime that fails is not chosen
                log.warning("%s failed its timed trial and is not used: %s", name, exc)
                failed.add(name)
                rates.pop(name, None)
    if not rates:
        raise ValueError("no runtime could run the model")
    best = max(rates, key=rates.__getitem__)
    return Choice(
        best,
        precision,
        {k: round(v, 1) for k, v in rates.items()},
        len(batch) if batch is not None else 1,
        datetime.now(UTC).isoformat(timespec="seconds"),
        f"fastest of {len(rates)} measured on {cpu.cpu_name()}",
    )
