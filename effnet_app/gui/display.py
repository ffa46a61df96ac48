"""Paths as text Qt can show.

A file name that is not valid UTF-8 (``b"caf\\xe9.png"`` on Linux) reaches Python as a
str with lone surrogates (PEP 383). Qt cannot hold those: a QString made from one
silently loses them, so the name shown would be another file's ("caf.png") and a path
sent through a ``Signal(str)`` would no longer open. Paths therefore travel through
signals as ``object``, and are turned into text only to be shown, here, with U+FFFD for
the bytes that are not UTF-8, as file managers show them.
"""

from __future__ import annotations

import os


def display_path(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that does not stand for a byte
        return text.encode("utf-8", "replace").decode("utf-8")
    return raw.decode("utf-8", "replace")


def display_name(path: str | os.PathLike) -> str:
    return display_path(os.path.basename(os.fspath(path)))
