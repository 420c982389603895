"""Backend names -> Accelerator objects, and what `vidpipe devices` lists."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from hw.base import Accelerator, DeviceInfo
from hw.settings import BACKENDS, BackendSettings, SimSettings
from pipeline.errors import BackendError, ConfigError

_ALVEO = ("alveo", "alveo-emu")


def _check_name(settings: BackendSettings) -> None:
    if settings.name not in BACKENDS:
        raise ConfigError(f"unknown backend {settings.name!r}: valid names are {', '.join(BACKENDS)}")


def backend_device_count(settings: BackendSettings) -> int:
    """How many infer processes the backend wants: one per configured card for alveo, else 1."""
    _check_name(settings)
    return len(settings.alveo.devices) if settings.name in _ALVEO else 1


def cpu_model_needed(settings: BackendSettings) -> Path | None:
    """The cpu model file this backend loads (cpu, and the emulated card that runs it), or None.

    The CLI checks it before starting any process: a missing model is one line, not a failed stage."""
    _check_name(settings)
    emulated = settings.name == "alveo-emu" or (settings.name == "alveo" and settings.alveo.emulate)
    if settings.name != "cpu" and not emulated:
        return None
    from hw.paths import default_model_path

    return Path(settings.cpu.model).expanduser() if settings.cpu.model else default_model_path()


def create_backend(settings: BackendSettings, device_index: int = 0) -> Accelerator:
    """The backend for infer process `device_index` (0 .. backend_device_count - 1).

    For alveo, process k drives pynq device `settings.alveo.devices[k]`."""
    _check_name(settings)
    if settings.name == "cpu":
        from hw.cpu import CpuBackend

        return CpuBackend(settings)
    if settings.name == "sim":
        from hw.sim import SimBackend

        return SimBackend(settings)
    devices = settings.alveo.devices
    if not 0 <= device_index < len(devices):
        raise ConfigError(f"infer process {device_index} has no card: backend.alveo.devices is {list(devices)}")
    from hw.alveo import AlveoBackend

    return AlveoBackend(settings, devices[device_index])


def list_devices() -> list[DeviceInfo]:
    """One line per thing that can run inference here: Alveo cards, the cpu model, sim, the emulated card."""
    return [*_alveo_devices(), _cpu_device(), _sim_device(), _emulated_device()]


def _alveo_devices() -> list[DeviceInfo]:
    from hw.alveo import AlveoBackend, _import_pynq, _no_device_message

    try:
        pynq = _import_pynq()
        devices = AlveoBackend._real_devices(pynq)
    except BackendError as exc:
        return [DeviceInfo("alveo", "-", str(exc))]
    if not devices:
        return [DeviceInfo("alveo", "-", _no_device_message())]
    state = f"pynq {pynq.__version__} device"
    return [DeviceInfo("alveo", f"{i}: {d.name}", f"{state} {d.tag}") for i, d in enumerate(devices)]


def _cpu_device() -> DeviceInfo:
    try:
        cpu: Any = importlib.import_module("hw.cpu")
    except Exception as exc:
        return DeviceInfo("cpu", "onnxruntime", f"unavailable ({type(exc).__name__}: {exc})")
    describe = getattr(cpu, "describe_model_state", None)
    return DeviceInfo("cpu", "onnxruntime", str(describe()) if describe else "available")


def _sim_device() -> DeviceInfo:
    s = SimSettings()
    ms = [s.base_ms + s.per_image_ms * n for n in (1, 100)]
    model = f"{s.base_ms} ms + {s.per_image_ms} ms/image: batch 1 {ms[0]:.1f} ms, batch 100 {ms[1]:.1f} ms"
    return DeviceInfo("sim", "U250 timing model", model)


def _emulated_device() -> DeviceInfo:
    from hw.alveo import _import_pynq

    try:
        pynq = _import_pynq()
        from hw.emulated.device import DEVICE_NAME
    except Exception as exc:  # needs pynq 3.0
        return DeviceInfo("alveo-emu", "-", f"unavailable ({exc})")
    state = f"available: the alveo path through pynq {pynq.__version__} on the cpu model"
    return DeviceInfo("alveo-emu", f"0: {DEVICE_NAME}", state)
