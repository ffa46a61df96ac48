"""Which compute devices exist, and turning a user's choice into one that works."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DeviceError


@dataclass(frozen=True)
class DeviceChoice:
    key: str  # "auto", "cpu", "cuda:0", ...
    label: str  # what the picker shows
    available: bool
    reason: str = ""  # why not, when unavailable


def cuda_status() -> tuple[int, str]:
    """(number of CUDA devices, a sentence on why there are none)."""
    import torch

    built = torch.version.cuda
    if not built:
        return 0, "This PyTorch was built without CUDA support (CPU-only build)."
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as exc:  # a broken driver reports through exceptions
        return 0, f"PyTorch could not talk to the CUDA driver ({exc})."
    if count == 0:
        return 0, (
            f"No CUDA GPU was found: PyTorch is built for CUDA {built}, but no NVIDIA "
            "driver or device is visible."
        )
    return count, ""


def list_devices() -> list[DeviceChoice]:
    import torch

    count, reason = cuda_status()
    out = [DeviceChoice("auto", "Auto (GPU when present)", True), DeviceChoice("cpu", "CPU", True)]
    if count == 0:
        out.append(DeviceChoice("cuda", "CUDA GPU", False, reason))
    for i in range(count):
        out.append(DeviceChoice(f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}", True))
    return out


def resolve_device(choice: str) -> str:
    """ "auto" -> the best device here; "cuda" without CUDA -> DeviceError naming what was found."""
    choice = (choice or "auto").strip().lower()
    if choice == "cpu":
        return "cpu"
    count, reason = cuda_status()
    if choice == "auto":
        return "cuda:0" if count else "cpu"
    if choice == "cuda":
        choice = "cuda:0"
    if choice.startswith("cuda:") and choice[5:].isdigit():
        index = int(choice[5:])
        if count == 0:
            raise DeviceError(f"CUDA was chosen but is not available. {reason} Choose CPU or Auto.")
        if index >= count:
            raise DeviceError(
                f"CUDA device {index} does not exist: this machine has {count} "
                f"(cuda:0 to cuda:{count - 1}). Choose one of them, CPU or Auto."
            )
        return choice
    raise DeviceError(f'"{choice}" is not a device. Choose auto, cpu, cuda or cuda:N.')
