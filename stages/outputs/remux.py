"""Remuxing H.264 chunks into one MP4 without re-encoding (stages.outputs.chunks says which and
when): each chunk opened once, nothing decoded, pts kept, decode times kept increasing.

    joined = Joined(out, first_chunk); joined.append(k, chunk) ...; joined.close()
    join_chunks(paths, out)   # all at once
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from vidpipe.stages.outputs.writers import VFR_TIME_BASE

TICK_PACKETS = 1000  # a join reports a sign of life this often (stages.outputs.encoder: the stall watch)


class JoinError(OSError):
    """The chunks of a video cannot be joined (one line)."""


# Opening a chunk runs libavformat's stream probe, which decodes frames to guess the B-frame
# delay (~14 ms a 640x360 chunk, most of a join): the join needs no decoded frame.
_NO_DECODE = [{"skip_frame": "nonkey"}]


def open_chunk(path: Path) -> Any:
    return av.open(str(path), stream_options=_NO_DECODE)  # type: ignore[arg-type]  # (the stub says list[str])


def _ticks(value: int | None, time_base: Any) -> int:
    """`value` in `time_base` as 1/90000 s ticks (0 if unset)."""
    return round(value * time_base / VFR_TIME_BASE) if value and time_base else 0


class Joined:
    """The joined MP4 being written: chunks appended in order, each opened once."""

    def __init__(self, out: Path, first: Any) -> None:
        options = {"movflags": "+faststart", "movie_timescale": str(VFR_TIME_BASE.denominator)}  # exact edits
        self.out = out
        self.container = av.open(str(out), mode="w", format="mp4", options=options)
        self.stream = self.container.add_stream_from_template(first.streams.video[0])
        self.stream.time_base = VFR_TIME_BASE
        self.avcc = bytes(first.streams.video[0].codec_context.extradata or b"")
        self.packets = 0
        self.last_dts: int | None = None

    def append(self, k: int, chunk: Any, tick: Callable[[], object] | None) -> None:
        """Chunk k's packets at their own pts; a decode time that would not increase across the
        boundary (the chunk's first ones start below its first frame by its B-frame delay) is
        moved up to one tick past the last; JoinError if the chunk's SPS/PPS differ."""
        if bytes(chunk.streams.video[0].codec_context.extradata or b"") != self.avcc:
            raise JoinError(f"{self.out.name}: chunk {k} has another SPS/PPS (avcC) than chunk 0: the chunks' "
                            "x264 settings differ, they cannot be joined without re-encoding")
        for packet in chunk.demux(video=0):
            if not packet.size or packet.pts is None:
                continue
            tb = packet.time_base
            pts = _ticks(packet.pts, tb)
            dts = pts if packet.dts is None else _ticks(packet.dts, tb)
            if self.last_dts is not None:
                dts = max(dts, self.last_dts + 1)
            if dts > pts:
                raise JoinError(f"{self.out.name}: chunk {k} starts too close to chunk {k - 1} to be joined "
                                "in decode order")
            packet.stream = self.stream
            packet.pts, packet.dts, packet.duration, packet.time_base = pts, dts, _ticks(packet.duration, tb), \
                VFR_TIME_BASE
            self.container.mux(packet)
            self.last_dts = dts
            self.packets += 1
            if tick is not None and self.packets % TICK_PACKETS == 0:
                tick()

    def close(self) -> None:
        self.container.close()  # trailer (+faststart moves the index to the front)


def join_chunks(chunks: list[Path], out: Path, tick: Callable[[], object] | None = None) -> int:
    """Remuxes the chunks' H.264 packets, in order, into one MP4 (+faststart) without re-encoding,
    reading each chunk once: pts as the chunks have them (the input's times), decode times kept
    increasing across boundaries. Raises JoinError if the chunks' SPS/PPS (avcC) differ. Returns
    the packets written. `tick` is called every TICK_PACKETS (a long video's join is a sign of
    life for the stall watch)."""
    joined: Joined | None = None
    try:
        for k, path in enumerate(chunks):
            with open_chunk(path) as chunk:
                joined = joined or Joined(out, chunk)
                joined.append(k, chunk, tick)
    finally:
        if joined is not None:
            joined.close()
    return joined.packets if joined is not None else 0
