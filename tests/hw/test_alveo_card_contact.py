"""What a real U250 would show on first contact, on the emulated card: a hung kernel, a card with
another shell, cards picked by shell name, pynq without ERT, and device probing from a thread
with no event loop (pynq's XrtDevice, on a stand-in for libxrt)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pynq
import pytest
from pynq._3rdparty import xrt
from pynq.pl_server.device import Device

import vidpipe.hw.emulated as emu
from tests.hw.conftest import FakeModel
from vidpipe.hw import alveo_cards
from vidpipe.hw.alveo import AlveoBackend
from vidpipe.hw.alveo_cards import real_devices
from vidpipe.hw.base import U250_SHELL
from vidpipe.hw.emulated.xclbin import ARGS, build_xclbin
from vidpipe.hw.registry import list_devices
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.pipeline.errors import BackendError

U280_SHELL = "xilinx_u280_xdma_201920_3"


@pytest.fixture
def settings(files: dict[str, Path]) -> BackendSettings:
    alveo = AlveoSettings(xclbin=str(files["xclbin"]), fc_weights=str(files["fc"]), wait_timeout_s=0.5,
                          wait_timeout_per_image_s=0.05)
    return BackendSettings(name="alveo-emu", max_batch=4, buffer_sets=2, alveo=alveo)


def _with_devices(settings: BackendSettings, *devices: int | str) -> BackendSettings:
    return replace(settings, alveo=replace(settings.alveo, devices=devices))


def _open_error(settings: BackendSettings, slot: int = 0) -> str:
    with pytest.raises(BackendError) as info:
        AlveoBackend(settings, slot).open()
    assert "\n" not in str(info.value)
    return str(info.value)


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    return action(), time.monotonic() - t0


def test_a_hung_kernel_is_one_line_naming_card_and_batch(card: emu.EmulatedDevice, settings: BackendSettings) -> None:
    backend = AlveoBackend(settings)
    backend.open()
    card.hang_after(1)  # batch 1 runs, batch 2 hangs, batch 3 queues behind it
    backend.input_buffer(0)[:2] = 5
    backend.start(0, 2)
    assert np.array_equal(backend.wait(0).top5, FakeModel.expected(np.full((2, 224, 224, 3), 5, np.int8)))
    backend.start(0, 3)
    backend.start(1, 1)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend.wait(0)
    assert 0.65 - 0.05 <= time.monotonic() - t0 < 0.65 + 1.0  # the deadline: 0.5 s + 3 x 0.05 s
    message = str(info.value)
    assert message.startswith("alveo-emu:0 (emulated0, xilinx_u250_xdma_201830_2): resnet50_1 did not finish batch 2 "
                              "(3 images, buffer set 0) within 0.65 s")
    assert "the kernel hangs" in message and "\n" not in message
    assert (info.value.device, info.value.batch) == ("alveo-emu:0", 2)  # type: ignore[attr-defined]
    assert card.log.calls("cu_hang")
    with pytest.raises(BackendError, match="the kernel hangs since batch 2"):
        backend.start(0, 1)
    kept = {backend.fcbuf.bo.handle, backend.inbufs[0].bo.handle, backend.outbufs[0].bo.handle,
            backend.inbufs[1].bo.handle, backend.outbufs[1].bo.handle}
    _, closing = _timed(backend.close)
    assert closing < 0.5  # batch 3 sits behind the hung one: close() does not wait for it
    assert {bo.handle for bo in card.live_bos()} == kept  # the stuck kernel may still touch them: left to XRT


def test_close_waits_for_a_running_batch_only_until_its_deadline(card: emu.EmulatedDevice,
                                                                 settings: BackendSettings) -> None:
    backend = AlveoBackend(settings)
    backend.open()
    card.hang_after(0)
    backend.start(1, 4)
    _, closing = _timed(backend.close)
    assert 0.7 - 0.05 <= closing < 0.7 + 1.0  # 0.5 s + 4 x 0.05 s
    card.hang_after(None)
    emu.disable()  # closing the device ends the hung command (ABORT): its CU thread is gone
    assert not [t for t in threading.enumerate() if t.name.startswith("emulated-")]


def test_the_hang_hook_from_the_environment(monkeypatch: pytest.MonkeyPatch, settings: BackendSettings) -> None:
    emu.disable()
    monkeypatch.setenv(emu.HANG_ENV, "0")
    (device,) = emu.enable(1, classify=FakeModel())
    backend = AlveoBackend(settings)
    try:
        backend.open()
        backend.start(0, 1)
        with pytest.raises(BackendError, match="did not finish batch 1"):
            backend.wait(0)
    finally:
        backend.close()
        emu.disable()
    assert device.log.calls("cu_hang") and not device.log.calls("cu_start")


def test_a_card_with_another_shell_is_refused_before_download(card: emu.EmulatedDevice,
                                                              settings: BackendSettings) -> None:
    card.emulate_shell(U280_SHELL)
    message = _open_error(settings)
    assert message == (f"card 0 (emulated0) runs shell {U280_SHELL}, but {settings.alveo.xclbin} is built for "
                       f"{U250_SHELL}: choose a card that can run it in backend.alveo.devices "
                       "(`vidpipe devices` lists them)")
    assert card.log.calls("download") == []


@pytest.fixture
def u280_and_u250() -> Iterator[list[emu.EmulatedDevice]]:
    emu.disable()
    cards = emu.enable(2, classify=FakeModel())
    cards[0].emulate_shell(U280_SHELL)
    yield cards
    emu.disable()


def test_cards_by_shell_name(u280_and_u250: list[emu.EmulatedDevice], settings: BackendSettings) -> None:
    _, u250 = u280_and_u250
    backend = AlveoBackend(_with_devices(settings, U250_SHELL))
    backend.open()
    try:
        assert backend.device is u250 and backend.card == "alveo-emu:1"
    finally:
        backend.close()
    message = _open_error(_with_devices(settings, 1, U250_SHELL), 1)  # index 1 takes the only U250
    assert message == (f"backend.alveo.devices[1] is '{U250_SHELL}', but no free card has that shell: pynq sees "
                       f"0: {U280_SHELL} (emulated0), 1: {U250_SHELL} (emulated1); taken by other entries: 1")
    assert f"card 0 (emulated0) runs shell {U280_SHELL}" in _open_error(_with_devices(settings, 0))
    assert f"card 0 (emulated0) runs shell {U280_SHELL}" in _open_error(_with_devices(settings, U280_SHELL))


def test_vidpipe_devices_tells_which_cards_can_run_the_xclbin(
    u280_and_u250: list[emu.EmulatedDevice], settings: BackendSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alveo_cards, "real_devices", lambda pynq: u280_and_u250)  # as if they were PCIe cards
    rows = [r for r in list_devices(settings) if r.backend == "alveo"]
    name = Path(settings.alveo.xclbin).name
    assert [(r.name, r.state) for r in rows] == [
        (f"0: {U280_SHELL}", f"pynq 3.0.1 device emulated0; cannot run {name} (built for {U250_SHELL})"),
        (f"1: {U250_SHELL}", f"pynq 3.0.1 device emulated1; can run {name}"),
    ]
    missing = replace(settings, alveo=replace(settings.alveo, xclbin="/nowhere/resnet50.xclbin"))
    assert all("xclbin /nowhere/resnet50.xclbin (alveo.xclbin) not found" in r.state
               for r in list_devices(missing) if r.backend == "alveo")


def test_without_ert_open_is_one_line(card: emu.EmulatedDevice, settings: BackendSettings) -> None:
    card.emulate_xrt_version((2, 2, 0))  # what pynq enables when it reads XRT < 2.3 (or nothing) at import
    message = _open_error(settings)
    assert message.startswith("alveo-emu:0 (emulated0): pynq would start resnet50_1 with register writes, not "
                              "through XRT's ERT scheduler: it read XRT version ")
    assert "needs >= 2.3; source /opt/xilinx/xrt/setup.sh" in message
    assert card.live_bos() == [] and card.log.calls("start") == []


@pytest.fixture
def libxrt_with_one_u250(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The libxrt calls pynq's XrtDevice makes to probe and open a card, answering as a U250 would:
    pynq's own XrtDevice._probe_ and __init__ run (asyncio.get_event_loop() included)."""

    def device_info(handle: Any, info: Any) -> int:
        info.mName = U250_SHELL.encode()
        return 0

    emu.disable()
    monkeypatch.setattr(xrt, "XRT_SUPPORTED", True)
    monkeypatch.setattr(xrt, "xclProbe", lambda: 1, raising=False)
    monkeypatch.setattr(xrt, "xclOpen", lambda index, log, level: 0x100 + index, raising=False)
    monkeypatch.setattr(xrt, "xclGetDeviceInfo2", device_info, raising=False)
    monkeypatch.delattr(Device, "_devices", raising=False)  # probe again; monkeypatch restores the cache
    monkeypatch.delattr(Device, "_active_device", raising=False)
    yield
    for cached in ("_devices", "_active_device"):  # the stand-in card must not outlive the test
        if cached in vars(Device):
            delattr(Device, cached)


