"""Grad-CAM with the real Lite0 weights on real photos: where it looks, and what it leaves."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from effnet_app.core.data import images
from effnet_app.core.errors import AppError, ModelError
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, run_to_end
from effnet_app.core.models import zoo
from effnet_app.core.runtime import explain
from effnet_app.core.runtime.classifier import Classifier
from effnet_app.core.runtime.explain import Heatmap, explain_job, grad_cam, overlay

# Boxes (left, top, right, bottom) drawn by looking at the photos, in their own pixels.
# chelsea (451x300) is a close-up of a tabby whose head fills most of the frame; this box
# holds its face: both eyes (about (170, 115) and (318, 137)), cheeks, nose and muzzle.
CHELSEA_FACE = (110, 60, 350, 290)
# coffee (600x400): the cup seen from above, rim to handle; the saucer and spoon lie
# outside it. Lite0 puts its peak on the espresso's surface.
COFFEE_CUP = (170, 15, 410, 290)


@pytest.fixture(scope="module")
def lite0() -> Classifier:
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu")
    classifier.ensure_loaded()
    return classifier


def _full(path) -> Image.Image:
    image = images.load_image(path)
    assert isinstance(image, Image.Image)
    return image


def _plain_probabilities(classifier: Classifier, image: Image.Image) -> torch.Tensor:
    x = classifier.spec.preprocess.apply(image).unsqueeze(0)
    with torch.inference_mode():
        return torch.softmax(classifier.model(x), dim=1)[0]


def _inside(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    x, y = point
    left, top, right, bottom = box
    return left <= x <= right and top <= y <= bottom


@pytest.mark.slow
@pytest.mark.parametrize(("name", "box"), [("chelsea", CHELSEA_FACE), ("coffee", COFFEE_CUP)])
def test_peak_lies_on_the_object(lite0, sample_photos, name, box):
    image = _full(sample_photos[name])
    heatmap = grad_cam(lite0.model, lite0.spec, image)
    assert heatmap.values.shape == (image.height, image.width)
    assert heatmap.values.dtype == np.float32
    assert heatmap.values.min() >= 0.0 and heatmap.values.max() == pytest.approx(1.0)
    assert _inside(heatmap.peak, box), f"{name}: peak {heatmap.peak} outside {box}"


@pytest.mark.slow
def test_class_index_picks_another_class_and_matches_a_plain_forward(lite0, sample_photos):
    image = _full(sample_photos["coffee"])
    probs = _plain_probabilities(lite0, image)
    top = grad_cam(lite0.model, lite0.spec, image)
    assert top.class_index == int(probs.argmax())
    assert top.probability == pytest.approx(float(probs.max()), abs=1e-5)

    other = lite0.spec.categories.index("wooden spoon")
    chosen = grad_cam(lite0.model, lite0.spec, image, class_index=other)
    assert chosen.class_index == other and chosen.label == "wooden spoon"
    assert chosen.probability == pytest.approx(float(probs[other]), abs=1e-5)
    assert not np.allclose(chosen.values, top.values, atol=0.05)


@pytest.mark.slow
def test_an_unknown_class_is_refused(lite0, sample_photos):
    with pytest.raises(ModelError):
        grad_cam(lite0.model, lite0.spec, _full(sample_photos["coffee"]), class_index=1000)


def test_outside_the_centre_crop_the_map_is_zero(lite0, sample_photos):
    # 1200x300: the short side 300 -> 256, so the 224 crop covers 262.5 px of the
    # original, centred: x in [468.75, 731.25], y in [18.75, 281.25].
    wide = Image.new("RGB", (1200, 300), (90, 70, 50))
    wide.paste(_full(sample_photos["chelsea"]), (375, 0))
    values = grad_cam(lite0.model, lite0.spec, wide).values
    assert values.shape == (300, 1200)
    assert values[:, :468].max() == 0 and values[:, 732:].max() == 0
    assert values[:18].max() == 0 and values[282:].max() == 0
    assert values[19:281, 469:731].max() == pytest.approx(1.0)


@pytest.mark.slow
def test_no_grad_state_or_hooks_are_left_behind(lite0, sample_photos):
    model = lite0.model
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    image = _full(sample_photos["chelsea"])
    with torch.inference_mode():  # as if the caller sat inside a classification
        grad_cam(model, lite0.spec, image)
    grad_cam(model, lite0.spec, image, class_index=3)
    assert {name: p.requires_grad for name, p in model.named_parameters()} == before
    assert all(p.grad is None for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks and not module._backward_pre_hooks
    assert torch.is_grad_enabled() and not model.training


def test_overlay_blends_by_opacity(sample_photos):
    image = _full(sample_photos["coffee"])
    ramp = np.tile(np.linspace(0, 1, image.width, dtype=np.float32), (image.height, 1))
    heatmap = Heatmap(ramp, 0, "x", 0.5)

    clear = overlay(image, heatmap, opacity=0.0)
    assert clear.size == image.size and clear.mode == "RGB"
    assert np.array_equal(np.asarray(clear), np.asarray(image))

    solid = np.asarray(overlay(image, heatmap, opacity=1.0))
    assert np.array_equal(solid, explain.colourise(ramp))
    hot = ramp > 0
    assert (solid != np.asarray(image)).any(axis=2)[hot].mean() > 0.99

    half = overlay(image, heatmap)
    assert half.size == image.size
    assert not np.array_equal(np.asarray(half), np.asarray(image))


def test_overlay_fits_a_heatmap_to_a_smaller_preview(sample_photos):
    image = _full(sample_photos["coffee"])
    heatmap = Heatmap(np.ones((image.height, image.width), np.float32), 0, "x", 0.5)
    preview = image.resize((150, 100))
    assert overlay(preview, heatmap).size == (150, 100)


def test_colour_map_runs_from_dark_blue_to_red():
    lut = explain.COLOUR_MAP
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    cold, hot = lut[0].astype(int), lut[-1].astype(int)
    assert cold[2] > cold[0] and hot[0] > hot[2]
    assert lut.astype(int).sum(axis=1)[128] > cold.sum()  # the middle is brighter than cold


def test_explain_job_reports_progress_and_returns_a_full_size_heatmap(lite0, sample_photos):
    events = []
    job = explain_job(lite0, sample_photos["chelsea"])
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            heatmap = stop.value
            break
    messages = " ".join(e.message for e in events)
    assert all(isinstance(e, Progress) for e in events)
    assert "Loading image" in messages and "Computing heatmap" in messages
    assert isinstance(heatmap, Heatmap)
    assert heatmap.values.shape == (300, 451)
    assert heatmap.label == lite0.spec.categories[heatmap.class_index]


@pytest.mark.slow
def test_explain_job_loads_the_model_when_needed(sample_photos):
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu")
    heatmap = run_to_end(explain_job(classifier, sample_photos["coffee"], class_index=967))
    assert classifier.loaded and heatmap.class_index == 967


def test_explain_job_cancelled_before_start(lite0, sample_photos):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_to_end(explain_job(lite0, sample_photos["chelsea"], cancel=token))


@pytest.mark.parametrize(
    ("content", "reason"), [(b"this is text, not a JPEG", "not an image"), (None, "file not found")]
)
def test_explain_job_turns_an_unreadable_file_into_an_app_error(lite0, tmp_path, content, reason):
    path = tmp_path / "broken.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AppError) as caught:
        run_to_end(explain_job(lite0, path))
    assert reason in caught.value.sentence and "broken.jpg" in caught.value.sentence


@pytest.mark.slow
def test_grad_cam_while_another_thread_classifies(lite0, sample_photos):
    # The GUI may classify with the same model while the preview asks for a heatmap.
    image = _full(sample_photos["chelsea"])
    alone = grad_cam(lite0.model, lite0.spec, image).values
    stop = threading.Event()
    x = lite0.spec.preprocess.apply(image).unsqueeze(0)

    def classify_forever():
        while not stop.is_set():
            with torch.inference_mode():
                lite0.model(x)

    worker = threading.Thread(target=classify_forever)
    worker.start()
    try:
        together = [grad_cam(lite0.model, lite0.spec, image).values for _ in range(3)]
    finally:
        stop.set()
        worker.join()
    for values in together:
        np.testing.assert_allclose(values, alone, atol=1e-5)
    assert all(p.grad is None for p in lite0.model.parameters())
