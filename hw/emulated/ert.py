"""XRT's command execution for the emulated card: exec BOs, xclExecBuf, xclExecWait.

pynq 3.0.1 starts an XRT kernel with its own `DefaultIP._start_ert`: it packs the arguments
with the kernel's register layout (buffers as their `device_address`), asks the device for an
exec BO (`get_exec_bo`), writes an `ert_start_kernel_cmd` into it (header with state NEW, CU
mask, register payload) and submits it (`execute_bo`), which returns pynq's `ErtWaitHandle`.
`ErtWaitHandle.wait()` calls the device's `_handle_events(1000)` until its command is done.

Here, as on the card: xclExecBuf decodes the packet, checks the CU mask against the loaded
CUs and the open contexts, marks it QUEUED and queues the payload on the CU; when the CU is
done it writes COMPLETED or ERROR into the packet, as the ERT firmware does, and wakes
xclExecWait. The completion scan after it is XrtDevice's own.

Without ERT (pynq read XRT < 2.3), DefaultIP.start is `_start_sw`: it writes the arguments and
AP_START through `write_registers` (xclWrite) and polls AP_IDLE. XRT 2.x refuses register
writes to a CU opened under a shared context, which is how pynq opens every CU, and pynq
ignores xclWrite's result: the kernel silently never starts. This card does the same.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynq._3rdparty import ert
from pynq.pl_server.xrt_device import REQUIRED_VERSION_ERT, ErtWaitHandle, ExecBo

from vidpipe.hw.emulated.memory import EmulatedBO, map_host

_STATE = ert.ert_cmd_state
_CTRL_START, _CTRL_DONE, _CTRL_IDLE = 0x1, 0x2, 0x4


@dataclass(frozen=True)
class StartCommand:
    opcode: int
    cu_mask: int
    regs: bytes  # the CU's register file from offset 0, as the packet carries it


def decode_start(bo: EmulatedBO) -> StartCommand:
    """The ert_start_kernel_cmd pynq wrote into an exec BO (copied: the BO is pynq's again)."""
    header = ert.ert_start_kernel_cmd.from_buffer_copy(bo.view[: ctypes.sizeof(ert.ert_start_kernel_cmd)])
    fields = header.m_uert.m_start_cmd_struct
    extra = int(fields.extra_cu_masks)
    words = max(int(fields.count) - 1 - extra, 0)  # payload: CU masks, then the registers
    start = 8 + 4 * extra
    return StartCommand(int(fields.opcode), int(header.cu_mask), bytes(bo.view[start : start + 4 * words]))


def set_state(bo: EmulatedBO, state: int) -> None:
    """Write the command state into the packet header (bits 0-3), where pynq polls it."""
    (header,) = struct.unpack_from("<I", bo.view, 0)
    struct.pack_into("<I", bo.view, 0, (header & ~0xF) | state)


class ErtScheduler:
    """The execution half of EmulatedDevice (a mixin: it uses the device's card and contexts)."""

    handle: Any
    xrt_version: tuple[int, int, int]
    log: Any
    contexts: dict[str, dict[str, Any]]
    active_bos: list[tuple[Any, Any]]
    _bo_cache: list[Any]
    _loop: Any
    _card: Any
    _lock: threading.Lock
    _completions: threading.Condition
    _unseen: int

    if TYPE_CHECKING:  # provided by EmulatedDevice and pynq's XrtDevice

        def _new_bo(self, size: int, mem: str, address: int) -> EmulatedBO: ...
        def report_error(self, cu_name: str, exc: BaseException) -> None: ...
        def return_exec_bo(self, bo: Any) -> None: ...

    def get_exec_bo(self, size: int = 1024) -> Any:
        if self._bo_cache:
            return self._bo_cache.pop()
        if self.xrt_version < REQUIRED_VERSION_ERT:
            raise RuntimeError("XRT Version too old for PYNQ ERT support")  # as XrtDevice
        with self._lock:
            bo = self._new_bo(size, "", 0)  # an exec BO lives in host memory
        return ExecBo(bo, map_host(bo), self, size)

    def execute_bo(self, bo: Any) -> ErtWaitHandle:
        status = self._exec_buf(bo.bo)
        if status:
            raise RuntimeError("Buffer submit failed: " + str(status))
        wh = ErtWaitHandle(bo, self._loop.create_future(), self)
        self.active_bos.append((bo, wh))
        return wh

    def execute_bo_with_waitlist(self, bo: Any, waitlist: Any) -> ErtWaitHandle:
        raise RuntimeError("waitfor list to schedule dependent executions is not supported by XRT anymore.")

    def _exec_buf(self, ebo: EmulatedBO) -> int:
        """xclExecBuf: decode the start command, queue it on its CU; 0 or a negative errno."""
        if not self.handle or self._card is None:
            return -errno.EINVAL
        cmd = decode_start(ebo)
        index = cmd.cu_mask.bit_length() - 1
        opened = {c["idx"] for c in self.contexts.values()}
        if cmd.opcode != ert.ert_cmd_opcode.ERT_START_CU or cmd.cu_mask != 1 << max(index, 0) or index not in opened:
            return -errno.EINVAL
        cu = self._card.cus.get(index)
        if cu is None:
            self.report_error(f"CU {index}", RuntimeError("not a kernel this emulated card can run"))
            return -errno.EINVAL
        self._card.regfiles[cu.name][4 : len(cmd.regs)] = cmd.regs[4:]  # the argument registers, as ERT writes them
        set_state(ebo, _STATE.ERT_CMD_STATE_QUEUED)
        cu.submit(cmd.regs, lambda state: self._complete(ebo, state))
        return 0

    def _complete(self, ebo: EmulatedBO, state: int) -> None:
        set_state(ebo, state)
        with self._completions:
            self._unseen += 1
            self._completions.notify_all()

    def _exec_wait(self, timeout_ms: int) -> None:
        """xclExecWait: block until a command completed since the last call, or timeout."""
        with self._completions:
            self._completions.wait_for(lambda: self._unseen > 0, timeout_ms / 1000)
            self._unseen = 0

    def _handle_events(self, timeout: int = 0) -> None:
        self._exec_wait(timeout)
        next_bos = []  # from here on as XrtDevice._handle_events
        for bo, completion in self.active_bos:
            state = bo.as_packet(ert.ert_cmd_struct).state & 0xF
            if state >= _STATE.ERT_CMD_STATE_COMPLETED:
                if completion:
                    completion._complete(state)
                self.return_exec_bo(bo)
            else:
                next_bos.append((bo, completion))
        self.active_bos = next_bos

    # -- the CU's control registers (xclRead / xclWrite) ----------------------------------
    def _register_target(self, address: int) -> tuple[str, int]:
        for name, ip in self._card.ip_dict.items() if self._card else ():
            if ip["phys_addr"] <= address < ip["phys_addr"] + ip["addr_range"]:
                return name, address - ip["phys_addr"]
        raise RuntimeError(f"no IP at register address {address:#x}")

    def read_registers(self, address: int, length: int) -> bytes:
        name, offset = self._register_target(address)
        regs, cu = self._card.regfiles[name], self._card.cu_named(name)
        if offset == 0 and cu is not None:
            status = _CTRL_IDLE | _CTRL_DONE if cu.idle else 0
            regs[0:4] = (int.from_bytes(regs[0:4], "little") & ~0x7 | status).to_bytes(4, "little")
        return bytes(regs[offset : offset + length])

    def write_registers(self, address: int, data: bytes) -> None:
        name, offset = self._register_target(address)
        regs, cu = self._card.regfiles[name], self._card.cu_named(name)
        if cu is not None and any(c["idx"] == cu.index and c["shared"] for c in self.contexts.values()):
            self.log.add("register_write_refused", detail=f"{name} +{offset:#x}: shared CU context")
            return  # xclWrite fails; pynq's write_registers does not look at its result
        regs[offset : offset + len(data)] = data
        if offset == 0 and data[0] & _CTRL_START and cu is not None:
            regs[0] &= ~_CTRL_START  # AP_START self-clears once the CU takes the command
            cu.submit(bytes(regs), lambda state: None)  # the sw path: pynq polls AP_IDLE
