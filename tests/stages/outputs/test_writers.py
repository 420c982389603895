"""Output writers: JSONL/CSV/segments files and the H.264 video, including the abort paths."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from tests.media import pattern_frame
from tests.processes import UNSHARE_MOUNT
from vidpipe.stages.descriptors import FrameRef, Result
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelShare, Segment
from vidpipe.stages.outputs.writers import CsvWriter, H264Writer, JsonlWriter, SegmentsWriter, frame_rate, part_path

ROOT = Path(__file__).resolve().parents[3]


def label(i: int) -> FrameLabel:
    return FrameLabel("clip", i, i / 25, (281, 282, 285, 287, 286), ("tiger cat", "tabby", "Egyptian cat", "lynx",
                      "cougar"), (0.8, 0.1, 0.05, 0.03, 0.01), 12.345678)


def gradient_frame(i: int, width: int, height: int) -> np.ndarray:
    """Smooth moving colour gradients and sharp white digits (the frame number). tests.media's
    red checkerboard is not used here: its colour edges lose ~5 dB to 4:2:0 subsampling alone."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = 128 + 100 * np.sin(x / 30 + i / 5)
    frame[..., 1] = 128 + 100 * np.sin(y / 25 - i / 7)
    frame[..., 2] = 128 + 100 * np.sin((x + y) / 40 + i / 3)
    cv2.putText(frame, str(i), (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, height / 100, (255, 255, 255), 2)
    return frame


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def probe(path: Path) -> dict[str, Any]:
    """What PyAV and OpenCV each see in a video file, plus every decoded frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        info: dict[str, Any] = {"codec": cc.name, "pix_fmt": cc.pix_fmt, "size": (stream.width, stream.height),
                "rate": stream.average_rate, "frames": frames}
    cap = cv2.VideoCapture(str(path))
    cv_frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        cv_frames.append(img)
    info.update(cv_count=int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cv_fps=cap.get(cv2.CAP_PROP_FPS), cv_frames=cv_frames)
    cap.release()
    return info


def encode(path: Path, n: int, width: int, height: int, fps: float | Fraction = 25,
           **kwargs: object) -> list[np.ndarray]:
    frames = [gradient_frame(i, width, height) for i in range(n)]
    with H264Writer(path, width, height, fps, **kwargs) as writer:  # type: ignore[arg-type]
        for f in frames:
            writer.write(f)
        assert not path.exists()  # never under its final name while being written
    return frames


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        boxes.append(data[pos + 4:pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        pos += size if size else len(data)
    return boxes


# -- text outputs ---------------------------------------------------------------------------


def test_jsonl_lines_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "clip.jsonl"
    writer = JsonlWriter(path)
    for i in range(30):
        writer.write(label(i))
    assert not path.exists() and len(part_path(path).read_text().splitlines()) == 30  # flushed per line
    assert writer.close() == path and writer.close() == path  # idempotent
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 30 and not part_path(path).exists()
    assert rows[3] == {"frame": 3, "t": 0.12, "top5": [281, 282, 285, 287, 286],
                       "names": ["tiger cat", "tabby", "Egyptian cat", "lynx", "cougar"],
                       "scores": [0.8, 0.1, 0.05, 0.03, 0.01], "latency_ms": 12.346}
    with pytest.raises(ValueError, match="after close"):
        writer.write(label(0))


def test_frame_label_from_result_carries_latency_and_timings() -> None:
    ref = FrameRef("clip", 7, 3, 240, 320, pts_s=0.28, t_capture=100.0)
    result = Result(ref, (1, 2, 3, 4, 999), None, 100.004, 100.010, 100.012, {"compute": 0.001})
    rec = FrameLabel.from_result(result, ["zero", "one", "two", "three", "four"], t_sink=100.020)
    assert (rec.index, rec.timestamp_s, rec.names[0], rec.names[-1]) == (7, 0.28, "one", "class 999")
    assert rec.latency_ms == pytest.approx(20.0) and rec.timings_ms["infer"] == pytest.approx(2.0)
    data = rec.to_json()
    assert data["scores"] is None and data["timings_ms"]["compute"] == pytest.approx(1.0)


def test_abort_keeps_complete_lines_or_deletes_on_request(tmp_path: Path) -> None:
    kept, dropped = tmp_path / "kept.jsonl", tmp_path / "dropped.jsonl"
    with pytest.raises(KeyboardInterrupt), JsonlWriter(kept) as a, JsonlWriter(dropped, keep_on_abort=False) as b:
        for i in range(5):
            a.write(label(i))
            b.write(label(i))
        raise KeyboardInterrupt
    assert [json.loads(line)["frame"] for line in kept.read_text().splitlines()] == list(range(5))
    assert not dropped.exists() and not part_path(dropped).exists() and not part_path(kept).exists()


def test_csv_and_segments_files(tmp_path: Path) -> None:
    with CsvWriter(tmp_path / "t.csv", ["frame", "name"]) as table:
        table.write([0, 'say "hi", all'])
    assert list(csv.reader((tmp_path / "t.csv").open())) == [["frame", "name"], ["0", 'say "hi", all']]
    segments = [Segment(281, "tiger cat", 0.0, 1.0, 0, 24, 25, 0.81234567),
                Segment(282, "tabby", 1.0, 1.4, 25, 34, 10, 0.5)]
    summary = [LabelShare("tiger cat", 1.0, 1 / 1.4), LabelShare("tabby", 0.4, 0.4 / 1.4)]
    meta = {"video": "clip.mp4", "fps": 25.0, "frames": 35, "error": ""}
    SegmentsWriter.write(tmp_path / "s.json", tmp_path / "s.csv", segments, summary, meta)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert list(doc) == ["video", "fps", "frames", "units", "segments", "summary"]  # no error key when there is none
    assert "end_s exclusive" in doc["units"] and "end_frame inclusive" in doc["units"]
    assert doc["segments"][0]["mean_score"] == 0.81235 and doc["summary"][1]["name"] == "tabby"
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["name"] for r in rows] == ["tiger cat", "tabby"] and rows[1]["end_frame"] == "34"
    SegmentsWriter.write(tmp_path / "e.json", None, [], [], {**meta, "error": "decoded 12 of 60 frames: truncated"})
    assert json.loads((tmp_path / "e.json").read_text())["error"].endswith("truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "s.csv", "s.json", "t.csv"]


# -- H.264 ----------------------------------------------------------------------------------


def test_h264_matches_the_input_in_pyav_and_opencv(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    frames = encode(path, 40, 320, 240, fps=25)
    info = probe(path)
    assert (info["codec"], info["pix_fmt"], info["size"], info["rate"]) == ("h264", "yuv420p", (320, 240), 25)
    assert len(info["frames"]) == len(info["cv_frames"]) == info["cv_count"] == 40 and info["cv_fps"] == 25
    assert min(psnr(a, b) for a, b in zip(frames, info["frames"], strict=True)) > 30
    assert min(psnr(a, b) for a, b in zip(frames, info["cv_frames"], strict=True)) > 30
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: plays before it has fully loaded


def test_h264_ntsc_rate_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    encode(path, 12, 176, 144, fps=29.97002997002997, preset="ultrafast")
    info = probe(path)
    assert info["rate"] == Fraction(30000, 1001) and len(info["frames"]) == 12
    assert frame_rate(23.976) == Fraction(24000, 1001) and frame_rate(25.0) == 25
    assert frame_rate(12.5) == Fraction(25, 2) and frame_rate(1000.0) == 1000
    assert frame_rate(Fraction(60000, 1001)) == Fraction(60000, 1001)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            frame_rate(bad)


@pytest.mark.parametrize("size", [(161, 121), (160, 121), (161, 120)])
def test_h264_odd_sizes_are_padded_by_one_repeated_line(tmp_path: Path, size: tuple[int, int]) -> None:
    width, height = size
    path = tmp_path / "odd.mp4"
    frames = encode(path, 6, width, height, crf=18)
    info = probe(path)
    assert info["size"] == (width + width % 2, height + height % 2) and len(info["frames"]) == 6
    for src, out in zip(frames, info["frames"], strict=True):
        assert psnr(src, out[:height, :width]) > 30  # every input pixel kept
        assert psnr(out[:, -1], out[:, -2]) > 25 and psnr(out[-1], out[-2]) > 25  # padding repeats the edge


def test_h264_abort_finalizes_a_playable_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    with pytest.raises(RuntimeError), H264Writer(path, 160, 120, 25, preset="ultrafast") as writer:
        for i in range(9):
            writer.write(pattern_frame(i, 160, 120))
        raise RuntimeError("a stage failed")
    assert len(probe(path)["frames"]) == 9 and not part_path(path).exists()
    assert writer.close() == path  # idempotent after the abort


def test_h264_abort_can_delete_and_an_empty_video_is_not_published(tmp_path: Path) -> None:
    path = tmp_path / "gone.mp4"
    writer = H264Writer(path, 160, 120, 25, keep_on_abort=False)
    writer.write(pattern_frame(0, 160, 120))
    assert writer.close(abort=True) is None
    assert H264Writer(tmp_path / "empty.mp4", 160, 120, 25).close() is None
    assert list(tmp_path.iterdir()) == []


def test_h264_rejects_wrong_frames_and_settings(tmp_path: Path) -> None:
    with H264Writer(tmp_path / "v.mkv", 160, 120, 25, preset="ultrafast") as writer:
        with pytest.raises(ValueError, match="160x120 BGR uint8"):
            writer.write(np.zeros((120, 161, 3), np.uint8))
        writer.write(pattern_frame(0, 160, 120))
    assert probe(tmp_path / "v.mkv")["codec"] == "h264"
    with pytest.raises(ValueError, match="after close"):
        writer.write(pattern_frame(0, 160, 120))
    with pytest.raises(ValueError, match="extension"):
        H264Writer(tmp_path / "v.avi", 160, 120, 25)
    with pytest.raises(av.error.FFmpegError):
        H264Writer(tmp_path / "bad.mp4", 160, 120, 25, preset="no-such-preset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mkv"]


# A split video's chunk writer (mp4, +faststart, vfr) on a 64 KiB tmpfs. "full": the disk is full
# before the first packet, so the header write is what fails; libav crashed (SIGSEGV) when the
# close's flush wrote that header again. "fills": a later packet fails, the header went through.
FULL_DISK_WRITER = """
import os, sys
sys.path.insert(0, os.environ["ROOT"])
from pathlib import Path
import numpy as np
from vidpipe.stages.outputs.writers import H264Writer
out, case = Path(os.environ["OUT"]), sys.argv[1]
if case == "full":
    with open(out / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(bytes(4096))
        except OSError:
            pass
rng = np.random.default_rng(0)
noise = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(2)]  # ~20 KB a frame
writer = H264Writer(out / "v.mp4.c000000.part", 160, 120, 25, preset="ultrafast", crf=18, threads=1,
                    fmt="mp4", vfr=True, origin_s=0.0)
for i in range(100):
    try:
        writer.write(noise[i % 2], i / 25)
    except OSError as exc:
        print("failed", exc.strerror)
        break
try:
    writer.write(noise[0], 9.0)
except OSError as exc:
    print("again", exc.strerror)
try:
    print("closed", writer.close(abort=case == "full"))
except OSError as exc:
    print("close", exc.strerror)
print("left", *sorted(p.name for p in out.iterdir()))
"""


@pytest.mark.parametrize("case", ["full", "fills"])
def test_h264_a_full_disk_is_an_error_and_no_file_not_a_crash(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = 'mount -t tmpfs -o size=64k tmpfs "$OUT" || exit 99; exec "$@"'  # exec: a signal shows as -N
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", sys.executable, "-c", FULL_DISK_WRITER, case],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OUT": str(out), "ROOT": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    close = "closed None" if case == "full" else "close No space left on device"  # abort, or a publish refused
    left = "left filler" if case == "full" else "left"
    assert proc.stdout.splitlines() == ["failed No space left on device", "again No space left on device", close,
                                        left], proc.stderr


def test_ctrl_c_leaves_closed_playable_outputs(tmp_path: Path) -> None:
    """A real SIGINT in a process writing video and JSONL: both files end complete and readable."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from vidpipe.stages.outputs.writers import H264Writer, JsonlWriter
        from tests.media import pattern_frame
        out = Path({str(tmp_path)!r})
        with H264Writer(out / "live.mp4", 160, 120, 25) as video, JsonlWriter(out / "live.jsonl") as lines:
            for i in range(12):
                video.write(pattern_frame(i, 160, 120))
                lines.write({{"frame": i}})
            print("ready", flush=True)
            sys.stdin.read()  # blocks until the parent's Ctrl-C
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert len(probe(tmp_path / "live.mp4")["frames"]) == 12
    assert len((tmp_path / "live.jsonl").read_text().splitlines()) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.jsonl", "live.mp4"]
