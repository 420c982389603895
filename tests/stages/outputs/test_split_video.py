"""One long video's annotated MP4 encoded in chunks by several encoder processes and joined
without re-encoding (stages.outputs.split, stages.outputs.chunks): frame-exact against a
variable-frame-rate input (count and timestamps), one avcC, a keyframe at each chunk start, each
frame's own overlay; chunks whose SPS/PPS differ are refused; a Ctrl-C leaves a playable video cut
short and no `.part` file; --resume redoes a video whose join never ran; a full disk fails the video
in one line and leaves no chunk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import pattern_frame, write_video
from tests.processes import UNSHARE_MOUNT, VIDPIPE, finish, wait_for
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.outputs.annotate import VideoSpec
from vidpipe.stages.outputs.chunks import ChunkBoard, ChunkFailed, Joiner, chunk_path, failed_marker
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.remux import JoinError, join_chunks
from vidpipe.stages.outputs.smoothing import LabelSmoother
from vidpipe.stages.outputs.split import MIN_PIECE, SplitVideo, chunk_starts
from vidpipe.stages.outputs.writers import H264Writer, part_path
from vidpipe.stages.sink import Lane

pytestmark = pytest.mark.timeout(120)

CHUNK = 24  # frames per chunk in these tests (a GOP each): splitting forced on short videos
W, H = 160, 120


def job_config(tmp_path: Path, per_image_ms: float = 0.0, drain_timeout_s: float = 30.0) -> Path:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({
        "backend": {"name": "sim", "max_batch": 1 if per_image_ms else 8, "sim": {"per_image_ms": per_image_ms}},
        "output": {"encoders": 2, "video_chunk_frames": CHUNK, "video_preset": "ultrafast", "video_crf": 18},
        "runtime": {"drain_timeout_s": drain_timeout_s}}))
    return path


def label(video: Path, out: Path, config: Path, *more: str) -> int:
    return main(["label", str(video), "--out", str(out), "--config", str(config), "--no-progress", *more])


def times(path: Path) -> list[Fraction]:
    """Each decoded frame's presentation time, in seconds (exact)."""
    with av.open(str(path)) as container:
        return [Fraction(f.pts) * f.time_base for f in container.decode(video=0)]


def on_grid(ts: list[Fraction], grid: Fraction) -> list[int]:
    """Times as ticks of the input's time base (the output keeps them to 1/90000 s)."""
    return [round(t / grid) for t in ts]


