"""One long video's annotated MP4 encoded in chunks by several encoder processes, then joined
without re-encoding.

    sink: frames 0..N-1 -> lane a (chunk 0), N..2N-1 -> lane b (chunk 1), ... (the least busy lane)
    encoder: chunk k -> OUT/NAME.mp4.c00000k.part.part while written, OUT/NAME.mp4.c00000k.part done
    the last chunk's lane, on VideoJoin: waits for every chunk, remuxes their packets into
    OUT/NAME.mp4.part (input timestamps kept, one avcC), deletes the chunks, renames to NAME.mp4

Each chunk is a fresh x264 encoder with the same settings, so it starts with an IDR frame (x264's
GOPs are closed) and has the same SPS/PPS as the others: the join checks that (one avcC) and fails
the video in one line if not. Frames carry the input's own times (1/90000 s), so the joined file
has the input's frame count and timestamps, variable frame rate included, and no gap at a chunk
boundary. Decode times are the chunks' own, moved up where they would not increase across a
boundary (a chunk's first ones start below its first frame by its B-frame delay). Each chunk is
read once, without decoding a frame (_NO_DECODE).

Crash safety: everything is `.part` until the final rename; a job killed before it leaves only
`.part` files, its manifest entry stays pending, `--resume` labels the video again and `sweep()`
clears the old chunks first. Who joins: the last chunk's lane (VideoJoin), or on abort whoever
finalizes a chunk of a cut-short video first (the O_EXCL creation of NAME.mp4.part decides): it
waits a bounded time for the chunks still being written and joins the run of chunks from 0 that
is complete (cut short, playable). Encoders wake each other through one shared Condition.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from vidpipe.stages.outputs.writers import PART_SUFFIX, VFR_TIME_BASE, part_path

X264_KEYINT = 250  # x264's default GOP length: chunks are whole GOPs of at most this
ABORT_JOIN_WAIT_S = 1.0  # on abort: how long the joiner waits for chunks still being finalized
WAKE_S = 0.5  # a waiting joiner looks at the abort flag at least this often
TICK_PACKETS = 1000  # a join reports a sign of life this often (stages.outputs.encoder: the stall watch)


class JoinError(OSError):
    """The chunks of a video cannot be joined (one line)."""


class ChunkFailed(JoinError):
    """A chunk could not be written: its encoder has said why (a SourceProblem) already."""


def chunk_keyint(chunk_frames: int) -> int:
    """The GOP length of split videos: x264's 250, or the chunk when chunks are shorter."""
    return max(1, min(X264_KEYINT, chunk_frames))


def chunk_length(chunk_frames: int) -> int:
    """Frames per chunk: `output.video_chunk_frames` rounded up to whole GOPs."""
    keyint = chunk_keyint(chunk_frames)
    return -(-chunk_frames // keyint) * keyint


def chunk_path(final: Path, k: int) -> Path:
    """A finished chunk (its writer writes chunk_path + .part and renames on close)."""
    return final.with_name(f"{final.name}.c{k:06d}{PART_SUFFIX}")


def failed_marker(final: Path, k: int) -> Path:
    return final.with_name(f"{final.name}.c{k:06d}.failed{PART_SUFFIX}")


def any_failed(final: Path) -> bool:
    """Whether a chunk of this video has failed already (its encoder made the marker)."""
    return any(final.parent.glob(f"{glob_escape(final.name)}.c*.failed{PART_SUFFIX}"))


def _chunk_files(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f"{glob_escape(final.name)}.c*{PART_SUFFIX}"))


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def writing(final: Path) -> list[Path]:
    """Chunks being written now (their .part.part files)."""
    return [p for p in _chunk_files(final) if p.name.endswith(PART_SUFFIX * 2)]


def sweep(final: Path) -> None:
    """A video about to be split: chunks and a half-joined file an earlier run left are removed."""
    for path in [*_chunk_files(final), part_path(final)]:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ChunkOf:
    """What an encoder knows of the chunk it writes: the video's final path and the chunk's index."""

    final: str
    index: int


