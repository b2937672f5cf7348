"""Errors a user can cause. Each carries one line that the CLI prints as ``zoo: <message>``."""

from __future__ import annotations

import difflib

from zoo.base.printing import printable


def describe_exception(error: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


class ZooError(Exception):
    """Base class: the message is one line, written for the person at the terminal."""


class UnknownModel(ZooError):
    """No registered model has this name or alias."""

    def __init__(self, name: str, known: dict[str, str]):
        """``known`` maps every model name and alias to its model's name."""
        self.name = name
        close = difflib.get_close_matches(name.lower(), known, n=5, cutoff=0.6)
        suggestions = list(dict.fromkeys(known[match] for match in close))[:3]
        hint = " or ".join(repr(s) for s in suggestions)
        super().__init__(
            f"unknown model {name!r}; " + (f"did you mean {hint}?" if hint else "see 'zoo list'")
        )


class UnknownName(ZooError):
    """No registered preprocessor/backend/exporter has this name."""

    def __init__(self, kind: str, name: str, known: list[str]):
        super().__init__(
            f"unknown {kind} {name!r}; available: {', '.join(sorted(known)) or 'none'}"
        )


class ImageError(ZooError):
    """An image file could not be read as an image."""

    def __init__(self, path: object, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{printable(str(path))}: {reason}")


class WeightsUnavailable(ZooError):
    """Weights were asked for but cannot be found, downloaded or loaded."""


class PluginError(ZooError):
    """A plugin failed to load or registered something zoo cannot use."""


class BackendUnavailable(ZooError):
    """A backend's runtime (e.g. TensorFlow) is not installed."""


class NonFiniteScores(ZooError):
    """A model gave NaN or infinite scores: there is no answer to give (nor JSON to write)."""

    def __init__(self, model: str, bad: int, total: int):
        self.model = model
        super().__init__(
            f"model {model!r} gave non-finite scores (NaN or infinity) for {bad} of {total} "
            "images; its weights are broken (a training run that diverged?)"
        )


class DiskFull(ZooError):
    """The file system ran out of space (or quota) while zoo wrote ``path``; nothing of it is
    left behind."""

    def __init__(self, path):
        self.path = path
        super().__init__(f"no space left on device writing {path}")


class CannotWrite(ZooError):
    """zoo may not, or cannot, create a file at ``path`` (permissions, a read-only file
    system, a folder that is not a real one)."""

    def __init__(self, path, error: OSError):
        self.path = path
        reason = (error.strerror or describe_exception(error)).lower()
        super().__init__(f"cannot write {path}: {reason}")
