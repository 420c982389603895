"""The alveo backend through pynq 3.0.1 on the emulated U250: pynq's own Overlay, allocate, sync,
ERT start/wait and free run; the device records what it was asked to do, and the tests assert
on that record. (FakeModel and the card fixtures are in conftest.py.)"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pynq
import pytest
from pynq.buffer import PynqBuffer

import vidpipe.hw.emulated as emu
from tests.hw.conftest import FakeModel
from vidpipe.hw.alveo import AlveoBackend
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.pipeline.errors import BackendError

IMAGE = 224 * 224 * 3


@pytest.fixture
def settings(files: dict[str, Path]) -> BackendSettings:
    alveo = AlveoSettings(xclbin=str(files["xclbin"]), fc_weights=str(files["fc"]))
    return BackendSettings(name="alveo-emu", max_batch=4, buffer_sets=2, alveo=alveo)


@pytest.fixture
def backend(card: emu.EmulatedDevice, settings: BackendSettings) -> Iterator[AlveoBackend]:
    b = AlveoBackend(settings)
    b.open()
    yield b
    b.close()


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, 224, 224, 3), dtype=np.int8)


def _ops(card: emu.EmulatedDevice, since: int = 0) -> list[tuple[str, int | None, int, int]]:
    return [(c.op, c.bo, c.offset, c.size) for c in card.log.calls()[since:] if c.op != "start"]


def test_open_makes_the_reference_pynq_calls_in_order(backend: AlveoBackend, card: emu.EmulatedDevice) -> None:
    fc, (in0, in1), (out0, out1) = backend.fcbuf, backend.inbufs, backend.outbufs
    assert backend.device is card and backend.overlay.device is card
    assert [type(b) for b in (fc, in0, out0)] == [PynqBuffer] * 3
    assert (fc.shape, fc.dtype, in0.shape, in0.dtype, out0.shape, out0.dtype) == (
        (1000, 2048), np.int8, (4, 224, 224, 3), np.int8, (4, 5), np.uint32)
    assert _ops(card) == [
        ("download", None, 0, 0),
        ("allocate_bo", fc.bo.handle, 0, 1000 * 2048),
        ("flush", fc.bo.handle, 0, 1000 * 2048),
        ("allocate_bo", in0.bo.handle, 0, 4 * IMAGE),
        ("allocate_bo", out0.bo.handle, 0, 4 * 5 * 4),
        ("allocate_bo", in1.bo.handle, 0, 4 * IMAGE),
        ("allocate_bo", out1.bo.handle, 0, 4 * 5 * 4),
    ]
    # memories from the xclbin's connectivity, as the release links it: weights on PLRAM[0], in/out on bank0
    assert [c.mem for c in card.log.calls("allocate_bo")] == ["PLRAM[0]"] + ["bank0"] * 4
    assert fc.memory is backend.overlay.PLRAM0 or fc.memory == backend.overlay.PLRAM0
    assert np.array_equal(card.bo_at(fc.device_address, fc.nbytes)[0].card.view(np.int8).reshape(1000, 2048),
                          np.load(backend.cfg.fc_weights))


def test_a_batch_syncs_only_its_filled_images(backend: AlveoBackend, card: emu.EmulatedDevice) -> None:
    x = _images(3, 1)
    backend.input_buffer(0)[:3] = x
    since = len(card.log.calls())
    backend.start(0, 3)
    out = backend.wait(0)
    inb, outb = backend.inbufs[0].bo.handle, backend.outbufs[0].bo.handle
    assert _ops(card, since) == [
        ("flush", inb, 0, 3 * IMAGE),
        ("cu_start", None, 0, 0),
        ("cu_done", None, 0, 0),
        ("invalidate", outb, 0, 3 * 5 * 4),
    ]
    (start,) = card.log.calls("start")
    assert f"in={backend.inbufs[0].device_address:#x}" in start.detail and "numReps=3" in start.detail
    assert f"weightsmem={backend.fcbuf.device_address:#x}" in start.detail
    assert out.top5.dtype == np.uint32 and type(out.top5) is np.ndarray
    assert np.array_equal(out.top5, FakeModel.expected(x)) and out.scores is None
    assert min(out.upload_s, out.compute_s, out.download_s) > 0


def test_ping_pong_fills_and_starts_the_next_batch_while_one_runs(
    backend: AlveoBackend, card: emu.EmulatedDevice, model: FakeModel
) -> None:
    model.gate = threading.Event()
    a, b = _images(4, 2), _images(2, 3)
    backend.input_buffer(0)[:] = a
    backend.start(0, 4)
    assert model.entered.wait(10)  # batch 0 is on the CU now
    backend.input_buffer(1)[:2] = b  # fill and start batch 1 meanwhile
    backend.start(1, 2)
    model.gate.set()
    assert np.array_equal(backend.wait(0).top5, FakeModel.expected(a))
    assert np.array_equal(backend.wait(1).top5, FakeModel.expected(b))
    flush1 = next(c for c in card.log.calls("flush") if c.bo == backend.inbufs[1].bo.handle)
    start1 = card.log.calls("start")[1]
    (s0, s1), (d0, _) = card.log.calls("cu_start"), card.log.calls("cu_done")
    assert s0.t < flush1.t < start1.t < d0.t  # overlap: batch 1 went up while batch 0 computed
    assert d0.t <= s1.t  # one compute unit: batch 1 ran after batch 0


def test_a_second_backend_on_one_card_finds_plram_full(card: emu.EmulatedDevice, settings: BackendSettings) -> None:
    """PLRAM[0] is 2 MiB: one set of FC weights (2,048,000 bytes) per card, as on the U250."""
    first = AlveoBackend(settings)
    first.open()
    try:
        message = _open_error(settings)[0]
        assert "cannot allocate (1000, 2048) int8 (2048000 bytes) in PLRAM0 of alveo-emu:0" in message
        assert "PLRAM0 holds 2097152 bytes in all" in message
        first.input_buffer(0)[:1] = 1  # the first one is untouched
        first.start(0, 1)
        assert np.array_equal(first.wait(0).top5, FakeModel.expected(np.full((1, 224, 224, 3), 1, np.int8)))
    finally:
        first.close()
    assert card.live_bos() == []


def test_results_equal_the_cpu_model(card: emu.EmulatedDevice, settings: BackendSettings, int8_model: Path,
                                     photo_tensors: dict[str, np.ndarray]) -> None:
    from vidpipe.hw.cpu import CpuBackend, CpuModel

    card.classify = None  # the real kernel stand-in: CpuModel, created by the card on first use
    x = np.concatenate([np.stack(list(photo_tensors.values()))[:6], _images(2, 5)])
    timings = {}
    emulated, cpu = AlveoBackend(replace(settings, max_batch=8)), CpuBackend(replace(settings, name="cpu", max_batch=8))
    for backend in (emulated, cpu):
        backend.open()
        try:
            backend.input_buffer(0)[:] = x
            backend.start(0, 8)
            backend.wait(0)  # first batch loads the model
            t0 = time.perf_counter()
            backend.start(0, 8)
            timings[backend.name] = (backend.wait(0).top5, (time.perf_counter() - t0) / 8 * 1000)
        finally:
            backend.close()
    assert np.array_equal(timings["alveo-emu"][0], timings["cpu"][0])
    assert np.array_equal(timings["cpu"][0], CpuModel(int8_model).classify(x)[0])
    print(f"ms/image: alveo-emu {timings['alveo-emu'][1]:.2f}, cpu {timings['cpu'][1]:.2f}")


def _open_error(settings: BackendSettings, index: int = 0) -> tuple[str, AlveoBackend]:
    backend = AlveoBackend(settings, index)
    with pytest.raises(BackendError) as info:
        backend.open()
    assert "\n" not in str(info.value)
    return str(info.value), backend


def test_configuration_errors(card: emu.EmulatedDevice, settings: BackendSettings, files: dict[str, Path]) -> None:
    def with_alveo(**changes: Any) -> BackendSettings:
        return replace(settings, alveo=replace(settings.alveo, **changes))

    missing = files["dir"] / "nope.xclbin"
    assert f"xclbin {missing} (alveo.xclbin) not found" in _open_error(with_alveo(xclbin=str(missing)))[0]
    not_xclbin = files["dir"] / "not.xclbin"
    not_xclbin.write_bytes(b"PK\x03\x04" * 100)
    assert f"{not_xclbin} (alveo.xclbin) is not an xclbin" in _open_error(with_alveo(xclbin=str(not_xclbin)))[0]
    assert "kernel 'resnet50_2' (alveo.kernel)" in _open_error(with_alveo(kernel="resnet50_2"))[0]
    assert "it has resnet50_1" in _open_error(with_alveo(kernel="resnet50_2"))[0]
    message = _open_error(with_alveo(fc_target="bank0"))[0]  # the old default: the release's port reaches PLRAM only
    assert "alveo.fc_target is bank0, but" in message and "argument 'weightsmem' to PLRAM0 only" in message
    assert "argument 'in' to bank0 only" in _open_error(with_alveo(io_target="bank2"))[0]
    message = _open_error(with_alveo(devices=(-1,)))[0]  # emulating, as many cards as the indices name
    assert "backend.alveo.devices[0] is -1, but pynq sees 1 card(s): 0: xilinx_u250_xdma_201830_2 (emulated0)" \
        in message
    assert "no Alveo device found by pynq" in _open_error(replace(settings, name="alveo"))[0]
    bad = files["dir"] / "bad.npy"
    np.save(bad, np.zeros((1000, 2047), np.int8))
    assert f"FC weights file {bad}: shape (1000, 2047)" in _open_error(with_alveo(fc_weights=str(bad)))[0]
    assert card.live_bos() == []
    explicit = AlveoBackend(with_alveo(fc_target="PLRAM0", io_target="bank0"))  # the release's own targets
    explicit.open()
    explicit.close()


def test_pynq_missing_broken_or_without_alveo(settings: BackendSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pynq.__version__ == "3.0.1"
    monkeypatch.setattr(pynq, "__version__", "3.1.2")
    assert "pynq 3.1.2 is installed, the alveo backend needs pynq 3.0.x" in _open_error(settings)[0]
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "pynq.lib", None)
    assert "pynq.lib fails to import" in _open_error(settings)[0]
    monkeypatch.setitem(sys.modules, "pynq", None)
    assert "needs pynq, which failed to import" in _open_error(settings)[0]


def test_close_frees_everything_also_after_a_failed_open(card: emu.EmulatedDevice, settings: BackendSettings) -> None:
    message, backend = _open_error(replace(settings, max_batch=120_000))  # 18 GB of input: bank0 is 16 GiB
    assert "cannot allocate (120000, 224, 224, 3) int8 (18063360000 bytes) in bank0 of alveo-emu:0" in message
    assert card.live_bos() == [] and len(card.log.calls("free_bo")) == 1 and backend.overlay is None
    backend.close()
    ok = AlveoBackend(settings)
    ok.open()
    buffers = [ok.fcbuf, *ok.inbufs, *ok.outbufs]
    ok.close()
    ok.close()
    assert card.live_bos() == [] and all(b.freed for b in buffers)
    assert len(card.log.calls("free_bo")) == 1 + len(buffers)
    with pytest.raises(BackendError, match="before open"):
        ok.start(0, 1)


def test_kernel_failure_and_misuse(backend: AlveoBackend, model: FakeModel, card: emu.EmulatedDevice) -> None:
    model.fail = True
    backend.start(0, 1)
    message = "alveo-emu:0: resnet50_1 failed on batch 1 (1 images): RuntimeError: Execution failed: 5 " \
        "(ERT_CMD_STATE_ERROR)"
    with pytest.raises(BackendError, match=re.escape(message)):
        backend.wait(0)  # pynq's wait() returns on a failed command: the backend reads the outcome
    assert [c.detail for c in card.log.calls("cu_error")] == ["resnet50_1: model exploded"]
    with pytest.raises(BackendError, match="not started"):
        backend.wait(1)
    with pytest.raises(BackendError, match="max_batch is 4"):
        backend.start(1, 5)
    model.fail = False
    backend.start(1, 1)
    with pytest.raises(BackendError, match="before wait"):
        backend.start(1, 1)


def test_default_paths_generate_the_emulated_xclbin_and_weights(
    card: emu.EmulatedDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no fcweights.csv / resnet50.xclbin here
    backend = AlveoBackend(BackendSettings(name="alveo", alveo=AlveoSettings(emulate=True)))
    backend.open()
    try:
        assert backend.name == "alveo-emu" and backend.xclbin == tmp_path / "emulated" / "resnet50.xclbin"
        assert (tmp_path / "emulated" / "fcweights.npy").is_file()
        assert len(backend.class_names()) == 1000
    finally:
        backend.close()


@pytest.mark.filterwarnings("ignore:No devices found")
def test_enable_and_disable_control_what_pynq_sees() -> None:
    emu.disable()
    assert not any(isinstance(d, emu.EmulatedDevice) for d in pynq.Device.devices)
    two = emu.enable(2)
    assert [d for d in pynq.Device.devices if isinstance(d, emu.EmulatedDevice)] == two
    assert emu.enable(1) == two[:1]
    emu.disable()
    assert not any(isinstance(d, emu.EmulatedDevice) for d in pynq.Device.devices)
