"""Name -> object registries, open to plug-ins through Python entry points.

    BACKENDS = Registry(BackendSpec, "vidpipe.backends", "backend.name", {"cpu": "vidpipe.hw.cpu:BACKEND"})
    BACKENDS.get("cpu")          # imports vidpipe.hw.cpu, returns its BACKEND (checked: a BackendSpec)
    BACKENDS.names()             # built-ins first, then every installed plug-in's
    BACKENDS.register("x", obj)  # in-process, e.g. a notebook or a test

A registry's built-ins are written as entry-point values ("module:attribute") and loaded with the
same machinery as a third-party package's `[project.entry-points."vidpipe.backends"]`, only when
asked for: `vidpipe --help` imports no backend. A plug-in that fails to load is one line naming it
and the package it came from; a name nobody registered is a ConfigError listing the valid ones.
No code is ever loaded from a config file: a config names a registered entry, nothing else.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Generic, TypeVar

from vidpipe.pipeline.errors import ConfigError, one_line

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of type `kind` by name, from `builtin` and the entry-point `group`; `key` is the
    config key that names them and `noun` what they are, for errors ("unknown backend 'x'")."""

    def __init__(self, kind: type[T], group: str, key: str, builtin: dict[str, str], noun: str = "") -> None:
        self.group, self.key, self.kind = group, key, kind
        self.noun = noun or group.rpartition(".")[2].removesuffix("s")
        self._points = {name: importlib.metadata.EntryPoint(name, value, group) for name, value in builtin.items()}
        self._loaded: dict[str, T] = {}
        self._plugins_found = False
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Built-ins in their order, then plug-ins, then names registered in this process."""
        self._find_plugins()
        return [*self._points, *(n for n in self._loaded if n not in self._points)]

    def get(self, name: str, source: str = "") -> T:
        """The entry `name`; a ConfigError in one line if there is none or it cannot be loaded,
        beginning with `source` (the config file, "arguments") when given."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        self._find_plugins()
        point = self._points.get(name)
        if point is None:
            raise self._error(source, f"unknown {self.noun} {name!r} (valid: {', '.join(self.names())})")
        try:
            obj = point.load()
        except Exception as exc:  # a broken plug-in: its own mistake, in one line
            raise self._error(source, f"{name!r} ({self._origin(point)}) cannot be loaded: {one_line(exc)}") from exc
        if not isinstance(obj, self.kind):
            raise self._error(source, f"{name!r} ({self._origin(point)}) is a {type(obj).__name__}, "
                                      f"not a {self.kind.__name__}")
        with self._lock:
            return self._loaded.setdefault(name, obj)

    def _error(self, source: str, message: str) -> ConfigError:
        where = f"{source}: {self.key}" if source else self.key
        return ConfigError(f"{where}: {message}", source=source, key=self.key)

    def register(self, name: str, obj: T) -> None:
        """Add (or replace) `name` in this process, e.g. from a notebook; a config then names it."""
        if not isinstance(obj, self.kind):
            raise TypeError(f"{name}: expected a {self.kind.__name__}, got {type(obj).__name__}")
        with self._lock:
            self._loaded[name] = obj

    def unregister(self, name: str) -> None:
        """Forget what `register` added (a built-in or a plug-in loads again when asked for)."""
        with self._lock:
            self._loaded.pop(name, None)

    def _find_plugins(self) -> None:
        with self._lock:
            if self._plugins_found:
                return
            self._plugins_found = True
            for point in importlib.metadata.entry_points(group=self.group):
                self._points.setdefault(point.name, point)  # a plug-in never replaces a built-in

    @staticmethod
    def _origin(point: importlib.metadata.EntryPoint) -> str:
        dist = point.dist
        return f"from {dist.name} {dist.version}" if dist is not None else point.value
