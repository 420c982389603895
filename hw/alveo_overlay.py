"""What hw.alveo checks on a loaded pynq Overlay before it allocates anything: the kernel, how
pynq will start it, and which memory each of its buffers goes to.

Buffer memories come from the xclbin's connectivity (pynq puts it in each argument register's
`memory`, and `MBG` when the port reaches several): in the release the weights port reaches
PLRAM[0] only and in/out reach DDR bank0. `alveo.fc_target` / `alveo.io_target` override them,
checked against the same connectivity: the card would silently read another memory otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vidpipe.hw.alveo_pynq import starts_through_ert, xrt_version_read
from vidpipe.pipeline.errors import BackendError, one_line

_BUFFER_KEYS = ("io_target", "io_target", "fc_target")  # the config key for in, out, weights


def sanitized(tag: str) -> str:
    """A memory tag as pynq names the overlay attribute (PLRAM[0] -> ol.PLRAM0)."""
    return re.sub(r"[^A-Za-z0-9_]", "", tag)


def find_kernel(ol: Any, name: str, xclbin: Path) -> Any:
    if name not in ol.ip_dict:
        kernels = ", ".join(ol.ip_dict) or "no kernels"
        raise BackendError(f"kernel {name!r} (alveo.kernel) is not in {xclbin}: it has {kernels}")
    try:
        kernel = getattr(ol, name)
    except Exception as exc:
        raise BackendError(f"pynq cannot create a driver for kernel {name} in {xclbin}: {one_line(exc)}") from exc
    if not callable(getattr(kernel, "start", None)):
        raise BackendError(f"pynq cannot start kernel {name} in {xclbin}: it has no start() (no CTRL register?)")
    return kernel


def check_ert(kernel: Any, name: str, card: str) -> None:
    """pynq starts the kernel through XRT's ERT scheduler, or a one-line BackendError.

    Without ERT, DefaultIP.start writes the CU's registers, which XRT 2.x refuses under the
    shared context pynq opens, and pynq ignores the refusal: batches would "finish" unrun."""
    if starts_through_ert(kernel):
        return
    raise BackendError(
        f"{card}: pynq would start {name} with register writes, not through XRT's ERT scheduler: it read "
        f"XRT version {xrt_version_read()} from $XILINX_XRT/version.json at import and needs >= 2.3; "
        "source /opt/xilinx/xrt/setup.sh before starting vidpipe",
        device=card,
    )


def find_memory(ol: Any, name: str, what: str, xclbin: Path) -> Any:
    present = [sanitized(t) for t, m in ol.mem_dict.items() if m.get("used") and not m.get("streaming")]
    if name not in present:
        raise BackendError(f"memory {name!r} ({what}) is not in {xclbin}: it has {', '.join(present) or 'none'}")
    return getattr(ol, name)


def _kernel_args(ol: Any, kernel: str) -> tuple[list[str], dict[str, Any]]:
    """The kernel's arguments by register offset: (in, out, fc weights, count)."""
    regs = ol.ip_dict[kernel].get("registers", {})
    args = sorted((k for k in regs if k != "CTRL"), key=lambda k: regs[k]["address_offset"])
    if len(args) != 4 or any("*" not in regs[a]["type"] for a in args[:3]):
        raise BackendError(f"kernel {kernel} takes ({', '.join(args)}), expected (in, out, fc weights, count)")
    return args, regs


def buffer_targets(ol: Any, kernel: str, cfg: Any, xclbin: Path) -> tuple[str, str, str]:
    """The memory (overlay attribute name) for the in, out and FC weights buffers: the configured
    io_target / fc_target if set, else the one the kernel's port is connected to."""
    args, regs = _kernel_args(ol, kernel)
    targets = []
    for arg, key in zip(args, _BUFFER_KEYS, strict=False):
        reg = regs[arg]
        connected = [sanitized(m) for m in reg.get("MBG") or ([reg["memory"]] if "memory" in reg else [])]
        configured = getattr(cfg, key)
        if configured and connected and configured not in connected:
            raise BackendError(
                f"alveo.{key} is {configured}, but {xclbin} connects kernel {kernel} argument {arg!r} to "
                f"{', '.join(connected)} only: leave alveo.{key} empty to follow the xclbin"
            )
        if not configured and not connected:
            raise BackendError(f"{xclbin} does not say which memory kernel {kernel} argument {arg!r} reaches: "
                               f"set alveo.{key}")
        targets.append(configured or sanitized(reg["memory"]))
    return targets[0], targets[1], targets[2]
