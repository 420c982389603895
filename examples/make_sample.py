"""Generate the bundled sample video from real photos (scikit-image's own), for `make run`.

A few seconds each of the cat, the coffee cup and the rocket, each with a slow pan and zoom,
so that the labels visibly change between segments. H.264 in MP4 via PyAV.

    python examples/make_sample.py sample/sample.mp4 [--seconds 3] [--fps 25] [--size 640x360]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

PHOTOS = ("chelsea", "coffee", "rocket")


def pan_frames(photo_rgb: np.ndarray, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """`count` BGR frames of `size` (w, h) panning slowly across the photo."""
    bgr = cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    out_w, out_h = size
    frames = []
    for i in range(count):
        t = i / max(count - 1, 1)
        zoom = 0.92 - 0.08 * t  # the crop covers 92% -> 84% of the photo
        cw, ch = int(w * zoom), int(w * zoom * out_h / out_w)
        ch = min(ch, h)
        x = int((w - cw) * (0.2 + 0.6 * t))
        y = int((h - ch) * 0.5)
        frames.append(cv2.resize(bgr[y : y + ch, x : x + cw], size, interpolation=cv2.INTER_AREA))
    return frames


def write_h264(path: Path, frames: list[np.ndarray], fps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=3.0, help="per photo")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    count = int(args.seconds * args.fps)
    frames = [f for name in PHOTOS for f in pan_frames(getattr(data, name)(), count, (size[0], size[1]))]
    write_h264(args.output, frames, args.fps)
    print(
        f"sample video: {args.output} ({len(frames)} frames, {size[0]}x{size[1]} @ {args.fps} fps: {', '.join(PHOTOS)})"
    )


if __name__ == "__main__":
    main()
