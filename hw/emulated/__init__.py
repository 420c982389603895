"""An emulated Alveo U250 running the ResNet50 kernel on the CPU model, plugged in under pynq.

    import hw.emulated, pynq
    hw.emulated.enable(count=1)                     # now in pynq.Device.devices
    dev = hw.emulated.emulated_devices()[0]
    ol = pynq.Overlay(str(hw.emulated.write_emulated_xclbin(path)), device=dev)
    fcbuf = pynq.allocate((1000, 2048), dtype=np.int8, target=ol.bank0)
    ...; ol.resnet50_1.start(inbuf, outbuf, fcbuf, n).wait()

Everything above the device is pynq's own code: Overlay, the xclbin parser, driver binding,
allocate, PynqBuffer and its sync/free, MMIO. The device, its memories and the kernel driver
are this package. Where the emulation differs from a card:

* pynq >= 3.1 no longer supports Alveo (its XrtDevice probes to nothing and DefaultIP lost
  start/call); the kernel driver here provides the start/call/wait API of pynq <= 3.0.1.
* The xclbin carries metadata only (no bitstream); "download" programs nothing.
* Card memory is host numpy memory; a sync is a memcpy, with the exact offset and size pynq
  passes (pynq 3.1.2's own XrtDevice.flush ignores them and syncs the whole BO).
* The kernel validates what the card would silently get wrong: FC weights never synced, a
  buffer in a bank its port is not connected to, an address outside any buffer. Such a command
  fails and its handle's wait() raises KernelError. A missing input sync is *not* detected:
  the kernel reads the stale card copy, as the card would.
* The FC weights are checked (size, synced) but not used: the CPU model has its own head.
  Class ids are the CPU model's (ImageNet-1k order), and the timing is the CPU's.
* The command queue is per CU and unbounded (XRT's has a fixed number of slots).
"""

from hw.emulated.device import DEVICE_NAME, EmulatedDevice, disable, emulated_devices, enable
from hw.emulated.kernel import EMULATED_VLNV, KernelError, WaitHandle
from hw.emulated.memory import Call, CallLog
from hw.emulated.xclbin import build_xclbin, write_emulated_xclbin

__all__ = [
    "DEVICE_NAME",
    "EMULATED_VLNV",
    "Call",
    "CallLog",
    "EmulatedDevice",
    "KernelError",
    "WaitHandle",
    "build_xclbin",
    "disable",
    "emulated_devices",
    "enable",
    "write_emulated_xclbin",
]
