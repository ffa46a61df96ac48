"""The decode pipeline: order, problems, look-ahead, cancel and the pixel budget.

Real files, real threads; the transforms here record what they saw instead of making
tensors, since the pipeline takes any transform (training passes augmentation).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from effnet_app.core.data.folders import expand_paths
from effnet_app.core.data.images import ImageProblem
from effnet_app.core.data.pipeline import (
    DRAFT_MARGIN,
    DecodePipeline,
    PixelBudget,
    draft_target,
)
from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.models import zoo


def _pngs(folder: Path, count: int, side: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = folder / f"{i:02d}.png"
        Image.new("RGB", (side + i, side), (10 * i, 100, 200)).save(path, compress_level=1)
        files.append(path)
    return files


def test_items_come_back_in_order_with_problems_in_place(tiny_folder):
    found = expand_paths([tiny_folder, tiny_folder / "gone.png"])
    pipeline = DecodePipeline(lambda image: image.size, threads=3, look_ahead=2)
    out = list(pipeline.run(found))
    assert [path for path, _ in out] == [
        (f.path if isinstance(f, ImageProblem) else f) for f in found
    ]
    items = {path.name: item for path, item in out}
    assert items["img0.png"] == (64, 48) and items["img2.png"] == (80, 48)
    assert items["deep.jpg"] == (40, 40)
    assert isinstance(items["broken.jpg"], ImageProblem)
    assert items["broken.jpg"].reason == "not an image"
    assert items["gone.png"].reason == "file not found"


def test_a_problem_given_as_input_passes_through(tiny_folder):
    problem = ImageProblem(tiny_folder / "locked", "folder could not be read (permission denied)")
    pipeline = DecodePipeline(lambda image: image.mode, threads=2)
    assert list(pipeline.run([problem, tiny_folder / "img1.png"])) == [
        (problem.path, problem),
        (tiny_folder / "img1.png", "RGB"),
    ]


def test_a_failing_transform_is_that_images_problem(tiny_folder):
    def transform(image):
        if image.width == 72:
            raise ValueError("augmentation broke")
        return image.width

    pipeline = DecodePipeline(transform, threads=2)
    out = dict(pipeline.run([tiny_folder / f"img{i}.png" for i in range(3)]))
    assert out[tiny_folder / "img0.png"] == 64 and out[tiny_folder / "img2.png"] == 80
    assert out[tiny_folder / "img1.png"].reason == "could not be prepared (ValueError)"


def test_for_preprocess_makes_the_models_input(sample_photos):
    spec = zoo.get_spec("lite0")
    pipeline = DecodePipeline.for_preprocess(spec.preprocess, threads=2)
    assert pipeline.target_size == draft_target(spec.preprocess)
    assert pipeline.target_size == round(spec.preprocess.resize_size * DRAFT_MARGIN)
    ((path, tensor),) = pipeline.run([sample_photos["coffee"]])
    assert path == sample_photos["coffee"]
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (
        3,
        spec.resolution,
        spec.resolution,
    )
    assert torch.equal(tensor, pipeline.decode(sample_photos["coffee"]))


def test_look_ahead_bounds_the_decodes_started(tmp_path):
    files = _pngs(tmp_path, 12, 32)
    calls: list[int] = []
    pipeline = DecodePipeline(lambda image: calls.append(1) or image.size, threads=2, look_ahead=3)
    run = pipeline.run(files)
    first_path, _ = next(run)
    run.close()  # waits for running decodes, drops the ones not started
    assert first_path == files[0]
    assert 1 <= len(calls) <= 3 + 1  # the look-ahead, plus the one refilled on taking the first


def test_cancel_stops_between_items(tmp_path):
    files = _pngs(tmp_path, 6, 16)
    token = CancelToken()
    taken = []
    with pytest.raises(Cancelled):
        for path, _ in DecodePipeline(lambda image: image.size, threads=2).run(files, token):
            taken.append(path)
            token.cancel()
    assert taken == files[:1]


# --------------------------------------------------------------------------- the budget


def test_budget_never_lets_more_than_its_limit_through():
    budget = PixelBudget(1_000)
    lock = threading.Lock()
    inside, most = [0], [0]
    start = threading.Barrier(8)

    def work(pixels: int) -> None:
        start.wait()
        for _ in range(50):
            taken = budget.acquire(pixels)
            with lock:
                inside[0] += taken
                most[0] = max(most[0], inside[0])
            with lock:
                inside[0] -= taken
            budget.release(taken)

    sizes = [100, 300, 400, 700, 999, 250, 600, 5_000]  # 5,000 is capped at the limit
    threads = [threading.Thread(target=work, args=(s,)) for s in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] <= 1_000 and budget.peak <= 1_000
    assert budget.held == 0


def test_budget_gives_an_image_larger_than_itself_the_whole_budget():
    budget = PixelBudget(10)
    assert budget.acquire(1_000) == 10 and budget.held == 10
    budget.release(10)
    assert budget.acquire(3) == 3
    with pytest.raises(ValueError):
        PixelBudget(0)


def test_pipeline_decodes_within_its_budget(tmp_path):
    files = _pngs(tmp_path, 8, 1000)  # about 1 MP each
    budget = PixelBudget(2_500_000)
    held_while_transforming: list[int] = []

    def transform(image):
        held_while_transforming.append(budget.held)
        return image.size

    pipeline = DecodePipeline(transform, threads=4, look_ahead=8, budget=budget)
    out = list(pipeline.run(files))
    assert [p for p, _ in out] == files and all(isinstance(i, tuple) for _, i in out)
    assert budget.peak <= 2_500_000 and max(held_while_transforming) <= 2_500_000
    assert min(held_while_transforming) >= 1_000_000  # each decode held its own pixels
    assert budget.held == 0


def test_a_tiny_budget_decodes_one_at_a_time_without_deadlock(tmp_path):
    files = _pngs(tmp_path, 6, 64)
    budget = PixelBudget(1)
    out = list(DecodePipeline(lambda image: image.size, threads=3, budget=budget).run(files))
    assert [p for p, _ in out] == files
    assert budget.peak == 1 and budget.held == 0
