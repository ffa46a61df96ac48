"""ThumbnailCache on real threads: memory, disk cache, bad files, a free GUI thread."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from window_driver import deliver_posted_events

from effnet_app.core import paths
from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.gui import thumbnails
from effnet_app.gui.models.results_model import (
    FILE,
    THUMBNAIL,
    ResultsModel,
    connect_thumbnails,
)
from effnet_app.gui.thumbnails import ThumbnailCache

DECORATION = 1  # Qt.ItemDataRole.DecorationRole
TOOLTIP = 3  # Qt.ItemDataRole.ToolTipRole


def make_photo(path: Path, size=(640, 480), seed: int = 0) -> Path:
    """A smooth gradient with a block in it: a real JPEG or PNG that decodes to something."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    block = Image.new("RGB", (width // 3, height // 3), ((seed * 53) % 256, 90, 200))
    image.paste(block, (width // 4, height // 4))
    image.save(path)
    return path


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    return [
        make_photo(tmp_path / "wide.jpg", (640, 480), 1),
        make_photo(tmp_path / "tall.png", (300, 600), 2),
    ]


@pytest.fixture
def made_on(monkeypatch) -> list[int]:
    """Thread ids on which ``images.make_thumbnail`` ran (it still runs for real)."""
    threads: list[int] = []
    real = thumbnails.images.make_thumbnail

    def recording(path, size, *args, **kwargs):
        threads.append(threading.get_ident())
        return real(path, size, *args, **kwargs)

    monkeypatch.setattr(thumbnails.images, "make_thumbnail", recording)
    return threads


@pytest.fixture
def cache(qtbot):
    made = ThumbnailCache()
    yield made
    made.stop()
    assert made.wait(5000)


def wait_ready(qtbot, cache: ThumbnailCache, path: Path):
    with qtbot.waitSignal(
        cache.thumbnail_ready, timeout=10_000, check_params_cb=lambda p, _img: p == str(path)
    ) as blocker:
        cache.request(path)
    return blocker.args[1]


def test_thumbnail_is_made_on_a_background_thread_and_cached_on_disk(qtbot, cache, photos, made_on):
    wide = wait_ready(qtbot, cache, photos[0])
    tall = wait_ready(qtbot, cache, photos[1])
    assert (wide.width(), wide.height()) == (128, 96)
    assert (tall.width(), tall.height()) == (64, 128)
    assert made_on and threading.get_ident() not in made_on
    assert cache.folder == paths.thumbnails_dir()
    files = sorted(p for p in cache.folder.iterdir())
    assert len(files) == 2 and all(p.suffix == ".jpg" for p in files)
    assert not any(p.name.endswith(".tmp") for p in cache.folder.iterdir())
    # The block pasted into the photo is still there, in its colour (JPEG is lossy).
    colour = wide.pixelColor(int(128 * 0.4), int(96 * 0.4))
    assert abs(colour.green() - 90) < 25 and abs(colour.blue() - 200) < 25


def test_second_request_is_served_from_memory_at_once(qtbot, cache, photos, made_on):
    first = wait_ready(qtbot, cache, photos[0])
    qtbot.waitUntil(lambda: not cache.busy, timeout=5000)
    arrived = []
    cache.thumbnail_ready.connect(lambda path, image: arrived.append((path, image)))
    cache.request(str(photos[0]))
    assert arrived == [(str(photos[0]), first)]  # synchronously: no job was started
    assert cache.jobs_started == 1 and not cache.busy and len(made_on) == 1


def test_fresh_cache_reads_the_disk_cache_and_notices_changed_files(qtbot, photos, monkeypatch):
    first = ThumbnailCache()
    wait_ready(qtbot, first, photos[0])
    first.stop()
    assert first.wait()

    def must_not_decode(path, size, *args, **kwargs):
        raise AssertionError("decoded although a cached thumbnail exists")

    real = thumbnails.images.make_thumbnail
    monkeypatch.setattr(thumbnails.images, "make_thumbnail", must_not_decode)
    fresh = ThumbnailCache()
    failed = []
    fresh.thumbnail_failed.connect(lambda path, reason: failed.append(reason))
    image = wait_ready(qtbot, fresh, photos[0])
    assert (image.width(), image.height()) == (128, 96) and failed == []
    # A photo edited since (new size and time) is decoded again, not served stale.
    monkeypatch.setattr(thumbnails.images, "make_thumbnail", real)
    make_photo(photos[0], (200, 400), 3)
    later = time.time() + 5
    os.utime(photos[0], (later, later))
    again = ThumbnailCache()
    edited = wait_ready(qtbot, again, photos[0])
    assert (edited.width(), edited.height()) == (64, 128)
    assert again.folder == fresh.folder == paths.thumbnails_dir()
    assert len(list(fresh.folder.glob("*.jpg"))) == 2
    for made in (fresh, again):
        made.stop()
        assert made.wait()


def test_unreadable_file_gives_a_reason_once_and_no_thumbnail(qtbot, cache, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("this is text, not a JPEG")
    missing = tmp_path / "missing.png"
    ready, failed = [], []
    cache.thumbnail_ready.connect(lambda path, image: ready.append(path))
    cache.thumbnail_failed.connect(lambda path, reason: failed.append((path, reason)))
    cache.request(broken)
    cache.request(missing)
    qtbot.waitUntil(lambda: len(failed) == 2 and not cache.busy, timeout=10_000)
    assert dict(failed) == {str(broken): "not an image", str(missing): "file not found"}
    jobs = cache.jobs_started
    cache.request(broken)  # known bad: not tried again, decided at once
    assert cache.jobs_started == jobs and not cache.busy
    assert ready == [] and len(failed) == 2
    assert cache.failure(broken) == "not an image"
    assert list(cache.folder.iterdir()) == []


def test_clear_pending_drops_requests_not_started(qtbot, tmp_path):
    photos = [make_photo(tmp_path / f"p{i}.jpg", (320, 240), i) for i in range(40)]
    cache = ThumbnailCache(threads=1)
    arrived, cleared = [], []
    cache.thumbnail_ready.connect(lambda path, image: arrived.append(path))
    cache.pending_cleared.connect(lambda: cleared.append(True))
    for photo in photos:
        cache.request(photo)
    cache.clear_pending()
    assert cleared
    qtbot.waitUntil(lambda: not cache.busy, timeout=10_000)
    assert len(arrived) < 10
    # Those dropped can be asked for again, and then they do come.
    wait_ready(qtbot, cache, photos[0])
    cache.stop()
    assert cache.wait()
    jobs = cache.jobs_started
    cache.request(photos[1])  # decided at once
    assert not cache.busy and cache.jobs_started == jobs  # stopped for good


@pytest.mark.slow
def test_500_requests_leave_the_slow_work_to_other_threads(qtbot, tmp_path, monkeypatch):
    photos = [make_photo(tmp_path / f"img{i:03}.jpg", (160, 120), i) for i in range(500)]
    gui = threading.get_ident()
    touched: list[tuple[str, int]] = []  # (what, thread) for every stat, decode and write

    def recording(name, real):
        def call(*args, **kwargs):
            touched.append((name, threading.get_ident()))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(thumbnails, "_cache_file", recording("stat", thumbnails._cache_file))
    monkeypatch.setattr(thumbnails, "_read_cached", recording("read", thumbnails._read_cached))
    monkeypatch.setattr(thumbnails, "_write_cached", recording("write", thumbnails._write_cached))
    real_make = thumbnails.images.make_thumbnail
    monkeypatch.setattr(thumbnails.images, "make_thumbnail", recording("decode", real_make))
    batches: list[int] = []
    real_job = thumbnails.thumbnail_job

    def counting_job(*args, **kwargs):
        for batch in real_job(*args, **kwargs):
            batches.append(len(batch))
            yield batch

    monkeypatch.setattr(thumbnails, "thumbnail_job", counting_job)
    cache = ThumbnailCache()
    arrived = set()
    cache.thumbnail_ready.connect(lambda path, image: arrived.add(path))
    for photo in photos:
        cache.request(photo)
    # Asking costs the GUI thread a queue append, nothing more (the job may have begun).
    assert gui not in {thread for _, thread in touched}
    qtbot.waitUntil(lambda: len(arrived) == 500, timeout=120_000)
    assert {what for what, _ in touched} == {"stat", "read", "decode", "write"}
    assert gui not in {thread for _, thread in touched}
    # Batches, not one cross-thread signal per file: the GUI thread's queue stays short.
    assert sum(batches) == 500 and len(batches) < 250
    assert len(list(cache.folder.glob("*.jpg"))) == 500
    cache.stop()
    assert cache.wait()


def test_model_asks_for_visible_thumbnails_and_shows_them(qtbot, cache, photos):
    model = ResultsModel()
    connect_thumbnails(model, cache)
    rows = [ImageResult(p, (Prediction("cup", 0.9, 0),)) for p in photos]
    rows.append(ImageResult(photos[0].with_name("gone.jpg"), (), "file not found"))
    model.append(rows)
    for row in range(model.rowCount()):
        model.index(row, THUMBNAIL).data(DECORATION)  # what a view does when it paints
    qtbot.waitUntil(lambda: all(model.has_thumbnail(p) for p in photos), timeout=10_000)
    icon = model.index(1, THUMBNAIL).data(DECORATION)
    assert not icon.isNull()
    assert not model.has_thumbnail(rows[2].path) and cache.failure(rows[2].path) is None


def test_rows_ask_again_after_the_cache_dropped_their_requests(qtbot, tmp_path, monkeypatch):
    entered, gate = threading.Event(), threading.Event()
    real = thumbnails.load_or_make

    def gated(*args):
        entered.set()
        gate.wait(10)
        return real(*args)

    monkeypatch.setattr(thumbnails, "load_or_make", gated)
    cache = ThumbnailCache(threads=1)
    model = ResultsModel()
    connect_thumbnails(model, cache)
    photo = make_photo(tmp_path / "row.jpg")
    model.append([ImageResult(photo, (Prediction("cup", 0.9, 0),))])
    cache.request(make_photo(tmp_path / "other.jpg"))
    assert entered.wait(5)  # the job is busy with the other file, held at the gate
    model.index(0, THUMBNAIL).data(DECORATION)
    deliver_posted_events()  # the row's (queued) request reaches the cache's queue
    cache.clear_pending()
    gate.set()
    qtbot.waitUntil(lambda: not cache.busy, timeout=10_000)  # its results came before
    assert not model.has_thumbnail(photo)
    model.index(0, THUMBNAIL).data(DECORATION)  # the next paint asks again
    qtbot.waitUntil(lambda: model.has_thumbnail(photo), timeout=10_000)
    cache.stop()
    assert cache.wait()


def test_a_failing_job_turns_thumbnails_off_instead_of_looping(qtbot, photos, monkeypatch):
    def broken_job(*args, cancel):
        raise RuntimeError("a bug in the job")
        yield

    monkeypatch.setattr(thumbnails, "thumbnail_job", broken_job)
    cache = ThumbnailCache()
    cache.request(photos[0])
    qtbot.waitUntil(lambda: cache.jobs_started == 1 and not cache.busy, timeout=5000)
    cache.request(photos[1])  # decided at once: thumbnails are off
    assert cache.jobs_started == 1 and not cache.busy and cache.cached(photos[0]) is None


def test_a_name_that_is_not_utf8_gets_its_thumbnail_and_shows(qtbot, cache, tmp_path):
    odd = tmp_path / os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: lone surrogates in Python
    make_photo(odd, (200, 100))
    plain = make_photo(tmp_path / "caf.png", (100, 200))  # what a QString would make of it
    model = ResultsModel()
    connect_thumbnails(model, cache)
    model.append([ImageResult(odd, (Prediction("cup", 0.9, 0),))])
    with qtbot.waitSignal(
        cache.thumbnail_ready, timeout=10_000, check_params_cb=lambda p, _image: p == str(odd)
    ) as blocker:
        model.index(0, THUMBNAIL).data(DECORATION)
    assert blocker.args[1].size().toTuple() == (128, 64)  # this file's, not caf.png's
    assert model.has_thumbnail(odd) and not model.has_thumbnail(plain)
    assert not model.index(0, THUMBNAIL).data(DECORATION).isNull()
    assert model.index(0, FILE).data() == "caf\ufffd.png"
    assert model.index(0, FILE).data(TOOLTIP) == str(tmp_path / "caf\ufffd.png")
