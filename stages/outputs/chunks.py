"""One long video's annotated MP4 encoded in chunks by several encoder processes, then joined
without re-encoding (stages.outputs.remux).

    sink: frames 0..N-1 -> lane a (chunk 0), N..2N-1 -> lane b (chunk 1), ... (the least busy lane)
    encoder: chunk k -> OUT/NAME.mp4.c00000k.part.part while written, OUT/NAME.mp4.c00000k.part done
    chunk 0's lane (the Joiner): appends each chunk to OUT/NAME.mp4.part as soon as it and those
    before it are done (between its inbox batches), and on VideoJoin waits for the rest,
    finalizes, renames to NAME.mp4 and deletes the chunks

Each chunk is a fresh x264 encoder with the same settings, so it starts with an IDR frame (x264's
GOPs are closed) and has the same SPS/PPS as the others: the join checks that (one avcC) and fails
the video in one line if not. Frames carry the input's own times (1/90000 s), so the joined file
has the input's frame count and timestamps, variable frame rate included, and no gap at a chunk
boundary. Joining as the chunks come leaves only the last ones to join after the last frame, and
an abort little to join.

Crash safety: everything is `.part` until the final rename; a job killed before it leaves only
`.part` files, its manifest entry stays pending, `--resume` labels the video again and `sweep()`
clears the old chunks first. Who joins: chunk 0's lane, once it claims NAME.mp4.part (O_EXCL) with
chunk 0 done; on abort, if it had not, whoever finalizes a chunk of the cut-short video first
(the same claim decides): it waits a bounded time for the chunks still being written and joins
the run of chunks from 0 that is complete (cut short, playable). Encoders wake each other through
one shared Condition.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from vidpipe.stages.outputs.remux import Joined, JoinError, join_chunks, open_chunk
from vidpipe.stages.outputs.writers import PART_SUFFIX, part_path

X264_KEYINT = 250  # x264's default GOP length: chunks are whole GOPs of at most this
ABORT_JOIN_WAIT_S = 1.0  # on abort: how long the joiner waits for chunks still being finalized
WAKE_S = 0.5  # a waiting joiner looks at the abort flag at least this often
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


def first_failure(final: Path) -> bool:
    """Whether this is the first failure of the video (a chunk's or the join's), which says so in
    one line: NAME.mp4.failed.part made exclusively decides between encoders."""
    try:
        return _made_here(_video_failed(final))
    except OSError:  # cannot even make an empty file there: say it rather than risk saying nothing
        return True


def _made_here(path: Path) -> bool:
    """Makes the empty file `path` exclusively (O_EXCL): False if it exists (another encoder made it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def _video_failed(final: Path) -> Path:
    return final.with_name(f"{final.name}.failed{PART_SUFFIX}")


def _chunk_files(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f"{glob_escape(final.name)}.c*{PART_SUFFIX}"))


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def writing(final: Path) -> list[Path]:
    """Chunks being written now (their .part.part files)."""
    return [p for p in _chunk_files(final) if p.name.endswith(PART_SUFFIX * 2)]


def sweep(final: Path) -> None:
    """A video about to be split: chunks and a half-joined file an earlier run left are removed."""
    for path in [*_chunk_files(final), part_path(final), _video_failed(final)]:
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


def _done(final: Path, k: int) -> bool:
    """Whether chunk k is finished: published or failed."""
    return chunk_path(final, k).exists() or failed_marker(final, k).exists()


def _finished(final: Path, chunks: int) -> Callable[[], bool]:
    """A test of whether chunks 0..chunks-1 are all finished (published or failed); it remembers
    how far it got, so waiting on a long video's many chunks costs a few stats per wake-up."""
    seen = [0]

    def test() -> bool:
        while seen[0] < chunks and _done(final, seen[0]):
            seen[0] += 1
        return seen[0] >= chunks

    return test


def _complete_prefix(final: Path) -> Iterator[Path]:
    k = 0
    while (path := chunk_path(final, k)).exists():
        yield path
        k += 1


def _lock(final: Path) -> bool:
    """Claims the join: NAME.mp4.part made exclusively; False if another encoder has it."""
    return _made_here(part_path(final))


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
    for path in [*_chunk_files(final), _video_failed(final)]:
        if not path.name.endswith(PART_SUFFIX * 2):
            path.unlink(missing_ok=True)


