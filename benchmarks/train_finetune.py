"""Seconds per fine-tune epoch: the app's decoded-once images against a plain training loop.

Both run in this one process, on CPU, on the same 200 12-megapixel JPEGs in 4 classes
(made from real photos) and the same train/validation split, with the same network
(Lite0 with its last stages unfrozen), optimiser, batch size and augmentation. Only
the way images reach the network differs:

- app: ``core.training.finetune``, which decodes each file once at the model's resize
  size and then, every epoch, only crops, flips and normalises those pixels;
- plain: a torchvision ``ImageFolder`` + ``DataLoader`` (workers on every core) that
  decodes the original files every epoch, as most tutorials do.

Each epoch trains on the training images and scores the validation images. Epoch 1 of
the app includes its one decoding pass. Goal: from epoch 2 on, the app is >= 3x faster.

    python benchmarks/train_finetune.py [--images 200] [--epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

from _common import WORK, real_photo

SIZE = (4000, 3000)  # 12 megapixels
CLASSES = ("coffee", "chelsea", "astronaut", "rocket")


def make_classes(count: int):
    """``count`` 12-MP JPEGs, a quarter per class, each a different crop of its photo."""
    from PIL import ImageOps

    root = WORK / f"train_finetune_{count}"
    for name in CLASSES:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        photo = None
        for i in range(count // len(CLASSES)):
            path = folder / f"{name}_{i:03d}.jpg"
            if path.exists():
                continue
            photo = photo or real_photo(name)
            width, height = photo.size
            left, top = (i * 7) % (width // 5), (i * 5) % (height // 5)
            crop = photo.crop((left, top, left + width * 4 // 5, top + height * 4 // 5))
            crop = ImageOps.mirror(crop) if i % 2 else crop
            crop.resize(SIZE).save(path, quality=90)
    return root


def plain_loaders(root, train_samples, val_samples, preprocess, batch_size: int):
    """ImageFolder + DataLoader over the same split, decoding the originals every time."""
    import torch
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets
    from torchvision.transforms import InterpolationMode, v2

    from effnet_app.core.training.finetune import CROP_MIN_AREA

    mode = InterpolationMode(preprocess.interpolation)
    tail = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(preprocess.mean), list(preprocess.std)),
    ]
    train_tf = v2.Compose(
        [
            v2.RandomResizedCrop(
                preprocess.crop_size, scale=(CROP_MIN_AREA, 1.0), interpolation=mode
            ),
            v2.RandomHorizontalFlip(),
            *tail,
        ]
    )
    val_tf = v2.Compose(
        [
            v2.Resize(preprocess.resize_size, interpolation=mode),
            v2.CenterCrop(preprocess.crop_size),
            *tail,
        ]
    )
    index = {str(path): i for i, (path, _) in enumerate(datasets.ImageFolder(root).samples)}
    workers = os.cpu_count() or 1

    def loader(samples, transform, shuffle):
        rows = [index[str(s.path)] for s in samples]
        subset = Subset(datasets.ImageFolder(root, transform=transform), rows)
        return DataLoader(subset, batch_size, shuffle=shuffle, num_workers=workers)

    return loader(train_samples, train_tf, True), loader(val_samples, val_tf, False)


def plain_epochs(trainer, loaders, epochs: int) -> list[float]:
    import torch

    from effnet_app.core.training.finetune import _freeze_bn

    train_loader, val_loader = loaders
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.model.train()
        _freeze_bn(trainer.model)
        for x, y in train_loader:
            trainer.step(x, y)
        trainer.model.eval()
        with torch.inference_mode():
            for x, _ in val_loader:
                trainer.model(x)
        seconds.append(time.perf_counter() - start)
    return seconds


def app_epochs(spec, model, train_samples, val_samples, config, head_epoch) -> list[float]:
    from effnet_app.core.training import finetune
    from effnet_app.core.training.config import TrainEpoch

    seconds, last = [], time.perf_counter()
    job = finetune.finetune(spec, model, train_samples, val_samples, config, "cpu", head_epoch)
    for event in job:
        if isinstance(event, TrainEpoch):
            now = time.perf_counter()
            seconds.append(now - last)
            last = now
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    os.environ["EFFNET_APP_HOME"] = tempfile.mkdtemp(prefix="effnet-bench-")
    root = make_classes(args.images)

    import numpy as np

    from effnet_app.core.data import dataset
    from effnet_app.core.jobs import run_to_end
    from effnet_app.core.training import finetune, network
    from effnet_app.core.training.config import TrainConfig, TrainEpoch

    spec = network.base_spec("lite0")
    data = run_to_end(dataset.scan(root, min_side=spec.resolution))
    split = dataset.split(data, 0.2, 0)
    train_samples = [data.samples[i] for i in split.train]
    val_samples = [data.samples[i] for i in split.val]
    config = TrainConfig(
        base="lite0", device="cpu", mode="finetune", epochs=args.epochs, batch_size=16,
        patience=args.epochs,
    )  # fmt: skip
    pretrained = network.load_pretrained(spec)
    classes = len(data.classes)
    zeros = np.zeros((classes, spec.feature_dim), np.float32)
    model = network.with_new_head(spec, pretrained, zeros, np.zeros(classes, np.float32))
    head_epoch = TrainEpoch(0, "head", 9.9, 0.0, 9.9, 0.0)

    plain_trainer = finetune._Trainer(spec, copy.deepcopy(model), config, "cpu")
    loaders = plain_loaders(root, train_samples, val_samples, spec.preprocess, 16)
    plain = plain_epochs(plain_trainer, loaders, args.epochs)
    app = app_epochs(spec, model, train_samples, val_samples, config, head_epoch)

    print(
        f"{len(train_samples)} training + {len(val_samples)} validation images, "
        f"{SIZE[0]}x{SIZE[1]} JPEG, {classes} classes, batch 16, CPU"
    )
    print("epoch   plain loop (s)   app (s)   plain / app")
    for epoch, (p, a) in enumerate(zip(plain, app, strict=False), 1):
        print(f"{epoch:5d}   {p:14.2f}   {a:7.2f}   {p / a:10.2f}x")
    later = [p / a for p, a in zip(plain[1:], app[1:], strict=False)]
    worst = min(later) if later else float("nan")
    print(f"from epoch 2 on, the app is at least {worst:.2f}x faster (goal >= 3x)")
    print("PASS" if later and worst >= 3.0 else "FAIL")


if __name__ == "__main__":
    main()
