"""One error hierarchy for the whole application.

User mistakes (bad path, bad YAML, wrong backend name...) are `VidpipeError`s: the CLI prints
them as one line and exits non-zero. Each class also inherits the matching built-in, so callers
may catch `FileNotFoundError` or `ValueError` as usual. As PyAV's errors do, they carry their
context as fields (`path`, `stream`, `stage`, `key`...) next to the message, and they pickle with
every field (a stage process sends them to the supervisor).

    raise SourceError(f"{path}: no such file", path=path, stream="clip")
    one_line(exc)   # any exception, a library's too -> one line for a log or a table
"""

from __future__ import annotations

from typing import Any


class VidpipeError(Exception):
    """Base of every error vidpipe reports to a user as one line; keyword fields become attributes."""

    def __init__(self, message: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.__dict__.update(fields)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[VidpipeError], args: tuple[Any, ...], fields: dict[str, Any]) -> VidpipeError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(fields)
    return exc


class ConfigError(VidpipeError, ValueError):
    """A configuration file or flag is wrong. Fields: `source` (file), `key` (dotted path)."""

    source: str = ""
    key: str = ""


class SourceError(VidpipeError, OSError):
    """A video source cannot be opened or read. Fields: `path` (input), `stream` (its name)."""

    path: str = ""
    stream: str = ""

    def __init__(self, message: str = "", **fields: Any) -> None:
        OSError.__init__(self, message)  # OSError(errno, strerror) parsing would split a 2-tuple
        self.__dict__.update(fields)


class BackendError(VidpipeError, RuntimeError):
    """An accelerator backend cannot be opened or used (missing model, device, weights...).
    Field: `device` (backend and card, when known)."""

    device: str = ""


class StageFailed(VidpipeError, RuntimeError):
    """A pipeline stage raised or died. Fields: `stage`, `detail`, `remote_traceback` (text)."""

    def __init__(self, stage: str, detail: str, remote_traceback: str = "") -> None:
        super().__init__(f"stage {stage!r} failed: {detail}", stage=stage, detail=detail,
                         remote_traceback=remote_traceback)

    stage: str
    detail: str
    remote_traceback: str


def one_line(exc: BaseException) -> str:
    """The one line a user reads: a VidpipeError's own message; any other exception's type and
    text with its whitespace folded (library errors often span several lines)."""
    if isinstance(exc, VidpipeError):
        return " ".join(str(exc).split())
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
