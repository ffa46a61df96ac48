"""A local Ray for the whole session (2 CPUs, no dashboard, a token), and odd files.

``RayClassifier`` finds this Ray running and uses it as it is, so tests pay for
``ray.init`` once; it is shut down when the session ends.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="the cluster extra (Ray Data) is not installed")


@pytest.fixture(scope="session")
def local_ray():
    import ray

    from effnet_app.cluster.connect import private_token

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        private_token()  # as the app's own local Ray: a client without the token is refused
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            # A small object store: Ray Data's backpressure then bounds what is in flight,
            # and the RSS test sees the job's memory, not a store filling to 30 % of RAM.
            object_store_memory=256 * 1024**2,
        )
    yield ray
    ray.shutdown()


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` and whose pixels are missing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat))


@pytest.fixture
def odd_folder(sample_photos, tmp_path) -> Path:
    """Photos plus the files that go wrong: corrupt, truncated, not an image, huge."""
    import shutil

    folder = tmp_path / "odd"
    folder.mkdir()
    for name, path in sample_photos.items():
        shutil.copy(path, folder / f"{name}.jpg")
    whole = sample_photos["coffee"].read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (folder / "corrupt.jpg").write_bytes(whole[:200] + bytes(range(256)) * 40)
    (folder / "notes.png").write_text("this is text, not a PNG")
    (folder / "empty.jpg").write_bytes(b"")
    _png_header_only(folder / "huge.png", 20_000, 20_000)
    return folder


@pytest.fixture
def lite0_onnx(lite0_export):
    """Lite0's verified ONNX export installed in this test's cache (the torch-free path)."""
    from exports import install_export

    return install_export(lite0_export)
