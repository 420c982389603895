"""Backend names -> Accelerator objects, and what `vidpipe devices` lists."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from hw.base import U250_SHELL, Accelerator, DeviceInfo
from hw.settings import BACKENDS, AlveoSettings, BackendSettings, SimSettings
from pipeline.errors import BackendError, ConfigError, one_line

_ALVEO = ("alveo", "alveo-emu")


def uses_cards(settings: BackendSettings) -> bool:
    """Whether the backend runs on Alveo cards (real or emulated): one infer process per card."""
    return settings.name in _ALVEO


def _check_name(settings: BackendSettings) -> None:
    if settings.name not in BACKENDS:
        raise ConfigError(f"unknown backend {settings.name!r}: valid names are {', '.join(BACKENDS)}")


def backend_device_count(settings: BackendSettings) -> int:
    """How many infer processes the backend wants: one per configured card for alveo, else 1."""
    _check_name(settings)
    return len(settings.alveo.devices) if uses_cards(settings) else 1


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

    For alveo, process k drives the card named by `settings.alveo.devices[k]` (an index into
    pynq.Device.devices, or a shell name: see hw.alveo_cards)."""
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

    return AlveoBackend(settings, device_index)


def list_devices(settings: BackendSettings | None = None) -> list[DeviceInfo]:
    """One line per thing that can run inference here: Alveo cards (and whether each can run the
    configured xclbin, `settings.alveo.xclbin`), the cpu model, sim, the emulated card."""
    alveo = (settings or BackendSettings()).alveo
    return [*_alveo_devices(alveo), _cpu_device(), _sim_device(), _emulated_device(alveo)]


def _alveo_devices(alveo: AlveoSettings) -> list[DeviceInfo]:
    from hw.alveo_cards import describe_cards, no_device_message, real_devices
    from hw.alveo_pynq import import_pynq

    try:
        pynq = import_pynq()
        devices = real_devices(pynq)
    except BackendError as exc:
        return [DeviceInfo("alveo", "-", str(exc))]
    if not devices:
        return [DeviceInfo("alveo", "-", no_device_message())]
    rows = describe_cards(devices, Path(alveo.xclbin).expanduser(), pynq.__version__)
    return [DeviceInfo("alveo", name, state) for name, state in rows]


def _cpu_device() -> DeviceInfo:
    try:
        cpu: Any = importlib.import_module("hw.cpu")
    except Exception as exc:
        return DeviceInfo("cpu", "onnxruntime", f"unavailable ({one_line(exc)})")
    describe = getattr(cpu, "describe_model_state", None)
    return DeviceInfo("cpu", "onnxruntime", str(describe()) if describe else "available")


def _sim_device() -> DeviceInfo:
    s = SimSettings()
    ms = [s.base_ms + s.per_image_ms * n for n in (1, 100)]
    model = f"{s.base_ms} ms + {s.per_image_ms} ms/image: batch 1 {ms[0]:.1f} ms, batch 100 {ms[1]:.1f} ms"
    return DeviceInfo("sim", "U250 timing model", model)


def _emulated_device(alveo: AlveoSettings) -> DeviceInfo:
    from hw.alveo_pynq import import_pynq

    try:
        pynq = import_pynq()
        importlib.import_module("hw.emulated")
    except Exception as exc:  # needs pynq 3.0
        return DeviceInfo("alveo-emu", "-", f"unavailable ({one_line(exc)})")
    from hw.alveo_cards import xclbin_platform

    xclbin = Path(alveo.xclbin).expanduser()
    try:
        platform = xclbin_platform(xclbin) if xclbin.is_file() else U250_SHELL
    except BackendError as exc:
        return DeviceInfo("alveo-emu", f"0: {U250_SHELL}", str(exc))
    if not xclbin.is_file():
        runs = "can run its own resnet50.xclbin (the release's kernel and connectivity)"
    elif platform == U250_SHELL:
        runs = f"can run {xclbin.name}"
    else:
        runs = f"cannot run {xclbin.name} (built for {platform})"
    state = f"available: the alveo path through pynq {pynq.__version__} on the cpu model; {runs}"
    return DeviceInfo("alveo-emu", f"0: {U250_SHELL}", state)
