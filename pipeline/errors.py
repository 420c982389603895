"""One error hierarchy for the whole application.

User mistakes (bad path, bad YAML, wrong backend name...) are `VidpipeError`s: the CLI prints
them as one line and exits non-zero. Each class also inherits the matching built-in, so callers
may catch `FileNotFoundError` or `ValueError` as usual. All state lives in `args` so they pickle.
"""

from __future__ import annotations


class VidpipeError(Exception):
    """Base of every error vidpipe reports to a user as one line."""


class ConfigError(VidpipeError, ValueError):
    """A configuration file or flag is wrong (names the file and the key path)."""


class SourceError(VidpipeError, OSError):
    """A video source cannot be opened or read (names the source)."""


class BackendError(VidpipeError, RuntimeError):
    """An accelerator backend cannot be opened or used (missing model, device, weights...)."""


class StageFailed(VidpipeError, RuntimeError):
    """A pipeline stage raised or died; `args[1]` keeps the remote traceback text."""

    def __init__(self, stage: str, detail: str, remote_traceback: str = "") -> None:
        super().__init__(f"stage {stage!r} failed: {detail}", remote_traceback)
        self.stage = stage
        self.detail = detail
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.stage, self.detail, self.remote_traceback))

    def __str__(self) -> str:
        return str(self.args[0])
