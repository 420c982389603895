"""The `alveo` and `alveo-emu` backends as the registry sees them (hw.registry): one infer process
per configured card, the Ray resource `alveo`, and the rows of `vidpipe devices`.

`alveo` is the real path through pynq; `alveo-emu` (or `alveo` with `backend.alveo.emulate`) is
the same code on the emulated card (hw.emulated), which runs the cpu model.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidpipe.hw.base import U250_SHELL, Accelerator, BackendSpec, DeviceInfo
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.pipeline.errors import BackendError, ConfigError, one_line


def _emulated(settings: BackendSettings) -> bool:
    return settings.name == "alveo-emu" or settings.alveo.emulate


def _create(settings: BackendSettings, device_index: int) -> Accelerator:
    """Infer process k drives the card named by `settings.alveo.devices[k]` (an index into
    pynq.Device.devices, or a shell name: see hw.alveo_cards)."""
    devices = settings.alveo.devices
    if not 0 <= device_index < len(devices):
        raise ConfigError(f"infer process {device_index} has no card: backend.alveo.devices is {list(devices)}")
    from vidpipe.hw.alveo import AlveoBackend

    return AlveoBackend(settings, device_index)


def _on_card(settings: BackendSettings, index: int) -> BackendSettings:
    return replace(settings, alveo=replace(settings.alveo, devices=(index,)))


def _model(settings: BackendSettings) -> Path | None:
    """The emulated card runs the bundled cpu model (hw.emulated.device); a real card needs none."""
    if not _emulated(settings):
        return None
    from vidpipe.hw.paths import default_model_path

    return default_model_path()


def _check(settings: BackendSettings) -> list[str]:
    """The FC weights and labels, before a run (hw.alveo_head: what may change on the card)."""
    from vidpipe.hw.alveo_head import head_problems

    return head_problems(settings)


def _fingerprint(settings: BackendSettings) -> dict[str, Any]:
    a = settings.alveo
    return {"alveo": {"xclbin": a.xclbin, "fc_weights": a.fc_weights, "labels": a.labels}}


def _cards(settings: BackendSettings) -> list[DeviceInfo]:
    """The Alveo cards pynq sees, and whether each can run `settings.alveo.xclbin`."""
    from vidpipe.hw.alveo_cards import describe_cards, no_device_message, real_devices
    from vidpipe.hw.alveo_pynq import import_pynq

    try:
        pynq = import_pynq()
        devices = real_devices(pynq)
    except BackendError as exc:
        return [DeviceInfo("alveo", "-", str(exc))]
    if not devices:
        return [DeviceInfo("alveo", "-", no_device_message())]
    rows = describe_cards(devices, Path(settings.alveo.xclbin).expanduser(), pynq.__version__)
    return [DeviceInfo("alveo", name, state) for name, state in rows]


def _emulated_card(settings: BackendSettings) -> list[DeviceInfo]:
    from vidpipe.hw.alveo_pynq import import_pynq

    alveo: AlveoSettings = settings.alveo
    try:
        pynq = import_pynq()
        importlib.import_module("vidpipe.hw.emulated")
    except Exception as exc:  # needs pynq 3.0
        return [DeviceInfo("alveo-emu", "-", f"unavailable ({one_line(exc)})")]
    from vidpipe.hw.alveo_cards import xclbin_platform

    xclbin = Path(alveo.xclbin).expanduser()
    try:
        platform = xclbin_platform(xclbin) if xclbin.is_file() else U250_SHELL
    except BackendError as exc:
        return [DeviceInfo("alveo-emu", f"0: {U250_SHELL}", str(exc))]
    if not xclbin.is_file():
        runs = "can run its own resnet50.xclbin (the release's kernel and connectivity)"
    elif platform == U250_SHELL:
        runs = f"can run {xclbin.name}"
    else:
        runs = f"cannot run {xclbin.name} (built for {platform})"
    state = f"available: the alveo path through pynq {pynq.__version__} on the cpu model; {runs}"
    return [DeviceInfo("alveo-emu", f"0: {U250_SHELL}", state)]


BACKEND = BackendSpec(
    name="alveo",
    summary="the ResNet50 dataflow accelerator on Alveo U250 cards through pynq 3.0.1",
    create=_create,
    processes=lambda settings: len(settings.alveo.devices),
    card_resource="alveo",
    on_card=_on_card,
    fingerprint=_fingerprint,
    model=_model,
    check=_check,
    devices=_cards,
)
EMULATED = replace(  # the same path, on the emulated card
    BACKEND,
    name="alveo-emu",
    summary="the alveo path (pynq, buffers, syncs) on an emulated U250 that runs the cpu model",
    devices=_emulated_card,
)
