"""Real state-dict files for download tests, named the way torchvision names its files."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import torch

from effnet_app.core.models import zoo


def random_weights(key: str) -> tuple[str, bytes]:
    """(file name ``<arch>_test-<sha256[:8]>.pth``, bytes) of a randomly initialised variant."""
    spec = zoo.get_spec(key)
    buffer = io.BytesIO()
    torch.save(spec.build().state_dict(), buffer)
    data = buffer.getvalue()
    return f"efficientnet_{key}_test-{hashlib.sha256(data).hexdigest()[:8]}.pth", data


def point_spec_at(monkeypatch, key: str, file_name: str) -> zoo.ModelSpec:
    """Make the zoo's ``key`` expect ``file_name`` (so its hash check matches our file)."""
    patched = tuple(
        dataclasses.replace(s, weights_url=f"https://example.invalid/models/{file_name}")
        if s.key == key
        else s
        for s in zoo.pretrained_specs()
    )
    monkeypatch.setattr(zoo, "pretrained_specs", lambda: patched)
    return zoo.get_spec(key)
