"""The emulated card under pynq 3.0.1 directly (no backend): pynq's Overlay, DefaultIP start/call
through the ERT, ErtWaitHandle, allocate, sliced syncs and freebuffer against the emulated
XRT calls, with XRT's checks (shell, uuid, contexts, live buffers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pynq
import pytest
from pynq.pl_server.xrt_device import ErtWaitHandle, XrtMemory

import vidpipe.hw.emulated as emu
from tests.hw.conftest import FakeModel
from vidpipe.hw.alveo_pynq import kernel_driver

IMAGE = 224 * 224 * 3


@pytest.fixture
def overlay(card: emu.EmulatedDevice, files: dict[str, Path]) -> Iterator[Any]:
    kernel_driver()
    ol = pynq.Overlay(str(files["xclbin"]), device=card)
    yield ol
    ol.free()


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, 224, 224, 3), dtype=np.int8)


def _failure(handle: ErtWaitHandle) -> BaseException | None:
    future: asyncio.Future[None] = handle._future
    return future.exception()


def test_card_copy_semantics_a_missing_sync_reads_stale_data(card: emu.EmulatedDevice, overlay: Any) -> None:
    accel = overlay.resnet50_1
    assert type(accel).__mro__[1] is pynq.DefaultIP and accel.start == accel.start_ert  # pynq's own ERT path
    assert "in_" in str(accel.signature) and {"bank0", "PLRAM0"} <= set(dir(overlay))
    assert type(overlay.bank0) is XrtMemory
    with pynq.allocate((1000, 2048), dtype=np.int8, target=overlay.PLRAM0) as fc, \
            pynq.allocate((2, 224, 224, 3), dtype=np.int8, target=overlay.bank0) as inb, \
            pynq.allocate((2, 5), dtype=np.uint32, target=overlay.bank0) as outb:
        handle = accel.start(inb, outb, fc, 1)
        assert isinstance(handle, ErtWaitHandle)
        handle.wait()  # pynq's wait() returns on a failed command too: the outcome is in its future
        assert str(_failure(handle)) == "Execution failed: 5"
        assert "never synced" in card.log.calls("cu_error")[-1].detail
        fc.sync_to_device()
        inb[:] = _images(2, 4)  # host side only: no sync_to_device
        accel.call(inb, outb, fc, 2)
        assert not outb.any()  # results stay on the card until sync_from_device
        outb.sync_from_device()
        assert np.array_equal(outb, FakeModel.expected(np.zeros((2, 224, 224, 3), np.int8)))
        inb[1:].sync_to_device()  # a slice syncs exactly its own bytes
        assert card.log.calls("flush")[-1].offset == IMAGE and card.log.calls("flush")[-1].size == IMAGE
        assert accel.register_map.CTRL.AP_IDLE == 1
        assert (overlay.bank0.num_buffers, overlay.bank0.mem_used) == (2, 2 * IMAGE + 2 * 5 * 4)
    assert card.live_bos() == [] and fc.freed and not hasattr(fc, "pointer")  # pynq's munmap + xclFreeBO path


def test_plain_default_ip_cannot_drive_the_release_kernel(card: emu.EmulatedDevice, overlay: Any) -> None:
    description = {**overlay.ip_dict["resnet50_1"], "device": card}
    with pytest.raises(ValueError, match="'in' is not a valid parameter name"):
        pynq.DefaultIP(description)


def test_the_sw_path_needs_an_exclusive_context_and_waitfor_is_refused(card: emu.EmulatedDevice, overlay: Any) -> None:
    accel = overlay.resnet50_1
    with pynq.allocate((1000, 2048), dtype=np.int8, target=overlay.PLRAM0) as fc, \
            pynq.allocate((1, 224, 224, 3), dtype=np.int8, target=overlay.bank0) as inb, \
            pynq.allocate((1, 5), dtype=np.uint32, target=overlay.bank0) as outb:
        fc.sync_to_device()
        inb[:] = 3
        inb.sync_to_device()
        accel.start_sw(inb, outb, fc, 1).wait()  # registers over MMIO under pynq's shared context: refused
        outb.sync_from_device()
        assert not outb.any() and card.log.calls("cu_start") == []  # never ran, and nobody said so
        assert "shared CU context" in card.log.calls("register_write_refused")[0].detail
        (cu_name,) = card.contexts
        card.close_context(cu_name)
        card.open_context(dict(overlay.ip_dict["resnet50_1"]), shared=False)
        accel.start_sw(inb, outb, fc, 1).wait()  # exclusive: AP_START, poll AP_IDLE
        outb.sync_from_device()
        assert np.array_equal(outb, FakeModel.expected(np.full((1, 224, 224, 3), 3, np.int8)))
        first = accel.start(inb, outb, fc, 1)
        with pytest.raises(RuntimeError, match="not supported by XRT anymore"):
            accel.start(inb, outb, fc, 1, waitfor=[first])
        first.wait()
        assert _failure(first) is None


def test_download_checks_shell_and_live_buffers(card: emu.EmulatedDevice, overlay: Any, tmp_path: Path) -> None:
    other_shell = tmp_path / "u280.xclbin"
    other_shell.write_bytes(emu.build_xclbin(shell="xilinx_u280_xdma_201920_3"))
    with pytest.raises(RuntimeError, match=r"Programming Device failed: \w+ \(95\) .*/Shell does not match"):
        pynq.Overlay(str(other_shell), device=card)
    other_build = tmp_path / "rebuilt.xclbin"
    other_build.write_bytes(emu.build_xclbin(build="2"))
    with pynq.allocate((4,), dtype=np.uint32, target=overlay.bank0) as buf:
        again = pynq.Overlay(str(overlay.bitfile_name), device=card)  # the same design: buffers stay
        assert again.resnet50_1 is not None and card.live_bos()[0].address == buf.device_address
        with pytest.raises(RuntimeError, match=r"EPERM.*Possibly buffers still allocated"):
            pynq.Overlay(str(other_build), device=card)
    rebuilt = pynq.Overlay(str(other_build), device=card)  # no buffers left: it loads
    assert rebuilt.resnet50_1.cu_mask == 1 and len(card.log.calls("download")) == 2


def test_close_then_reopen_gets_a_new_handle(card: emu.EmulatedDevice, files: dict[str, Path]) -> None:
    kernel_driver()
    first = card.handle
    ol = pynq.Overlay(str(files["xclbin"]), device=card)
    accel, fc = ol.resnet50_1, pynq.allocate((1000, 2048), dtype=np.int8, target=ol.bank0)
    ol.free()
    assert card.handle is None and card.contexts == {}
    with pytest.raises(RuntimeError, match="Allocate failed"):
        card.allocate_bo(64, 0)
    with pytest.raises(RuntimeError, match="Buffer submit failed: -22"):
        accel.start(fc, fc, fc, 0)
    fc.freebuffer()  # still works: pynq unmaps, the card frees
    assert card.live_bos() == []
    ol = pynq.Overlay(str(files["xclbin"]), device=card)
    assert card.handle is not None and card.handle != first
    ol.free()
