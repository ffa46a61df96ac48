"""Head-mode training against one plain inference pass over the same images, Lite0, CPU.

Both run in this one process on the same 4-class folder of JPEGs made from real photos.
The process is warmed up first by classifying and training on a separate small folder,
so neither side pays for importing libraries. Then, side by side, each starting by
loading its network: one classification pass (``Classifier.predict``, the app's fast
path), ``train()`` in head mode for 10 epochs from an empty feature cache (scan,
features, head, out-of-fold checks, calibration), and the same training again with the
features cached. The ratio of seconds is what counts (this machine is noisy). Goal:
<= 1.2x.

    python benchmarks/train_head.py [--per-class 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import WORK, real_photo


def make_classes(per_class: int, offset: int = 0):
    """Four classes, each made of crops and mirror images of one real photo."""
    from PIL import ImageOps

    root = WORK / f"train_head_{per_class}_{offset}"
    for name in ("coffee", "chelsea", "astronaut", "rocket"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        photo = real_photo(name)
        width, height = photo.size
        for i in range(per_class):
            path = folder / f"{name}_{i:03d}.jpg"
            if path.exists():
                continue
            left, top = (i * 7 + offset) % (width // 4), (i * 5) % (height // 4)
            crop = photo.crop((left, top, left + width * 3 // 4, top + height * 3 // 4))
            (ImageOps.mirror(crop) if i % 2 else crop).resize((640, 480)).save(path, quality=90)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=50)
    args = parser.parse_args()
    os.environ["EFFNET_APP_HOME"] = tempfile.mkdtemp(prefix="effnet-bench-")
    root = make_classes(args.per_class)
    warm_up = make_classes(8, offset=3)

    from effnet_app.core.data import dataset, folders
    from effnet_app.core.jobs import run_to_end
    from effnet_app.core.models import registry
    from effnet_app.core.runtime.classifier import Classifier, classify_all
    from effnet_app.core.training import TrainConfig, train

    spec = registry.resolve("lite0")
    config = TrainConfig(base="lite0", device="cpu", mode="head", epochs=10)

    def classify(folder) -> None:
        files = [p for p in folders.expand_paths([folder]) if not hasattr(p, "reason")]
        classify_all(Classifier(spec, device="cpu"), files)  # loads its network

    def fit(folder):
        return run_to_end(train(config, run_to_end(dataset.scan(folder, min_side=spec.resolution))))

    classify(warm_up)
    fit(warm_up)
    start = time.perf_counter()
    classify(root)
    inference = time.perf_counter() - start
    timings = []
    for _ in range(2):  # cold feature cache, then warm
        start = time.perf_counter()
        result = fit(root)
        timings.append(time.perf_counter() - start)
    files = result.train_size + result.val_size
    print(f"images: {files} in 4 classes, validation accuracy {result.accuracy:.3f}")
    print(f"one inference pass                 : {inference:7.2f} s")
    print(f"head training, empty feature cache : {timings[0]:7.2f} s")
    print(f"head training, features cached     : {timings[1]:7.2f} s")
    ratio = timings[0] / inference
    print(f"training / inference: {ratio:.2f}x (goal <= 1.2x)")
    print("PASS" if ratio <= 1.2 else "FAIL")


if __name__ == "__main__":
    main()
