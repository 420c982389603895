"""The emulated U250 as a pynq 3.0.1 `XrtDevice` whose libxrt calls are emulated.

pynq enumerates devices through `DeviceMeta`: every Device subclass with a `_probe_` is asked
for its devices when `pynq.Device.devices` is first read, in `_probe_priority_` order. This
class probes to nothing until `hw.emulated.enable()` asks for cards, so nobody sees it by
accident; once enabled, its devices appear in `pynq.Device.devices` after the real ones.

It is pynq's XrtDevice with exactly the methods that call libxrt replaced. pynq's own code
stays: `get_bitfile_metadata` (the XclBin parser), `download` (reads the file, then
`_xrt_download`, then `post_download`), `get_memory` / `default_memory` (XrtMemory),
`return_exec_bo`, `name` (from the device info), and above it Overlay, driver binding,
DefaultIP's ERT start/call, `allocate`, PynqBuffer's syncs and free, ErtWaitHandle.

What pynq calls, and which XRT call it stands in for:
  Overlay(path, device=dev)   -> _xrt_download: xclLoadXclBin (magic, shell, uuid, live buffers)
  ol.resnet50_1               -> open_context: xclIPName2Index, xclOpenContext
  pynq.allocate(target=mem)   -> allocate_bo (xclAllocBO), map_bo (xclMapBO), get_device_address
  buf[a:b].sync_to_device()   -> flush(bo, offset, ptr, size): xclSyncBO to the device
  buf[a:b].sync_from_device() -> invalidate(bo, offset, ptr, size): xclSyncBO from the device
  buf.freebuffer()            -> munmap, then xrt.xclFreeBO -> free_bo (memory.install_free_hook)
  accel.start(...)            -> get_exec_bo (exec BO), execute_bo (xclExecBuf)
  handle.wait()               -> _handle_events: xclExecWait, then pynq's completion scan
  register_map / MMIO         -> read_registers / write_registers (xclRead / xclWrite)
  ol.free()                   -> free_bitstream (xclCloseContext), close (xclClose)
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from pynq._3rdparty import xclbin
from pynq.pl_server.device import Device
from pynq.pl_server.xclbin_parser import XclBin
from pynq.pl_server.xrt_device import REQUIRED_VERSION_ERT, XrtDevice, XrtUUID, _format_xrt_error, xclDeviceUsage

from vidpipe.hw.base import U250_SHELL, is_resnet50_kernel
from vidpipe.hw.emulated.ert import ErtScheduler
from vidpipe.hw.emulated.kernel import Classify, ComputeUnit, arg_registers
from vidpipe.hw.emulated.memory import BankAllocator, CallLog, EmulatedBO, host_pages, install_free_hook, map_host

log = logging.getLogger(__name__)
XRT_VERSION = (2, 12, 427)  # the XRT this card behaves like (2021.2): >= 2.11, no waitfor
HANG_ENV = "VIDPIPE_EMULATED_HANG_AFTER"  # test hook, see EmulatedDevice.hang_after

install_free_hook()


@dataclass(frozen=True)
class _Handle:
    """What xclOpen returns for the emulated card (XrtDevice keeps it in `.handle`)."""

    tag: str
    serial: int


@dataclass
class _Card:
    """What the card holds after xclLoadXclBin: the design's memories, CUs and register files."""

    uuid: str
    ip_dict: dict[str, Any]
    banks: dict[int, BankAllocator]
    cus: dict[int, ComputeUnit]  # by CU index
    regfiles: dict[str, bytearray]

    def cu_named(self, name: str) -> ComputeUnit | None:
        return next((cu for cu in self.cus.values() if cu.name == name), None)


