"""The accelerator protocol every backend in hw/ implements.

The contract is the ResNet50-PYNQ one: a batch of int8 (N, 224, 224, 3) tensors in (the uint8 BGR
bytes of a frame resized to 224x224, stored bit for bit), top-5 class indices uint32 (N, 5) out.
Backends may add scores. Work is asynchronous so the infer stage keeps two batches in flight:

    buf = acc.input_buffer(k)      # fill buf[:n] (host memory of buffer set k)
    acc.start(k, n)                # sync the filled part to the device, start the kernel
    ...                            # meanwhile fill buffer set k+1
    out = acc.wait(k)              # block until batch k is done, read back its results

`buffer_sets` buffer sets exist (>= 2: ping-pong); a set may be refilled only after `wait`.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidpipe.hw.settings import BackendSettings

INPUT_SHAPE = (224, 224, 3)
INPUT_DTYPE = np.int8
TOP_K = 5
NUM_CLASSES = 1000  # ImageNet-1k: class ids 0..999
FC_SHAPE = (1000, 2048)  # the accelerator's FC weights, int8: NUM_CLASSES x 2048 features
# The ResNet50-PYNQ release: its kernel (compile/kernel.xml) and the shell it is linked for (link/Makefile).
RESNET50_VLNV = "xilinx.com:hls:resnet50:1.0"
RESNET50_ARGS = ("in", "out", "weightsmem", "numReps")  # its arguments, in order (compile/kernel.xml)


def kernel_arguments(ip: dict[str, Any]) -> tuple[str, ...]:
    """The argument registers of a kernel as pynq's ip_dict describes it (CTRL left out)."""
    return tuple(name for name in ip.get("registers", {}) if name != "CTRL")


def is_resnet50_kernel(ip: dict[str, Any]) -> bool:
    """The release's kernel: by its exact VLNV, or by its name and argument signature (another
    build of the same HLS code may carry another vendor string or version)."""
    vlnv = str(ip.get("type", ""))
    same_name = vlnv.split(":")[2:3] == ["resnet50"]
    return vlnv == RESNET50_VLNV or (same_name and kernel_arguments(ip) == RESNET50_ARGS)
U250_SHELL = "xilinx_u250_xdma_201830_2"


def check_start(name: str, buffer_set: int, n: int, buffer_sets: int, max_batch: int, running: Container[int]) -> None:
    """The misuse every backend refuses in start(): a set out of range or still in flight, a bad n."""
    from vidpipe.pipeline.errors import BackendError

    if not 0 <= buffer_set < buffer_sets:
        raise BackendError(f"{name}: buffer set {buffer_set} out of range 0..{buffer_sets - 1}")
    if buffer_set in running:
        raise BackendError(f"{name}: buffer set {buffer_set} started again before wait()")
    if not 1 <= n <= max_batch:
        raise BackendError(f"{name}: batch of {n} images, max_batch is {max_batch}")


@dataclass(frozen=True)
class BatchOutput:
    """Results of one batch: `top5` (n, 5) uint32 class ids, best first.

    `scores` (n, 5) float32 probabilities where the backend computes them, else None.
    Timings are wall-clock seconds (time.perf_counter) for the profile breakdown:
    upload = host->device sync, compute = kernel run, download = device->host sync.
    """

    top5: np.ndarray
    scores: np.ndarray | None
    upload_s: float
    compute_s: float
    download_s: float


@dataclass(frozen=True)
class DeviceInfo:
    """One line of `vidpipe devices`."""

    backend: str
    name: str
    state: str


class Accelerator(Protocol):
    """What the infer stage drives. Implementations: hw.cpu, hw.sim, hw.alveo."""

    name: str
    max_batch: int
    buffer_sets: int
    labels_meaningful: bool

    def open(self) -> None:
        """Acquire the device, load weights, allocate all buffer sets once."""

    def input_buffer(self, buffer_set: int) -> np.ndarray:
        """Host view (max_batch, 224, 224, 3) int8 of buffer set `buffer_set` to fill."""

    def start(self, buffer_set: int, n: int) -> None:
        """Sync the first `n` images of the set to the device and start the kernel; no blocking
        on compute."""

    def wait(self, buffer_set: int) -> BatchOutput:
        """Block until the batch started on `buffer_set` finishes; return its results."""

    def close(self) -> None:
        """Free every buffer and the device; safe to call twice and after a failed open."""

    def class_names(self) -> list[str]:
        """Names for class ids 0..999 (ImageNet-1k order unless the backend has its own)."""


def _one_process(settings: BackendSettings) -> int:
    return 1


def _nothing(settings: BackendSettings) -> dict[str, Any]:
    return {}


def _no_model(settings: BackendSettings) -> Path | None:
    return None


def _no_problems(settings: BackendSettings) -> list[str]:
    return []


@dataclass(frozen=True)
class BackendSpec:
    """Everything vidpipe asks of a backend, said once (hw.registry holds them by name).

    A new backend is one module that defines a BackendSpec, plus one registration: a line in
    hw.registry.BUILTIN, or a plug-in package's entry point in the group `vidpipe.backends`
    (`[project.entry-points."vidpipe.backends"] mycard = "mypkg.backend:SPEC"`). Nothing outside
    hw/ names a backend: jobs, the CLI and Ray ask the spec."""

    name: str
    summary: str  # one line for --help and the docs
    create: Callable[[BackendSettings, int], Accelerator]  # (settings, infer process index) -> not yet opened
    processes: Callable[[BackendSettings], int] = _one_process  # infer processes it wants (one per card)
    # Ray: the custom resource each infer process takes (hosts started with `ray start --resources
    # '{"alveo": N}'` run N at once; the task then picks a free card index); None: plain CPUs.
    card_resource: str | None = None
    on_card: Callable[[BackendSettings, int], BackendSettings] | None = None  # settings for card index k of a host
    fingerprint: Callable[[BackendSettings], dict[str, Any]] = _nothing  # settings that change the labels
    model: Callable[[BackendSettings], Path | None] = _no_model  # a model file it loads: checked before a run
    # what is wrong with the files it is configured with (weights, labels), one line each, before a run
    check: Callable[[BackendSettings], list[str]] = _no_problems
    devices: Callable[[BackendSettings], list[DeviceInfo]] | None = None  # its rows of `vidpipe devices`
    # Plug-ins: the frozen dataclass that `backend.options` is read into (checked at load); None: no options
    options: type | None = None
