"""YAML (safe_load only) mapped onto frozen, typed dataclasses.

Unknown keys and wrong types are errors naming the file and the key path, e.g.
`configs/x.yaml: backend.max_batch: expected an integer or auto, got 'eight'`, every one of them
at once (one line each). Nothing in a config is ever imported or executed.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml

from vidpipe.pipeline.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}", source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}", source=str(path))
    return data


class _AutoMarker:
    """Annotated metadata of Auto: `auto` or null (None) lets vidpipe choose."""


AUTO = _AutoMarker()
Auto = Annotated[int | None, AUTO]  # a count vidpipe chooses when it is None (`auto` or null in YAML)
AutoBool = Annotated[bool | None, AUTO]  # a switch vidpipe sets when it is None


class ConfigErrors(ConfigError):
    """Several problems at once, one line each (the first one's `source` and `key`)."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        super().__init__("\n".join(str(p) for p in problems), source=problems[0].source, key=problems[0].key)
        self.problems = list(problems)


def from_mapping(cls: type[T], data: Any, source: str = "config", path: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and type; every problem is reported
    at once (ConfigErrors), one line each."""
    problems: list[ConfigError] = []
    obj = _from_mapping(cls, data, source, path, problems)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)
    return obj


def _from_mapping(cls: type[T], data: Any, source: str, path: str, problems: list[ConfigError]) -> T:
    if not isinstance(data, dict):
        raise key_error(source, path or "(top level)", f"expected a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for name in sorted(set(data) - set(fields)):
        valid = ", ".join(sorted(fields))
        problems.append(key_error(source, path or "(top level)", f"unknown key {name!r} (valid: {valid})"))
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for name, value in data.items():
        if name not in fields:
            continue
        key = f"{path}.{name}" if path else str(name)
        try:
            values[name] = _convert(hints[name], value, source, key, problems)
        except ConfigError as exc:
            problems.append(exc)
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    for name in missing:
        problems.append(key_error(source, f"{path}.{name}" if path else name, "required"))
    if problems:
        return None  # type: ignore[return-value]  # the caller raises: the object is never used
    return cls(**values)


def _convert(tp: Any, value: Any, source: str, path: str, problems: list[ConfigError]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        if AUTO in tp.__metadata__:
            return _auto(value, source, path, bool in typing.get_args(args[0]))
        return _convert(args[0], value, source, path, problems)
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, source, path, problems)  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, source, path, [])
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise key_error(source, path, f"expected one of {', '.join(map(str, args))}, got {_show(value)}")
        return value
    if origin is dict:  # free-form (a plug-in's options, checked against its own type later)
        if not isinstance(value, dict):
            raise key_error(source, path, f"expected a mapping, got {_show(value)}")
        return dict(value)
    if origin in (tuple, list):
        if isinstance(value, str | int | float):
            value = [value]  # a single item where a list is expected
        if not isinstance(value, list | tuple):
            raise key_error(source, path, f"expected a list, got {_show(value)}")
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, source, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return _scalar(tp, value, source, path)


def _auto(value: Any, source: str, path: str, switch: bool = False) -> int | bool | None:
    """`auto`, null: None. For a count, 0, which meant the same before `auto`: None, with a warning
    (one per key and load: a key is converted once)."""
    if value is None or value == "auto":
        return None
    if switch:
        if isinstance(value, bool):
            return value
        raise key_error(source, path, f"expected true, false or auto, got {_show(value)}")
    if value == 0 and not isinstance(value, bool):
        log.warning("%s: %s: 0 means auto; write `auto` (0 for auto is deprecated)", source, path)
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise key_error(source, path, f"expected an integer or auto, got {_show(value)}")


def _scalar(tp: Any, value: Any, source: str, path: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise key_error(source, path, f"expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise key_error(source, path, f"expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise key_error(source, path, f"expected a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. `source: 0` for a camera index
        raise key_error(source, path, f"expected a string, got {_show(value)}")
    raise key_error(source, path, f"unsupported config type {tp!r}")


def key_error(source: str, key: str, message: str) -> ConfigError:
    """`source: key: message`, with `source` (file) and `key` (dotted path) as fields."""
    return ConfigError(f"{source}: {key}: {message}", source=source, key=key)


def replace_path(obj: T, dotted: str, value: Any) -> T:
    """A copy of dataclass `obj` with the field at `dotted` (e.g. "backend.max_batch") replaced:
    how CLI flags override config values."""
    head, _, rest = dotted.partition(".")
    if rest:
        return dataclasses.replace(obj, **{head: replace_path(getattr(obj, head), rest, value)})  # type: ignore[type-var]
    return dataclasses.replace(obj, **{head: value})  # type: ignore[type-var]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
