"""Resident memory while classifying 5,000 images: it must not keep growing.

RSS is sampled every 500 images; the growth between image 1,000 and 5,000 must stay
under 100 MB. Uses the real Lite0 network on 640x480 JPEGs made from real photos.

    python benchmarks/memory.py [--count 5000]
"""

from __future__ import annotations

import argparse

from _common import WORK, make_jpegs, rss_mb

from effnet_app.core.models import zoo
from effnet_app.core.runtime.classifier import Classifier, PredictionBatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()
    print(f"making {args.count} JPEGs of 640x480 (cached)…", flush=True)
    files = make_jpegs(WORK / "jpeg_vga", args.count, (640, 480))
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu")
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
