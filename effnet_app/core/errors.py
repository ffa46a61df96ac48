"""Domain errors. Each carries one sentence a user can act on: what happened, what to do."""

from __future__ import annotations


class AppError(Exception):
    """An expected failure with a sentence for the user.

    ``sentence`` says what happened and what to do; ``detail`` holds technical
    context (an errno, a URL, a stack of causes) for the log and the details box.
    """

    def __init__(self, sentence: str, detail: str | None = None) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.detail = detail

    def __str__(self) -> str:
        return self.sentence


class WeightsError(AppError):
    """Weights are missing, could not be downloaded, or do not match."""


class DeviceError(AppError):
    """The chosen compute device is not available."""


class ModelError(AppError):
    """A model could not be built or loaded."""


class ExportError(ModelError):
    """An export that failed or disagrees with PyTorch, or an exported file that is damaged."""


class ExportRefused(ExportError):
    """An export a runtime could not run, or whose answers disagree with PyTorch's."""


class DatasetError(AppError):
    """A labelled folder cannot be used for training."""


def sentence_of(exc: BaseException) -> str:
    """The user-facing sentence for any exception, expected or not."""
    if isinstance(exc, AppError):
        return exc.sentence
    name = type(exc).__name__
    text = str(exc).strip()
    return f"Something went wrong ({name}{': ' + text if text else ''}). Details are in the log."
