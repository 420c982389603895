"""The emulated `resnet50` compute unit and its pynq driver.

`EmulatedKernel` is a pynq IP driver (a `DefaultIP` subclass bound by VLNV through pynq's
driver registry), so `ol.resnet50_1` is created by pynq's Overlay like any kernel. Its API is
the one PYNQ documents for XRT kernels (pynq <= 3.0.1, see docs "PYNQ on XRT Platforms"):
`signature`, `start(*args, waitfor=())` returning a handle with `wait()`, and
`call(*args) = start(*args).wait()`. The signature and the register packing come from pynq's
own `_create_call`; buffers are passed as their `device_address`, as pynq's `start` does.

The compute unit is one worker thread with a command queue, like XRT's scheduler in front of a
single CU: a start() while a batch runs is queued and runs when the previous one ends. It reads
its arguments back from the packed registers (device addresses), reads the input from the
card-side copy of the BO, runs the CPU classifier and writes top-5 ids to the card-side copy
of the output BO.
"""

from __future__ import annotations

import keyword
import os
import queue
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pynq.overlay import DefaultIP, _create_call

if TYPE_CHECKING:
    from hw.emulated.device import EmulatedDevice

EMULATED_VLNV = "vidpipe.emulated:hls:resnet50:1.0"
IMAGE_BYTES = 224 * 224 * 3
FC_SHAPE = (1000, 2048)
TOP_K = 5
Classify = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class KernelError(RuntimeError):
    """A command failed on the emulated CU (raised from the handle's wait())."""


@dataclass(eq=False)
class WaitHandle:
    """What start() returns: wait() blocks until the command completed (raises if it failed)."""

    cu: str
    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> None:
        if not self.event.wait(timeout):
            raise TimeoutError(f"{self.cu}: command still running after {timeout} s")
        if self.error is not None:
            raise KernelError(f"{self.cu}: {self.error}") from self.error


@dataclass(frozen=True)
class ArgReg:
    name: str
    offset: int
    size: int  # bytes in the register file
    pointer: bool
    memories: tuple[str, ...]  # memory tags the port is connected to (empty: any / scalar)


def arg_registers(registers: dict[str, Any]) -> list[ArgReg]:
    """The kernel's arguments in call order (by register offset), from pynq's ip_dict."""
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

    def __init__(self, device: EmulatedDevice, name: str, args: list[ArgReg]) -> None:
        self.device, self.name, self.args = device, name, args
        self._queue: queue.Queue[tuple[bytes, Sequence[WaitHandle], WaitHandle] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def idle(self) -> bool:
        return self._pending == 0

    def submit(self, regs: bytes, waitfor: Sequence[WaitHandle] = ()) -> WaitHandle:
        handle = WaitHandle(self.name)
        if self._pid != os.getpid():  # a forked child inherits no worker thread: start afresh
            self._queue, self._thread, self._lock, self._pending = queue.Queue(), None, threading.Lock(), 0
            self._pid = os.getpid()
        pairs = zip(self.args, decode(regs, self.args), strict=True)
        values = ", ".join(f"{a.name}={v:#x}" if a.pointer else f"{a.name}={v}" for a, v in pairs)
        self.device.log.add("start", detail=f"{self.name}({values})")
        with self._lock:  # queue and worker change together (see stop)
            if self._thread is None:
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name=f"emulated-{self.name}",
                                                daemon=True)
                self._thread.start()
            self._pending += 1
            self._queue.put((regs, tuple(waitfor), handle))
        return handle

    def stop(self) -> None:
        """Finish queued commands, then end the worker (a later submit starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)  # after everything queued so far: the worker drains, then ends
        if thread is not None:
            thread.join()

    def _run(self, commands: queue.Queue[tuple[bytes, Sequence[WaitHandle], WaitHandle] | None]) -> None:
        while (item := commands.get()) is not None:
            regs, waitfor, handle = item
            try:
                for dep in waitfor:
                    dep.event.wait()
                self.device.log.add("cu_start", detail=self.name)
                run_resnet50(self.device, self.args, decode(regs, self.args))
                self.device.log.add("cu_done", detail=self.name)
            except Exception as exc:  # reported to whoever waits on the handle
                handle.error = exc
                self.device.log.add("cu_error", detail=f"{self.name}: {exc}")
            finally:
                with self._lock:
                    self._pending -= 1
                handle.event.set()


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
    images = ibo.card[ioff : ioff + n * IMAGE_BYTES].view(np.int8).reshape(n, 224, 224, 3)
    ids, _scores = device.classifier()(images)
    ids = np.ascontiguousarray(ids, dtype="<u4")
    if ids.shape != (n, TOP_K):
        raise RuntimeError(f"classifier returned shape {ids.shape}, expected {(n, TOP_K)}")
    obo.card[ooff : ooff + ids.nbytes] = ids.view(np.uint8).reshape(-1)


class EmulatedKernel(DefaultIP):
    """pynq driver for the emulated resnet50 CU (bound by VLNV, see device.get_bitfile_metadata)."""

    bindto: ClassVar[list[str]] = [EMULATED_VLNV]

    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__(description)
        # pynq's _create_call makes an inspect.Signature, which rejects the kernel's first
        # argument name `in` (a Python keyword): name it `in_` there, the registers stay as is.
        regs = {f"{k}_" if keyword.iskeyword(k) else k: v for k, v in self._registers.items()}
        self._signature, struct_string, self._ptr_list, self.args = _create_call(regs)
        self._call_struct = struct.Struct(struct_string)
        self._cu_name = description["fullpath"]

    @property
    def signature(self) -> Any:
        return self._signature

    def start(self, *args: Any, waitfor: Sequence[WaitHandle] = (), **kwargs: Any) -> WaitHandle:
        """Start the kernel; returns a handle whose wait() blocks until it finished.

        Flush input buffers before and invalidate output buffers after, as on the card.
        """
        if kwargs:
            args = self._signature.bind(*args, **kwargs).args
        if len(args) != len(self._ptr_list):
            raise TypeError(f"{self._cu_name} takes {len(self._ptr_list)} arguments {self._signature}, got {len(args)}")
        values = []
        for value, is_pointer in zip(args, self._ptr_list, strict=True):
            if is_pointer and not hasattr(value, "device_address"):
                raise TypeError(f"{self._cu_name}: pointer arguments must be pynq buffers, got {type(value).__name__}")
            values.append(value.device_address if is_pointer else value)
        regs = self._call_struct.pack(0, *values)
        return self.device.execute(self._cu_name, regs, waitfor)

    def call(self, *args: Any, **kwargs: Any) -> None:
        """Run the kernel and block until it finished."""
        self.start(*args, **kwargs).wait()
