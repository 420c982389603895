"""Backends by name: each describes itself once in a BackendSpec (hw.base), registered here or by
a plug-in's entry point (`vidpipe.backends`). Everything outside hw/ asks these functions.

    spec = backend_spec(settings)            # ConfigError naming the valid backends if unknown
    acc = create_backend(settings, index)    # infer process `index` of spec.processes(settings)
    rows = list_devices(settings)            # `vidpipe devices`: every backend's rows
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from vidpipe.hw.base import Accelerator, BackendSpec, DeviceInfo
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.config import from_mapping
from vidpipe.pipeline.errors import ConfigError, one_line
from vidpipe.pipeline.registry import Registry

# A new built-in backend: its module defines a BackendSpec, and one line here names it.
BUILTIN = {
    "cpu": "vidpipe.hw.cpu:BACKEND",
    "sim": "vidpipe.hw.sim:BACKEND",
    "alveo": "vidpipe.hw.alveo_spec:BACKEND",
    "alveo-emu": "vidpipe.hw.alveo_spec:EMULATED",
}
BACKENDS: Registry[BackendSpec] = Registry(BackendSpec, "vidpipe.backends", "backend.name", BUILTIN)

OptionsT = TypeVar("OptionsT")


def backend_spec(settings: BackendSettings) -> BackendSpec:
    return BACKENDS.get(settings.name)


def backend_names() -> list[str]:
    return BACKENDS.names()


def check_backend(settings: BackendSettings, source: str = "config") -> None:
    """At config load: the backend exists and its `backend.options` fit its options type."""
    spec = BACKENDS.get(settings.name, source)
    if spec.options is not None:
        from_mapping(spec.options, settings.options, source, "backend.options")
    elif settings.options:
        raise ConfigError(f"{source}: backend.options: the {spec.name} backend takes no options "
                          f"(its settings are under backend.{spec.name.split('-')[0]})", key="backend.options")


def backend_options(settings: BackendSettings, cls: type[OptionsT]) -> OptionsT:
    """A plug-in's typed `backend.options` (cls: its BackendSpec.options)."""
    return from_mapping(cls, settings.options, "config", "backend.options")


def uses_cards(settings: BackendSettings) -> bool:
    """Whether the backend runs on cards that Ray counts as a custom resource (one process each)."""
    return backend_spec(settings).card_resource is not None


def backend_device_count(settings: BackendSettings) -> int:
    """How many infer processes the backend wants (one per configured card for alveo, else 1)."""
    return backend_spec(settings).processes(settings)


def model_needed(settings: BackendSettings) -> Path | None:
    """The model file this backend loads, or None. Checked before any process starts: a missing
    model is one line, not a failed stage."""
    return backend_spec(settings).model(settings)


def missing_model(settings: BackendSettings) -> str | None:
    """The one line when the model file the backend loads is not there (None: nothing missing)."""
    path = model_needed(settings)
    if path is None or path.is_file():
        return None
    from vidpipe.hw.model_cache import missing_model_message

    return missing_model_message(settings.cpu.model, path)


def backend_problems(settings: BackendSettings) -> list[str]:
    """What is wrong with the files the backend is configured with, one line each (before a run)."""
    return backend_spec(settings).check(settings)


def result_fingerprint(settings: BackendSettings) -> dict[str, Any]:
    """The backend's settings that change what it labels (not how fast), for the job manifest."""
    return {"name": settings.name, **backend_spec(settings).fingerprint(settings)}


def create_backend(settings: BackendSettings, device_index: int = 0) -> Accelerator:
    """The backend for infer process `device_index` (0 .. backend_device_count - 1), not yet opened."""
    return backend_spec(settings).create(settings, device_index)


def list_devices(settings: BackendSettings | None = None) -> list[DeviceInfo]:
    """Rows of `vidpipe devices`: what each registered backend can run here (Alveo cards and
    whether each can run the configured xclbin, the cpu model, sim, the emulated card, plug-ins)."""
    settings = settings or BackendSettings()
    rows: list[DeviceInfo] = []
    for name in backend_names():
        try:
            spec = BACKENDS.get(name)
        except ConfigError as exc:
            rows.append(DeviceInfo(name, "-", f"unavailable ({one_line(exc)})"))
            continue
        if spec.devices is None:
            rows.append(DeviceInfo(name, "-", spec.summary))
            continue
        try:
            rows.extend(spec.devices(settings))
        except Exception as exc:  # one backend's probe never hides the others
            rows.append(DeviceInfo(name, "-", f"unavailable ({one_line(exc)})"))
    return rows
