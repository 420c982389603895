"""`alveo`: the ResNet50 dataflow accelerator on an Alveo card, driven through pynq 3.0.1.

Exactly the host API of the release (Xilinx/ResNet50-PYNQ):

    ol = pynq.Overlay(xclbin, device=pynq.Device.devices[i]); accel = ol.resnet50_1
    fcbuf = pynq.allocate((1000, 2048), dtype=np.int8, target=ol.bank0)   # once
    fcbuf[:] = weights; fcbuf.sync_to_device()
    inbuf[k], outbuf[k] = pynq.allocate(...)                              # once per buffer set
    start(k, n):  inbuf[k][:n].sync_to_device(); h[k] = accel.start(inbuf[k], outbuf[k], fcbuf, n)
    wait(k):      h[k].wait(); outbuf[k][:n].sync_from_device(); copy

Only the filled part of a buffer set is synced (pynq syncs a slice's own bytes). With
`emulate: true` (or backend `alveo-emu`) the same code runs on hw.emulated's card.

pynq: 3.0.1 is the last release with Alveo support (3.1 probes no PCIe device and its kernel
drivers have no start/call), so another version is a clear BackendError. Two things pynq 3.0.1
leaves to the host code, done here: its DefaultIP cannot build a call signature for the
release kernel, whose first argument is named `in` (`kernel_driver()`), and its ERT wait
handle's wait() returns also when the command failed (`_check_command`).
"""

from __future__ import annotations

import functools
import importlib
import keyword
import logging
import os
import pickle
import re
import sys
import threading
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hw.base import INPUT_DTYPE, INPUT_SHAPE, TOP_K, BatchOutput, check_start
from hw.fcweights import FC_SHAPE, load_fc_weights
from hw.settings import AlveoSettings, BackendSettings
from pipeline.errors import BackendError

log = logging.getLogger(__name__)
NUM_CLASSES = 1000
RESNET50_VLNV = "xilinx.com:hls:resnet50:1.0"  # compile/kernel.xml of the release
_DEFAULTS = AlveoSettings()
_users: dict[Any, int] = {}  # pynq device -> open AlveoBackends on it in this process
_users_lock = threading.Lock()


@dataclass(frozen=True)
class _Running:
    handle: Any
    n: int
    upload_s: float
    t_started: float


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _import_pynq() -> Any:
    """pynq 3.0.x, and pynq.lib which Overlay() imports to register drivers."""
    try:
        pynq = importlib.import_module("pynq")
    except Exception as exc:
        raise BackendError(f"the alveo backend needs pynq, which failed to import ({_one_line(exc)})") from exc
    version = tuple(int(p) for p in re.findall(r"\d+", str(getattr(pynq, "__version__", "")))[:2])
    if version != (3, 0):
        raise BackendError(
            f"pynq {getattr(pynq, '__version__', '?')} is installed, the alveo backend needs pynq 3.0.x "
            "(pyproject pins 3.0.1: pynq 3.1 dropped Alveo support)"
        )
    try:
        importlib.import_module("pynq.lib")
    except Exception as exc:
        hint = " (pynq needs pycparser<3)" if "pycparser" in str(exc) else ""
        raise BackendError(f"pynq {pynq.__version__}: pynq.lib fails to import ({_one_line(exc)}){hint}") from exc
    return pynq


def _arg_name(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) else name


@functools.cache
def kernel_driver() -> type:
    """pynq's driver for the release kernel, registered (by VLNV) on first call.

    It is pynq's DefaultIP, whose start()/call() run the kernel through XRT's ERT, with argument
    names that are Python keywords renamed (`in` -> `in_`): DefaultIP turns the argument names
    into an inspect.Signature, which refuses `in`, so plain DefaultIP cannot drive this kernel."""
    default_ip = importlib.import_module("pynq.overlay").DefaultIP

    def __init__(self: Any, description: dict[str, Any]) -> None:
        if description.get("registers"):
            regs = {_arg_name(k): v for k, v in description["registers"].items()}
            description = {**description, "registers": regs}
        default_ip.__init__(self, description)

    def body(ns: dict[str, Any]) -> None:
        ns.update(bindto=[RESNET50_VLNV], __init__=__init__, __module__=__name__, __doc__=kernel_driver.__doc__)

    return types.new_class("Resnet50Kernel", (default_ip,), exec_body=body)


