"""An emulated Alveo U250 running the ResNet50 kernel on the CPU model, plugged in under pynq 3.0.1.

    import hw.emulated, pynq
    hw.emulated.enable(count=1)                     # now in pynq.Device.devices
    dev = hw.emulated.emulated_devices()[0]
    ol = pynq.Overlay(str(hw.emulated.write_emulated_xclbin(path)), device=dev)
    fcbuf = pynq.allocate((1000, 2048), dtype=np.int8, target=ol.bank0)
    ...; ol.resnet50_1.start(inbuf, outbuf, fcbuf, n).wait()

Everything above the device is pynq 3.0.1's own code, on its Alveo path: Overlay, the xclbin
parser, driver binding, DefaultIP's `start`/`call` through the ERT (exec BO, packed
registers), `ErtWaitHandle`, `allocate` (XrtMemory), PynqBuffer's sliced syncs and its free.
The emulated device is pynq's `XrtDevice` with the methods that call libxrt replaced (xclbin
download, contexts, BO alloc/map/sync/free, exec and exec-wait, register access); its memory
and its compute unit are this package. Where the emulation differs from a card:

* pynq's DefaultIP cannot build a signature for the release kernel (its first argument is
  named `in`, a Python keyword): `ol.resnet50_1` needs the driver hw.alveo registers
  (`hw.alveo.kernel_driver()`), on a card as here.
* The xclbin carries metadata only (no bitstream); "download" programs nothing. It checks what
  XRT checks: the magic, the shell (xilinx_u250_xdma_201830_2), and that another design is
  not loaded over live buffers. Device locking (xclLockDevice) is not emulated.
* Card memory is host numpy memory; a sync is a memcpy with the offset and size pynq passes.
  BO handles are `EmulatedBO` objects where XRT gives integers; pynq's `xrt.xclFreeBO` (called
  by PynqBuffer.freebuffer) is routed to the emulated device for them (memory.install_free_hook).
* The kernel validates what the card would silently get wrong: FC weights never synced, a
  buffer in a bank its port is not connected to, an address outside any buffer. Such a command
  ends in state ERROR, as a failed command on the card; pynq's `wait()` returns anyway (it
  does not raise), the reason is in the device's log. A missing input sync is *not* detected:
  the kernel reads the stale card copy, as the card would.
* The FC weights are checked (size, synced) but not used: the CPU model has its own head.
  Class ids are the CPU model's (ImageNet-1k order), and the timing is the CPU's.
* The command queue is per CU and unbounded (XRT's has a fixed number of slots). The card
  behaves like XRT >= 2.11: `start(..., waitfor=...)` is refused, as pynq 3.0.1 does there.
  `XrtDevice.set_event_loop` (for `wait_async`) finds no DRM file to watch: use `wait()`.
"""

from hw.emulated.device import DEVICE_NAME, EmulatedDevice, disable, emulated_devices, enable
from hw.emulated.memory import Call, CallLog, EmulatedBO
from hw.emulated.xclbin import RESNET50_VLNV, SHELL, build_xclbin, write_emulated_xclbin

__all__ = [
    "DEVICE_NAME",
    "RESNET50_VLNV",
    "SHELL",
    "Call",
    "CallLog",
    "EmulatedBO",
    "EmulatedDevice",
    "build_xclbin",
    "disable",
    "emulated_devices",
    "enable",
    "write_emulated_xclbin",
]
