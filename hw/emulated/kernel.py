"""The emulated `resnet50` compute unit.

The compute unit is one worker thread with a command queue, like XRT's scheduler in front of a
single CU: a command submitted while one runs waits for it. It reads its arguments back from
the register payload (device addresses), reads the input from the card-side copy of the BO,
runs the CPU classifier and writes top-5 ids to the card-side copy of the output BO.

A hung kernel (the device's test hook `hang_after`) takes its command and never signals done,
as a stuck CU on the card: the command stays RUNNING for anyone waiting on it. Only closing the
device ends it (state ABORT), with every command queued behind it.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pynq._3rdparty import ert

from vidpipe.hw.base import FC_SHAPE, INPUT_SHAPE, TOP_K

if TYPE_CHECKING:
    from vidpipe.hw.emulated.device import EmulatedDevice

IMAGE_BYTES = int(np.prod(INPUT_SHAPE))
Classify = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Done = Callable[[int], None]  # called with the final ERT command state
_STATE = ert.ert_cmd_state


@dataclass(frozen=True)
class ArgReg:
    name: str
    offset: int
    size: int  # bytes in the register file
    pointer: bool
    memories: tuple[str, ...]  # memory tags the port is connected to (empty: any / scalar)


def arg_registers(registers: dict[str, Any]) -> list[ArgReg]:
    """The kernel's arguments in call order (by register offset), from the xclbin's ip_dict."""
    regs = sorted(((k, v) for k, v in registers.items() if k != "CTRL"), key=lambda kv: kv[1]["address_offset"])
    out = []
    for k, v in regs:
        memories = tuple(v.get("MBG") or v.get("memory", "").split())
        out.append(ArgReg(k, v["address_offset"], v["size"] // 8, "*" in v["type"], memories))
    return out


def decode(regs: bytes, args: Sequence[ArgReg]) -> list[int]:
    return [struct.unpack_from("<Q" if a.size == 8 else "<I", regs, a.offset)[0] for a in args]


class ComputeUnit:
    """One CU: runs commands one after the other on a worker thread."""

    def __init__(self, device: EmulatedDevice, name: str, index: int, args: list[ArgReg]) -> None:
        self.device, self.name, self.index, self.args = device, name, index, args
        self._queue: queue.Queue[tuple[bytes, Done] | None] = queue.Queue()
        self._abort = threading.Event()  # set by stop(): a hung command ends (ABORT)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def idle(self) -> bool:
        return self._pending == 0

    def submit(self, regs: bytes, done: Done) -> None:
        """Queue one run with the register file `regs`; `done(state)` is called when it ended."""
        if self._pid != os.getpid():  # a forked child inherits no worker thread: start afresh
            self._queue, self._thread, self._lock, self._pending = queue.Queue(), None, threading.Lock(), 0
            self._pid = os.getpid()
        pairs = zip(self.args, decode(regs, self.args), strict=True)
        values = ", ".join(f"{a.name}={v:#x}" if a.pointer else f"{a.name}={v}" for a, v in pairs)
        self.device.log.add("start", detail=f"{self.name}({values})")
        with self._lock:  # queue and worker change together (see stop)
            if self._thread is None:
                self._queue, self._abort = queue.Queue(), threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._queue, self._abort),
                                                name=f"emulated-{self.name}", daemon=True)
                self._thread.start()
            self._pending += 1
            self._queue.put((regs, done))

    def stop(self) -> None:
        """Finish queued commands, then end the worker (a later submit starts a new one). A hung
        command and those queued behind it end in state ABORT."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._abort.set()
                self._queue.put(None)  # after everything queued so far: the worker drains, then ends
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self, commands: queue.Queue[tuple[bytes, Done] | None], abort: threading.Event) -> None:
        while (item := commands.get()) is not None:
            regs, done = item
            try:
                state = self._execute(regs, abort)
            finally:
                with self._lock:
                    self._pending -= 1
            done(state)

    def _execute(self, regs: bytes, abort: threading.Event) -> int:
        """One command on the CU; its final ERT state."""
        if self.device.hangs_now():
            self.device.log.add("cu_hang", detail=self.name)
            abort.wait()  # stuck until the device is closed
            return int(_STATE.ERT_CMD_STATE_ABORT)
        try:
            self.device.log.add("cu_start", detail=self.name)
            run_resnet50(self.device, self.args, decode(regs, self.args))
            self.device.log.add("cu_done", detail=self.name)
        except Exception as exc:  # the card reports only the state; the reason goes to the log
            self.device.report_error(self.name, exc)
            return int(_STATE.ERT_CMD_STATE_ERROR)
        return int(_STATE.ERT_CMD_STATE_COMPLETED)


def _span(device: EmulatedDevice, arg: ArgReg, address: int, size: int) -> tuple[Any, int]:
    """The BO and offset holding [address, address+size), checked against the port's memories."""
    bo, offset = device.bo_at(address, size)
    if arg.memories and bo.mem not in arg.memories:
        raise RuntimeError(
            f"argument {arg.name!r} is connected to {', '.join(arg.memories)} but its buffer is in {bo.mem}"
        )
    return bo, offset


def run_resnet50(device: EmulatedDevice, args: list[ArgReg], values: list[int]) -> None:
    """resnet50(in, out, weightsmem, numReps) on the CPU model, memory in and out of the card copy."""
    if len(args) != 4:
        raise RuntimeError(f"expected 4 arguments (in, out, weights, count), the xclbin declares {len(args)}")
    in_addr, out_addr, w_addr, n = values
    w_bytes = FC_SHAPE[0] * FC_SHAPE[1]
    wbo, woff = _span(device, args[2], w_addr, w_bytes)
    if not wbo.synced_covers(woff, woff + w_bytes):
        raise RuntimeError(f"FC weights ({w_bytes} bytes at {w_addr:#x}) were never synced to the device")
    if n == 0:
        return
    ibo, ioff = _span(device, args[0], in_addr, n * IMAGE_BYTES)
    obo, ooff = _span(device, args[1], out_addr, n * TOP_K * 4)
    images = ibo.card[ioff : ioff + n * IMAGE_BYTES].view(np.int8).reshape(n, *INPUT_SHAPE)
    ids, _scores = device.classifier()(images)
    ids = np.ascontiguousarray(ids, dtype="<u4")
    if ids.shape != (n, TOP_K):
        raise RuntimeError(f"classifier returned shape {ids.shape}, expected {(n, TOP_K)}")
    obo.card[ooff : ooff + ids.nbytes] = ids.view(np.uint8).reshape(-1)
