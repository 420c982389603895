"""Typed backend settings (the `backend:` section of a job config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CpuSettings:
    """The onnxruntime ImageNet model."""

    model: str = ""  # path of the built .onnx; empty = the cache (hw.paths.default_model_path())
    threads: int = 0  # intra-op threads; 0 = one per core (they never spin: see hw.cpu)


@dataclass(frozen=True)
class SimSettings:
    """Timing model of the U250 ResNet50 card: latency = base_ms + per_image_ms * batch."""

    base_ms: float = 1.5
    per_image_ms: float = 0.5


@dataclass(frozen=True)
class AlveoSettings:
    """The real card through pynq (or the emulated card when `emulate`)."""

    xclbin: str = "resnet50.xclbin"
    kernel: str = "resnet50_1"
    # One infer process per entry: an index into pynq.Device.devices, or a shell name
    # (e.g. "xilinx_u250_xdma_201830_2": the first card with that shell no other entry takes).
    devices: tuple[int | str, ...] = (0,)
    fc_weights: str = "fcweights.csv"  # reference .csv or .npy, int8 (1000, 2048)
    # Memories (pynq names: bank0, PLRAM0...); empty = the one the xclbin connects the kernel
    # port to (the release: FC weights in PLRAM0, input/output in bank0). Set: checked against it.
    fc_target: str = ""
    io_target: str = ""
    labels: str = ""  # reference label file; empty = built-in ImageNet-1k names
    emulate: bool = False
    # A batch of n images not finished within wait_timeout_s + n x wait_timeout_per_image_s is
    # a hung kernel: an error naming the card and the batch (the U250: 1.5 ms + 0.5 ms/image).
    wait_timeout_s: float = 2.0
    wait_timeout_per_image_s: float = 0.05


STANDALONE_BATCH = 8  # a backend opened on its own (not by a job) with max_batch 0


@dataclass(frozen=True)
class BackendSettings:
    name: str = "cpu"  # a registered backend: cpu, sim, alveo, alveo-emu, or a plug-in's (`vidpipe devices`)
    # Images per accelerator call; 0 = by job (stages.config.with_job_defaults: label and watch
    # jobs large batches for throughput, live jobs small ones for latency); a value set wins.
    max_batch: int = 0
    batch_timeout_ms: float = 5.0
    buffer_sets: int = 2  # >= 2: ping-pong (the reference host code uses 3)
    cpu: CpuSettings = field(default_factory=CpuSettings)
    sim: SimSettings = field(default_factory=SimSettings)
    alveo: AlveoSettings = field(default_factory=AlveoSettings)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in backend's own settings (its spec's type)

    @property
    def batch(self) -> int:
        """max_batch, or STANDALONE_BATCH when no job chose one (0)."""
        return self.max_batch or STANDALONE_BATCH
