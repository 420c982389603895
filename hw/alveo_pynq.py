"""What pynq 3.0.1 leaves to the host code on an Alveo card, done here for hw.alveo.

* `import_pynq`: pynq 3.0.x (3.1 probes no PCIe device and its drivers have no start/call).
* `kernel_driver`: pynq's DefaultIP cannot build a call signature for the release kernel,
  whose first argument is named `in`.
* `wait_done`: `ErtWaitHandle.wait()` loops until the command is done, forever on a hung
  kernel; this is the same loop with a deadline.
* `check_command`: `ErtWaitHandle.wait()` returns also when the command failed.
* `ensure_event_loop`: `XrtDevice.__init__` calls `asyncio.get_event_loop()`, which raises in
  a thread with no event loop (and from Python 3.14 on in the main thread too).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import keyword
import logging
import re
import time
import types
import warnings
from pathlib import Path
from typing import Any

from vidpipe.hw.base import RESNET50_ARGS, RESNET50_VLNV, is_resnet50_kernel, kernel_arguments
from vidpipe.pipeline.errors import BackendError, one_line

log = logging.getLogger(__name__)

_HANDLE_EVENTS_MS = 1000  # the slice ErtWaitHandle.wait() hands to xclExecWait


def import_pynq() -> Any:
    """pynq 3.0.x, and pynq.lib which Overlay() imports to register drivers."""
    try:
        pynq = importlib.import_module("pynq")
    except Exception as exc:
        raise BackendError(f"the alveo backend needs pynq, which failed to import ({one_line(exc)})") from exc
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
        raise BackendError(f"pynq {pynq.__version__}: pynq.lib fails to import ({one_line(exc)}){hint}") from exc
    return pynq


def ensure_event_loop() -> None:
    """Give this thread a current asyncio event loop if it has none, so that pynq can create
    devices here: XrtDevice keeps `asyncio.get_event_loop()` for its wait handles' futures
    (never run: wait() polls the device)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: "There is no current event loop"
        try:
            asyncio.get_event_loop()
            return
        except RuntimeError:  # a thread other than the main one, or Python >= 3.14
            pass
    asyncio.set_event_loop(asyncio.new_event_loop())


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


def bind_kernel_driver(xclbin: Path, kernel: str) -> None:
    """Before Overlay(): pynq binds a driver to a kernel by its exact VLNV. The release kernel's
    driver is also bound to a kernel whose name and arguments are the release's under another
    VLNV (another build of the same HLS code); any other kernel is one line naming what it is."""
    driver = kernel_driver()
    try:
        ips = importlib.import_module("pynq.pl_server.xclbin_parser").XclBin(str(xclbin)).ip_dict
    except Exception:  # unreadable: Overlay() says so, in its own words
        return
    ip = ips.get(kernel)
    if ip is None or ip.get("type") == RESNET50_VLNV:
        return  # not there: find_kernel names what is; the release's: bound already
    if not is_resnet50_kernel(ip):
        found = f"{ip.get('type', '?')} with arguments ({', '.join(kernel_arguments(ip)) or 'none'})"
        raise BackendError(f"{xclbin}: kernel {kernel} is {found}, not the ResNet50-PYNQ kernel "
                           f"({RESNET50_VLNV} with arguments ({', '.join(RESNET50_ARGS)}))")
    importlib.import_module("pynq.overlay")._ip_drivers[ip["type"]] = driver
    log.info("%s: kernel %s is %s: the release's name and arguments, driven as the release's kernel",
             xclbin, kernel, ip["type"])


def wait_done(handle: Any, deadline: float) -> bool:
    """ErtWaitHandle.wait() (`while not done: device._handle_events(1000)`) with a deadline on
    time.monotonic(): True once the command is done, False when the deadline passed first.
    Each turn blocks in xclExecWait for at most the time left."""
    while not handle.done:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        handle.device._handle_events(max(1, min(_HANDLE_EVENTS_MS, round(left * 1000))))
    return True


def check_command(handle: Any) -> None:
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


def starts_through_ert(kernel: Any) -> bool:
    """Whether pynq bound the kernel's start() to the ERT path (DefaultIP does so only when the
    device has the ERT capability, which XrtDevice sets when it read XRT >= 2.3)."""
    start, start_ert = getattr(kernel, "start", None), getattr(kernel, "start_ert", None)
    return start is not None and start == start_ert


def xrt_version_read() -> str:
    """The XRT version pynq read at import ($XILINX_XRT/version.json; 0.0.0 when it could not)."""
    try:
        version = importlib.import_module("pynq.pl_server.xrt_device")._xrt_version
    except Exception as exc:  # reported, not fatal: this only words an error message
        return f"unknown ({one_line(exc)})"
    return ".".join(str(v) for v in version)