class EmulatedDevice(ErtScheduler, XrtDevice):
    """A U250 whose DDR is host memory and whose resnet50 kernel runs the CPU model."""

    _probe_priority_ = 900  # after real devices (embedded 50, xrt 200)

    @classmethod
    def _probe_(cls) -> list[EmulatedDevice]:
        return list(_enabled)

    def __init__(self, index: int) -> None:
        Device.__init__(self, f"emulated{index}")  # not XrtDevice.__init__: that opens libxrt
        self.emulate_xrt_version(XRT_VERSION)
        self._index = index
        self._serial = 0
        self.handle: _Handle | None = None
        self._get_handle()
        self.emulate_shell(U250_SHELL)
        self.contexts: dict[str, dict[str, Any]] = {}
        self.sysfs_path = None
        self.active_bos: list[tuple[Any, Any]] = []
        self._bo_cache: list[Any] = []
        self._loop = asyncio.get_event_loop()  # as XrtDevice.__init__: raises in a thread with no loop
        self._streams: dict[int, Any] = {}
        self.log = CallLog()
        self.classify: Classify | None = None  # None: hw.cpu.CpuModel, created on first use
        self._lock = threading.Lock()
        self._completions = threading.Condition()
        self._unseen = 0  # completed commands no xclExecWait has returned for yet
        self._card: _Card | None = None
        self._bos: dict[int, EmulatedBO] = {}
        self._next_bo = 1
        hang = os.environ.get(HANG_ENV, "")
        self._hang_in: int | None = int(hang) if hang.isdigit() else None

    def __repr__(self) -> str:
        return f"<EmulatedDevice {self.tag} {self.name}>"

    # -- test hooks: a card unlike the default one -------------------------------------
    def emulate_shell(self, shell: str) -> None:
        """The shell (platform) the card runs: its `name`, and what xclbins it accepts."""
        self.shell = shell
        self._info = xrt_info(shell)

    def emulate_xrt_version(self, version: tuple[int, int, int]) -> None:
        """The XRT version pynq would have read: below 2.3, pynq enables no ERT on the device
        (XrtDevice.__init__), so DefaultIP.start falls back to register writes."""
        self.xrt_version = version
        self.capabilities = {"REGISTER_RW": True, "CALLABLE": True}
        if version >= REQUIRED_VERSION_ERT:
            self.capabilities["ERT"] = True

    def hang_after(self, commands: int | None) -> None:
        """The CU completes `commands` more commands, then hangs on the next one and on every one
        after it (as a stuck card does until reset); None: never. The environment variable
        VIDPIPE_EMULATED_HANG_AFTER=N does the same for every card created in the process."""
        with self._lock:
            self._hang_in = commands

    def hangs_now(self) -> bool:
        """Asked by the CU for each command it takes."""
        with self._lock:
            if self._hang_in is None or self._hang_in == 0:
                return self._hang_in == 0
            self._hang_in -= 1
            return False

    def _get_handle(self) -> None:
        self._serial += 1
        self.handle = _Handle(self.tag, self._serial)

    @property
    def device_info(self) -> Any:
        return self._info

    # -- programming ---------------------------------------------------------------------
    def _xrt_download(self, data: bytes) -> None:
        old_contexts, self.contexts = self.contexts, {}  # XrtDevice closes the CU contexts first
        if not self.handle:
            self._get_handle()
        err = self._load_xclbin(bytes(data))
        if err:
            self.contexts = old_contexts
            raise RuntimeError("Programming Device failed: " + _format_xrt_error(err))
        self.classifier()  # a card's model comes with its bitstream: loaded here, not by the first batch

    def _load_xclbin(self, data: bytes) -> int:
        """xclLoadXclBin: 0, or a negative errno as XRT returns it."""
        try:
            header = xclbin.axlf.from_buffer_copy(data[: ctypes.sizeof(xclbin.axlf)])
            parser = XclBin(xclbin_data=bytearray(data))
        except Exception as exc:
            log.debug("%s: xclbin rejected: %s", self.tag, exc)
            return -errno.EINVAL
        if header.m_magic != b"xclbin2":
            return -errno.EINVAL
        shell = bytes(header.m_header.m_platformVBNV).rstrip(b"\0").decode(errors="replace")
        if shell != self.shell:
            return -errno.EOPNOTSUPP  # "Shell does not match"
        uuid = bytes(header.m_header.uuid).hex()
        with self._lock:
            if self._card is not None and self._card.uuid == uuid:
                return 0  # already on the card: XRT keeps it, and the buffers in it
            if any(bo.card is not None for bo in self._bos.values()):
                return -errno.EPERM  # "Possibly buffers still allocated"
            old, self._card = self._card, self._program(uuid, parser)
        for cu in old.cus.values() if old else ():
            cu.stop()
        self.log.add("download", detail=f"{shell} {uuid}")
        return 0

    def _program(self, uuid: str, parser: XclBin) -> _Card:
        mems = parser.mem_dict.items()
        banks = {m["idx"]: BankAllocator(tag, m["base_address"], m["size"]) for tag, m in mems
                 if m["used"] and not m["streaming"]}
        cus = {ip["cu_index"]: ComputeUnit(self, name, ip["cu_index"], arg_registers(ip["registers"]))
               for name, ip in parser.ip_dict.items() if is_resnet50_kernel(ip)}  # what its "firmware" runs
        regfiles = {name: bytearray(ip["addr_range"]) for name, ip in parser.ip_dict.items()}
        return _Card(uuid, parser.ip_dict, banks, cus, regfiles)

    def free_bitstream(self) -> None:
        self.contexts = {}  # xclCloseContext for each

    def close(self) -> None:
        """xclClose: the CUs finish what is queued and their threads end; the handle is gone."""
        for cu in self._card.cus.values() if self._card else ():
            cu.stop()
        self.handle = None

    # -- compute unit contexts -----------------------------------------------------------
    def open_context(self, description: dict[str, Any], shared: bool = True) -> int:
        cu_name = description["cu_name"]
        context = self.contexts.get(cu_name)
        if context:
            return int(context["idx"])
        cu_index = self._ip_name_to_index(cu_name)  # XRT >= 2.6 names the index itself
        description["cu_index"] = cu_index
        uuid = bytes.fromhex(description["xclbin_uuid"])
        err = self._open_context(uuid, cu_index)
        if err:
            raise RuntimeError(f"Could not open CU context - {err}, {cu_index}")
        uuid_ctypes = XrtUUID((ctypes.c_char * 16).from_buffer_copy(uuid))
        self.contexts[cu_name] = {"cu": cu_name, "idx": cu_index, "uuid_ctypes": uuid_ctypes, "shared": shared}
        return cu_index

    def close_context(self, cu_name: str) -> None:
        if cu_name not in self.contexts:
            raise RuntimeError(f"CU context ({cu_name}) is not open.")
        self.contexts.pop(cu_name)

    def _ip_name_to_index(self, cu_name: str) -> int:
        ips = self._card.ip_dict.values() if self._card else ()
        return next((int(ip["cu_index"]) for ip in ips if ip.get("cu_name") == cu_name), -errno.ENOENT)

    def _open_context(self, uuid: bytes, cu_index: int) -> int:
        if not self.handle or self._card is None or cu_index < 0:
            return -errno.EINVAL
        return 0 if self._card.uuid == uuid.hex() else -errno.EINVAL  # another xclbin is loaded

    # -- memory --------------------------------------------------------------------------
    def allocate_bo(self, size: int, idx: int, cacheable: int = 0) -> EmulatedBO:
        with self._lock:
            bank = self._card.banks.get(idx) if self._card and self.handle else None
            if bank is None:
                raise RuntimeError(f"Allocate failed: no memory with index {idx} in the loaded xclbin")
            if size <= 0:
                raise RuntimeError(f"Allocate failed: size {size}")
            address = bank.place(size)
            bo = self._new_bo(size, bank.tag, address)
        self.log.add("allocate_bo", bo=bo.handle, mem=bo.mem, size=size, detail=f"{address:#x}")
        return bo

    def _new_bo(self, size: int, mem: str, address: int) -> EmulatedBO:
        handle, self._next_bo = self._next_bo, self._next_bo + 1
        card = np.zeros(size, np.uint8) if mem else None
        fd, view = host_pages(size, f"{self.tag}-bo{handle}")
        bo = EmulatedBO(handle, mem, address, size, fd, view, card, self.free_bo)
        self._bos[handle] = bo
        return bo

    def map_bo(self, bo: EmulatedBO) -> Any:
        return (ctypes.c_char * bo.size).from_address(map_host(bo))

    def get_device_address(self, bo: EmulatedBO) -> int:
        return bo.address

    def free_bo(self, bo: EmulatedBO) -> None:
        """xclFreeBO (pynq calls it after unmapping its view of the BO)."""
        with self._lock:
            if bo.freed:
                return
            bo.freed = True
            self._bos.pop(bo.handle, None)
            for bank in self._card.banks.values() if self._card and bo.card is not None else ():
                if bank.tag == bo.mem:
                    bank.release(bo.address)
        bo.unmap()
        if bo.card is not None:
            self.log.add("free_bo", bo=bo.handle, mem=bo.mem, size=bo.size)

    def live_bos(self) -> list[EmulatedBO]:
        """The buffers allocated in the card's memories (exec BOs not included)."""
        with self._lock:
            return [bo for bo in self._bos.values() if bo.card is not None]

    def get_usage(self) -> Any:
        usage = xclDeviceUsage()
        tags = {bank.tag: idx for idx, bank in self._card.banks.items()} if self._card else {}
        for bo in self.live_bos():
            idx = tags.get(bo.mem, 8)
            if idx < 8:
                usage.ddrMemUsed[idx] += bo.size
                usage.ddrBOAllocated[idx] += 1
        return usage

    def _checked(self, what: str, bo: EmulatedBO, offset: int, size: int) -> np.ndarray:
        if not self.handle:
            raise RuntimeError(f"{what} Failed: the device is closed")
        if bo.freed or bo.card is None:
            raise RuntimeError(f"{what} Failed: BO {bo.handle} is not a live buffer in card memory")
        if offset < 0 or size < 0 or offset + size > bo.size:
            raise RuntimeError(f"{what} Failed: [{offset}, {offset + size}) outside BO of {bo.size} bytes")
        return bo.card

    def flush(self, bo: EmulatedBO, offset: int, ptr: int, size: int) -> None:
        self._checked("Flush", bo, offset, size)[offset : offset + size] = bo.host(offset, size)
        bo.mark_synced(offset, offset + size)
        self.log.add("flush", bo=bo.handle, mem=bo.mem, offset=offset, size=size)

    def invalidate(self, bo: EmulatedBO, offset: int, ptr: int, size: int) -> None:
        card = self._checked("Invalidate", bo, offset, size)
        bo.host(offset, size)[:] = card[offset : offset + size]
        self.log.add("invalidate", bo=bo.handle, mem=bo.mem, offset=offset, size=size)

    def buffer_write(self, bo: EmulatedBO, bo_offset: int, buf: Any, buf_offset: int = 0, count: int = -1) -> None:
        view = memoryview(buf).cast("B")[buf_offset:] if count == -1 else memoryview(buf).cast("B")[buf_offset:][:count]
        self._checked("Buffer Write", bo, bo_offset, len(view))[bo_offset : bo_offset + len(view)] = view
        bo.mark_synced(bo_offset, bo_offset + len(view))

    def buffer_read(self, bo: EmulatedBO, bo_offset: int, buf: Any, buf_offset: int = 0, count: int = -1) -> None:
        view = memoryview(buf).cast("B")[buf_offset:] if count == -1 else memoryview(buf).cast("B")[buf_offset:][:count]
        if view.readonly:
            raise RuntimeError("Buffer not writable")
        view[:] = self._checked("Buffer Read", bo, bo_offset, len(view))[bo_offset : bo_offset + len(view)].tobytes()

    def bo_at(self, address: int, size: int) -> tuple[EmulatedBO, int]:
        """The live BO holding [address, address+size) and the offset in it (what the CU's
        AXI master would reach); an error if no single BO holds it."""
        with self._lock:
            for bo in self._bos.values():
                if bo.card is not None and bo.address <= address and address + size <= bo.address + bo.size:
                    return bo, address - bo.address
        raise RuntimeError(f"no allocated buffer holds [{address:#x}, {address + size:#x})")

    # -- execution: ErtScheduler ------------------------------------------------------------
    def report_error(self, cu_name: str, exc: BaseException) -> None:
        """A command failed: XRT only sets its state to ERROR; the reason goes to the log."""
        self.log.add("cu_error", detail=f"{cu_name}: {exc}")
        log.error("%s: %s failed: %s", self.tag, cu_name, exc)

    def classifier(self) -> Classify:
        """The CPU model behind the kernel, created once per device on first use."""
        with self._lock:
            if self.classify is None:
                from vidpipe.hw.cpu import CpuModel

                self.classify = CpuModel().classify
            return self.classify