def _check_command(handle: Any) -> None:
    """Raise if the command behind a finished wait handle failed. pynq 3.0.1's ErtWaitHandle
    keeps the outcome in its future ("Execution failed: <ERT state>") and wait() ignores it."""
    future = getattr(handle, "_future", None)
    if future is None or not future.done() or future.cancelled() or future.exception() is None:
        return
    ert = importlib.import_module("pynq._3rdparty.ert")
    states = {v: k for k, v in vars(ert.ert_cmd_state).items() if k.startswith("ERT_")}
    message = str(future.exception())
    state = re.search(r"(\d+)\s*$", message)
    raise RuntimeError(f"{message} ({states.get(int(state.group(1)), '?')})" if state else message)


def _last_user(device: Any) -> bool:
    """One backend less on `device`; True if it was the last one."""
    with _users_lock:
        left = _users.pop(device, 1) - 1
        if left:
            _users[device] = left
        return not left


def _no_device_message() -> str:
    if "XILINX_XRT" not in os.environ:
        cause = "XRT not found (XILINX_XRT is not set: source /opt/xilinx/xrt/setup.sh)"
    else:
        cause = f"XRT in {os.environ['XILINX_XRT']} sees no card"
    return f"no Alveo device found by pynq: {cause}; alveo-emu runs the same path on an emulated card"


def _sanitized(tag: str) -> str:
    """A memory tag as pynq names the overlay attribute (ol.bank0, ol.PLRAM0)."""
    return re.sub(r"[^A-Za-z0-9_]", "", tag)


def _find_kernel(ol: Any, name: str, xclbin: Path) -> Any:
    if name not in ol.ip_dict:
        kernels = ", ".join(ol.ip_dict) or "no kernels"
        raise BackendError(f"kernel {name!r} (alveo.kernel) is not in {xclbin}: it has {kernels}")
    try:
        kernel = getattr(ol, name)
    except Exception as exc:
        raise BackendError(f"pynq cannot create a driver for kernel {name} in {xclbin}: {_one_line(exc)}") from exc
    if not callable(getattr(kernel, "start", None)):
        raise BackendError(f"pynq cannot start kernel {name} in {xclbin}: it has no start() (no CTRL register?)")
    return kernel


def _find_memory(ol: Any, name: str, key: str, xclbin: Path) -> Any:
    present = [_sanitized(t) for t, m in ol.mem_dict.items() if m.get("used") and not m.get("streaming")]
    if name not in present:
        raise BackendError(f"memory {name!r} (alveo.{key}) is not in {xclbin}: it has {', '.join(present) or 'none'}")
    return getattr(ol, name)


def _check_ports(ol: Any, kernel: str, targets: tuple[str, str, str]) -> None:
    """The kernel takes (in, out, fc weights, count) and each buffer goes to a memory its port reaches."""
    regs = ol.ip_dict[kernel].get("registers", {})
    args = sorted((k for k in regs if k != "CTRL"), key=lambda k: regs[k]["address_offset"])
    if len(args) != 4 or any("*" not in regs[a]["type"] for a in args[:3]):
        raise BackendError(f"kernel {kernel} takes ({', '.join(args)}), expected (in, out, fc weights, count)")
    for arg, target, key in zip(args, targets, ("io_target", "io_target", "fc_target"), strict=False):
        reg = regs[arg]
        connected = [_sanitized(m) for m in reg.get("MBG") or ([reg["memory"]] if "memory" in reg else [])]
        if connected and target not in connected:
            raise BackendError(
                f"kernel {kernel} argument {arg!r} is connected to {', '.join(connected)}, not {target} (alveo.{key})"
            )