def _in_a_new_thread(action: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:  # a fresh thread: no event loop
        return pool.submit(action).result(timeout=60)


def test_probing_works_from_a_thread_with_no_event_loop(libxrt_with_one_u250: None) -> None:
    def bare() -> Any:
        return list(pynq.Device.devices)

    with pytest.raises(RuntimeError, match="There is no current event loop"):
        _in_a_new_thread(bare)  # what pynq 3.0.1 alone does there
    assert vars(Device)["_devices"] == []  # ...and pynq keeps that empty list for the process
    delattr(Device, "_devices")
    (device,) = _in_a_new_thread(lambda: real_devices(pynq))
    assert type(device).__name__ == "XrtDevice" and device.name == U250_SHELL and device.tag == "xrt0"
    assert isinstance(device._loop, asyncio.AbstractEventLoop)


def test_the_backend_runs_from_a_thread_with_no_event_loop(settings: BackendSettings, int8_model: Path,
                                                           photo_tensors: dict[str, np.ndarray]) -> None:
    emu.disable()  # the thread creates the card itself (with the cpu model behind its kernel)

    def run() -> np.ndarray:
        backend = AlveoBackend(settings)
        backend.open()
        try:
            backend.input_buffer(1)[:1] = photo_tensors["chelsea"]
            backend.start(1, 1)
            return backend.wait(1).top5
        finally:
            backend.close()
            emu.disable()

    assert _in_a_new_thread(run)[0, 0] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat


def test_the_release_kernel_under_another_vlnv_is_bound_by_its_name_and_arguments(
    card: emu.EmulatedDevice, settings: BackendSettings, tmp_path: Path
) -> None:
    """pynq binds drivers by exact VLNV: another build of the release's HLS code (its own vendor
    string or version) still gets the release's driver, by its name and argument signature."""
    xclbin = tmp_path / "rebuilt.xclbin"
    xclbin.write_bytes(build_xclbin(vlnv="acme.com:hls:resnet50:2.1", build="rebuilt"))
    backend = AlveoBackend(replace(settings, alveo=replace(settings.alveo, xclbin=str(xclbin))))
    backend.open()
    try:
        backend.input_buffer(0)[:2] = 7
        backend.start(0, 2)
        assert np.array_equal(backend.wait(0).top5, FakeModel.expected(np.full((2, 224, 224, 3), 7, np.int8)))
    finally:
        backend.close()


def test_a_kernel_that_is_not_the_release_is_one_line_naming_what_it_is(
    card: emu.EmulatedDevice, settings: BackendSettings, tmp_path: Path
) -> None:
    other_args = tuple(replace(a, name="weights") if a.name == "weightsmem" else a for a in ARGS)
    xclbin = tmp_path / "other.xclbin"
    xclbin.write_bytes(build_xclbin(vlnv="acme.com:hls:resnet50:2.1", args=other_args, build="other"))
    message = _open_error(replace(settings, alveo=replace(settings.alveo, xclbin=str(xclbin))))
    assert message == (f"{xclbin}: kernel resnet50_1 is acme.com:hls:resnet50:2.1 with arguments (in, out, weights, "
                       "numReps), not the ResNet50-PYNQ kernel (xilinx.com:hls:resnet50:1.0 with arguments (in, out, "
                       "weightsmem, numReps))")
