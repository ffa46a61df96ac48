"""The README of a user's export: what the files are, the check's figures, and an example.

``example_code`` is a complete script using only the runtime, NumPy and Pillow; the
tests run it exactly as the README shows it, outside the app, and hold its top-1 to the
app's.
"""

from __future__ import annotations

from ... import __version__
from .sidecar import INPUT_NAME, MODEL_XML, OUTPUT_NAME, ExportInfo

_ONNX_SESSION = """\
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession("{model}", providers=["CPUExecutionProvider"])
run = lambda x: session.run(None, {{"{input}": x}})[0]
"""
_OPENVINO_SESSION = """\
import numpy as np, openvino as ov
from PIL import Image, ImageOps

compiled = ov.Core().compile_model("{model}", "CPU", {{"INFERENCE_PRECISION_HINT": "f32"}})
run = lambda x: compiled(x)[0]
"""
_EXAMPLE = """\
import json, sys
{session}p = json.load(open("preprocessing.json"))
labels = open("labels.txt", encoding="utf-8").read().splitlines()
size, crop, mean, std = p["resize_size"], p["crop_size"], np.float32(p["mean"]), np.float32(p["std"])
for path in sys.argv[1:]:
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = im.size  # the shorter side becomes `size`, as torchvision resizes
    im = im.resize((size, int(size * h / w)) if w <= h else (int(size * w / h), size),
                   Image.Resampling[p["interpolation"].upper()])
    left, top = round((im.width - crop) / 2), round((im.height - crop) / 2)
    x = (np.asarray(im.crop((left, top, left + crop, top + crop)), np.float32) / 255 - mean) / std
    logits = np.asarray(run(np.ascontiguousarray(x.transpose(2, 0, 1)[None])))[0]{scale}
    probs = np.exp(logits - logits.max()); probs /= probs.sum()
    print(path, labels[probs.argmax()], f"{{probs.max():.3f}}")
"""


def example_code(info: ExportInfo) -> str:
    """A script that classifies the images named on its command line with this export."""
    template = _OPENVINO_SESSION if info.model_file == MODEL_XML else _ONNX_SESSION
    session = template.format(model=info.model_file, input=INPUT_NAME)
    scale = f" / {info.temperature!r}" if info.temperature != 1.0 else ""
    return _EXAMPLE.format(session=session, scale=scale)


def _what_it_is(info: ExportInfo) -> str:
    crop, classes = info.preprocess.crop_size, len(info.categories)
    kind = f"ONNX (opset {info.opset})" if info.format == "onnx" else "OpenVINO IR (fp32)"
    files = "`model.xml` + `model.bin`" if info.model_file == MODEL_XML else "`model.onnx`"
    return (
        f"{files}: {info.name} as {kind}. It takes a float32 batch `{INPUT_NAME}` of shape "
        f"(N, 3, {crop}, {crop}), normalised as `preprocessing.json` describes step by step, "
        f"and returns `{OUTPUT_NAME}` (N, {classes}). `labels.txt` names the classes, one "
        "per line, in the order of the logits; `export.json` is this app's record (source, "
        "checksums, the check below)."
    )


def _calibration(info: ExportInfo) -> str:
    if info.temperature == 1.0 and info.unknown_threshold is None:
        return ""
    lines = f"\nThis is a trained model: divide the logits by {info.temperature:g} before softmax."
    if info.unknown_threshold is not None:
        lines += (
            f' The app calls a top-1 probability below {info.unknown_threshold:.3g} "not sure".'
        )
    return lines + "\n"


def readme_text(info: ExportInfo) -> str:
    """README.md for an export folder."""
    runtime = "openvino" if info.model_file == MODEL_XML else "onnxruntime"
    checks = "".join(f"- {a.describe()}\n" for a in info.agreements)
    return (
        f"# {info.name}, exported by effnet_app {__version__}\n\n"
        f"{_what_it_is(info)}\n{_calibration(info)}\n"
        "Before it was written, the model was checked against PyTorch fp32 on the app's "
        f"reference photos:\n\n{checks}\n"
        "## Using it without this app\n\n"
        "Save this as `predict.py` in this folder and run `python predict.py photo.jpg ...` "
        f"(it needs only `pip install {runtime} numpy pillow`):\n\n"
        f"```python\n{example_code(info)}```\n\n"
        "The app decodes large JPEGs at a reduced size first (Pillow's draft mode) and lays "
        "transparent images over white, so its probabilities can differ slightly for those.\n"
    )
