"""What the --resume tests share, local and on Ray: images made here, and reading a part.

A run stopped halfway leaves ``OUT.part``; these read how many whole rows it holds,
the "N done before" that --resume says, and check that the finished output has every
file of the folder once.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
from PIL import Image

from effnet_app.core.runtime.results_io import read_results


def generated_images(folder, count: int):
    """``count`` small, different JPEGs (noise over a gradient), made here."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    ramp = np.linspace(0, 255, 96, dtype=np.float32)[None, :, None]
    for i in range(count):
        noise = rng.normal(0, 40, (96, 96, 3)).astype(np.float32)
        pixels = np.clip(ramp * ((i % 7) / 6) + noise + 60, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"gen{i:03}.jpg", quality=85)
    return folder


def whole_rows(part, fmt: str) -> int:
    """Rows of ``part`` that end in a newline (csv: less the header); 0 when it is missing.

    A Ray job's Parquet part is a folder: the rows of the shards in it (each whole).
    """
    if part.is_dir():
        from effnet_app.core.runtime import results_shards

        return sum(len(results_shards.shard_keys(s)) for s in results_shards.shard_files(part))
    try:
        data = part.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.count(b"\n")
    return max(0, lines - 1) if fmt == "csv" else lines


def done_before(err: str) -> int:
    """The N of --resume's "N done before, M to go" on stderr."""
    found = re.search(r"(\d+) done before, (\d+) to go", err)
    assert found, err
    return int(found.group(1))


def assert_union(out_file, folder) -> None:
    """Every file of ``folder`` has exactly one row in ``out_file``, with predictions."""
    rows = read_results(out_file)
    names = [r.path.name for r in rows]
    assert len(names) == len(set(names)), "a file has two rows"
    assert sorted(names) == sorted(os.listdir(folder))
    assert all(r.problem is None and r.predictions for r in rows)


def wait_for(condition, what: str, seconds: float = 240.0):
    """Poll until ``condition()`` is truthy and return it; an assertion after ``seconds``.

    For a child process reaching a state: it never asserts how long that took, and the
    deadline is generous enough for a busy machine.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")
