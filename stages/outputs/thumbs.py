"""Segment thumbnails for the job report: one small JPEG per label segment, from its middle frame.

    OUT/thumbs/NAME/seg000.jpg, seg001.jpg, ...    (at most THUMB_SIZE pixels wide or high)

Taken with OpenCV from the first of `sources` that opens (the original input, else the annotated
video), by seeking to the segment's middle frame. Each file is written .part, then renamed.
`open_video` opens a file as the file sources do (stages.sources.files.open_capture: any name,
non-UTF-8 included) and raises SourceError or OSError when it cannot.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from vidpipe.pipeline.errors import SourceError
from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.writers import write_bytes_atomic

log = logging.getLogger(__name__)

THUMBS_DIR = "thumbs"
THUMB_SIZE = 240  # longest side, pixels
JPEG_QUALITY = 80

Opener = Callable[[str], cv2.VideoCapture]


def thumb_names(video: str, count: int) -> list[str]:
    """Folder-relative paths (with "/") of the thumbnails of `count` segments of `video`."""
    return [f"{THUMBS_DIR}/{video}/seg{i:03d}.jpg" for i in range(count)]


def middle_frame(segment: Segment) -> int:
    return (segment.start_frame + segment.end_frame) // 2


def write_thumbnails(folder: Path, open_video: Opener, sources: Sequence[Path], segments: Sequence[Segment],
                     names: Sequence[str | None]) -> list[str]:
    """Writes the thumbnail of segment i to folder / names[i] (None: skip it). Returns, per segment,
    the name written ("" where skipped or the frame could not be read)."""
    wanted = [i for i, name in enumerate(names) if name]
    done = [""] * len(names)
    if not wanted:
        return done
    with _open_first(open_video, sources) as cap:
        if cap is None:
            log.warning("thumbnails: none of %s opens", ", ".join(map(str, sources)) or "no video")
            return done
        for i in wanted:
            frame = _read_frame(cap, middle_frame(segments[i]))
            name = names[i]
            if frame is None or name is None:
                continue
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, jpeg(frame))
            done[i] = name
    return done


def jpeg(frame: np.ndarray, size: int = THUMB_SIZE) -> bytes:
    """`frame` scaled down to fit size x size (aspect kept), as JPEG bytes."""
    h, w = frame.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(data.tobytes())


@contextlib.contextmanager
def _open_first(open_video: Opener, sources: Sequence[Path]) -> Iterator[cv2.VideoCapture | None]:
    cap = None
    for source in sources:
        try:
            cap = open_video(str(source))
            break
        except (SourceError, OSError):
            continue
    try:
        yield cap
    finally:
        if cap is not None:
            cap.release()


def _read_frame(cap: cv2.VideoCapture, index: int) -> np.ndarray | None:
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)  # OpenCV seeks to the key frame before it and decodes forward
    ok, frame = cap.read()
    return frame if ok and frame is not None else None
