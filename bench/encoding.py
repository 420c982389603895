"""Encoding: what the annotated H.264 output costs, measured in this process on decoded frames.

* the speed/size table: libx264 presets x encoder threads (1 = one frame at a time, 0 = x264's
  own frame threads, one and a half per core) over the same frames: wall fps, CPU ms per frame
  (all threads of the process) and bytes per frame; the default preset is picked from it;
* the naive annotated loop: what a user writes in one process, decode -> draw the labels ->
  encode (the same preset, x264's default threads), the baseline for vidpipe's annotated job;
* the overlay alone (draw_labels) and the BGR -> I420 conversion, per frame.

CPU time is `time.process_time()` (every thread of this process), so a row with x264 frame
threads shows both the wall-clock gain and the extra CPU the threads cost.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.baselines import frames as decoded_frames
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.outputs.writers import H264Writer

PRESETS = ("ultrafast", "superfast", "veryfast", "faster")
THREADS = (1, 0)  # 1: one frame at a time (vidpipe's encoder processes); 0: x264's frame threads
NAMES = ("tiger cat", "tabby", "Egyptian cat", "lynx", "tiger")
SCORES = (0.61, 0.22, 0.09, 0.03, 0.01)


@dataclass(frozen=True)
class EncodeRow:
    preset: str
    threads: int  # 0 = x264's default (frame threads)
    frames: int
    wall_s: float
    cpu_s: float
    bytes: int

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1e3 * self.cpu_s / max(self.frames, 1)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fps": self.fps, "cpu_ms_per_frame": self.cpu_ms,
                "kbytes_per_frame": self.bytes / max(self.frames, 1) / 1e3}


@dataclass(frozen=True)
class EncodingResult:
    input: str
    rows: list[EncodeRow]
    naive: EncodeRow  # the naive annotated loop (threads 0, bytes not kept)
    draw_ms: float  # draw_labels per frame
    convert_ms: float  # BGR -> I420 per frame

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "rows": [r.to_json() for r in self.rows], "naive": self.naive.to_json(),
                "draw_ms": self.draw_ms, "convert_ms": self.convert_ms}


def encode_row(frames: list[np.ndarray], preset: str, threads: int, folder: Path) -> EncodeRow:
    h, w = frames[0].shape[:2]
    path = folder / f"enc_{preset}_{threads}.mp4"
    c0, t0 = time.process_time(), time.perf_counter()
    with H264Writer(path, w, h, 30.0, preset=preset, threads=threads) as video:
        for frame in frames:
            video.write(frame)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = path.stat().st_size
    path.unlink()
    return EncodeRow(preset, threads, len(frames), wall, cpu, size)


def naive_annotated_loop(clip: Path, preset: str, folder: Path, limit: int) -> EncodeRow:
    """decode -> draw -> encode, one frame at a time, one process (x264's default threads)."""
    c0, t0 = time.process_time(), time.perf_counter()
    cap = cv2.VideoCapture(str(clip))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n = 0
    with H264Writer(folder / "naive.mp4", w, h, 30.0, preset=preset) as video:
        while n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            draw_labels(frame, NAMES, SCORES, smoothed=(NAMES[0], SCORES[0]), time_s=n / 30.0)
            video.write(frame)
            n += 1
    cap.release()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    (folder / "naive.mp4").unlink()
    return EncodeRow(preset, 0, n, wall, cpu, 0)


def per_frame_ms(frames: list[np.ndarray], fn: Any) -> float:
    t0 = time.perf_counter()
    for frame in frames:
        fn(frame)
    return 1e3 * (time.perf_counter() - t0) / max(len(frames), 1)


def run(name: str, clip: Path, preset: str, quick: bool) -> EncodingResult:
    print(f"encoding {name}: presets x threads, naive annotated loop ...", flush=True)
    frames = list(decoded_frames(clip, 48 if quick else 300))
    with tempfile.TemporaryDirectory(prefix="vidpipe-enc-") as tmp:
        folder = Path(tmp)
        rows = [encode_row(frames, p, t, folder) for p in (PRESETS[:2] if quick else PRESETS) for t in THREADS]
        naive = naive_annotated_loop(clip, preset, folder, 48 if quick else 3000)
    copies = [f.copy() for f in frames]
    draw = per_frame_ms(copies, lambda f: draw_labels(f, NAMES, SCORES, smoothed=(NAMES[0], SCORES[0]), time_s=1.0))
    convert = per_frame_ms(frames, lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420))
    return EncodingResult(name, rows, naive, draw, convert)
