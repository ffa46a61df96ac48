"""The app's classifier vs a naive loop and vs decoding alone, 12-megapixel JPEGs, B0, CPU.

The naive loop: full Pillow decode, torchvision's ``weights.transforms()``, batch of 1,
eager. The app's classifier, twice: on its default engine (``auto``: what
``engines.classifier_job`` picks after exporting and timing each runtime, under a fresh
``EFFNET_APP_HOME``) and on PyTorch (draft JPEG decoding in a thread pool, batches,
channels_last, folded BatchNorms, inference_mode). The ceiling: each classifier's own
decode pipeline alone (the same files, transform and threads, no model). Each
classifier's backend alone on one batch of these images is timed too: decode and the
model share the cores, so "one after the other", 1 / (1/decode + 1/model), says what
overlapping them has to beat. Every pass takes its turn in every repetition, so drift on
this noisy machine hits all alike (medians of ``--reps``). Everything runs in this one
process on the same files; the ratios are what count. Goals: >= 6x the naive loop,
>= 0.85x decode-only.

    python benchmarks/classify_folder.py [--count 200] [--naive-count 40] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from _common import WORK, make_jpegs, random_weights
from _report import result

NAIVE_GOAL = 6.0
DECODE_GOAL = 0.85


def naive_loop(spec, weights_path):
    """The naive loop as a function of the files; its network is loaded once, here."""
    import torch
    from PIL import Image
    from torchvision.models import EfficientNet_B0_Weights

    transform = EfficientNet_B0_Weights.IMAGENET1K_V1.transforms()
    model = spec.build()
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    model.eval()

    def rate(files) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for path in files:
                with Image.open(path) as image:
                    tensor = transform(image.convert("RGB"))
                model(tensor.unsqueeze(0)).softmax(1).topk(5)
        return len(files) / (time.perf_counter() - start)

    return rate


def classifiers(spec, weights_path) -> dict:
    """The app's classifier on its default engine (auto) and on PyTorch, loaded."""
    from effnet_app.core.jobs import run_to_end
    from effnet_app.core.runtime import engines
    from effnet_app.core.runtime.classifier import Classifier

    start = time.perf_counter()
    auto = run_to_end(engines.classifier_job(spec, weights_path, "cpu", "auto"))
    print(
        f"auto: {auto.backend.describe()} after {time.perf_counter() - start:.1f} s of optimising"
    )
    for note in getattr(auto, "notes", ()):
        print(f"auto note: {note}")
    torch_classifier = Classifier(spec, device="cpu", weights_path=weights_path)
    torch_classifier.ensure_loaded()
    return {"auto": auto, "torch": torch_classifier}


def classify_rate(classifier, files) -> float:
    from effnet_app.core.runtime.classifier import classify_all

    start = time.perf_counter()
    results = classify_all(classifier, files)
    elapsed = time.perf_counter() - start
    assert len(results) == len(files) and not any(r.problem for r in results)
    return len(files) / elapsed


def decode_rate(classifier, files) -> float:
    """Images per second of the classifier's own decode pipeline with no model after it."""
    from effnet_app.core.data.images import ImageProblem

    start = time.perf_counter()
    items = [item for _, item in classifier.pipeline().run(files)]
    elapsed = time.perf_counter() - start
    assert len(items) == len(files) and not any(isinstance(i, ImageProblem) for i in items)
    return len(files) / elapsed


def model_rate(classifier, files, seconds: float = 1.0) -> float:
    """Images per second of the classifier's backend alone, on a batch of these files."""
    import numpy as np

    items = [item for _, item in classifier.pipeline().run(files[: classifier.batch_size])]
    if classifier.backend.wants == "numpy":
        batch = np.stack(items)
    else:
        import torch

        batch = torch.stack(items)
    classifier.backend.run(batch)
    runs, start = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - start < seconds:
        classifier.backend.run(batch)
        runs += 1
    return runs * len(batch) / (time.perf_counter() - start)


def in_turns(made: dict, naive, files, naive_count: int, reps: int) -> dict[str, float]:
    """Medians of every rate, each pass taking its turn in every repetition."""
    from effnet_app.core.runtime.classifier import classify_all

    for classifier in made.values():
        classify_all(classifier, files[:8])  # first-call warm-up, as the naive side gets
    naive(files[:2])
    rates: dict[str, list[float]] = {}
    for _ in range(reps):
        rates.setdefault("naive", []).append(naive(files[:naive_count]))
        for name, classifier in made.items():
            rates.setdefault(f"decode {name}", []).append(decode_rate(classifier, files))
            rates.setdefault(name, []).append(classify_rate(classifier, files))
            rates.setdefault(f"model {name}", []).append(model_rate(classifier, files))
    return {name: statistics.median(values) for name, values in rates.items()}


def report(made: dict, rates: dict[str, float], files, naive_count: int) -> None:
    naive = rates["naive"]
    print(
        f"naive loop (full decode, transforms, batch 1): {naive:7.2f} images/s over {naive_count}"
    )
    for name, classifier in made.items():
        fast, ceiling, model = rates[name], rates[f"decode {name}"], rates[f"model {name}"]
        serial = 1 / (1 / ceiling + 1 / model)
        print(
            f"{name:5s} {classifier.backend.describe()} ({classifier.decode_threads} decode "
            f"threads, batch {classifier.batch_size}): {fast:6.2f} images/s over {len(files)}, "
            f"{fast / naive:4.1f}x the naive loop\n"
            f"      decode alone {ceiling:6.2f}, model alone {model:6.2f}, one after the other "
            f"{serial:6.2f} images/s: {fast / ceiling:4.2f}x decode-only "
            f"(one after the other would be {serial / ceiling:4.2f}x)"
        )
    auto, torch_rate = rates["auto"], rates["torch"]
    to_decode = auto / rates["decode auto"]
    print(f"speed-up (auto): {auto / naive:.1f}x (goal >= {NAIVE_GOAL:.0f}x)")
    print(f"auto / decode-only: {to_decode:.2f}x (goal >= {DECODE_GOAL}x)")
    result("classify_folder.vs_naive", f"{auto / naive:.1f}x", f">={NAIVE_GOAL:.0f}x",
           auto / naive >= NAIVE_GOAL, f"torch:{torch_rate / naive:.1f}x")  # fmt: skip
    torch_ratio = torch_rate / rates["decode torch"]
    result("classify_folder.vs_decode_only", f"{to_decode:.2f}x", f">={DECODE_GOAL}x",
           to_decode >= DECODE_GOAL, f"torch:{torch_ratio:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--naive-count", type=int, default=40, help="the naive loop is slow")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    os.environ["EFFNET_APP_HOME"] = tempfile.mkdtemp(prefix="effnet-bench-")
    os.environ.pop("EFFNET_APP_ENGINE", None)
    from effnet_app.core.models import registry

    spec = registry.resolve("b0")
    print(f"making {args.count} JPEGs of 4000x3000 (12 MP) from real photos (cached)…", flush=True)
    files = make_jpegs(WORK / "jpeg_12mp", args.count, (4000, 3000))
    weights_path = random_weights(spec, WORK)
    made = classifiers(spec, weights_path)
    naive = naive_loop(spec, weights_path)
    rates = in_turns(made, naive, files, args.naive_count, args.reps)
    report(made, rates, files, args.naive_count)


if __name__ == "__main__":
    main()
