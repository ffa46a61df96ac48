"""Exported models: ONNX (and OpenVINO) files checked against PyTorch before any use.

- ``sidecar``: what travels with an export (labels.txt, preprocessing.json, export.json),
  ``Agreement`` and ``ExportInfo``; torch-free.
- ``onnx_export``: a network as one ONNX file, and ``export_job``, a checked export folder.
- ``verify``: the check, on the reference photos, with every runtime installed.
- ``cache``: the app's own exports, one per model; ``find_current`` is torch-free.
- ``package``: an export in a folder of the user's choosing, with a README (``readme``).

Nothing here imports torch at module level.
"""
