"""Helpers for tests with exported models: made once, installed into a test's app home.

``make_export`` runs the real export job (torch's exporter, then the check against
PyTorch with ONNX Runtime and OpenVINO). ``install_export`` copies a made export into
the current test's cache folder, where ``cache.find_current(key)`` finds it; the autouse
``app_home`` fixture gives each test its own cache, so installs never leak.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from effnet_app.core.export import cache
from effnet_app.core.export.onnx_export import export_job
from effnet_app.core.export.sidecar import ExportInfo
from effnet_app.core.jobs import run_to_end


def make_export(spec, folder: Path, weights_path=None, model=None, limit=None) -> ExportInfo:
    """A checked export of ``spec`` in the new folder ``folder``."""
    return run_to_end(export_job(spec, weights_path, folder, model=model, limit=limit))


def install_export(info: ExportInfo) -> ExportInfo:
    """Copy ``info``'s folder into this test's cache; the installed export's info."""
    target = cache.key_folder(info.key)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(info.folder, target)
    return dataclasses.replace(info, folder=target)


def photo_batch(preprocess, count: int = 24):
    """Real photos (scikit-image) at several crops, as a float batch in ``preprocess``."""
    import torch
    from PIL import Image
    from skimage import data

    tensors = []
    for name in ("coffee", "chelsea", "astronaut", "rocket", "camera", "cat"):
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = image.size
        for s in (1.0, 0.8, 0.6, 0.45):
            box = (int((1 - s) * w / 2), int((1 - s) * h / 3), int((1 + s) * w / 2), h)
            tensors.append(preprocess.apply(image.crop(box)))
    return torch.stack(tensors[:count])


def random_b0(seed: int = 0):
    """B0 with seeded random weights and BatchNorm statistics taken from real photos.

    Straight from its initialiser, B0's logits are all within 1e-19 of each other, so
    any runtime would "agree"; with its BatchNorms measured on real photos its answers
    differ from image to image, as a trained network's do.
    """
    import torch

    from effnet_app.core.models import zoo

    spec = zoo.get_spec("b0")
    torch.manual_seed(seed)
    model = spec.build()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    model.train()
    with torch.no_grad():
        model(photo_batch(spec.preprocess))
    return model.eval()


def trained_bundle(home: Path):
    """A real trained model: a head trained on coloured shapes, saved as a bundle."""
    import pytest
    from datasets import make_shapes

    from effnet_app.core.data import dataset as datasets
    from effnet_app.core.training import tools
    from effnet_app.core.training.config import TrainConfig
    from effnet_app.core.training.trainer import train

    config = TrainConfig(base="lite0", device="cpu", val_fraction=0.3, folds=3, batch_size=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EFFNET_APP_HOME", str(home))
        shapes = run_to_end(datasets.scan(make_shapes(home / "shapes", per_class=12, size=64)))
        result = run_to_end(train(config, shapes))
        return tools.save_result(result, "shapes", shapes)
