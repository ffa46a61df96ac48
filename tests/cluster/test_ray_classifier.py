"""RayClassifier on a local Ray against the in-process Classifier, on real files."""

from __future__ import annotations

import shutil
import time
from collections import Counter

import pytest

from effnet_app.cluster import RayClassifier
from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.runtime import engines
from effnet_app.core.runtime.classifier import Classifier, classify_all

pytestmark = pytest.mark.slow  # every test here starts Ray actors (seconds each)


def _by_path(rows) -> dict:
    found = {}
    for row in rows:
        assert row.path not in found, f"{row.path} came back twice"
        found[row.path] = row
    return found


def assert_same(local_rows, ray_rows, tolerance: float = 1e-5) -> None:
    """The same rows, problems, top-k labels, and probabilities within ``tolerance``."""
    local, remote = _by_path(local_rows), _by_path(ray_rows)
    assert set(local) == set(remote)
    for path, mine in local.items():
        theirs = remote[path]
        assert theirs.problem == mine.problem, path
        assert theirs.unsure == mine.unsure, path
        assert [p.label for p in theirs.predictions] == [p.label for p in mine.predictions]
        for a, b in zip(theirs.predictions, mine.predictions, strict=True):
            assert abs(a.probability - b.probability) <= tolerance, (path, a, b)


def _ray_rows(classifier, paths, top_k=5, cancel=None):
    events = list(classifier.predict(paths, top_k, **({"cancel": cancel} if cancel else {})))
    assert events[0].stage == "loading"
    rows = [r for e in events for r in e.results]
    last = events[-1].progress
    assert last.done == last.total == len(rows)
    return rows


def test_same_rows_as_in_process_on_photos_and_odd_files(local_ray, lite0_onnx, odd_folder):
    plan = engines.fast_plan("lite0", "cpu", "onnxruntime")
    assert plan is not None
    local = plan.classifier()
    local.ensure_loaded()
    expected = classify_all(local, [odd_folder], top_k=5)

    remote = RayClassifier("lite0", device="cpu", backend="onnxruntime", batch_size=3)
    try:
        assert remote.describe() == "Ray, 2 CPU actors, ONNX Runtime fp32"
        assert remote.device == "cpu" and remote.spec.key == "lite0"
        got = _ray_rows(remote, [odd_folder], top_k=5)
    finally:
        remote.close()
    assert_same(expected, got)
    problems = {r.path.name: r.problem for r in got if r.problem}
    assert set(problems) == {"truncated.jpg", "corrupt.jpg", "notes.png", "empty.jpg", "huge.png"}
    assert problems["notes.png"] == "not an image"
    assert problems["huge.png"].startswith("too large")
    assert sum(1 for r in got if not r.problem) == 4
    assert local_ray.is_initialized()  # a Ray it did not start is left running


def test_trained_bundle_matches_local(local_ray, tmp_path, sample_photos):
    from exports import trained_bundle

    from effnet_app.core.models import registry

    bundle = trained_bundle(tmp_path / "home")
    spec = registry.resolve(bundle.path)
    local = Classifier(spec, "cpu", weights_path=registry.weights_path(spec))
    photos = list(sample_photos.values())
    expected = classify_all(local, photos, top_k=3)
    remote = RayClassifier(str(spec.bundle_path), device="cpu", backend="torch")
    try:
        assert remote.package.bundle_folder == spec.bundle_path.name
        got = _ray_rows(remote, photos, top_k=3)
    finally:
        remote.close()
    assert_same(expected, got)
    assert {p.label for r in got for p in r.predictions} <= set(spec.categories)


def _copies(sample_photos, folder, count):
    folder.mkdir()
    sources = list(sample_photos.values())
    for i in range(count):
        shutil.copy(sources[i % len(sources)], folder / f"img_{i:04d}.jpg")
    return folder


def test_killed_actor_is_restarted_and_every_row_comes_once(
    local_ray, lite0_onnx, sample_photos, tmp_path
):
    folder = _copies(sample_photos, tmp_path / "many", 160)
    remote = RayClassifier("lite0", device="cpu", backend="onnxruntime", batch_size=4)
    rows, killed, at_kill = [], None, None
    try:
        for event in remote.predict([folder], top_k=1):
            rows.extend(event.results)
            if killed is None and rows:
                actors = _wait_for_actors(remote)
                killed, at_kill = actors[0], len(rows)
                local_ray.kill(killed, no_restart=False)
    finally:
        remote.close()
    assert killed is not None and at_kill < 160  # killed while the job was running
    counts = Counter(r.path for r in rows)
    assert len(counts) == 160 and set(counts.values()) == {1}
    assert not any(r.problem for r in rows)


def _wait_for_actors(remote, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        actors = remote.model_actors()
        if actors:
            return actors
        time.sleep(0.1)
    raise AssertionError("no model actor reported to the roster")


def test_cancel_stops_the_job_and_frees_the_cluster(local_ray, lite0_onnx, sample_photos, tmp_path):
    folder = _copies(sample_photos, tmp_path / "many", 200)
    remote = RayClassifier("lite0", device="cpu", backend="onnxruntime", batch_size=4)
    cancel = CancelToken()
    seen = 0
    try:
        with pytest.raises(Cancelled):
            for event in remote.predict([folder], top_k=1, cancel=cancel):
                seen += len(event.results)
                if seen:
                    cancel.cancel()
        assert seen < 200
        deadline = time.monotonic() + 60
        while local_ray.available_resources().get("CPU", 0) < 2:
            assert time.monotonic() < deadline, "the cancelled job still holds the CPUs"
            time.sleep(0.2)
        again = _ray_rows(remote, list(sample_photos.values()), top_k=1)  # still usable
        assert len(again) == len(sample_photos)
    finally:
        remote.close()
