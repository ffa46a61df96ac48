"""In-process classify against ``--ray`` on a local 2-CPU Ray, on the same 500 JPEGs.

One run, one process: the in-process ``Classifier`` on the engine ``auto`` picks (the
export is made and the engines timed first, under a fresh ``EFFNET_APP_HOME``), then a
``RayClassifier`` on a local Ray with 2 CPUs running the same engine. Each side is
warmed up once. Ray's figures are given three ways: the steady rate (from the job's
first batch of results to its last, so neither ``ray.init`` nor the actors' start is
in it), the whole job (actor start included) and everything (``ray.init`` too). The
goal is Ray >= 0.8x in-process, steady. Also printed, for docs/scaling.md: decode and
model milliseconds per image on one thread, and the bytes moved per image.

    python benchmarks/cluster.py [--count 500] [--size 640x480] [--model lite0] [--reps 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from _common import WORK, make_jpegs
from _report import result

GOAL = 0.8


def in_process(spec):
    from effnet_app.core.jobs import run_to_end
    from effnet_app.core.models import registry
    from effnet_app.core.runtime import engines

    start = time.perf_counter()
    job = engines.classifier_job(spec, registry.weights_path(spec), "cpu", "auto")
    made = run_to_end(job)
    print(f"in-process: {made.describe()} after {time.perf_counter() - start:.1f} s optimising")
    return made


def local_rate(classifier, files) -> float:
    from effnet_app.core.runtime.classifier import classify_all

    start = time.perf_counter()
    rows = classify_all(classifier, files)
    assert len(rows) == len(files) and not any(r.problem for r in rows)
    return len(files) / (time.perf_counter() - start)


def ray_rates(ray_classifier, files) -> tuple[float, float]:
    """(steady images/s after the first batch, images/s of the whole job)."""
    start = time.perf_counter()
    first = None
    done = after_first = 0
    for event in ray_classifier.predict(files):
        if not event.results:
            continue
        if first is None:
            first = time.perf_counter()
        else:
            after_first += len(event.results)
        done += len(event.results)
    end = time.perf_counter()
    assert done == len(files)
    return after_first / (end - first), done / (end - start)


def unit_costs(classifier, files) -> tuple[float, float]:
    """(decode ms on one thread, model ms on the engine's threads) per image."""
    import numpy as np

    from effnet_app.core.data.pipeline import DecodePipeline, draft_target

    pre = classifier.spec.preprocess
    decode = DecodePipeline(pre.apply_numpy, target_size=draft_target(pre), threads=1)
    sample = files[:64]
    start = time.perf_counter()
    items = [decode.decode(f) for f in sample]
    decode_ms = 1000 * (time.perf_counter() - start) / len(sample)
    backend = classifier.backend
    batch = np.stack(items[:16])
    backend.run(batch)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < 2.0:
        backend.run(batch)
        runs += 1
    model_ms = 1000 * (time.perf_counter() - start) / (runs * len(batch))
    return decode_ms, model_ms


def bytes_moved(classifier, files, top_k: int = 5) -> dict[str, float]:
    crop = classifier.spec.preprocess.crop_size
    return {
        "file": statistics.mean(os.path.getsize(f) for f in files),
        "path": statistics.mean(len(str(f)) for f in files),
        "pixels": 3 * crop * crop * 4,  # float32 input, only if decode is not fused
        "result": top_k * (4 + 8) + 1,  # int32 index + float64 probability, unsure flag
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    os.environ["EFFNET_APP_HOME"] = tempfile.mkdtemp(prefix="effnet-bench-")
    os.environ.pop("EFFNET_APP_ENGINE", None)
    from effnet_app.core.models import registry

    spec = registry.resolve(args.model)
    width, height = (int(v) for v in args.size.split("x"))
    files = make_jpegs(WORK / f"jpeg_{width}x{height}", args.count, (width, height))
    local = in_process(spec)
    local_rate(local, files[:16])
    decode_ms, model_ms = unit_costs(local, files)

    from effnet_app.cluster import RayClassifier

    start = time.perf_counter()
    remote = RayClassifier(args.model, backend=local.backend.name, num_cpus=2)
    init_s = time.perf_counter() - start
    print(f"ray: {remote.describe()}, started in {init_s:.1f} s")
    try:
        ray_rates(remote, files[:32])  # warm-up: imports and files in the page cache
        rates: dict[str, list[float]] = {}
        for _ in range(args.reps):
            rates.setdefault("local", []).append(local_rate(local, files))
            steady, whole = ray_rates(remote, files)
            rates.setdefault("steady", []).append(steady)
            rates.setdefault("whole", []).append(whole)
    finally:
        remote.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    everything = len(files) / (len(files) / med["whole"] + init_s)
    print(f"in-process {local.describe()}: {med['local']:.1f} images/s over {len(files)}")
    print(f"ray steady (after the first batch): {med['steady']:.1f} images/s")
    print(f"ray whole job (actor start included): {med['whole']:.1f} images/s")
    print(f"ray with ray.init ({init_s:.1f} s) too: {everything:.1f} images/s")
    ratio = med["steady"] / med["local"]
    print(f"ratio steady {ratio:.2f}x, whole job {med['whole'] / med['local']:.2f}x, "
          f"with start {everything / med['local']:.2f}x (goal steady >= {GOAL}x)")  # fmt: skip
    threads = getattr(local.backend, "threads", "?")
    print(
        f"per image: decode {decode_ms:.1f} ms (1 thread), model {model_ms:.1f} ms ({threads} threads)"
    )
    moved = bytes_moved(local, files)
    print("bytes per image: " + ", ".join(f"{k} {v:,.0f}" for k, v in moved.items()))
    result("cluster.ray_vs_in_process", f"{ratio:.2f}x", f">={GOAL}x", ratio >= GOAL,
           f"whole:{med['whole'] / med['local']:.2f}x,with_start:{everything / med['local']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
