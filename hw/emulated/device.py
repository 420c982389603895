"""The emulated U250 as a `pynq.Device`.

pynq enumerates devices through `DeviceMeta`: every Device subclass with a `_probe_` is asked
for its devices when `pynq.Device.devices` is first read, in `_probe_priority_` order. This
class probes to nothing until `hw.emulated.enable()` asks for cards, so nobody sees it by
accident; once enabled, its devices appear in `pynq.Device.devices` after the real ones.

What pynq calls on it, and what it does:
  Overlay(path, device=dev)  -> get_bitfile_metadata (pynq's XclBin parser), download
  ol.bank0 / ol.PLRAM0       -> get_memory -> EmulatedMemory (pynq's XrtMemory)
  pynq.allocate(target=mem)  -> allocate_bo, map_bo, get_device_address
  buf[a:b].sync_to_device()  -> flush(bo, offset, ptr, size)      host mirror -> card copy
  buf[a:b].sync_from_device()-> invalidate(bo, offset, ptr, size) card copy -> host mirror
  buf.freebuffer()           -> bo_return.return_pointer -> free_bo
  ol.resnet50_1              -> open_context; the driver's start() -> execute
  MMIO on the CU             -> read_registers / write_registers (CTRL status, AP_START)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from pynq.pl_server.device import Device
from pynq.pl_server.xclbin_parser import XclBin

from hw.emulated.kernel import EMULATED_VLNV, Classify, ComputeUnit, WaitHandle, arg_registers
from hw.emulated.memory import BankAllocator, BoReturn, CallLog, EmulatedBO, EmulatedMemory
from hw.emulated.xclbin import RESNET50_VLNV

DEVICE_NAME = "xilinx_u250_emulated"
_CTRL_START, _CTRL_DONE, _CTRL_IDLE = 0x1, 0x2, 0x4


class EmulatedDevice(Device):
    """A U250 whose DDR is host memory and whose resnet50 kernel runs the CPU model."""

    _probe_priority_ = 900  # after real devices (embedded 50, remote 100, xrt 200)

    @classmethod
    def _probe_(cls) -> list[EmulatedDevice]:
        return list(_enabled)

    def __init__(self, index: int) -> None:
        super().__init__(f"emulated{index}")
        self.index = index
        self.capabilities = {"REGISTER_RW": True, "CALLABLE": True}
        self.log = CallLog()
        self.bo_return = BoReturn(self.free_bo)
        self.classify: Classify | None = None  # None: hw.cpu.CpuModel, created on first use
        self.timestamp = ""
        self.bitfile_name = ""
        self.mem_dict: dict[str, Any] = {}
        self.ip_dict: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._banks: dict[int, BankAllocator] = {}
        self._bos: dict[int, EmulatedBO] = {}
        self._next_bo = 1
        self._cus: dict[str, ComputeUnit] = {}
        self._regfiles: dict[str, bytearray] = {}
        self._uuid = ""

    @property
    def name(self) -> str:
        return DEVICE_NAME

    def __repr__(self) -> str:
        return f"<EmulatedDevice {self.tag} {DEVICE_NAME}>"

    # -- programming -------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False) -> XclBin:
        parser = XclBin(bitfile_name)
        for ip in parser.ip_dict.values():
            if ip["type"] in (RESNET50_VLNV, EMULATED_VLNV):
                ip["type"] = EMULATED_VLNV  # this card's firmware runs resnet50: bind our driver
        return parser

    def gen_cache(self, bitstream: Any, parser: Any = None) -> None:
        pass

    def download(self, bitstream: Any, parser: Any = None) -> None:
        if parser is None:
            parser = self.get_bitfile_metadata(bitstream.bitfile_name)
        uuid = next((ip["xclbin_uuid"] for ip in parser.ip_dict.values()), "")
        with self._lock:
            if uuid != self._uuid:  # the same xclbin again keeps its memory and live buffers, as in XRT
                if self._bos:  # XRT refuses too: "Possibly buffers still allocated"
                    raise RuntimeError(f"cannot load another xclbin on {self.tag}: {len(self._bos)} buffers allocated")
                self._uuid = uuid
                self._banks = {
                    m["idx"]: BankAllocator(tag, m["base_address"], m["size"])
                    for tag, m in parser.mem_dict.items()
                    if not m["streaming"]
                }
        self.close()
        self._cus = {
            name: ComputeUnit(self, name, arg_registers(ip["registers"]))
            for name, ip in parser.ip_dict.items()
            if ip["type"] == EMULATED_VLNV
        }
        self._regfiles = {name: bytearray(ip["addr_range"]) for name, ip in parser.ip_dict.items()}
        self.log.add("download", detail=bitstream.bitfile_name)
        self.post_download(bitstream, parser)

    def close(self) -> None:
        """Let the CUs finish what is queued and stop their threads (Overlay.free() calls this)."""
        for cu in self._cus.values():
            cu.stop()

    # -- memory --------------------------------------------------------------------------
    @property
    def default_memory(self) -> EmulatedMemory:
        active = [m for m in self.mem_dict.values() if m["used"] and not m["streaming"]]
        if len(active) != 1:
            raise RuntimeError("Multiple memories active in design: specify the memory using the `target` parameters")
        return self.get_memory(active[0])

    def get_memory(self, desc: dict[str, Any]) -> EmulatedMemory:
        if desc["streaming"]:
            raise RuntimeError("the emulated card has no streaming connections")
        return EmulatedMemory(self, desc)

    def get_memory_by_idx(self, idx: int) -> EmulatedMemory:
        return self.get_memory(next(m for m in self.mem_dict.values() if m["idx"] == idx))

    def get_memory_by_name(self, name: str) -> EmulatedMemory:
        return self.get_memory(self.mem_dict[name])

    def allocate_bo(self, size: int, idx: int, cacheable: int = 0) -> EmulatedBO:
        with self._lock:
            if idx not in self._banks:
                raise RuntimeError(f"BO allocation failed: no memory with index {idx} (is an xclbin loaded?)")
            if size <= 0:
                raise RuntimeError(f"BO allocation failed: size {size}")
            bank = self._banks[idx]
            address = bank.place(size)
            bo = EmulatedBO(self._next_bo, bank.tag, address, size, np.zeros(size, np.uint8), np.zeros(size, np.uint8))
            self._bos[bo.handle] = bo
            self._next_bo += 1
        self.log.add("allocate_bo", bo=bo.handle, mem=bo.mem, size=size, detail=f"{address:#x}")
        return bo

    def map_bo(self, bo: EmulatedBO) -> Any:
        return bo.host

    def get_device_address(self, bo: EmulatedBO) -> int:
        return bo.address

    def free_bo(self, bo: EmulatedBO) -> None:
        with self._lock:
            if bo.freed:
                return
            bo.freed = True
            self._bos.pop(bo.handle, None)
            for bank in self._banks.values():
                if bank.tag == bo.mem:
                    bank.release(bo.address)
        self.log.add("free_bo", bo=bo.handle, mem=bo.mem, size=bo.size)

    def live_bos(self) -> list[EmulatedBO]:
        with self._lock:
            return list(self._bos.values())

    def _checked(self, what: str, bo: EmulatedBO, offset: int, size: int) -> None:
        if bo.freed:
            raise RuntimeError(f"Buffer {what} Failed: BO {bo.handle} was freed")
        if offset < 0 or offset + size > bo.size:
            raise RuntimeError(f"Buffer {what} Failed: [{offset}, {offset + size}) outside BO of {bo.size} bytes")

    def flush(self, bo: EmulatedBO, offset: int, ptr: int, size: int) -> None:
        self._checked("Flush", bo, offset, size)
        bo.card[offset : offset + size] = bo.host[offset : offset + size]
        bo.mark_synced(offset, offset + size)
        self.log.add("flush", bo=bo.handle, mem=bo.mem, offset=offset, size=size)

    def invalidate(self, bo: EmulatedBO, offset: int, ptr: int, size: int) -> None:
        self._checked("Invalidate", bo, offset, size)
        bo.host[offset : offset + size] = bo.card[offset : offset + size]
        self.log.add("invalidate", bo=bo.handle, mem=bo.mem, offset=offset, size=size)

    def bo_at(self, address: int, size: int) -> tuple[EmulatedBO, int]:
        """The live BO holding [address, address+size) and the offset in it (what the CU's
        AXI master would reach); an error if no single BO holds it."""
        with self._lock:
            for bo in self._bos.values():
                if bo.address <= address and address + size <= bo.address + bo.size:
                    return bo, address - bo.address
        raise RuntimeError(f"no allocated buffer holds [{address:#x}, {address + size:#x})")

    # -- kernels -------------------------------------------------------------------------
    def open_context(self, description: dict[str, Any], shared: bool = True) -> int:
        return int(description["cu_index"])

    def execute(self, cu: str, regs: bytes, waitfor: Sequence[WaitHandle] = ()) -> WaitHandle:
        """Queue one run of `cu` with its packed registers (what XRT's ERT start command carries)."""
        if cu not in self._cus:
            raise RuntimeError(f"{cu} is not a kernel this emulated card can run")
        self._regfiles[cu][4 : len(regs)] = regs[4:]  # the argument registers, as read back via MMIO
        return self._cus[cu].submit(regs, waitfor)

    def classifier(self) -> Classify:
        """The CPU model behind the kernel, created once per device on first use."""
        with self._lock:
            if self.classify is None:
                from hw.cpu import CpuModel

                self.classify = CpuModel().classify
            return self.classify

    def _register_target(self, address: int) -> tuple[str, int]:
        for name, ip in self.ip_dict.items():
            if ip["phys_addr"] <= address < ip["phys_addr"] + ip["addr_range"]:
                return name, address - ip["phys_addr"]
        raise RuntimeError(f"no IP at register address {address:#x}")

    def read_registers(self, address: int, length: int) -> bytes:
        name, offset = self._register_target(address)
        regs = self._regfiles[name]
        if offset == 0 and name in self._cus:
            status = _CTRL_IDLE | _CTRL_DONE if self._cus[name].idle else 0
            regs[0:4] = (int.from_bytes(regs[0:4], "little") & ~0x7 | status).to_bytes(4, "little")
        return bytes(regs[offset : offset + length])

    def write_registers(self, address: int, data: bytes) -> None:
        name, offset = self._register_target(address)
        regs = self._regfiles[name]
        regs[offset : offset + len(data)] = data
        if offset == 0 and data[0] & _CTRL_START and name in self._cus:
            regs[0] &= ~_CTRL_START  # AP_START self-clears once the CU takes the command
            self._cus[name].submit(bytes(regs))


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
