"""The graph half of a label job, which label, watch, a Ray worker and the bench compose:

    graph = LabelGraph(config)
    shape = graph.shape(max_frame_bytes, files)      # GraphShape: decode workers, encoder lanes
    graph.file_decoders(frames, outbox, infos)       # decode workers for these files (runs of a long one)
    graph.decoders(frames, outbox, workers)          # or for files put() while it runs (watch)
    graph.outputs()                                  # the sink's LabelOutputsFactory
    graph.close()                                    # after the graph: the FileQueue drained

Decode workers take the job's files in order from one queue, so the interpreter start-up is paid
per worker, not per file. `infos=None` leaves the queue open (watch adds files while it runs).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.machine import usable_cores
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec
from vidpipe.stages.config import JobConfig, max_open_sources
from vidpipe.stages.jobs.base import GraphShape
from vidpipe.stages.outputs.chunks import chunk_length
from vidpipe.stages.outputs.encoder import EncodeStage
from vidpipe.stages.outputs.frame_outputs import keeps_pixels
from vidpipe.stages.outputs.label import LabelOutputsFactory
from vidpipe.stages.sources.files import FileQueue, FileSourceParams, FileSourceStage, VideoInfo
from vidpipe.stages.sources.runs import VideoRun, split_files


def label_encoders(config: JobConfig, files: int, split: bool = False) -> int:
    """Encoder processes for the annotated videos: `output.encoders`, else one per file decoded at
    once, at most one per core (a stream is encoded by one process, in order), or one per core when
    a video is long enough to be split (its chunks are encoded at once); 0 without video."""
    if not config.output.video:
        return 0
    if config.output.encoders:
        return config.output.encoders
    if split:
        return max(1, usable_cores())
    return max(1, min(files, max_open_sources(config), usable_cores()))


def splittable(config: JobConfig, frame_count: int) -> bool:
    """Whether a video this long is encoded in chunks when several encoders run (stages.outputs.split)."""
    chunk = config.output.video_chunk_frames
    return config.output.video and chunk > 0 and frame_count >= 2 * chunk_length(chunk)


class LabelGraph:
    """See the module docstring."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.encoders = 0  # encoder processes (shape)
        self.files: FileQueue | None = None  # the decode workers' queue (decoders)

    def shape(self, max_frame_bytes: int, files: int, open_sources: bool = False, split: bool = False) -> GraphShape:
        """`files` decoded at most at once, and the encoder processes of their annotated videos
        (`split`: a video among them is long enough to be encoded in chunks by every core)."""
        self.encoders = label_encoders(self.config, files, split)
        return GraphShape(max_frame_bytes, self.config.runtime.queue_size, max_open_sources(self.config),
                          open_sources=open_sources, encoders=self.encoders, encoder=EncodeStage)

    def file_decoders(self, frames: SlotRing, outbox: Channel, infos: list[VideoInfo]) -> list[ProcSpec]:
        """Decode workers for exactly these files (as many as files open at once, fewer for fewer
        files). A long file may be queued as runs that several of them decode at once
        (stages.sources.runs): only where no output reads its pixels, and not on one core."""
        limit = max_open_sources(self.config)
        cut = not keeps_pixels(self.config.output) and usable_cores() > 1
        items = split_files(infos, limit, self.config.runtime.split_min_frames) if cut else infos
        return self.decoders(frames, outbox, min(len(items), limit), items)

    def decoders(self, frames: SlotRing, outbox: Channel, workers: int,
                 infos: Sequence[VideoInfo | VideoRun] | None = None) -> list[ProcSpec]:
        """`workers` decode processes; `infos`: the job's files, then one end marker per worker
        (None: files are put() while the graph runs, and the workers end on Ctrl-C)."""
        self.files = FileQueue(multiprocessing.get_context(self.config.runtime.start_method))
        if infos is not None:
            for info in infos:
                self.files.put(info)
            self.files.end(workers)
        params = FileSourceParams(self.files, frames, self.config.preprocess.max_damaged_share)
        return [ProcSpec(f"decode-{n}", FileSourceStage(params, outbox=outbox)) for n in range(workers)]

    def put(self, info: VideoInfo) -> None:
        """One more file for the running graph's decode workers (an open queue: watch)."""
        assert self.files is not None
        self.files.put(info)

    def outputs(self) -> LabelOutputsFactory:
        return LabelOutputsFactory(self.config.output, self.config.postprocess, self.encoders)

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
