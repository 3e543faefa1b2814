"""The project's small family of domain exceptions.

Every error names what is wrong and where (file and line, parameter, size), so that a bad input
fails at the edge with a message a user can act on.
"""

from __future__ import annotations

from pathlib import Path


class CSTrackError(Exception):
    """Base class of every error raised on purpose by this project."""


class ConfigError(CSTrackError, ValueError):
    """An invalid configuration value (names the field or parameter).

    Library code names the *parameter* it was given (``ConfigError("expected ...", param="path")``
    reads ``path: expected ...``), never a command-line flag; each surface renames the parameter to
    its own spelling with :meth:`renamed` (the CLI to ``--path``, a flow to ``model.path``).
    ``param`` is ``None`` for errors built from a finished message.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        self.detail = message
        super().__init__(message if param is None else f"{param}: {message}")

    def renamed(self, names: dict[str, str]) -> ConfigError:
        """The same error with its parameter spelt as ``names`` spells it (itself when the parameter
        is unnamed or not in ``names``)."""
        if self.param is None or self.param not in names:
            return self
        return type(self)(self.detail, names[self.param])


class DatasetError(CSTrackError):
    """A malformed or missing data file.  ``path`` and ``line`` (1-based) locate the problem."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class WeightsError(CSTrackError):
    """A checkpoint that cannot be loaded safely (pickled objects, missing/unexpected keys, bad hash)."""


class DownloadError(CSTrackError):
    """A transfer that failed, or content whose size/checksum does not match the registry."""


class ExtractionError(CSTrackError):
    """An archive member that is unsafe to extract (absolute path, traversal, link, device)."""


class EvaluationError(CSTrackError):
    """Evaluation could not run (e.g. a requested sequence has no result file)."""


class StorageError(CSTrackError):
    """An object store or folder that cannot be used: a missing bucket, refused credentials, an
    unreachable endpoint (names the URL; never the credentials)."""


class StoreUnreachableError(StorageError, ConnectionError):
    """The object store did not answer (down, restarting, or its link cut): worth retrying, unlike
    the other storage errors."""