class ChunkBoard:
    """The encoders' shared view of chunks: finished chunks are files, a Condition wakes waiters."""

    def __init__(self, condition: Any, aborted: Callable[[], bool]) -> None:
        self.condition = condition
        self.aborted = aborted  # (the stage's: asking it is also a sign of life)

    def finished(self) -> None:
        """A chunk was published (or failed): joiners look again."""
        if self.condition is not None:
            with self.condition:
                self.condition.notify_all()

    def wait(self, ready: Callable[[], bool], deadline: float | None) -> bool:
        """Waits until `ready()`, the deadline, or (with no deadline) an abort; True if ready."""
        assert self.condition is not None
        with self.condition:
            while not ready():
                if self.aborted() and deadline is None:
                    return False
                left = WAKE_S if deadline is None else min(WAKE_S, deadline - time.monotonic())
                if left <= 0:
                    return False
                self.condition.wait(left)
        return True

    def join_all(self, final: Path, chunks: int) -> None:
        """The video's last chunk is sent: wait for every chunk, then join (JoinError if one failed).
        Aborted meanwhile: the complete run from chunk 0 is joined instead."""
        if not self.wait(_finished(final, chunks), None):
            self.join_cut_short(final, chunks)
            return
        if failed := [k for k in range(chunks) if failed_marker(final, k).exists()]:
            sweep(final)
            raise ChunkFailed(f"{final.name}: chunk {failed[0]} could not be written: the video is not joined")
        if not _lock(final):  # only an abort's joiner can hold it: this video is not complete
            raise JoinError(f"{final.name}: joined cut short by another encoder (the job was stopped)")
        _join_locked(final, [chunk_path(final, k) for k in range(chunks)], self.aborted)

    def join_cut_short(self, final: Path, chunks: int | None = None) -> None:
        """Abort: the first encoder here joins what is complete from chunk 0 (see the module docstring)."""
        finished = _finished(final, chunks or 0)

        def settled() -> bool:
            return not writing(final) and finished()

        self.wait(settled, time.monotonic() + ABORT_JOIN_WAIT_S)
        if not _lock(final):  # another encoder joins: what it did not take goes once it is done
            if self.wait(lambda: not part_path(final).exists(), time.monotonic() + ABORT_JOIN_WAIT_S):
                _remove_finished(final)  # (still joining after that: what it reads stays)
            return
        prefix = list(_complete_prefix(final))
        if not prefix:  # joined already (chunk 0 is gone), or nothing was finished
            part_path(final).unlink(missing_ok=True)
            _remove_finished(final)
            return
        try:
            _join_locked(final, prefix, self.aborted)
        finally:
            self.finished()  # encoders waiting for the lock to go


def _finished(final: Path, chunks: int) -> Callable[[], bool]:
    """A test of whether chunks 0..chunks-1 are all finished (published or failed); it remembers
    how far it got, so waiting on a long video's many chunks costs a few stats per wake-up."""
    seen = [0]

    def test() -> bool:
        while seen[0] < chunks and (chunk_path(final, seen[0]).exists() or failed_marker(final, seen[0]).exists()):
            seen[0] += 1
        return seen[0] >= chunks

    return test


def _complete_prefix(final: Path) -> Iterator[Path]:
    k = 0
    while (path := chunk_path(final, k)).exists():
        yield path
        k += 1


def _lock(final: Path) -> bool:
    """Claims the join: NAME.mp4.part made exclusively (O_EXCL); False if another encoder has it."""
    try:
        os.close(os.open(part_path(final), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def _join_locked(final: Path, chunks: list[Path], tick: Callable[[], object]) -> None:
    """Remux into NAME.mp4.part, then the chunks go and the file is renamed (the lock is the .part)."""
    tmp = part_path(final)
    try:
        join_chunks(chunks, tmp, tick)
    except BaseException:
        sweep(final)
        raise
    _remove_finished(final)
    os.replace(tmp, final)


def _remove_finished(final: Path) -> None:
    """The video's finished chunks and failure markers (those still written are their writers')."""
    for path in _chunk_files(final):
        if not path.name.endswith(PART_SUFFIX * 2):
            path.unlink(missing_ok=True)


# Opening a chunk runs libavformat's stream probe, which decodes frames to guess the B-frame
# delay (~14 ms a 640x360 chunk, most of a join): the join needs no decoded frame.
_NO_DECODE = [{"skip_frame": "nonkey"}]


def _open_chunk(path: Path) -> Any:
    return av.open(str(path), stream_options=_NO_DECODE)  # type: ignore[arg-type]  # (the stub says list[str])


def _ticks(value: int | None, time_base: Any) -> int:
    """`value` in `time_base` as 1/90000 s ticks (0 if unset)."""
    return round(value * time_base / VFR_TIME_BASE) if value and time_base else 0


class _Joined:
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
            pts, dts = _ticks(packet.pts, tb), _ticks(packet.dts, tb) if packet.dts is not None else None
            dts = pts if dts is None else dts
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
    joined: _Joined | None = None
    try:
        for k, path in enumerate(chunks):
            with _open_chunk(path) as chunk:
                joined = joined or _Joined(out, chunk)
                joined.append(k, chunk, tick)
    finally:
        if joined is not None:
            joined.close()
    return joined.packets if joined is not None else 0
