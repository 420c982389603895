"""Typed backend settings (the `backend:` section of a job config). Each key is documented once,
in the docstring after its field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidpipe.pipeline.config import Auto


@dataclass(frozen=True)
class CpuSettings:
    """The cpu backend: the bundled ImageNet-1k model, or one of your own classes, on onnxruntime."""

    model: str = ""
    """A model of your own classes by name (`vidpipe model list`: made by `vidpipe model import` or
    `teach`), or the path of a vidpipe .onnx; empty: the bundled ImageNet-1k model,
    ~/.cache/vidpipe/efficientnet_lite0_int8.onnx (`vidpipe model`)."""
    threads: Auto = None
    """onnxruntime intra-op threads; auto: one per core (they never spin)."""


@dataclass(frozen=True)
class SimSettings:
    """The sim backend: the U250's timing, latency = base_ms + per_image_ms x batch (2.0 ms at 1,
    51 ms at 100), no labels of value."""

    base_ms: float = 1.5
    """Latency of a batch before its images."""
    per_image_ms: float = 0.5
    """Latency added per image of the batch."""


@dataclass(frozen=True)
class AlveoSettings:
    """The alveo backend: the ResNet50 dataflow accelerator through pynq (or the emulated card)."""

    xclbin: str = "resnet50.xclbin"
    """The release's bitstream (a path relative to the config file's folder)."""
    kernel: str = "resnet50_1"
    """The kernel instance in the xclbin."""
    devices: tuple[int | str, ...] = (0,)
    """One infer process per entry: an index into pynq.Device.devices, or a shell name
    (xilinx_u250_xdma_201830_2: the first card with that shell that no other entry takes)."""
    fc_weights: str = "fcweights.csv"
    """The FC layer's weights: the reference .csv or a .npy, int8 (1000, 2048): the card's last layer,
    the release's or your own (checked before a run)."""
    fc_target: str = ""
    """Memory for the FC weights (pynq names: PLRAM0, bank0...); empty: where the xclbin connects the
    kernel's port (the release: PLRAM0). A value set is checked against it."""
    io_target: str = ""
    """Memory for the input and output buffers; empty: the xclbin's (the release: bank0)."""
    labels: str = ""
    """A reference label file (labels.pkl, or a name a line): 1..1000 names in FC row order, the rows
    past the last name all -128; empty: the built-in ImageNet-1k names."""
    emulate: bool = False
    """Run the same pynq code path on the emulated card (no hardware), as the alveo-emu backend."""
    wait_timeout_s: float = 2.0
    """A batch of n images not done within wait_timeout_s + n x wait_timeout_per_image_s is a hung
    kernel: the run stops with one line naming the card (the U250: 1.5 ms + 0.5 ms per image)."""
    wait_timeout_per_image_s: float = 0.05
    """See wait_timeout_s."""


STANDALONE_BATCH = 8  # a backend opened on its own (not by a job) with max_batch auto


@dataclass(frozen=True)
class BackendSettings:
    """What runs the classifier."""

    name: str = "cpu"
    """A registered backend: cpu (onnxruntime ImageNet model), sim (U250 timing only), alveo (pynq),
    alveo-emu, or a plug-in's; `vidpipe devices` lists them."""
    max_batch: Auto = None
    """Images per accelerator call; auto: by the job (label and watch 128, for throughput; live 4,
    for latency)."""
    batch_timeout_ms: float = 5.0
    """Wait at most this long to fill a batch."""
    buffer_sets: int = 2
    """Batches in flight (>= 2: double buffering; the reference host code uses 3)."""
    cpu: CpuSettings = field(default_factory=CpuSettings)
    """The cpu backend's settings."""
    sim: SimSettings = field(default_factory=SimSettings)
    """The sim backend's settings."""
    alveo: AlveoSettings = field(default_factory=AlveoSettings)
    """The alveo and alveo-emu backends' settings."""
    options: dict[str, Any] = field(default_factory=dict)
    """A plug-in backend's own settings (checked against its BackendSpec.options type)."""

    @property
    def batch(self) -> int:
        """max_batch, or STANDALONE_BATCH when no job chose one (auto)."""
        return self.max_batch or STANDALONE_BATCH
