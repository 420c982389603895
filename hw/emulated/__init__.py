"""An emulated Alveo U250 running the ResNet50 kernel on the CPU model, plugged in under pynq 3.0.1.

    from vidpipe.hw import emulated; import pynq
    emulated.enable(count=1)                     # now in pynq.Device.devices
    dev = emulated.emulated_devices()[0]
    ol = pynq.Overlay(str(emulated.write_emulated_xclbin(path)), device=dev)
    fcbuf = pynq.allocate((1000, 2048), dtype=np.int8, target=ol.PLRAM0)
    ...; ol.resnet50_1.start(inbuf, outbuf, fcbuf, n).wait()

Everything above the device is pynq 3.0.1's own code, on its Alveo path: Overlay, the xclbin
parser, driver binding, DefaultIP's `start`/`call` through the ERT (exec BO, packed
registers), `ErtWaitHandle`, `allocate` (XrtMemory), PynqBuffer's sliced syncs and its free.
The emulated device is pynq's `XrtDevice` with the methods that call libxrt replaced (xclbin
download, contexts, BO alloc/map/sync/free, exec and exec-wait, register access); its memory
and its compute unit are this package. Where the emulation differs from a card:

* pynq's DefaultIP cannot build a signature for the release kernel (its first argument is
  named `in`, a Python keyword): `ol.resnet50_1` needs the driver vidpipe registers
  (`hw.alveo_pynq.kernel_driver()`), on a card as here.
* The xclbin carries metadata only (no bitstream); "download" programs nothing. It checks what
  XRT checks: the magic, the shell, and that another design is not loaded over live buffers.
  Its connectivity is the release's: weights port on PLRAM[0] only (2 MiB: one set of FC
  weights fits, so a second process on the same card cannot allocate its own), in/out on
  DDR bank0. Device locking (xclLockDevice) is not emulated.
* The card reports the U250 shell (xilinx_u250_xdma_201830_2) as its name, as XRT does;
  `emulate_shell()` makes it another card (tests of card selection).
* Card memory is host numpy memory; a sync is a memcpy with the offset and size pynq passes.
  BO handles are `EmulatedBO` objects where XRT gives integers; pynq's `xrt.xclFreeBO` (called
  by PynqBuffer.freebuffer) is routed to the emulated device for them (memory.install_free_hook).
* The kernel validates what the card would silently get wrong: FC weights never synced, a
  buffer in a bank its port is not connected to, an address outside any buffer. Such a command
  ends in state ERROR, as a failed command on the card; pynq's `wait()` returns anyway (it
  does not raise), the reason is in the device's log. A missing input sync is *not* detected:
  the kernel reads the stale card copy, as the card would.
* The FC weights are checked (size, synced) but not used: the CPU model has its own head.
  Class ids are the CPU model's (ImageNet-1k order), and the timing is the CPU's. The model
  is loaded when the xclbin is downloaded (a card's model comes with its bitstream), so the
  first batch is no slower than the others.
* The command queue is per CU and unbounded (XRT's has a fixed number of slots). The card
  behaves like XRT 2.12 (XRT_VERSION): `start(..., waitfor=...)` is refused, as pynq 3.0.1
  does from 2.11 on. `emulate_xrt_version()` makes it the XRT pynq would have read: below 2.3
  pynq enables no ERT and `start` becomes register writes, which this card refuses under
  pynq's shared CU context, silently (pynq ignores xclWrite's result), as the issue reports
  XRT 2.x does; the sw path works only under an exclusive context. Register reads always work.
* A hung kernel on demand, for tests: `device.hang_after(n)`, or the environment variable
  VIDPIPE_EMULATED_HANG_AFTER=n read when a card is created (in every process, so a CLI run
  can be told to hang): the CU completes n commands, then takes the next and never finishes
  it nor any after it; xclExecWait times out as on a stuck card; closing the device ends them
  in state ABORT. XRT's own command timeout (kds, newer XRT) is not emulated.
* `XrtDevice.__init__` calls `asyncio.get_event_loop()`; so does this card's, so creating it
  needs an event loop in the calling thread, as a real one does (hw.alveo_pynq.ensure_event_loop).
* `XrtDevice.set_event_loop` (for `wait_async`) finds no DRM file to watch: use `wait()`.
"""

from vidpipe.hw.emulated.device import HANG_ENV, XRT_VERSION, EmulatedDevice, disable, emulated_devices, enable
from vidpipe.hw.emulated.files import write_emulated_weights, write_emulated_xclbin
from vidpipe.hw.emulated.memory import Call, CallLog, EmulatedBO
from vidpipe.hw.emulated.xclbin import build_xclbin

__all__ = [
    "HANG_ENV",
    "XRT_VERSION",
    "Call",
    "CallLog",
    "EmulatedBO",
    "EmulatedDevice",
    "build_xclbin",
    "disable",
    "emulated_devices",
    "enable",
    "write_emulated_weights",
    "write_emulated_xclbin",
]
