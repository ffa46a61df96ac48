"""Resident memory while classifying: it must not keep growing, nor peak on huge images.

Default: RSS is sampled every 500 images; the growth between image 1,000 and 5,000
must stay under 100 MB. Uses the real Lite0 network on 640x480 JPEGs made from real
photos. With ``--huge N``: the peak RSS above the loaded baseline while classifying N
100-megapixel RGBA PNGs on eight decode threads must stay under 1.5 GB.

    python benchmarks/memory.py [--count 5000] [--huge 8]
"""

from __future__ import annotations

import argparse
import shutil
import threading

from _common import WORK, make_jpegs, rss_mb

from effnet_app.core.models import registry
from effnet_app.core.runtime.classifier import Classifier, PredictionBatch


def huge_pngs(count: int) -> None:
    from PIL import Image, ImageDraw

    folder = WORK / "png_100mp"
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "huge_000.png"
    if not first.exists():
        print("making a 10000x10000 RGBA PNG…", flush=True)
        image = Image.new("RGBA", (10_000, 10_000), (40, 120, 200, 255))
        ImageDraw.Draw(image).ellipse((2500, 2500, 7500, 7500), (220, 60, 30, 128))
        image.save(first, compress_level=1)
    for i in range(1, count):
        if not (folder / f"huge_{i:03d}.png").exists():
            shutil.copyfile(first, folder / f"huge_{i:03d}.png")
    files = [folder / f"huge_{i:03d}.png" for i in range(count)]
    classifier = Classifier(registry.resolve("lite0"), device="cpu", decode_threads=8)
    classifier.ensure_loaded()
    baseline = peak = rss_mb()
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not finished.wait(0.005):
            peak = max(peak, rss_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    rows = sum(len(e.results) for e in classifier.predict(files))
    finished.set()
    sampler.join()
    print(f"{rows} images of 100 MP: peak RSS {peak - baseline:+.0f} MB above baseline")
    print("PASS" if peak - baseline < 1500 else "FAIL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--huge", type=int, default=0, help="N 100-megapixel PNGs instead")
    args = parser.parse_args()
    if args.huge:
        huge_pngs(args.huge)
        return
    print(f"making {args.count} JPEGs of 640x480 (cached)…", flush=True)
    files = make_jpegs(WORK / "jpeg_vga", args.count, (640, 480))
    classifier = Classifier(registry.resolve("lite0"), device="cpu")
    samples: dict[int, float] = {0: rss_mb()}
    next_mark = args.every
    for event in classifier.predict(files):
        if isinstance(event, PredictionBatch) and event.progress.done >= next_mark:
            samples[event.progress.done] = rss_mb()
            print(
                f"{event.progress.done:6d} images  RSS {samples[event.progress.done]:8.1f} MB",
                flush=True,
            )
            next_mark += args.every
    marks = sorted(samples)
    start = min((m for m in marks if m >= 1000), default=marks[0])
    growth = samples[marks[-1]] - samples[start]
    print(f"growth from image {start} to {marks[-1]}: {growth:+.1f} MB (limit 100 MB)")
    print("PASS" if growth <= 100 else "FAIL")


if __name__ == "__main__":
    main()
