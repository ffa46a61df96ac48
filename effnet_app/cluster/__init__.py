"""Batch classification on Ray (``effnet-app classify --ray``): ``RayClassifier``.

Importing this package imports Ray; without it installed, the ImportError tells the
caller to install the ``cluster`` extra (``pip install 'effnet_app[cluster]'``).
"""

from __future__ import annotations

import ray  # noqa: F401 - fail here, at import, when Ray is not installed
import ray.data  # noqa: F401

from .classifier import RayClassifier, build_package

__all__ = ["RayClassifier", "build_package"]
