"""Typed backend settings (the `backend:` section of a job config)."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("cpu", "sim", "alveo", "alveo-emu")


@dataclass(frozen=True)
class CpuSettings:
    """The onnxruntime ImageNet model."""

    model: str = ""  # path of the built .onnx; empty = the cache (hw.paths.default_model_path())
    threads: int = 0  # intra-op threads; 0 = onnxruntime's default (all cores)


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
    devices: tuple[int, ...] = (0,)  # indices into pynq.Device.devices; one infer process each
    fc_weights: str = "fcweights.csv"  # reference .csv or .npy, int8 (1000, 2048)
    fc_target: str = "bank0"  # memory for the FC weights (the reference host code uses PLRAM0)
    io_target: str = "bank0"  # memory for input/output buffers
    labels: str = ""  # reference label file; empty = built-in ImageNet-1k names
    emulate: bool = False


@dataclass(frozen=True)
class BackendSettings:
    name: str = "cpu"  # one of BACKENDS
    max_batch: int = 8
    batch_timeout_ms: float = 5.0
    buffer_sets: int = 2  # >= 2: ping-pong (the reference host code uses 3)
    cpu: CpuSettings = field(default_factory=CpuSettings)
    sim: SimSettings = field(default_factory=SimSettings)
    alveo: AlveoSettings = field(default_factory=AlveoSettings)
