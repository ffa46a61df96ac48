"""Classifier vs a naive loop on 12-megapixel JPEGs, EfficientNet-B0 architecture, CPU.

The naive loop: full Pillow decode, torchvision's ``weights.transforms()``, batch of 1,
eager. The app: draft JPEG decoding in a thread pool, batches, channels_last,
inference_mode. Both run in this one process, one after the other, on the same files;
the ratio of images per second is what counts (this machine is noisy).

    python benchmarks/classify_folder.py [--count 200] [--naive-count 40]
"""

from __future__ import annotations

import argparse
import time

from _common import WORK, make_jpegs, random_weights

from effnet_app.core.models import registry
from effnet_app.core.runtime.classifier import Classifier, classify_all


def naive_loop(spec, weights_path, files) -> float:
    import torch
    from PIL import Image
    from torchvision.models import EfficientNet_B0_Weights

    transform = EfficientNet_B0_Weights.IMAGENET1K_V1.transforms()
    model = spec.build()
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for path in files:
            with Image.open(path) as image:
                tensor = transform(image.convert("RGB"))
            model(tensor.unsqueeze(0)).softmax(1).topk(5)
    return len(files) / (time.perf_counter() - start)


def app_classifier(spec, weights_path, files) -> float:
    classifier = Classifier(spec, device="cpu", weights_path=weights_path)
    classifier.ensure_loaded()
    classify_all(classifier, files[:8])  # first-call warm-up, as the naive side gets
    start = time.perf_counter()
    results = classify_all(classifier, files)
    elapsed = time.perf_counter() - start
    assert len(results) == len(files) and not any(r.problem for r in results)
    return len(files) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--naive-count", type=int, default=40, help="the naive loop is slow")
    args = parser.parse_args()
    spec = registry.resolve("b0")
    print(f"making {args.count} JPEGs of 4000x3000 (12 MP) from real photos (cached)…", flush=True)
    files = make_jpegs(WORK / "jpeg_12mp", args.count, (4000, 3000))
    weights_path = random_weights(spec, WORK)
    naive = naive_loop(spec, weights_path, files[: args.naive_count])
    fast = app_classifier(spec, weights_path, files)
    print(
        f"naive loop (full decode, transforms, batch 1): {naive:7.2f} images/s "
        f"over {args.naive_count} images"
    )
    print(
        f"effnet_app Classifier                       : {fast:7.2f} images/s "
        f"over {len(files)} images"
    )
    print(f"speed-up: {fast / naive:.1f}x (goal >= 6x)")


if __name__ == "__main__":
    main()