class Joiner:
    """A split video's join in chunk 0's encoder (see the module docstring): `advance()` between
    inbox batches appends what is done, `finish()` on VideoJoin, `cut_short()` on abort."""

    def __init__(self, final: Path, uri: str, board: ChunkBoard) -> None:
        self.final, self.uri, self.board = final, uri, board
        self.next = 0  # the next chunk to append
        self.claimed = False  # NAME.mp4.part is ours
        self.joined: Joined | None = None
        self.error: JoinError | OSError | None = None  # an append failed: the video is not joined

    def advance(self) -> None:
        """Appends every chunk that is done, in order, from `next` on (a few stats when none is)."""
        while self.error is None and chunk_path(self.final, self.next).exists():
            if not self.claimed:
                if not _lock(self.final):
                    return  # an abort's joiner has it
                self.claimed = True
            try:
                with open_chunk(chunk_path(self.final, self.next)) as chunk:
                    self.joined = self.joined or Joined(part_path(self.final), chunk)
                    self.joined.append(self.next, chunk, self.board.aborted)
            except (OSError, av.FFmpegError) as exc:
                error = exc if isinstance(exc, OSError) else JoinError(str(exc))
                self.error = error if first_failure(self.final) else ChunkFailed(
                    f"{self.final.name}: not joined")  # a chunk's encoder has said why already
                self._discard(sweeping=False)  # chunks still being written: swept once they are done
                return
            self.next += 1  # (its file stays until the video is published: a kill -9 leaves every chunk)

    def finish(self, chunks: int) -> None:
        """Every chunk is sent: appends the rest as they are done, then publishes NAME.mp4 (JoinError,
        ChunkFailed). Aborted meanwhile: what is complete from chunk 0 is published instead."""
        while self.next < chunks and self.error is None:
            if failed_marker(self.final, self.next).exists():
                self.error = ChunkFailed(f"{self.final.name}: chunk {self.next} could not be written: "
                                         "the video is not joined")
                break
            if not self.board.wait(lambda: _done(self.final, self.next), None):
                self.cut_short(chunks)
                return
            self.advance()
            if not self.claimed and self.next == 0 and chunk_path(self.final, 0).exists():
                raise JoinError(f"{self.final.name}: joined cut short by another encoder (the job was stopped)")
        if self.error is not None:
            self.board.wait(_finished(self.final, chunks), None)  # none left being written
            self._discard()
            raise self.error
        self._publish()

    def cut_short(self, chunks: int | None = None) -> None:
        """Abort: what is complete from chunk 0 is published (waiting a bounded time for chunks being
        finalized); never claimed: the first encoder to claim it joins (ChunkBoard.join_cut_short)."""
        if not self.claimed:  # chunk 0 not appended, or an append failed (the joined file is gone)
            self.board.join_cut_short(self.final, chunks)
            if self.error is not None:
                raise self.error
            return
        self.board.wait(lambda: not writing(self.final), time.monotonic() + ABORT_JOIN_WAIT_S)
        self.advance()
        if self.error is not None:
            _remove_finished(self.final)
            raise self.error
        self._publish()  # (chunks after a gap, not joined, go with the others)

    def _publish(self) -> None:
        assert self.joined is not None, "published before chunk 0 was appended"
        joined, self.joined = self.joined, None
        try:
            joined.close()
        except BaseException:
            self._discard()
            raise
        os.replace(part_path(self.final), self.final)
        _remove_finished(self.final)
        self.board.finished()  # encoders waiting for the claim to go

    def _discard(self, sweeping: bool = True) -> None:
        """The joined file goes (first: a failed file's trailer then has nothing to re-read), and
        with it the claim; `sweeping`: the chunks not appended too (none may be being written)."""
        if self.claimed:
            part_path(self.final).unlink(missing_ok=True)
        if self.joined is not None:
            joined, self.joined = self.joined, None
            with contextlib.suppress(Exception):
                joined.close()
        if sweeping:
            sweep(self.final)
        if self.claimed:
            self.claimed = False
            self.board.finished()
