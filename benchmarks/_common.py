"""Shared set-up for the benchmarks: work folders and test images made from real photos."""

from __future__ import annotations

from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"  # git-ignored


def real_photo(name: str = "coffee"):
    from PIL import Image
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def make_jpegs(folder: Path, count: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    """``count`` JPEGs of ``size`` made from real photos, each slightly different."""
    from PIL import ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    names = ("coffee", "chelsea", "astronaut", "rocket")
    bases = [real_photo(n).resize(size) for n in names]
    out = []
    for i in range(count):
        path = folder / f"img_{i:05d}.jpg"
        if not path.exists():
            image = bases[i % len(bases)]
            if (i // len(bases)) % 2:
                image = ImageOps.mirror(image)
            image.save(path, quality=quality - (i % 7))
        out.append(path)
    return out


def random_weights(spec, folder: Path) -> Path:
    """A state dict of a randomly initialised network, for timing the architecture only."""
    import torch

    path = folder / f"random-{spec.key}.pth"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(spec.build().state_dict(), path)
    return path


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


class StallMeter:
    """Gaps between the ticks of a 5 ms QTimer on the GUI thread: the freezes a user feels.

    Each gap is the time between two ticks beyond the timer's own interval; the longest
    is the worst stall. Create it after the QApplication, ``start()`` and ``stop()``
    around what is measured, then ``report()``.
    """

    interval_ms = 5

    def __init__(self) -> None:
        import time

        from PySide6.QtCore import QTimer

        self._clock = time.perf_counter
        self.gaps: list[float] = []
        self.when: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(self.interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.started = self._last = self._clock()
        self.timer.start()

    def stop(self) -> float:
        """Stops ticking; the seconds since ``start``."""
        self.timer.stop()
        return self._clock() - self.started

    def _tick(self) -> None:
        now = self._clock()
        self.gaps.append((now - self._last) * 1000 - self.interval_ms)
        self.when.append(now - self.started)
        self._last = now

    @property
    def worst(self) -> float:
        return max(self.gaps) if self.gaps else 0.0

    def report(self, goal_ms: float = 100.0) -> str:
        import statistics

        gaps = sorted(self.gaps)
        top = sorted(zip(self.gaps, self.when, strict=True), reverse=True)[:3]
        return "\n".join(
            [
                f"ticks: {len(gaps)}",
                f"event-loop stall, median       : {statistics.median(gaps):6.1f} ms",
                f"event-loop stall, 99th pct     : {gaps[int(0.99 * (len(gaps) - 1))]:6.1f} ms",
                f"event-loop stall, longest      : {self.worst:6.1f} ms (goal <= {goal_ms:.0f} ms)",
                "longest stalls at: " + ", ".join(f"{g:.0f} ms at {t:.2f} s" for g, t in top),
                "PASS" if self.worst <= goal_ms else "FAIL",
            ]
        )
