"""``effnet-app classify --ray`` end to end in a child process, and memory over 20,000 files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.slow


def test_cli_ray_writes_json_lines(lite0_onnx, odd_folder, tmp_path, app_home):
    out = tmp_path / "rows.jsonl"
    env = {**os.environ, "EFFNET_APP_HOME": str(app_home)}
    command = [sys.executable, "-m", "effnet_app", "classify", str(odd_folder), "--ray",
               "--backend", "onnxruntime", "--device", "cpu", "--format", "jsonl",
               "-o", str(out), "--top-k", "2"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr  # some files are problems: exit status 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert not (tmp_path / "rows.jsonl.part").exists()
    assert len(rows) == 9 and len({r["path"] for r in rows}) == 9
    assert "4 classified, 5 with problems" in done.stderr
    assert "Ray, " in done.stderr and "ONNX Runtime fp32" in done.stderr
    coffee = next(r for r in rows if r["path"].endswith("coffee.jpg"))
    assert "espresso" in json.dumps(coffee)


def _tiny_images(folder, count: int) -> None:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        colour = (i * 37 % 256, i * 91 % 256, i * 53 % 256)
        sub = folder / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        Image.new("RGB", (24, 16), colour).save(sub / f"t{i:05d}.png")


def _rss_mb(process) -> float:
    """The driver's RSS plus every process it started (Ray's raylet and workers)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except Exception:  # noqa: BLE001 - a worker that just exited
            pass
    return total / 1e6


# 20,000 images took 2 min 38 s here: RSS first quarter 4,054 MB, last 4,065, peak 4,067.
@pytest.mark.timeout(1200)
def test_thousands_of_files_keep_memory_flat(local_ray, lite0_onnx, tmp_path):
    """RSS sampled every 0.5 s once results flow: last quarter's mean within 15 % of first's."""
    import psutil

    from effnet_app.cluster import RayClassifier

    count = int(os.environ.get("EFFNET_RAY_RSS_IMAGES", "20000"))
    folder = tmp_path / "tiny"
    _tiny_images(folder, count)
    samples: list[float] = []
    stop, running = threading.Event(), threading.Event()
    me = psutil.Process()

    def sample() -> None:  # from the first result on: the actors' start is not the job
        while not stop.wait(0.5):
            if running.is_set():
                samples.append(_rss_mb(me))

    remote = RayClassifier("lite0", device="cpu", backend="onnxruntime", batch_size=32)
    sampler = threading.Thread(target=sample, daemon=True)
    seen = 0
    started = time.monotonic()
    try:
        sampler.start()
        for event in remote.predict([folder], top_k=1):
            seen += sum(1 for r in event.results if not r.problem)  # rows are not kept
            if seen:
                running.set()
    finally:
        stop.set()
        sampler.join()
        remote.close()
    assert seen == count
    quarter = max(1, len(samples) // 4)
    first = sum(samples[:quarter]) / quarter
    last = sum(samples[-quarter:]) / quarter
    print(f"\n{count} files in {time.monotonic() - started:.0f} s; RSS (driver + Ray) first "
          f"quarter {first:.0f} MB, last quarter {last:.0f} MB, peak {max(samples):.0f} MB")  # fmt: skip
    assert last <= first * 1.15


def test_the_local_ray_refuses_a_client_without_its_token(local_ray):
    """Ray listens on every interface: a local Ray must not run a stranger's code."""
    address = local_ray.get_runtime_context().gcs_address
    join = f"import ray; ray.init(address={address!r}); print('joined')"
    stranger = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    refused = subprocess.run(
        [sys.executable, "-c", join], capture_output=True, text=True, env=stranger, timeout=120
    )
    assert refused.returncode != 0 and "joined" not in refused.stdout
    assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
    allowed = subprocess.run(
        [sys.executable, "-c", join], capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0 and "joined" in allowed.stdout, allowed.stderr[-2000:]
