"""models, download and import-weights: what is on disk, damaged files, SIGTERM."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest
import torch
from loopback import LoopbackServer
from served_weights import point_spec_at, random_weights

from effnet_app.cli import common
from effnet_app.core.models import checksums, weights, zoo
from effnet_app.core.paths import weights_dir


@pytest.fixture(autouse=True)
def private_torch_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def _weights_listing() -> list[str]:
    return sorted(p.name for p in weights_dir().iterdir() if p.name != checksums.VERDICTS_FILE)


def test_models_lists_every_variant(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "name", "input"]
    keys = [line.split()[0] for line in lines[1:]]
    assert keys[:9] == ["lite0", "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"]
    assert "bundled" in lines[1] and "not downloaded" in lines[2]
    b3 = next(line for line in lines if line.startswith("b3 "))
    assert "300px" in b3 and "12.2M" in b3 and "82.0%" in b3


def test_download_from_a_mirror_lands_in_the_cache(run_cli, monkeypatch):
    name, data = random_weights("b0")
    spec = point_spec_at(monkeypatch, "b0", name)
    with LoopbackServer({f"/mirror/{name}": data}) as server:
        code, out, err = run_cli("download", "b0", "--mirror", server.url + "/mirror")
        assert code == 0 and "weights saved to" in out
        code, out, _ = run_cli("download", "b0", "--mirror", server.url + "/mirror")
        assert code == 0 and "already on disk" in out and len(server.requests) == 1
    assert weights.cached_path(spec).read_bytes() == data


def test_a_damaged_file_is_named_in_classify_and_download_fetches_it_again(
    run_cli, monkeypatch, photo_folder
):
    name, data = random_weights("b0")
    point_spec_at(monkeypatch, "b0", name)
    cached = weights_dir() / name
    cached.write_bytes(data[:-1000] + bytes(1000))  # same size, last kilobyte lost
    code, out, _ = run_cli("models")
    assert next(line for line in out.splitlines() if line.startswith("b0 ")).endswith("damaged")
    code, _, err = run_cli("classify", str(photo_folder), "--model", "b0")
    assert code == 2 and "damaged" in err and "`effnet-app download B0`" in err
    with LoopbackServer({f"/m/{name}": data}) as server:
        code, out, err = run_cli("download", "B0", "--mirror", server.url + "/m", "-q")
    assert code == 0 and "weights saved to" in out and "damaged" in err
    assert cached.read_bytes() == data
    assert (weights_dir() / f"{name}.damaged").is_file()
    code, out, _ = run_cli("download", "B0")  # now verified: no mirror needed
    assert code == 0 and "already on disk" in out


def test_import_weights_takes_only_the_published_file(run_cli, monkeypatch, tmp_path):
    """Random B0 weights are not the published B0 file, whatever name they would get."""
    spec = zoo.get_spec("b0")
    file = tmp_path / "my_b0.pth"
    torch.save(spec.build().state_dict(), file)
    code, out, err = run_cli("import-weights", "B0", str(file))
    assert code == 2 and out == "" and "not the published EfficientNet-B0 weights file" in err
    assert _weights_listing() == [] and weights.cached_path(spec) is None
    _, listing, _ = run_cli("models")
    assert "not downloaded" in next(line for line in listing.splitlines() if line.startswith("b0 "))
    # The published file (here: a file whose name carries its hash) is taken.
    published = point_spec_at(monkeypatch, "b0", f"efficientnet_b0_x-{_sha8(file)}.pth")
    code, out, _ = run_cli("import-weights", "b0", str(file))
    assert code == 0 and "imported" in out and weights.cached_path(published) is not None


def _sha8(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_import_of_a_file_that_is_not_weights_is_exit_2(run_cli, tmp_path):
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a state dict")
    code, _, err = run_cli("import-weights", "b1", str(bad))
    assert code == 2 and err and "Traceback" not in err


@pytest.mark.parametrize("mirror", ["weights.example.com/files", "http://[::1"])
def test_a_mirror_that_is_not_an_address_is_a_sentence(run_cli, mirror):
    code, _, err = run_cli("download", "b0", "--mirror", mirror, "-q")
    assert code == 2 and "not a download address" in err and "Traceback" not in err


def test_an_app_home_that_is_a_file_is_a_sentence(run_cli, monkeypatch, tmp_path):
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("EFFNET_APP_HOME", str(blocker))
    code, _, err = run_cli("models")
    assert code == 2 and str(blocker) in err and "EFFNET_APP_HOME" in err


def _part_with_bytes() -> bool:
    for part in weights_dir().glob("*.part"):  # pathlib's glob also matches hidden names
        try:
            if part.stat().st_size:
                return True
        except FileNotFoundError:
            continue
    return False


@pytest.mark.slow
def test_sigterm_mid_download_says_so_and_leaves_no_part_file(wait_until):
    """A slow mirror; SIGTERM once the part file has bytes: a sentence, exit 143, nothing left."""
    name = zoo.get_spec("b0").weights_filename  # the official name: the child's own spec
    data = os.urandom(4 * 1024 * 1024)
    slow = {"delay": 0.02, "chunk_size": 8 * 1024, "max_delay": 120.0, "lifetime": 180.0}
    with LoopbackServer({f"/m/{name}": data}, **slow) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "effnet_app", "download", "b0", "--mirror", server.url + "/m"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(_part_with_bytes, "the download to start writing its part file")
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=60)
        finally:
            child.kill()
    assert child.returncode == common.EXIT_TERMINATED == 143
    assert "SIGTERM" in err and "Traceback" not in err
    assert _weights_listing() == []
