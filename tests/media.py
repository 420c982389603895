"""Test media, generated: numpy frames -> H.264 via PyAV, and broken files on purpose."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

# Two bundled photos the real models tell apart (a cat; a cup of espresso), as 320x240 BGR frames.
CAT = cv2.resize(cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR), (320, 240))
COFFEE = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (320, 240))


def pattern_frame(i: int, width: int, height: int) -> np.ndarray:
    """A textured BGR frame whose content moves with i (and encodes its index in the corner)."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (x + 3 * i) % 256
    frame[..., 1] = (y + 2 * i) % 256
    frame[..., 2] = ((x // 16 + y // 16 + i) % 2) * 200
    cv2.putText(frame, str(i), (4, min(height - 4, 30)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return frame


def write_video(path: Path, frames: int = 30, width: int = 160, height: int = 120, fps: int = 25,
                faststart: bool = False, photo: np.ndarray | None = None, scenes: Sequence[np.ndarray] = ()) -> Path:
    """H.264 (yuv420p) MP4/MKV. `photo` (BGR): every frame is that photo resized (real content);
    `scenes` (BGR photos): equal runs of frames of each, in order (labels that change)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(frames):
            if scenes:
                photo = scenes[i * len(scenes) // frames]
            img = cv2.resize(photo, (width, height)) if photo is not None else pattern_frame(i, width, height)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def random_bytes(dst: Path, size: int = 50_000, seed: int = 0) -> Path:
    dst.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return dst


def mjpeg_avi_claiming(path: Path, frames: int, claimed: int, width: int = 64, height: int = 48) -> Path:
    """An MJPEG AVI of `frames` frames whose headers (avih total frames, strh length) claim `claimed`."""
    import struct

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    for i in range(frames):
        writer.write(pattern_frame(i, width, height))
    writer.release()
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 48, claimed)  # RIFF(12) + LIST hdrl(12) + avih(8) + 16 bytes -> dwTotalFrames
    strh = data.find(b"strh")
    struct.pack_into("<I", data, strh + 8 + 32, claimed)  # AVIStreamHeader.dwLength
    path.write_bytes(bytes(data))
    return path


# The display matrix of an MP4 track (tkhd), as a phone writes it: a quarter turn k shows frames
# stored as np.rot90(upright, k) upright (checked against FFmpeg's reading: PyAV's frame.rotation).
_TURNS = {1: (0, 1, -1, 0), 2: (-1, 0, 0, -1), 3: (0, -1, 1, 0)}


def write_turned_video(path: Path, upright: np.ndarray, turns: int, frames: int = 12, fps: int = 25) -> Path:
    """An MP4 whose frames are stored turned by `turns` quarter turns (np.rot90) with the display
    matrix that shows them upright: a portrait phone video. `upright` is the BGR picture to see."""
    stored = np.ascontiguousarray(np.rot90(upright, turns))
    h, w = stored.shape[:2]
    return set_turns(write_video(path, frames=frames, width=w, height=h, fps=fps, photo=stored), turns)


def set_turns(path: Path, turns: int) -> Path:
    """An MP4's display matrix (tkhd) set to show its frames after `turns` quarter turns back."""
    import struct

    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    offset = i + 8 + (20 if version == 0 else 32) + 16  # after version/flags, times, ids, layer, volume
    a, b, c, d = _TURNS[turns]
    fixed = [struct.pack(">i", v * 65536) for v in (a, b)] + [bytes(4)] + [struct.pack(">i", v * 65536) for v in (c, d)]
    data[offset:offset + 36] = b"".join(fixed) + bytes(4) + bytes(8) + struct.pack(">i", 0x40000000)
    path.write_bytes(data)
    return path


def write_odd_video(path: Path, frames: int, width: int, height: int) -> Path:
    """A lossless FFV1 MKV of any size, odd ones included (H.264 4:2:0 cannot have them)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pattern_frame(i, width, height)), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def damage(src: Path, dst: Path, where: float = 0.8, size: int = 2048, seed: int = 1) -> Path:
    """`src` with `size` random bytes written over it at `where` (0..1) of its length: FFmpeg
    conceals the broken macroblocks and decodes on ("error while decoding MB ...")."""
    data = bytearray(src.read_bytes())
    at = int(len(data) * where)
    data[at:at + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(data)
    return dst


def write_with_display_matrix(path: Path, stored: np.ndarray, a: int, b: int, c: int, d: int, frames: int = 3) -> Path:
    """H.264 MP4 of `stored` frames whose display matrix (FFmpeg's layout: a pixel (p, q) is shown
    at (a p + c q, b p + d q)) is written by the muxer, as a phone or an editor writes it."""
    h, w = stored.shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.set_display_matrix([a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30])
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(stored), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_gop_video(path: Path, frames: int, keyint: int, *, bframes: bool = False, vfr: bool = False,
                    width: int = 96, height: int = 72, scenes: Sequence[np.ndarray] = (CAT, COFFEE)) -> Path:
    """H.264 MP4 with a keyframe every `keyint` frames: `bframes` (x264 veryfast: B-frames, so
    decode order is not presentation order), `vfr` (timestamps 13..43 ms apart, millisecond time
    base); the frames alternate between the `scenes` every keyint + 5 frames (labels that change
    within GOPs), with the pattern of pattern_frame blended in (no two frames alike)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast" if bframes else "ultrafast", "crf": "18", "g": str(keyint),
                          "keyint_min": str(keyint), "sc_threshold": "0"}
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(frames):
            scene = cv2.resize(scenes[(i // (keyint + 5)) % len(scenes)], (width, height))
            image = cv2.addWeighted(scene, 0.8, pattern_frame(i, width, height), 0.2, 0)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if vfr:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += 40 if i % 3 else 13 + (i % 7) * 5
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
