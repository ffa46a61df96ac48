"""Pooled features on disk, keyed by image content, model, weights and preprocessing.

One folder per (model key, weights SHA-256, preprocessing, view) under
``paths.cache_dir()/features``, holding chunk files written whole (``fsutil``: a part
file, fsync, rename), so a cancelled or killed run leaves complete chunks or nothing.
A chunk is a safetensors file with ``digests`` (N, 32) uint8 (the SHA-256 of each image
file's bytes) and ``features`` (N, D) float32; its metadata carries the SHA-256 of both
arrays. A chunk that fails to load, has the wrong shapes or dtypes, non-finite values or
a checksum that does not match is deleted and its images are computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from pathlib import Path

import numpy as np

from .. import fsutil, paths
from ..errors import AppError

log = logging.getLogger(__name__)

FORMAT = "1"
MAX_CHUNKS = 8  # more than this and they are merged into one file


def cache_key(model_key: str, weights_sha256: str, preprocess: dict, view: str) -> str:
    text = json.dumps(
        {
            "format": FORMAT,
            "model": model_key,
            "weights": weights_sha256,
            "preprocess": preprocess,
            "view": view,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _checksum(digests: np.ndarray, features: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(digests).tobytes())
    h.update(np.ascontiguousarray(features).tobytes())
    return h.hexdigest()


def _raw(digests) -> np.ndarray:
    joined = b"".join(bytes.fromhex(d) for d in digests)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32).copy()


class FeatureCache:
    """The cached features of one model + weights + preprocessing + view."""

    def __init__(self, key: str, dim: int, root: Path | None = None, describe: dict | None = None):
        self.key = key
        self.dim = int(dim)
        self.folder = (root or paths.cache_dir() / "features") / key
        self.describe = describe or {}

    def chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.safetensors")) if self.folder.is_dir() else []

    def load(self) -> dict[str, np.ndarray]:
        """digest hex -> feature row, from every valid chunk; invalid chunks are deleted."""
        found: dict[str, np.ndarray] = {}
        for chunk in self.chunks():
            rows = self._read_chunk(chunk)
            if rows is None:
                log.warning("feature cache chunk %s is damaged; it will be rebuilt", chunk)
                chunk.unlink(missing_ok=True)
                continue
            digests, features = rows
            for raw, row in zip(digests, features, strict=True):
                found[raw.tobytes().hex()] = row
        return found

    def _read_chunk(self, chunk: Path):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(chunk), framework="numpy") as f:
                meta = f.metadata() or {}
                digests, features = f.get_tensor("digests"), f.get_tensor("features")
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):
            return None
        ok = (
            meta.get("format") == FORMAT
            and digests.dtype == np.uint8
            and features.dtype == np.float32
            and digests.ndim == 2
            and digests.shape[1] == 32
            and features.shape == (len(digests), self.dim)
            and bool(np.isfinite(features).all())
            and meta.get("sha256") == _checksum(digests, features)
        )
        return (digests, features) if ok else None

    def save(self, digests: list[str], features: np.ndarray) -> Path | None:
        """Write one chunk atomically; a cache that cannot be written is only slower."""
        if not digests:
            return None
        raw = _raw(digests)
        features = np.ascontiguousarray(features, dtype=np.float32)
        return self._write(raw, features, f"chunk-{uuid.uuid4().hex[:16]}.safetensors")

    def _write(self, raw: np.ndarray, features: np.ndarray, name: str) -> Path | None:
        from safetensors.numpy import save

        meta = {"format": FORMAT, "sha256": _checksum(raw, features), "dim": str(self.dim)}
        meta.update({k: str(v) for k, v in self.describe.items()})
        try:
            return fsutil.atomic_write(
                self.folder / name, save({"digests": raw, "features": features}, metadata=meta)
            )
        except (AppError, OSError):
            log.warning("could not write the feature cache in %s", self.folder, exc_info=True)
            return None

    def compact(self) -> None:
        """Merge the chunks into one when there are many (fewer files to open next time)."""
        chunks = self.chunks()
        if len(chunks) <= MAX_CHUNKS:
            return
        rows = self.load()
        chunks = self.chunks()  # the damaged ones are gone
        digests = sorted(rows)
        features = np.stack([rows[d] for d in digests]) if digests else None
        if features is None:
            return
        raw = _raw(digests)
        if self._write(raw, features, f"chunk-{uuid.uuid4().hex[:16]}.safetensors") is None:
            return
        for chunk in chunks:
            chunk.unlink(missing_ok=True)
