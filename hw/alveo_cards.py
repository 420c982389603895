"""Which Alveo card an infer process drives: pynq's devices, checked against the xclbin's platform.

`backend.alveo.devices` lists one entry per infer process: an index into pynq.Device.devices,
or a shell name (as `xbutil` and pynq's `device.name` report it, e.g. xilinx_u250_xdma_201830_2)
that takes the first card with that shell that no other entry takes (indices first, then names
in order). Every process resolves the whole list the same way, so two names never pick one card.

Before anything is downloaded, the card's shell is compared with the platform the xclbin is
built for (the axlf header's `m_platformVBNV`, which pynq's XclBin parser does not expose):
XRT would refuse the download anyway ("Shell does not match"), late and in errno words.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from vidpipe.hw.alveo_pynq import ensure_event_loop
from vidpipe.pipeline.errors import BackendError, one_line

DeviceSpec = int | str


def xclbin_platform(path: Path) -> str:
    """The platform (shell) `path` is built for, from its axlf header."""
    from pynq._3rdparty import xclbin

    size = ctypes.sizeof(xclbin.axlf)
    try:
        with path.open("rb") as f:
            head = f.read(size)
    except OSError as exc:
        raise BackendError(f"cannot read xclbin {path} (alveo.xclbin): {one_line(exc)}") from exc
    if len(head) < size or not head.startswith(b"xclbin2"):
        raise BackendError(f"{path} (alveo.xclbin) is not an xclbin: no xclbin2 header")
    header = xclbin.axlf.from_buffer_copy(head)
    return bytes(header.m_header.m_platformVBNV).split(b"\0")[0].decode(errors="replace")


def real_devices(pynq: Any) -> list[Any]:
    """pynq.Device.devices without the emulated cards; probing works from any thread."""
    ensure_event_loop()  # XrtDevice.__init__ calls asyncio.get_event_loop()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "No devices found": reported by the caller, in one line
            devices = list(pynq.Device.devices)
    except Exception as exc:
        raise BackendError(f"pynq cannot enumerate devices ({one_line(exc)})") from exc
    emu = sys.modules.get("vidpipe.hw.emulated.device")
    return [d for d in devices if emu is None or not isinstance(d, emu.EmulatedDevice)]


def emulated_cards(spec: tuple[DeviceSpec, ...]) -> list[Any]:
    """The emulated cards, enough of them for every entry of `spec` to find one."""
    from vidpipe.hw import emulated

    indices = {e for e in spec if isinstance(e, int)}
    names = sum(1 for e in spec if isinstance(e, str))
    ensure_event_loop()
    emulated.enable(count=max(max(indices, default=-1) + 1, len(indices) + names))
    return emulated.emulated_devices()


def no_device_message() -> str:
    if "XILINX_XRT" not in os.environ:
        cause = "XRT not found (XILINX_XRT is not set: source /opt/xilinx/xrt/setup.sh)"
    else:
        cause = f"XRT in {os.environ['XILINX_XRT']} sees no card"
    return f"no Alveo device found by pynq: {cause}; alveo-emu runs the same path on an emulated card"


def _seen(devices: list[Any]) -> str:
    return ", ".join(f"{i}: {d.name} ({d.tag})" for i, d in enumerate(devices))


def pick_card(devices: list[Any], spec: tuple[DeviceSpec, ...], slot: int) -> int:
    """The index in `devices` of the card for entry `slot` of backend.alveo.devices."""
    taken = {e for e in spec if isinstance(e, int)}
    index = -1
    for k, entry in enumerate(spec[: slot + 1]):
        where = f"backend.alveo.devices[{k}] is {entry!r}"
        if isinstance(entry, int):
            if not 0 <= entry < len(devices):
                raise BackendError(f"{where}, but pynq sees {len(devices)} card(s): {_seen(devices)}")
            index = entry
            continue
        free = [i for i, d in enumerate(devices) if d.name == entry and i not in taken]
        if not free:
            owned = f"; taken by other entries: {', '.join(map(str, sorted(taken)))}" if taken else ""
            raise BackendError(f"{where}, but no free card has that shell: pynq sees {_seen(devices)}{owned}")
        index = free[0]
        taken.add(index)
    return index


def check_shell(device: Any, index: int, platform: str, xclbin: Path) -> None:
    """The card runs the shell the xclbin is built for, or a one-line BackendError."""
    if device.name != platform:
        raise BackendError(
            f"card {index} ({device.tag}) runs shell {device.name}, but {xclbin} is built for {platform}: "
            "choose a card that can run it in backend.alveo.devices (`vidpipe devices` lists them)",
            device=f"alveo:{index}",
        )


def describe_cards(devices: list[Any], xclbin: Path, version: str) -> list[tuple[str, str]]:
    """(card, state) for `vidpipe devices`: each card and whether it can run `xclbin`."""
    try:
        platform: str | None = xclbin_platform(xclbin) if xclbin.is_file() else None
        verdict = ""
    except BackendError as exc:
        platform, verdict = None, str(exc)
    rows = []
    for i, d in enumerate(devices):
        if platform is None:
            can = verdict or f"xclbin {xclbin} (alveo.xclbin) not found: cannot tell whether it can run it"
        elif d.name == platform:
            can = f"can run {xclbin.name}"
        else:
            can = f"cannot run {xclbin.name} (built for {platform})"
        rows.append((f"{i}: {d.name}", f"pynq {version} device {d.tag}; {can}"))
    return rows
