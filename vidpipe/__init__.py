"""vidpipe: streaming video classification for FPGA accelerators (ResNet50 on Alveo through
pynq), with a cpu backend (a real ImageNet model on onnxruntime, the default) and a simulated card.

    import vidpipe

    run = vidpipe.label("clips/", out="results")        # LabelRun: already running
    for r in run:                                         # FrameResult per frame, as produced
        print(r.video, r.frame, r.t, r.label, r.score)
    summary = run.summary()                               # JobSummary: VideoResult per video
    print(summary.to_pandas())                            # with pandas installed

    with vidpipe.live(["0"], on_event=print) as cam:      # LiveRun: callbacks, add_stream()...
        cam.join()

Scripts that start jobs keep the usual multiprocessing guard (`if __name__ == "__main__":`):
stage processes are spawned. The CLI (`vidpipe label ...`) runs the same code.

Extension points (registries, open to plug-ins through entry points): backends
(`vidpipe.backends`: vidpipe.hw.base.BackendSpec), per-video outputs (`vidpipe.outputs`:
vidpipe.stages.outputs.frame_outputs.OutputSpec), live event senders (`vidpipe.senders`:
vidpipe.stages.outputs.senders.SenderSpec).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vidpipe.pipeline.errors import BackendError, ConfigError, SourceError, StageFailed, VidpipeError

# Everything else loads when first used: a stage process imports vidpipe.stages..., which runs
# this file first, and must not pay for the whole API.
_LAZY = {
    "BackendSpec": "vidpipe.hw.base",
    "FolderBusy": "vidpipe.pipeline.folder_lock",
    "Config": "vidpipe.stages.config:JobConfig",
    "FrameResult": "vidpipe.stages.events",
    "LiveEvent": "vidpipe.stages.events",
    "VideoDone": "vidpipe.stages.events:StreamDone",
    "label": "vidpipe.stages.jobs.api",
    "live": "vidpipe.stages.jobs.api",
    "load_config": "vidpipe.stages.jobs.api",
    "watch": "vidpipe.stages.jobs.api",
    "JobStatus": "vidpipe.stages.jobs.handles",
    "LabelRun": "vidpipe.stages.jobs.label_run",
    "LiveRun": "vidpipe.stages.jobs.live_run",
    "WatchRun": "vidpipe.stages.jobs.live_run",
    "JobSummary": "vidpipe.stages.jobs.results",
    "VideoResult": "vidpipe.stages.jobs.results",
    "OutputSpec": "vidpipe.stages.outputs.frame_outputs",
    "SenderSpec": "vidpipe.stages.outputs.senders",
    "Segment": "vidpipe.stages.outputs.smoothing",
}

if TYPE_CHECKING:
    from vidpipe.hw.base import BackendSpec
    from vidpipe.pipeline.folder_lock import FolderBusy
    from vidpipe.stages.config import JobConfig as Config
    from vidpipe.stages.events import FrameResult, LiveEvent
    from vidpipe.stages.events import StreamDone as VideoDone
    from vidpipe.stages.jobs.api import label, live, load_config, watch
    from vidpipe.stages.jobs.handles import JobStatus
    from vidpipe.stages.jobs.label_run import LabelRun
    from vidpipe.stages.jobs.live_run import LiveRun, WatchRun
    from vidpipe.stages.jobs.results import JobSummary, VideoResult
    from vidpipe.stages.outputs.frame_outputs import OutputSpec
    from vidpipe.stages.outputs.senders import SenderSpec
    from vidpipe.stages.outputs.smoothing import Segment


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from vidpipe.pipeline.machine import package_version

        return package_version("vidpipe", "0+unknown")
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'vidpipe' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "BackendError",
    "BackendSpec",
    "Config",
    "ConfigError",
    "FolderBusy",
    "FrameResult",
    "JobStatus",
    "JobSummary",
    "LabelRun",
    "LiveEvent",
    "LiveRun",
    "OutputSpec",
    "Segment",
    "SenderSpec",
    "SourceError",
    "StageFailed",
    "VideoDone",
    "VideoResult",
    "VidpipeError",
    "WatchRun",
    "label",
    "live",
    "load_config",
    "watch",
]
