"""Per-video outputs by name: what a labeled video turns into, composed from config.

    OUTPUTS.get("jsonl")                      # an OutputSpec: its files and how to make it
    enabled_outputs(settings.output)          # the specs a job's config turns on, in order

Built-in: `jsonl`, `segments` (.segments.json and .csv), `vtt`, `video` (the annotated mp4) and
`results` (each frame's labels to the main process, for the Python API). A new output is one
module defining an OutputSpec plus one registration: a line in BUILTIN, or a plug-in package's
entry point in the group `vidpipe.outputs`; a config turns a plug-in's on by naming it in
`output.extra`. The sink drives every output of a video the same way, in the sink process:

    out = spec.create(video)                  # VideoContext: where, what, how to report
    out.frame(label, pixels, ref) -> bool     # each frame in order; True: it took the frame slot (ref)
    out.smoothed(smoothed)                    # each frame's smoothed label, `lag` frames later
    out.frame_done()                          # after each frame: its pixels are gone after this
    out.finish(end)                           # VideoEnd: close and publish (or, aborted, finalize)

Files are written as OUT/NAME+suffix.part and renamed when complete (`VideoContext.path`): the
job manifest records each spec's `suffixes` as the video's outputs, so `--resume` checks them and
vidpipe never writes over a file it did not create.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.registry import Registry
from vidpipe.stages.config import OutputSettings, PostprocessSettings
from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import Segment, SmoothedLabel


@dataclass(frozen=True)
class VideoContext:
    """What an output knows of the video it writes, in the sink process."""

    stream: str  # the video's output name (NAME)
    uri: str  # its input, masked, for messages
    folder: Path  # OUT
    fps: float
    width: int
    height: int
    frame_count: int  # as the container says (0: unknown)
    names: tuple[str, ...]  # class names by id
    output: OutputSettings
    postprocess: PostprocessSettings
    report: Callable[[Event], None]  # a typed event to the main process (the job's on_event)
    lane: Any = None  # the video's way to an encoder process (stages.sink.Lane), if the graph has them
    threads: int = 0  # x264 threads per encoder (stages.outputs.label.encoder_threads)

    def path(self, suffix: str) -> Path:
        """OUT/NAME+suffix: write `part_path(path)` and rename it when complete."""
        return self.folder / f"{self.stream}{suffix}"


@dataclass(frozen=True)
class VideoEnd:
    """How a video ended, with what every output may want to write at the end."""

    frames: int  # frames written
    abort: bool  # the pipeline stopped mid-video: finalize what is there (playable, whole lines)
    error: str  # one line, or ""
    segments: Sequence[Segment]  # the smoothed label runs
    summary: Sequence[Any]  # labels by share of time (stages.outputs.smoothing.summarize)


class FrameOutput(Protocol):
    """One output of one video; see the module docstring for the order of calls."""

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool: ...

    def smoothed(self, smoothed: SmoothedLabel) -> None: ...

    def frame_done(self) -> None: ...

    def finish(self, end: VideoEnd) -> None: ...


class OutputBase:
    """Does nothing at each step: an output overrides what it needs."""

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool:
        return False

    def smoothed(self, smoothed: SmoothedLabel) -> None:
        pass

    def frame_done(self) -> None:
        pass

    def finish(self, end: VideoEnd) -> None:
        pass


def _listed(name: str) -> Callable[[OutputSettings], bool]:
    return lambda out: name in out.extra


@dataclass(frozen=True)
class OutputSpec:
    """An output as the registry knows it."""

    name: str
    summary: str  # one line for the docs
    suffixes: tuple[str, ...]  # the files it publishes per video: OUT/NAME+suffix
    create: Callable[[VideoContext], FrameOutput]
    # Whether a job's output settings turn it on; None: when `output.extra` names it (plug-ins)
    enabled: Callable[[OutputSettings], bool] | None = None
    # Whether it reads a frame's pixels (a plug-in is assumed to): with none that does, the sink
    # releases each frame slot when its result comes (stages.sink) and a long file may be cut
    # into runs decoded at once (stages.sources.runs)
    pixels: bool = True

    def wanted(self, out: OutputSettings) -> bool:
        return (self.enabled or _listed(self.name))(out)


BUILTIN = {
    "jsonl": "vidpipe.stages.outputs.builtin:JSONL",
    "segments": "vidpipe.stages.outputs.builtin:SEGMENTS",
    "vtt": "vidpipe.stages.outputs.builtin:VTT",
    "video": "vidpipe.stages.outputs.builtin:VIDEO",
    "results": "vidpipe.stages.outputs.builtin:RESULTS",
}
OUTPUTS: Registry[OutputSpec] = Registry(OutputSpec, "vidpipe.outputs", "output.extra", BUILTIN)


def enabled_outputs(out: OutputSettings) -> list[OutputSpec]:
    """The outputs `out` turns on: built-ins by their switches, then `output.extra` in order."""
    specs = [OUTPUTS.get(name) for name in BUILTIN]
    specs = [s for s in specs if s.wanted(out)]
    extra = [OUTPUTS.get(name) for name in out.extra if name not in BUILTIN]
    return specs + [s for s in extra if s.wanted(out)]


def keeps_pixels(out: OutputSettings) -> bool:
    """Whether an output `out` turns on reads the frames' pixels (see OutputSpec.pixels)."""
    return any(spec.pixels for spec in enabled_outputs(out))


def check_outputs(out: OutputSettings, source: str) -> None:
    """At config load: every name in output.extra is a registered output."""
    for name in out.extra:
        OUTPUTS.get(name, source)


def known_suffixes() -> tuple[str, ...]:
    """Every suffix a video's outputs may be published with: the built-ins', the installed
    plug-ins' and those registered in this process."""
    return tuple(dict.fromkeys(s for name in OUTPUTS.names() for s in OUTPUTS.get(name).suffixes))