def xrt_info(shell: str) -> Any:
    """The xclDeviceInfo2 XrtDevice reads its name (the shell, as XRT reports it) from."""
    from pynq._3rdparty import xrt

    info = xrt.xclDeviceInfo2()
    info.mName = shell.encode()
    info.mVendorId, info.mDeviceId = 0x10EE, 0x5005  # Xilinx, U250
    info.mDDRBankCount, info.mDDRSize = 4, 64 << 30
    return info


_enabled: list[EmulatedDevice] = []
_enable_lock = threading.Lock()


def enable(count: int = 1, classify: Classify | None = None) -> list[EmulatedDevice]:
    """Make `count` emulated cards visible in pynq.Device.devices; returns them.

    `classify` replaces the CPU model behind the kernel (tests inject a fake)."""
    with _enable_lock:
        while len(_enabled) < count:
            dev = EmulatedDevice(len(_enabled))
            _enabled.append(dev)
            if "_devices" in vars(Device):  # pynq already probed and cached the list: add to it
                vars(Device)["_devices"].append(dev)
        if classify is not None:
            for dev in _enabled[:count]:
                dev.classify = classify
        return list(_enabled[:count])


def disable() -> None:
    """Remove every emulated card from pynq.Device.devices and stop their compute units."""
    with _enable_lock:
        for dev in _enabled:
            dev.close()
            cached = vars(Device).get("_devices", [])
            if dev in cached:
                cached.remove(dev)
            if vars(Device).get("_active_device") is dev:
                delattr(Device, "_active_device")
        _enabled.clear()


def emulated_devices() -> list[EmulatedDevice]:
    """The enabled emulated cards, in index order."""
    with _enable_lock:
        return list(_enabled)
