"""`python -m bench.live_disk`: what a live run writes per camera per day, measured.

For each size (640x360, 1920x1080) and scene, a real `vidpipe live` on `sim` plays a generated
20 fps clip as a camera (`realtime`, looped) for SECONDS with `record: true` and clips of the sim's
(constant) top-1 label (`max_s: 10`, so clips follow one another), then is stopped with Ctrl-C.
Scenes: `busy` (bench.inputs' photo mosaic, panned and zoomed: every pixel moves in every frame)
and `still` (a fixed view, one object crossing it, light sensor noise: a typical fixed camera).
From what the run left, scaled to a day (86,400 s):

    jsonl      bytes per line of OUT/STREAM.START.jsonl x FPS x 86400 (every frame labeled)
    recording  bytes of OUT/STREAM.START.mp4 / the recording's own duration x 86400, as recorded
               (output.video_preset veryfast, crf 23; `recorded_fps` says how many frames reached it)
    clips      bytes of OUT/clips/*.mp4 / their duration x 3600: per hour of clips (clips.fps 10)
    events     bytes of OUT/events.START.jsonl (label changes only: a few lines a run)

Written: bench/results/live_disk.json and live_disk.png (GB per day by kind, size and scene).
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from bench.inputs import ClipSpec, _mosaic, ensure_clip, inputs_dir
from bench.runner import REPO
from vidpipe.stages.live_files import segments

FPS = 20
SIZES = ((640, 360), (1920, 1080))
SCENES = ("busy", "still")
CLIP_FRAMES = 200  # 10 s, looped
SIM_LABEL = "sim: no label"  # every frame's label on sim (stages.descriptors.LabelInfo)
DAY_S = 86400.0
OUT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class DiskRun:
    size: str
    scene: str
    seconds: float  # of the stream in the JSONL (first to last capture)
    labeled_fps: float
    recorded_fps: float
    jsonl_bytes_per_line: float
    recording_bytes_per_s: float
    clip_bytes_per_s: float
    events_bytes: int
    jsonl_gb_day: float  # at FPS, every frame labeled
    recording_gb_day: float
    clips_gb_per_clip_hour: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def still_clip(width: int, height: int, folder: Path) -> Path:
    """A fixed view of the mosaic, a tile crossing it, Gaussian noise (sigma 2): a fixed camera."""
    path = folder / f"live_disk_still_{width}x{height}_{CLIP_FRAMES}f_{FPS}fps.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    canvas = cv2.resize(_mosaic(width, height), (width, height), interpolation=cv2.INTER_AREA)
    tile = canvas[: height // 4, : width // 4].copy()
    noise = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for i in range(CLIP_FRAMES):
            frame = canvas.copy()
            x = int((width - tile.shape[1]) * i / CLIP_FRAMES)
            frame[height // 2 : height // 2 + tile.shape[0], x : x + tile.shape[1]] = tile
            noisy: np.ndarray = np.clip(frame + noise.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")))
        container.mux(stream.encode(None))
    tmp.replace(path)
    return path


def run_one(clip: Path, size: str, scene: str, seconds: float, workdir: Path) -> DiskRun:
    out = Path(tempfile.mkdtemp(prefix=f"live-disk-{size}-{scene}-", dir=workdir))
    config = out.parent / f"{out.name}.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "job": "live", "output": {"dir": str(out)}, "backend": {"name": "sim", "max_batch": 4},
        "live": {"http": False, "status_interval_s": 0, "record": True,
                 "sources": [{"uri": str(clip), "name": "cam", "realtime": True, "loop": True}],
                 "clips": {"labels": [SIM_LABEL], "max_s": 10.0, "pre_s": 0.0, "post_s": 0.0}}}))
    proc = subprocess.Popen([sys.executable, "-m", "vidpipe", "run", str(config)], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"live run {size} {scene} failed ({proc.returncode}): {err[-2000:]}")
    lines = [json.loads(x) for p in segments(out, "cam") for x in p.read_text().splitlines()]
    span = lines[-1]["time"] - lines[0]["time"]
    jsonl = sum(p.stat().st_size for p in segments(out, "cam"))
    recording, frames, duration = _videos(segments(out, "cam", ".mp4"))
    clips, _, clip_s = _videos(sorted((out / "clips").glob("*.mp4")))
    per_line = jsonl / len(lines)
    return DiskRun(size, scene, round(span, 2), round((len(lines) - 1) / span, 2), round(frames / duration, 2),
                   round(per_line, 1), round(recording / duration), round(clips / clip_s) if clip_s else 0,
                   sum(p.stat().st_size for p in segments(out, "events")), round(per_line * FPS * DAY_S / 1e9, 2),
                   round(recording / duration * DAY_S / 1e9, 2), round(clips / clip_s * 3600 / 1e9, 3) if clip_s else 0)


def _videos(paths: list[Path]) -> tuple[int, int, float]:
    """Bytes, frames and seconds of these videos (duration: the container's)."""
    size = frames = 0
    seconds = 0.0
    for path in paths:
        size += path.stat().st_size
        with av.open(str(path)) as c:
            frames += sum(1 for packet in c.demux(video=0) if packet.size)  # (the last one flushes: empty)
            seconds += (c.duration or 0) / 1e6
    return size, frames, seconds


def table(runs: list[DiskRun]) -> str:
    rows = [f"{'size':<10} {'scene':<6} {'fps':>5} {'JSONL GB/day':>13} {'recording GB/day':>17} "
            f"{'clips GB/clip-hour':>19} {'rec. fps':>9}"]
    rows += [f"{r.size:<10} {r.scene:<6} {r.labeled_fps:>5.1f} {r.jsonl_gb_day:>13.2f} {r.recording_gb_day:>17.2f} "
             f"{r.clips_gb_per_clip_hour:>19.3f} {r.recorded_fps:>9.1f}" for r in runs]
    return "\n".join(rows)


def plot(runs: list[DiskRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [f"{r.size}\n{r.scene}" for r in runs]
    x = np.arange(len(runs))
    for k, (label, values) in enumerate((("JSONL", [r.jsonl_gb_day for r in runs]),
                                         ("recording", [r.recording_gb_day for r in runs]),
                                         ("clips, 1 h a day", [r.clips_gb_per_clip_hour for r in runs]))):
        ax.bar(x + (k - 1) * 0.27, values, 0.27, label=label)
    ax.set_xticks(x, names)
    ax.set_ylabel("GB per camera per day")
    ax.set_title(f"what a live run writes ({FPS} fps camera, measured on sim)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.live_disk", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=25.0, help="of each live run")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--scenes", nargs="+", choices=SCENES, default=list(SCENES))
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="live-disk-") as work:
        for width, height in SIZES:
            for scene in args.scenes:
                clip = (ensure_clip(ClipSpec(width, height, CLIP_FRAMES, FPS)) if scene == "busy"
                        else still_clip(width, height, inputs_dir()))
                runs.append(run_one(clip, f"{width}x{height}", scene, args.seconds, Path(work)))
                print(table(runs[-1:]).splitlines()[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(), "seconds": args.seconds,
            "fps": FPS, "backend": "sim", "video_preset": "veryfast", "video_crf": 23, "clips_fps": 10}
    (args.out / "live_disk.json").write_text(json.dumps({"meta": meta, "runs": [r.to_json() for r in runs]},
                                                        indent=2) + "\n")
    plot(runs, args.out / "live_disk.png")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