def structure(path: Path) -> tuple[int, list[Fraction], int, int]:
    """(video streams, keyframe times, avcC boxes, x264 SEIs: one per chunk encoder)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sorted(Fraction(p.pts) * stream.time_base for p in container.demux(stream) if p.size and p.is_keyframe)
        streams = len(container.streams.video)
    data = path.read_bytes()
    return streams, keys, data.count(b"avcC"), data.count(b"x264 - core")


def write_vfr_video(path: Path, frames: int) -> list[int]:
    """An H.264 MP4 whose frames last 40, 80 or 120 ms in turn (time base 1/1000); returns the pts."""
    pts = [int(p) for p in np.cumsum([0] + [40 * (1 + i % 3) for i in range(frames - 1)])]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, W, H), format="bgr24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return pts


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def overlays(jsonl: Path, pixels: list[np.ndarray], shift: int = 0) -> list[np.ndarray]:
    """Each frame as its overlay should be, drawn here on the input's pixels from the job's JSONL
    labels, smoothed as the sink smooths them (default window and top); `shift`: with the labels
    and time of the frame that many frames away instead (what a mix-up would show)."""
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    labels = [FrameLabel("v", r["frame"], r["t"], tuple(r["top5"]), tuple(r["names"]),
                         None if r["scores"] is None else tuple(r["scores"]), 0.0) for r in records]
    smoother = LabelSmoother(15)
    smoothed = [s for label in labels for s in smoother.push(label)] + smoother.flush()
    frames = []
    for i, base in enumerate(pixels):
        j = i + shift if 0 <= i + shift < len(labels) else i - shift
        frame = base.copy()
        draw_labels(frame, labels[j].names, labels[j].scores, top=3, smoothed=(smoothed[j].name, smoothed[j].score),
                    time_s=labels[j].timestamp_s)
        frames.append(frame.astype(int))
    return frames


def test_a_split_video_is_frame_exact_with_one_avcc_and_each_frame_s_overlay(tmp_path: Path) -> None:
    """A variable-frame-rate input: the joined file has its frame count and its timestamps."""
    video = tmp_path / "long.mp4"
    pts = write_vfr_video(video, 5 * CHUNK + 7)
    out = tmp_path / "out"
    assert label(video, out, job_config(tmp_path)) == 0
    streams, keys, avcc, encoders = structure(out / "long.mp4")
    assert streams == 1 and avcc == 1
    starts = chunk_starts(len(pts), CHUNK, lanes=2, lag=15 // 2)
    assert starts == [0, 24, 48, 72, 99]  # the last two chunks' worth in two even pieces
    assert encoders == len(starts)  # each chunk its own x264 (an unsplit video has one)
    got_times = times(out / "long.mp4")  # decoded to the end
    assert on_grid(got_times, Fraction(1, 1000)) == pts  # 127 frames at the input's own times
    assert {got_times[i] for i in starts} <= set(keys)  # a keyframe at every chunk start
    got = [f.astype(int) for f in decoded(out / "long.mp4")]
    base = decoded(video)
    want, other = overlays(out / "long.jsonl", base), overlays(out / "long.jsonl", base, shift=1)
    for i, (g, w, o) in enumerate(zip(got, want, other, strict=True)):
        box = np.any(w != base[i], axis=2)  # the overlay's pixels
        assert np.abs(g - w).mean() < 6.0, i  # the same picture
        assert np.abs(g - o)[box].mean() > np.abs(g - w)[box].mean(), i  # its own labels and time
    assert not list(out.glob("*.part"))
    manifest = json.loads((out / "vidpipe-manifest.json").read_text())
    assert [v["state"] for v in manifest["videos"].values()] == ["done"]


def test_an_unsplit_video_keeps_the_input_s_times_too(tmp_path: Path) -> None:
    """Short or split, the annotated video has the input's frame times (variable frame rate kept)."""
    video = tmp_path / "short.mp4"
    pts = write_vfr_video(video, 30)
    config = json.loads(job_config(tmp_path).read_text())
    config["output"]["video_chunk_frames"] = 0  # one encoder, no chunks
    (tmp_path / "unsplit.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    assert label(video, out, tmp_path / "unsplit.json") == 0
    assert structure(out / "short.mp4")[3] == 1  # one x264: not split
    assert on_grid(times(out / "short.mp4"), Fraction(1, 1000)) == pts


def test_a_video_s_end_is_cut_in_even_pieces_for_every_lane_and_extra_frames_extend_it(tmp_path: Path) -> None:
    starts = chunk_starts(6000, 250, lanes=2, lag=7)
    assert starts[:22] == list(range(0, 5500, 250))  # whole chunks, then the last 500 frames in pieces
    pieces = [b - a for a, b in zip(starts[21:], [*starts[22:], 6000], strict=True)][1:]
    assert len(pieces) == 8 and min(pieces) >= 62 and max(pieces) <= 63
    wide = chunk_starts(6000, 250, lanes=16, lag=7)  # many lanes: no piece under MIN_PIECE
    assert min(b - a for a, b in zip(wide, [*wide[1:], 6000], strict=True)) >= MIN_PIECE
    video = SplitVideo("v", "v.mp4", VideoSpec(str(tmp_path / "v.mp4"), 64, 48, 25.0, "ultrafast", 23, 1, 3),
                       Lane(None), 24, 48, lag=7)  # type: ignore[arg-type]  # (no channel: nothing is sent)
    assert video.starts == [0, 24] and video.chunk_of(47) == 1
    assert [video.chunk_of(i) for i in (48, 71, 72, 100)] == [2, 2, 3, 4]  # a container that said 48


def test_chunks_with_another_sps_are_refused_at_the_join(tmp_path: Path) -> None:
    final = tmp_path / "v.mp4"
    for k, crf in enumerate((18, 30)):
        with H264Writer(chunk_path(final, k), W, H, 25, preset="ultrafast", crf=crf, fmt="mp4", vfr=True,
                        origin_s=0.0, options={"x264-params": f"ref={1 + 2 * k}"}) as writer:
            for i in range(4):
                writer.write(pattern_frame(i, W, H), (4 * k + i) / 25)
    with pytest.raises(JoinError, match="chunk 1 has another SPS/PPS"):
        join_chunks([chunk_path(final, 0), chunk_path(final, 1)], tmp_path / "v.mp4.part")


def write_chunk(final: Path, k: int, frames: int = 4) -> None:
    with H264Writer(chunk_path(final, k), W, H, 25, preset="ultrafast", fmt="mp4", vfr=True, origin_s=0.0) as writer:
        for i in range(frames):
            writer.write(pattern_frame(frames * k + i, W, H), (frames * k + i) / 25)


def test_the_joiner_appends_each_chunk_once_it_and_those_before_are_done(tmp_path: Path) -> None:
    final = tmp_path / "v.mp4"
    joiner = Joiner(final, "v.mp4", ChunkBoard(threading.Condition(), lambda: False))
    write_chunk(final, 1)
    joiner.advance()  # chunk 0 is not done: nothing to append
    assert joiner.next == 0 and not part_path(final).exists()
    write_chunk(final, 0)
    joiner.advance()
    assert joiner.next == 2 and part_path(final).stat().st_size > 0  # joined so far (the .part is the claim)
    write_chunk(final, 2)
    joiner.finish(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    assert [round(t * 25) for t in times(final)] == list(range(12))
    failing = Joiner(tmp_path / "w.mp4", "w.mp4", ChunkBoard(threading.Condition(), lambda: False))
    write_chunk(tmp_path / "w.mp4", 0)
    failing.advance()
    failed_marker(tmp_path / "w.mp4", 1).touch()  # its encoder could not write chunk 1
    with pytest.raises(ChunkFailed, match="chunk 1 could not be written"):
        failing.finish(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def run_until_chunks(video: Path, out: Path, config: Path, chunks: int) -> subprocess.Popen[str]:
    """The job in its own process group, once `chunks` chunks of `video` are finished."""
    cmd = [*VIDPIPE, "label", str(video), "--out", str(out), "--config", str(config), "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for(lambda: chunk_path(out / video.name, chunks - 1).exists() or proc.poll() is not None, 60, "chunks")
    assert proc.poll() is None, "the job ended before it could be interrupted"
    return proc


# drained: the sink ends the video and its chunks are joined as usual; aborted (the drain takes
# longer than its timeout): every encoder finalizes its open chunk, the first one joins the rest
@pytest.mark.parametrize("drain_timeout_s", [30.0, 0.3], ids=["drained", "aborted"])
def test_ctrl_c_leaves_a_playable_video_cut_short_and_no_part_files(tmp_path: Path, drain_timeout_s: float) -> None:
    video = write_video(tmp_path / "long.mp4", frames=6 * CHUNK, width=W, height=H)
    out = tmp_path / "out"
    proc = run_until_chunks(video, out, job_config(tmp_path, per_image_ms=50, drain_timeout_s=drain_timeout_s), 2)
    os.killpg(proc.pid, signal.SIGINT)
    err = finish(proc, 60)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert ("aborting" in err) == (drain_timeout_s < 1), err
    got = times(out / "long.mp4")  # joined from what was written: decodes to its end
    assert 2 * CHUNK <= len(got) < 6 * CHUNK
    assert got == times(video)[:len(got)]  # the first frames, in order, at their times
    assert not list(out.glob("*.part")), list(out.glob("*.part"))


def test_resume_redoes_a_video_whose_chunks_were_never_joined(tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.mp4", frames=4 * CHUNK, width=W, height=H)
    out = tmp_path / "out"
    config = job_config(tmp_path, per_image_ms=20)
    proc = run_until_chunks(video, out, config, 2)
    os.killpg(proc.pid, signal.SIGKILL)  # no join, no rename: chunks left as .part
    proc.wait(10)
    assert chunk_path(out / "long.mp4", 0).exists() and not (out / "long.mp4").exists()
    manifest = json.loads((out / "vidpipe-manifest.json").read_text())
    assert [v["state"] for v in manifest["videos"].values()] == ["pending"]
    assert label(video, out, config, "--resume") == 0
    assert times(out / "long.mp4") == times(video)
    assert not list(out.glob("*.part"))
    manifest = json.loads((out / "vidpipe-manifest.json").read_text())
    assert [v["state"] for v in manifest["videos"].values()] == ["done"]


def test_a_full_disk_fails_the_split_video_in_one_line_and_leaves_no_chunk(tmp_path: Path) -> None:
    """The output folder is a 192 KiB tmpfs in a private mount namespace (unshare): chunks fail."""
    video = write_video(tmp_path / "big.mp4", frames=20 * CHUNK, width=W, height=H)
    out = tmp_path / "out"
    out.mkdir()
    config = json.loads(job_config(tmp_path).read_text())
    config["output"] |= {"jsonl": False, "segments": False}
    (tmp_path / "video-only.json").write_text(json.dumps(config))
    listing = tmp_path / "listing.txt"  # what the tmpfs held, seen from inside its namespace
    script = ('mount -t tmpfs -o size=192k tmpfs "$OUT" || exit 99; "$@"; code=$?; '
              'ls -1a "$OUT" > "$LISTING"; exit $code')
    vidpipe = [*VIDPIPE, "label", str(video), "--out", str(out), "--no-progress", "--config",
               str(tmp_path / "video-only.json")]
    env = {**os.environ, "OUT": str(out), "LISTING": str(listing)}
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", *vidpipe], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "No space left on device" in ln]
    assert len(lines) == 1 and "big.mp4" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    files = listing.read_text().split()
    assert "big.mp4" not in files and not [name for name in files if ".part" in name], files
