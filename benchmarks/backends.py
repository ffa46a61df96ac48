"""Model-only images per second of each runtime, B0 and Lite0, at batch 1 and 16, 2 threads.

All rows run in this one process, on the same batch of real photos (crops of
scikit-image's samples, through the model's own preprocessing):

- torch eager: the network as loaded, eval mode, contiguous, ``inference_mode``;
- torch channels_last + folded BN: the app's ``TorchBackend``;
- ONNX Runtime: a plain ``InferenceSession`` of the app's verified export (CPU provider,
  2 intra-op threads, the runtime's defaults otherwise, spin-waiting among them), and
  the same without spin-waiting (how the app ran batches before it split them over
  streams, see ``onnx_backend``);
- OpenVINO f32 (and bf16 where the CPU has it): ``compile_model`` of the same file with
  the precision hint set explicitly, 2 threads, the LATENCY hint;
- auto: what ``engines.classifier_job(spec, weights, "cpu", "auto")`` hands the app under
  a fresh ``EFFNET_APP_HOME`` (it exports, verifies and times each runtime first), timed
  through its backend on the same inputs.

B0 has random weights (the architecture is what is timed), Lite0 its real ones. The rows
take turns (A B C, then B C A, ...) and the medians are printed, so drift on this noisy
machine hits every row alike; two identical ONNX Runtime rows (A/A) show how far apart
the same code measures here. Goal: auto >= 1.0x the best fp32 row at both batch sizes.

    python benchmarks/backends.py [--reps 5] [--seconds 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from _common import WORK, random_weights, real_photo
from _report import result

THREADS = 2
BATCHES = (1, 16)
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
ORT, ORT_AGAIN = "ONNX Runtime", "ONNX Runtime, a second session (A/A)"


def photo_batch(spec, count: int = 16):
    """``count`` different crops of real photos, preprocessed for ``spec``, as numpy."""
    import numpy as np

    images = []
    for i in range(count):
        photo = real_photo(PHOTOS[i % len(PHOTOS)])
        width, height = photo.size
        step = i // len(PHOTOS)
        left, top = step * width // 12, step * height // 12
        crop = photo.crop((left, top, left + width * 2 // 3, top + height * 2 // 3))
        images.append(spec.preprocess.apply(crop).numpy())
    return np.ascontiguousarray(np.stack(images), dtype=np.float32)


def torch_eager(spec, weights) -> Callable:
    import torch

    from effnet_app.core.models import registry

    model = registry.load_network(spec, weights).eval()

    def run(batch) -> None:
        with torch.inference_mode():
            model(torch.from_numpy(batch))

    return run


def torch_folded(spec, weights) -> Callable:
    from effnet_app.core.runtime.torch_backend import TorchBackend

    backend = TorchBackend(spec, "cpu", weights)
    backend.load()
    return backend.run


def onnxruntime_row(path, spinning: bool = True) -> Callable:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})


def openvino_capabilities() -> list[str]:
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def openvino_row(path, precision: str) -> Callable:
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": THREADS,
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    return lambda batch: request.infer({0: batch})


def app_auto(spec, weights):
    """The classifier the app makes on "auto" (measuring first, as a user's first run)."""
    from effnet_app.core.jobs import run_to_end
    from effnet_app.core.runtime import engines

    started = time.perf_counter()
    made = run_to_end(engines.classifier_job(spec, weights, "cpu", "auto"))
    seconds = time.perf_counter() - started
    print(f"  auto for {spec.name}: {made.backend.describe()} after {seconds:.1f} s of optimising")
    for note in getattr(made, "notes", ()):
        print(f"  auto note: {note}")
    return made


def onnx_file(spec, weights):
    """The app's verified export when auto made one, else an export made here."""
    try:
        from effnet_app.core.export import cache

        info = cache.find_current(spec.key)
        if info is not None:
            return info.model_path
    except ImportError:
        pass
    import torch

    from effnet_app.core.models import registry

    path = WORK / "onnx" / f"{spec.key}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = registry.load_network(spec, weights).eval()
        x = torch.zeros(1, 3, spec.resolution, spec.resolution)
        torch.onnx.export(
            model, (x,), str(path), dynamo=True, opset_version=18,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            input_names=["input"], output_names=["logits"], external_data=False,
        )  # fmt: skip
    print(f"  (no app export of {spec.name}; timing the runtimes on {path})")
    return path


def make_rows(spec, weights, bf16: bool) -> dict[str, Callable]:
    auto = app_auto(spec, weights)
    path = onnx_file(spec, weights)
    rows = {
        "torch eager": torch_eager(spec, weights),
        "torch channels_last + folded BN": torch_folded(spec, weights),
        ORT: onnxruntime_row(path),
        ORT_AGAIN: onnxruntime_row(path),
        "ONNX Runtime, no spin-waiting": onnxruntime_row(path, spinning=False),
        "OpenVINO f32": openvino_row(path, "f32"),
    }
    if bf16:
        rows["OpenVINO bf16"] = openvino_row(path, "bf16")
    rows[f"auto ({auto.backend.describe()})"] = auto.backend.run
    return rows


def rate(run: Callable, batch, seconds: float) -> float:
    """Images per second of ``run`` on ``batch`` for about ``seconds`` (at least 2 runs)."""
    runs, start = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - start < seconds:
        run(batch)
        runs += 1
    return runs * len(batch) / (time.perf_counter() - start)


def interleaved(rows: dict[str, Callable], batch, reps: int, seconds: float) -> dict:
    """Median img/s of each row over ``reps`` turns, rows taking turns within each.

    The order rotates by one row every turn: a runtime's threads may still be busy for a
    moment after its turn (spinning, or another program's), and whatever that costs the
    row after it then falls on a different row each time.
    """
    for run in rows.values():
        run(batch)  # warm-up: first-run allocations and lazy compilation
    rates: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for turn in range(reps):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            rates[name].append(rate(rows[name], batch, seconds))
    return {name: statistics.median(values) for name, values in rates.items()}


def report(model: str, size: int, rates: dict[str, float]) -> None:
    # The A/A row is a yardstick, not a peer: the better of two identical rows is luck.
    peers = [n for n in rates if "bf16" not in n and n != ORT_AGAIN and not n.startswith("auto")]
    fp32 = {n: rates[n] for n in peers}
    best = max(fp32, key=fp32.__getitem__)
    print(f"\n{model}, batch {size}, {THREADS} threads (medians)")
    for name, value in rates.items():
        mark = "  <- best fp32" if name == best else ""
        print(f"  {name:42s} {value:8.1f} img/s  {value / fp32[best]:5.2f}x{mark}")
    auto = next(n for n in rates if n.startswith("auto"))
    ratio = rates[auto] / fp32[best]
    met = ratio >= 1.0
    same = sorted((rates[ORT], rates[ORT_AGAIN]))
    print(
        f"  goal: auto >= 1.0x the best fp32 row ({best}): {ratio:.2f}x, {'met' if met else 'NOT met'}"
        f" (two identical ONNX Runtime sessions differed by {same[-1] / same[0] - 1:.0%})"
    )
    result(f"backends.{model.lower()}.bs{size}", f"{ratio:.2f}x", ">=1.0x", met, "auto/best_fp32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per row per turn")
    parser.add_argument("--quick", action="store_true", help="3 turns of 0.4 s")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds = 3, 0.4
    os.environ["EFFNET_APP_HOME"] = tempfile.mkdtemp(prefix="effnet-bench-")
    import torch

    from effnet_app.core.models import registry

    torch.set_num_threads(THREADS)
    from effnet_app.core.runtime.openvino_backend import OpenVinoBackend

    capabilities = openvino_capabilities()
    bf16 = OpenVinoBackend.bf16_supported()
    print(f"OpenVINO CPU capabilities: {', '.join(capabilities)}")
    if not bf16:
        print("OpenVINO bf16: not supported here (no BF16 in the CPU's capabilities)")
    for key in ("b0", "lite0"):
        spec = registry.resolve(key)
        weights = random_weights(spec, WORK) if key == "b0" else registry.weights_path(spec)
        rows = make_rows(spec, weights, bf16)
        batch = photo_batch(spec, max(BATCHES))
        for size in BATCHES:
            report(spec.key.upper(), size, interleaved(rows, batch[:size], args.reps, args.seconds))


if __name__ == "__main__":
    main()
