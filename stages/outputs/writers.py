"""Output files: per-frame JSONL/CSV, segments JSON/CSV, annotated H.264 video.

One rule for every writer: data goes to `NAME.part` and is renamed to NAME (atomic, same
folder) only when the file is complete and closed, so a file under its final name is never
half-written. `close(abort=True)` (Ctrl-C, a failed stage) still finalizes what was written:
the JSONL keeps its complete lines, the video is flushed and finalized into a playable file of
the frames encoded so far, and both are published under their final names; the segments JSON
then carries "error" saying the video was cut short. Pass `keep_on_abort=False` to delete
instead. A process killed outright (SIGKILL) leaves only a `.part` file behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import av
import cv2
import numpy as np
from av.container import OutputContainer
from av.video.stream import VideoStream

from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelShare, Segment

PART_SUFFIX = ".part"
# Times in seconds from the video's start: start_s inclusive, end_s exclusive (the next segment's
# start); start_frame and end_frame (0-based frame numbers) both inclusive. `video`: the NAME of
# NAME.segments.csv, so that the CSVs of a folder concatenate into one table.
SEGMENT_CSV_HEADER = ("video", "label", "name", "start_s", "end_s", "start_frame", "end_frame", "frames",
                      "mean_score")
SEGMENT_UNITS = ("start_s inclusive, end_s exclusive (the next segment's start), in seconds from the video's "
                 "start; start_frame and end_frame inclusive (0-based); mean_score 0..1")


def part_path(path: Path) -> Path:
    return path.with_name(path.name + PART_SUFFIX)


class _AbortOnError:
    """Context manager: a clean exit closes normally, an exception closes with abort=True."""

    def close(self, abort: bool = False) -> Path | None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(abort=exc_type is not None)


class _TextWriter(_AbortOnError):
    """A line-oriented text file written to NAME.part, renamed to NAME on close."""

    def __init__(self, path: str | Path, keep_on_abort: bool = True) -> None:
        self.path = Path(path)
        self.keep_on_abort = keep_on_abort
        self.lines = 0
        self._tmp = part_path(self.path)
        self._result: Path | None = None
        # Line buffered: each record reaches the OS as one write, so `tail -f NAME.part` works
        # and a crash never leaves a torn line before the last one.
        self._file: io.TextIOWrapper | None = open(self._tmp, "w", encoding="utf-8", newline="", buffering=1)  # noqa: SIM115

    def _write_line(self, line: str) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: write after close")
        self._file.write(line)
        self.lines += 1

    def close(self, abort: bool = False) -> Path | None:
        """Publishes the file (idempotent). Returns its path, or None when nothing was kept."""
        if self._file is not None:
            file, self._file = self._file, None
            self._result = _publish(self._tmp, self.path, keep=not abort or self.keep_on_abort, finalize=file.close)
        return self._result


class JsonlWriter(_TextWriter):
    """One JSON object per line: FrameLabel.to_json() (or any mapping)."""

    def write(self, record: FrameLabel | Mapping[str, Any]) -> None:
        data = record.to_json() if isinstance(record, FrameLabel) else record
        self._write_line(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")


class CsvWriter(_TextWriter):
    """A CSV file with a header row, written row by row."""

    def __init__(self, path: str | Path, header: Sequence[str], keep_on_abort: bool = True) -> None:
        super().__init__(path, keep_on_abort)
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        self.write(header)
        self.lines = 0  # data rows only

    def write(self, row: Iterable[Any]) -> None:
        self._buf.seek(0)
        self._buf.truncate()
        self._csv.writerow(row)
        self._write_line(self._buf.getvalue())


class SegmentsWriter:
    """NAME.segments.json and NAME.segments.csv, each written whole and published atomically."""

    @staticmethod
    def write(path_json: str | Path, path_csv: str | Path | None, segments: Sequence[Segment],
              summary: Sequence[LabelShare], meta: Mapping[str, Any]) -> None:
        """`meta`: "video", "fps", "frames" (and any extra keys); "error" is kept only when set.
        The CSV's `video` column is meta["name"] (the output NAME), else meta["video"]."""
        doc: dict[str, Any] = {k: v for k, v in meta.items() if k != "error"}
        doc["units"] = SEGMENT_UNITS
        doc["segments"] = [s.to_json() for s in segments]
        doc["summary"] = [{"name": s.name, "duration_s": round(s.duration_s, 6), "share": round(s.share, 6)}
                          for s in summary]
        if meta.get("error"):
            doc["error"] = str(meta["error"])
        write_text_atomic(Path(path_json), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        if path_csv is not None:
            video = str(meta.get("name") or meta.get("video", ""))
            with CsvWriter(path_csv, SEGMENT_CSV_HEADER) as table:
                for s in segments:
                    table.write((video, s.label, s.name, f"{s.start_s:.6f}", f"{s.end_s:.6f}", s.start_frame,
                                 s.end_frame, s.frames, f"{s.mean_score:.5f}"))


def write_text_atomic(path: Path, text: str) -> None:
    """A whole text file (UTF-8), written to NAME.part and renamed."""
    tmp = part_path(path)
    _publish(tmp, path, keep=True, finalize=lambda: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """A whole binary file, written to NAME.part and renamed."""
    tmp = part_path(path)
    _publish(tmp, path, keep=True, finalize=lambda: tmp.write_bytes(data))


def _publish(tmp: Path, final: Path, keep: bool, finalize: Callable[[], object]) -> Path | None:
    """Runs `finalize()` (flush, close); renames tmp -> final if keep, else deletes tmp."""
    try:
        finalize()
    except BaseException:
        tmp.unlink(missing_ok=True)  # could not be completed: nothing may claim the final name
        raise
    if not keep:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, final)
    return final


# -- H.264 ----------------------------------------------------------------------------------

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
FRAGMENT_S = 1.0  # fragmented MP4: about what a crash costs (the fragment being written)
VFR_TIME_BASE = Fraction(1, 90000)  # the MPEG clock: variable-frame-rate times are kept to 1/90000 s


def _container_options(fmt: str, fragmented: bool) -> dict[str, str]:
    if fmt not in ("mp4", "mov"):
        return {}
    if fragmented:
        # each fragment reaches the file when it is complete, not when an I/O buffer fills
        return {"movflags": "+frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(int(FRAGMENT_S * 1e6)), "flush_packets": "1"}
    return {"movflags": "+faststart"}


def frame_rate(fps: float | Fraction) -> Fraction:
    """An exact rate: NTSC-style floats (29.97..., 23.976) snap to n*1000/1001."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        if not 0 < fps < float("inf"):
            raise ValueError(f"frame rate must be a positive number, got {fps}")
        ntsc = round(fps * 1.001)
        if ntsc > 0 and abs(fps - ntsc * 1000 / 1001) < fps * 1e-4 and abs(fps - ntsc) > fps * 1e-4:
            rate = Fraction(ntsc * 1000, 1001)
        else:
            rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return rate


class H264Writer(_AbortOnError):
    """Annotated video: H.264 (libx264, yuv420p, High profile) in MP4 with +faststart, which
    every browser plays. One output frame per write(), pts = frame index at exactly `fps`
    (time base 1/fps), so frame count and rate equal the input's (a variable-rate input comes
    out constant-rate). With `vfr=True` each write() gives the frame's own time instead
    (`pts_s`, seconds on any clock; the video starts at the first one), kept to 1/90000 s: a
    live source with gaps or an uneven rate plays at its real speed (`fps` is then only the
    nominal rate the encoder's rate control assumes, and how long the last frame lasts).
    With `fragmented=True` (live recordings) the file is written in place as fragmented MP4 (an
    empty index up front, then self-contained fragments of FRAGMENT_S): it plays while it is
    written and, after a crash or a power cut, up to its last fragment; nothing to publish.

    Odd sizes: 4:2:0 H.264 cannot code odd widths/heights (chroma is subsampled by 2, and the
    SPS crop window also moves in 2-pixel steps), and 4:4:4, which could, does not play in
    browsers. So an odd dimension is padded by one pixel, repeating the last column/row:
    every input pixel is kept and the extra line is invisible. `encoded_size` tells the size.

    Colour: BGR -> YUV 4:2:0 by OpenCV (BT.601, limited range; ~6x faster than swscale here),
    and the stream is tagged BT.601 so players do not guess BT.709 for HD sizes.
    A write error (a full disk) fails the writer for good: later writes raise it again and
    close() deletes the file (a recording keeps what reached it) without giving libav more packets.
    May block: in write() (encoding, libx264 threads) and close() (flush, faststart rewrite).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float | Fraction, *,
                 preset: str = "veryfast", crf: int = 23, threads: int = 0, keep_on_abort: bool = True,
                 options: Mapping[str, str] | None = None, vfr: bool = False, fragmented: bool = False,
                 metadata: Mapping[str, str] | None = None, fmt: str | None = None,
                 origin_s: float | None = None) -> None:
        self.path = Path(path)
        fmt = fmt or _FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise ValueError(f"{self.path}: unsupported video extension (use {', '.join(_FORMATS)})")
        if width <= 0 or height <= 0:
            raise ValueError(f"{self.path}: bad frame size {width}x{height}")
        self.width, self.height = width, height
        self.encoded_size = (width + width % 2, height + height % 2)
        self.rate = frame_rate(fps)
        self.vfr = vfr
        self.time_base = VFR_TIME_BASE if vfr else 1 / self.rate
        self.keep_on_abort = keep_on_abort
        self.frames = 0
        self._pts0: float | None = origin_s  # vfr: the time of pts 0 (None: the first frame's)
        self._last_pts = -1
        self.fragmented = fragmented and fmt in ("mp4", "mov")
        self._tmp = self.path if self.fragmented else part_path(self.path)
        self._result: Path | None = None
        self._failed: Exception | None = None  # the muxer's first error: it gets nothing more
        container_options = _container_options(fmt, self.fragmented)
        if vfr and not self.fragmented and fmt in ("mp4", "mov"):
            container_options["movie_timescale"] = str(VFR_TIME_BASE.denominator)  # edit lists kept exact
        container = av.open(str(self._tmp), mode="w", format=fmt, options=container_options)
        container.metadata.update(metadata or {})  # written with the header (e.g. who made the file)
        try:
            self._stream = self._add_stream(container, preset, crf, threads, options or {})
        except BaseException:
            container.close()
            self._tmp.unlink(missing_ok=True)
            raise
        self._container: OutputContainer | None = container

    def _add_stream(self, container: OutputContainer, preset: str, crf: int, threads: int,
                    options: Mapping[str, str]) -> VideoStream:
        stream = container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = self.encoded_size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base
        if self.vfr:
            stream.time_base = self.time_base
        cc = stream.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = 6  # AVCOL_*_SMPTE170M (BT.601)
        cc.color_range = 1  # AVCOL_RANGE_MPEG (limited)
        # fragmented MP4 has no edit list to hide a B-frame delay, and a crash loses what the
        # encoder still holds: zerolatency (no B-frames, no look-ahead, sliced threads) holds none
        no_delay = {"tune": "zerolatency"} if self.fragmented else {}
        stream.options = {"preset": preset, "crf": str(crf), **({"threads": str(threads)} if threads else {}),
                          **no_delay, **dict(options)}
        cc.open()  # now, not at the first frame: a bad preset or a missing libx264 fails here
        return stream

    def write(self, frame_bgr: np.ndarray, pts_s: float | None = None) -> None:
        """Encodes one BGR uint8 frame of the size given at construction; `pts_s`: its time
        (required with vfr=True, where a time not after the previous one becomes 1/90000 s later)."""
        if self._container is None:
            raise ValueError(f"{self.path}: write after close")
        if self._failed is not None:
            raise self._failed
        if self.vfr and pts_s is None:
            raise ValueError(f"{self.path}: a variable-frame-rate writer needs each frame's pts_s")
        if frame_bgr.shape != (self.height, self.width, 3) or frame_bgr.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected a {self.width}x{self.height} BGR uint8 frame, "
                             f"got {frame_bgr.dtype} {frame_bgr.shape}")
        pad_w, pad_h = self.encoded_size[0] - self.width, self.encoded_size[1] - self.height
        if pad_w or pad_h:
            frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        yuv = np.asarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)  # no copy; typed
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self._next_pts(pts_s)
        self._mux(self._container, self._stream.encode(frame))
        self.frames += 1

    def _mux(self, container: OutputContainer, packets: list[av.Packet]) -> None:
        """Muxes; an error is kept, and the container never muxes again: if it was the header that
        failed (the first packet's), PyAV would call avformat_write_header again on the muxer that
        failure tore down, and libav crashes (SIGSEGV)."""
        try:
            container.mux(packets)
        except Exception as exc:
            self._failed = exc
            raise

    def _next_pts(self, pts_s: float | None) -> int:
        if pts_s is None or not self.vfr:
            return self.frames
        if self._pts0 is None:
            self._pts0 = pts_s
        self._last_pts = max(self._last_pts + 1, round((pts_s - self._pts0) / self.time_base))
        return self._last_pts

    def close(self, abort: bool = False) -> Path | None:
        """Flushes the encoder and finalizes the file (idempotent). Returns the published path,
        or None when nothing was kept (no frame written, or abort with keep_on_abort=False)."""
        container, self._container = self._container, None
        if container is None:
            return self._result
        if self._failed is not None:
            self._close_failed(container)
            if not abort:
                raise self._failed
            return self._result
        keep = self.frames > 0 and (not abort or self.keep_on_abort)  # a frameless MP4 plays nowhere
        if not keep:
            with contextlib.suppress(Exception):
                container.close()
            self._tmp.unlink(missing_ok=True)
            return None

        def finalize() -> None:
            try:
                self._mux(container, self._stream.encode(None))  # drain the encoder's delayed frames
            except Exception:
                self._close_failed(container)
                raise
            container.close()  # trailer (+faststart moves the index to the front)

        if self.fragmented:  # valid up to its last fragment whatever happens: kept in place
            finalize()
            self._result = self.path
        else:
            self._result = _publish(self._tmp, self.path, keep=True, finalize=finalize)
        return self._result

    def _close_failed(self, container: OutputContainer) -> None:
        """After a write error: no flush. The .part goes first, so the trailer (one av_write_trailer
        on the failed I/O, which libav allows; none if the header failed) has no file to re-read
        whole for +faststart; a recording's file stays (it plays up to its last fragment). When the
        header failed, PyAV keeps the file's descriptor open: its space returns at process exit."""
        if self.fragmented:
            self._result = self.path
        else:
            self._tmp.unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            container.close()


def check_output_dir(folder: str) -> None:
    """What ensure_output_dir would refuse, without making anything: a file in the way, a parent
    that cannot be written."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output.dir: {path} is a file, not a folder", key="output.dir")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not path.exists() and not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        raise ConfigError(f"output.dir: cannot create {path}: {parent} is not a writable folder", key="output.dir")


def ensure_output_dir(folder: str) -> Path:
    """The output folder, created if missing, checked writable: a ConfigError (one line naming
    `output.dir`) before any process starts, instead of a failed sink later."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output.dir: {path} is a file, not a folder", key="output.dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output.dir: cannot create {path}: {exc.strerror}", key="output.dir") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"output.dir: {path} is not writable", key="output.dir")
    return path
