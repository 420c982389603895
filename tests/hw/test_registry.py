"""Backend selection by name, infer-process count per backend, and `vidpipe devices`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import vidpipe.hw.emulated as emu
from vidpipe.hw.alveo import AlveoBackend
from vidpipe.hw.base import U250_SHELL, BackendSpec, DeviceInfo
from vidpipe.hw.cpu import CpuBackend
from vidpipe.hw.registry import (
    BACKENDS,
    backend_device_count,
    backend_names,
    backend_options,
    check_backend,
    create_backend,
    list_devices,
    model_needed,
    result_fingerprint,
    uses_cards,
)
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.hw.sim import SimBackend
from vidpipe.pipeline.errors import ConfigError


def test_each_name_gives_its_backend() -> None:
    assert isinstance(create_backend(BackendSettings(name="cpu")), CpuBackend)
    assert isinstance(create_backend(BackendSettings(name="sim")), SimBackend)
    real = create_backend(BackendSettings(name="alveo", alveo=AlveoSettings(devices=(2, 5))), 1)
    assert isinstance(real, AlveoBackend) and real.device_spec == 5 and not real.emulated and real.name == "alveo"
    by_shell = create_backend(BackendSettings(name="alveo", alveo=AlveoSettings(devices=(0, U250_SHELL))), 1)
    assert isinstance(by_shell, AlveoBackend) and by_shell.device_spec == U250_SHELL and by_shell.slot == 1
    emulate = AlveoSettings(emulate=True)
    for settings in (BackendSettings(name="alveo-emu"), BackendSettings(name="alveo", alveo=emulate)):
        backend = create_backend(settings)
        assert isinstance(backend, AlveoBackend) and backend.emulated and backend.name == "alveo-emu"


def test_unknown_name_and_missing_card_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"backend.name: unknown backend 'tpu' \(valid: cpu, sim, alveo, alveo-emu\)"):
        create_backend(BackendSettings(name="tpu"))
    with pytest.raises(ConfigError, match="unknown backend"):
        backend_device_count(BackendSettings(name="tpu"))
    with pytest.raises(ConfigError, match=r"infer process 2 has no card: backend.alveo.devices is \[0, 1\]"):
        create_backend(BackendSettings(name="alveo", alveo=AlveoSettings(devices=(0, 1))), 2)


def test_one_infer_process_per_configured_card() -> None:
    assert backend_device_count(BackendSettings(name="cpu")) == 1
    assert backend_device_count(BackendSettings(name="sim", alveo=AlveoSettings(devices=(0, 1)))) == 1
    assert backend_device_count(BackendSettings(name="alveo", alveo=AlveoSettings(devices=(0, 1, 2)))) == 3
    assert backend_device_count(BackendSettings(name="alveo-emu", alveo=AlveoSettings(devices=(0, 1)))) == 2


@pytest.fixture
def two_cards() -> Iterator[list[emu.EmulatedDevice]]:
    emu.disable()
    yield emu.enable(2, classify=lambda b: (np.zeros((len(b), 5), np.uint32) + 7, np.ones((len(b), 5), np.float32)))
    emu.disable()


def test_two_emulated_cards_one_backend_each(two_cards: list[emu.EmulatedDevice], tmp_path: Path) -> None:
    np.save(tmp_path / "fc.npy", np.zeros((1000, 2048), np.int8))
    xclbin = emu.write_emulated_xclbin(tmp_path / "r.xclbin")
    alveo = AlveoSettings(xclbin=str(xclbin), fc_weights=str(tmp_path / "fc.npy"), devices=(0, 1))
    settings = BackendSettings(name="alveo-emu", max_batch=2, alveo=alveo)
    backends = [create_backend(settings, k) for k in range(backend_device_count(settings))]
    try:
        for b in backends:
            b.open()
            b.input_buffer(0)[:2] = 1
            b.start(0, 2)
        assert [b.wait(0).top5.tolist() for b in backends] == [[[7] * 5] * 2] * 2
        assert [b.device for b in backends if isinstance(b, AlveoBackend)] == two_cards
        assert all(len(card.log.calls("cu_done")) == 1 for card in two_cards)
    finally:
        for b in backends:
            b.close()


def test_list_devices_names_every_backend() -> None:
    rows = list_devices()
    assert [r.backend for r in rows] == ["cpu", "sim", "alveo", "alveo-emu"]
    cpu, sim, alveo, emulated = rows
    assert "no Alveo device found by pynq" in alveo.state and "alveo-emu" in alveo.state and "\n" not in alveo.state
    if "XILINX_XRT" not in os.environ:
        assert "XRT not found" in alveo.state
    assert cpu.state.startswith(("built", "missing"))
    assert "batch 1 2.0 ms" in sim.state and "batch 100 51.5 ms" in sim.state
    assert emulated.name == f"0: {U250_SHELL}" and "pynq 3.0.1" in emulated.state
    assert "can run its own resnet50.xclbin" in emulated.state


@dataclass(frozen=True)
class ToyOptions:
    scale: float = 1.0


def test_a_backend_registered_in_process_runs_through_every_question() -> None:
    """One BackendSpec is all a new backend needs: the registry answers for it everywhere."""
    made: list[tuple[float, int]] = []

    def create(settings: BackendSettings, index: int) -> SimBackend:
        made.append((backend_options(settings, ToyOptions).scale, index))
        return SimBackend(settings)

    spec = BackendSpec("toy", "a toy", create, processes=lambda s: 2, options=ToyOptions,
                       fingerprint=lambda s: {"scale": backend_options(s, ToyOptions).scale},
                       devices=lambda s: [DeviceInfo("toy", "t0", "ready")])
    BACKENDS.register("toy", spec)
    try:
        settings = BackendSettings(name="toy", options={"scale": 2})
        check_backend(settings)
        assert "toy" in backend_names() and backend_device_count(settings) == 2 and not uses_cards(settings)
        assert result_fingerprint(settings) == {"name": "toy", "scale": 2.0} and model_needed(settings) is None
        assert isinstance(create_backend(settings, 1), SimBackend) and made == [(2.0, 1)]
        assert DeviceInfo("toy", "t0", "ready") in list_devices()
        with pytest.raises(ConfigError, match=r"backend.options.scale: expected a number"):
            check_backend(BackendSettings(name="toy", options={"scale": "big"}))
    finally:
        BACKENDS.unregister("toy")
    with pytest.raises(ConfigError, match="unknown backend 'toy'"):
        check_backend(BackendSettings(name="toy"))
    with pytest.raises(ConfigError, match="the cpu backend takes no options"):
        check_backend(BackendSettings(name="cpu", options={"scale": 1}))