class _SafeUnpickler(pickle.Unpickler):
    """Plain lists/dicts/strings only: a label file must not run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"label pickle refers to {module}.{name}")


def load_label_file(path: Path) -> list[str]:
    """Class names 0..999 from the reference labels.pkl (list or {id: name}) or a text file, one per line."""
    if not path.is_file():
        raise BackendError(f"label file {path} (alveo.labels) not found")
    try:
        if path.suffix.lower() in (".pkl", ".pickle"):
            with path.open("rb") as f:
                raw = _SafeUnpickler(f).load()
            names = [raw[i] for i in range(NUM_CLASSES)] if isinstance(raw, dict) else list(raw)
        else:
            names = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise BackendError(f"label file {path}: cannot read class names ({_one_line(exc)})") from exc
    if len(names) != NUM_CLASSES or not all(isinstance(n, str) for n in names):
        raise BackendError(f"label file {path}: expected {NUM_CLASSES} class names, found {len(names)}")
    return [n.strip() for n in names]


class AlveoBackend:
    """Accelerator on pynq.Device.devices[device_index] (the emulated cards' list when emulating)."""

    labels_meaningful = True

    def __init__(self, settings: BackendSettings, device_index: int = 0) -> None:
        self.cfg = settings.alveo
        self.emulated = settings.name == "alveo-emu" or settings.alveo.emulate
        self.name = "alveo-emu" if self.emulated else "alveo"
        self.device_index = device_index
        self.max_batch = settings.max_batch
        self.buffer_sets = settings.buffer_sets
        if self.max_batch < 1 or self.buffer_sets < 1:
            raise BackendError(f"{self.name}: need max_batch >= 1 and buffer_sets >= 1")
        self.device: Any = None
        self.overlay: Any = None
        self.kernel: Any = None
        self.xclbin: Path | None = None
        self.fcbuf: Any = None
        self.inbufs: list[Any] = []
        self.outbufs: list[Any] = []
        self._running: dict[int, _Running] = {}
        self._names: list[str] | None = None

    # -- open / close --------------------------------------------------------------------
    def open(self) -> None:
        if self.overlay is not None:
            return
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        pynq = _import_pynq()
        xclbin = self.xclbin = self._xclbin_path()
        weights = load_fc_weights(self._weights_path())
        self._names = self._load_names()
        self.device = self._select_device(pynq)
        kernel_driver()  # before Overlay(): it binds drivers when it is created
        try:
            overlay = pynq.Overlay(str(xclbin.resolve()), device=self.device)
        except Exception as exc:
            raise BackendError(f"cannot load {xclbin} on {self.device.name}: {_one_line(exc)}") from exc
        with _users_lock:
            self.overlay = overlay
            _users[self.device] = _users.get(self.device, 0) + 1
        self.kernel = _find_kernel(self.overlay, self.cfg.kernel, xclbin)
        fc_mem = _find_memory(self.overlay, self.cfg.fc_target, "fc_target", xclbin)
        io_mem = _find_memory(self.overlay, self.cfg.io_target, "io_target", xclbin)
        _check_ports(self.overlay, self.cfg.kernel, (self.cfg.io_target, self.cfg.io_target, self.cfg.fc_target))
        self.fcbuf = self._allocate(pynq, FC_SHAPE, np.int8, fc_mem, self.cfg.fc_target)
        self.fcbuf[:] = weights
        self.fcbuf.sync_to_device()
        io = self.cfg.io_target
        for _ in range(self.buffer_sets):
            self.inbufs.append(self._allocate(pynq, (self.max_batch, *INPUT_SHAPE), INPUT_DTYPE, io_mem, io))
            self.outbufs.append(self._allocate(pynq, (self.max_batch, TOP_K), np.uint32, io_mem, io))
        log.info("%s: %s on %s (%s), %d x %d-image buffer sets", self.name, xclbin, self.device.name, self.device.tag,
                 self.buffer_sets, self.max_batch)

    def _allocate(self, pynq: Any, shape: tuple[int, ...], dtype: Any, target: Any, name: str) -> Any:
        try:
            return pynq.allocate(shape, dtype=dtype, target=target)
        except Exception as exc:
            raise BackendError(f"cannot allocate {shape} {np.dtype(dtype)} in {name}: {_one_line(exc)}") from exc

    def close(self) -> None:
        """Wait for batches still running (their buffers must outlive them), free every buffer,
        and the overlay when no other backend in this process uses the device. Idempotent; safe
        after a failed open()."""
        for run in self._running.values():
            try:
                run.handle.wait()
            except Exception as exc:  # closing anyway: the batch's result is lost either way
                log.debug("%s: batch failed while closing: %s", self.name, exc)
        self._running.clear()
        for buf in [self.fcbuf, *self.inbufs, *self.outbufs]:
            if buf is not None:
                buf.freebuffer()
        self.fcbuf, self.inbufs, self.outbufs, self.kernel = None, [], [], None
        overlay, self.overlay = self.overlay, None
        if overlay is not None and _last_user(self.device):
            overlay.free()  # closes the device's CU contexts and its XRT handle: nobody else uses them

    # -- configuration -------------------------------------------------------------------
    def _xclbin_path(self) -> Path:
        path = Path(self.cfg.xclbin).expanduser()
        if path.is_file():
            return path
        if self.emulated and self.cfg.xclbin == _DEFAULTS.xclbin:
            from hw.emulated import write_emulated_xclbin
            from hw.paths import cache_dir

            return write_emulated_xclbin(cache_dir() / "emulated" / "resnet50.xclbin")
        raise BackendError(f"xclbin {path} (alveo.xclbin) not found")

    def _weights_path(self) -> Path:
        path = Path(self.cfg.fc_weights).expanduser()
        if path.is_file() or not (self.emulated and self.cfg.fc_weights == _DEFAULTS.fc_weights):
            return path
        from hw.paths import cache_dir

        # The emulated kernel checks the weights' size and sync, not their values.
        path = cache_dir() / "emulated" / "fcweights.npy"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.npy")
            np.save(tmp, np.random.default_rng(0).integers(-128, 128, FC_SHAPE, dtype=np.int8))
            tmp.replace(path)
        return path

    def _load_names(self) -> list[str]:
        if self.cfg.labels:
            return load_label_file(Path(self.cfg.labels).expanduser())
        from hw.imagenet import class_names

        return list(class_names())

    def _select_device(self, pynq: Any) -> Any:
        if self.emulated:
            import hw.emulated

            hw.emulated.enable(count=max(self.cfg.devices, default=0) + 1)  # the cards the config names
            devices = hw.emulated.emulated_devices()
        else:
            devices = self._real_devices(pynq)
        if not devices:
            raise BackendError(_no_device_message())
        if not 0 <= self.device_index < len(devices):
            seen = ", ".join(f"{i}: {d.name}" for i, d in enumerate(devices))
            raise BackendError(f"device index {self.device_index} out of range: pynq sees {len(devices)} ({seen})")
        return devices[self.device_index]

    @staticmethod
    def _real_devices(pynq: Any) -> list[Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "No devices found": reported below, in one line
                devices = list(pynq.Device.devices)
        except Exception as exc:
            raise BackendError(f"pynq cannot enumerate devices ({_one_line(exc)})") from exc
        emu = sys.modules.get("hw.emulated.device")
        return [d for d in devices if emu is None or not isinstance(d, emu.EmulatedDevice)]

    # -- batches -------------------------------------------------------------------------
    def input_buffer(self, buffer_set: int) -> np.ndarray:
        self._check_open()
        return self.inbufs[buffer_set]

    def start(self, buffer_set: int, n: int) -> None:
        self._check_open()
        check_start(self.name, buffer_set, n, self.buffer_sets, self.max_batch, self._running)
        try:
            t0 = time.perf_counter()
            self.inbufs[buffer_set][:n].sync_to_device()  # only the filled images cross PCIe
            t1 = time.perf_counter()
            handle = self.kernel.start(self.inbufs[buffer_set], self.outbufs[buffer_set], self.fcbuf, n)
        except Exception as exc:
            raise BackendError(f"{self.name}: cannot start {self.cfg.kernel} on {n} images: {_one_line(exc)}") from exc
        self._running[buffer_set] = _Running(handle, n, t1 - t0, time.perf_counter())

    def wait(self, buffer_set: int) -> BatchOutput:
        run = self._running.pop(buffer_set, None)
        if run is None:
            raise BackendError(f"{self.name}: wait() on buffer set {buffer_set}, which was not started")
        try:
            run.handle.wait()
            _check_command(run.handle)
            t2 = time.perf_counter()
            out = self.outbufs[buffer_set][: run.n]
            out.sync_from_device()
            top5 = np.array(out, dtype=np.uint32)  # a plain copy: the device buffer is reused
            t3 = time.perf_counter()
        except Exception as exc:
            raise BackendError(f"{self.name}: {self.cfg.kernel} failed on {run.n} images: {_one_line(exc)}") from exc
        if top5.size and (worst := int(top5.max())) >= NUM_CLASSES:
            raise BackendError(f"{self.name}: kernel returned class id {worst} (>= {NUM_CLASSES}): wrong xclbin?")
        return BatchOutput(top5, None, run.upload_s, t2 - run.t_started, t3 - t2)

    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = self._load_names()
        return list(self._names)

    def _check_open(self) -> None:
        if self.overlay is None or self.kernel is None:
            raise BackendError(f"{self.name}: backend used before open()")
