"""Benchmark inputs: H.264 clips with moving, textured content, generated once and cached.

    clips = make_inputs(quick=False)   # {"640x360": Path(...), "1920x1080": Path(...)}

The content is a mosaic of real photos (scikit-image's own) panned and zoomed across the frame,
with a moving grid of sharp edges on top, so the encoder sees detail and motion in every frame
(a static or flat clip would decode unrealistically fast). Clips live in the vidpipe cache
(`$VIDPIPE_CACHE/bench-inputs`), never in the source tree, named by their parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidpipe.hw.paths import cache_dir

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


@dataclass(frozen=True)
class ClipSpec:
    width: int
    height: int
    frames: int
    fps: int = 30
    crf: int = 23
    preset: str = "veryfast"

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height}"

    def filename(self) -> str:
        return f"bench_{self.width}x{self.height}_{self.frames}f_{self.fps}fps_crf{self.crf}_{self.preset}.mp4"


# 640x360: long enough for a steady state after the frame ring is warm: the first write to a
# shared-memory page costs ~2.7 us here (allocate + zero), 0.45 ms for a fresh 640x360 slot, and a
# batch-256 run fills its ring of ~1000 slots over the first ~2.5 s (bench.runner).
FULL = (ClipSpec(640, 360, 12000), ClipSpec(1920, 1080, 600))
QUICK = (ClipSpec(320, 180, 48),)
LIVE = ClipSpec(640, 360, 450)  # 15 s played as a 30 fps camera
LIVE_QUICK = ClipSpec(320, 180, 60)


def _mosaic(width: int, height: int) -> np.ndarray:
    """A BGR canvas twice the frame size tiled with the photos (3 x 2 grid)."""
    from skimage import data

    cw, ch = 2 * width, 2 * height
    tw, th = cw // 3, ch // 2
    canvas = np.zeros((ch, cw, 3), np.uint8)
    for k, name in enumerate(PHOTOS):
        photo = cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
        r, c = divmod(k, 3)
        canvas[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = cv2.resize(photo, (tw, th), interpolation=cv2.INTER_AREA)
    return canvas


def _frame(canvas: np.ndarray, i: int, n: int, width: int, height: int) -> np.ndarray:
    """Frame i: a pan + zoom window over the canvas, a photo tile crossing it, the frame number."""
    t = i / max(n - 1, 1)
    ch, cw = canvas.shape[:2]
    zoom = 0.75 - 0.2 * t  # share of the canvas shown
    w, h = int(cw * zoom), int(ch * zoom)
    x, y = int((cw - w) * t), int((ch - h) * (0.5 + 0.5 * np.sin(6.28 * t)) * 0.999)
    frame = cv2.resize(canvas[y : y + h, x : x + w], (width, height), interpolation=cv2.INTER_LINEAR)
    tile = canvas[: height // 3, : width // 3]  # a textured object moving across the scene
    tx, ty = int((width - tile.shape[1]) * (1 - t)), int((height - tile.shape[0]) * t)
    frame[ty : ty + tile.shape[0], tx : tx + tile.shape[1]] = tile
    cv2.putText(frame, str(i), (8, max(20, height // 12)), cv2.FONT_HERSHEY_SIMPLEX, height / 400, (255, 255, 255), 2)
    return frame


def write_clip(spec: ClipSpec, path: Path) -> Path:
    """Encode `spec` to `path` (H.264 yuv420p MP4, through a temporary name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.mp4")
    canvas = _mosaic(spec.width, spec.height)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(spec.fps, 1))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": spec.preset, "crf": str(spec.crf)}
        for i in range(spec.frames):
            image = _frame(canvas, i, spec.frames, spec.width, spec.height)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    tmp.replace(path)
    return path


def inputs_dir() -> Path:
    return cache_dir() / "bench-inputs"


def ensure_clip(spec: ClipSpec, folder: Path | None = None) -> Path:
    """The clip for `spec`, generated if missing."""
    path = (folder or inputs_dir()) / spec.filename()
    if not path.is_file():
        print(f"generating {path} ({spec.frames} frames) ...", flush=True)
        write_clip(spec, path)
    return path


def make_inputs(quick: bool = False, folder: Path | None = None) -> dict[str, Path]:
    """The throughput clips by name ("640x360", ...), generated if missing."""
    return {spec.name: ensure_clip(spec, folder) for spec in (QUICK if quick else FULL)}

