"""Many short files through one warm graph: a few decode workers take the files in turn, finished
videos reach the manifest in groups, and --resume over many done videos does linear work."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.many_files import replicate_done
from tests.media import truncate, write_video
from tests.processes import VIDPIPE, wait_for
from vidpipe.stages.jobs import manifest as manifest_module
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.jobs.manifest import MANIFEST_NAME, GroupCommit, Manifest, VideoEntry

pytestmark = pytest.mark.timeout(180)


def shorts(folder: Path, count: int, frames: int) -> list[Path]:
    folder.mkdir()
    return [write_video(folder / f"c{i:02d}.mp4", frames=frames, width=64, height=48) for i in range(count)]


def states(out: Path) -> dict[str, str]:
    return {v["name"]: v["state"] for v in json.loads((out / MANIFEST_NAME).read_text())["videos"].values()}


def test_many_short_files_share_two_decode_workers_and_a_corrupt_one_fails_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leaks: None
) -> None:
    videos = tmp_path / "videos"
    shorts(videos, 12, frames=3)
    (videos / "c05.mp4").unlink()  # a truncated Matroska file opens, then ends early
    truncate(write_video(tmp_path / "long.mkv", frames=60, width=64, height=48), videos / "c05.mkv")
    config = tmp_path / "two.yaml"
    config.write_text("runtime:\n  max_open_sources: 2\n")
    out = tmp_path / "out"
    code = main(["label", str(videos), "--out", str(out), "--config", str(config), "--backend", "sim",
                 "--no-video", "--no-progress", "-vv"])
    err = capsys.readouterr().err
    assert code == 1, err
    decoded = re.findall(r"(c\d\d): decoding in worker pid (\d+)", err)
    assert sorted(name for name, _ in decoded) == [f"c{i:02d}" for i in range(12)]
    assert 1 <= len({pid for _, pid in decoded}) <= 2  # at most the two workers decoded the 12 files
    assert states(out) == {f"c{i:02d}": "failed" if i == 5 else "done" for i in range(12)}
    assert "c05.mkv: decoded" in err and "truncated" in err
    assert all(len((out / f"c{i:02d}.jsonl").read_text().splitlines()) == 3 for i in range(12) if i != 5)


def test_group_commit_writes_many_records_at_once_within_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = Manifest(tmp_path, {"backend": "sim"})
    writes: list[float] = []
    write = Manifest.write

    def counted(self: Manifest, text: str) -> None:
        write(self, text)
        writes.append(time.monotonic())

    monkeypatch.setattr(Manifest, "write", counted)
    commit = GroupCommit(manifest, 0.3)
    t0 = time.monotonic()
    for i in range(50):
        with commit.change():
            manifest.videos[f"/in/v{i}.mp4"] = VideoEntry(f"v{i}", state="done")
    assert not writes  # none yet: the first change waits out the interval for the others
    wait_for(lambda: bool(writes), 10)
    assert writes[0] - t0 >= 0.29
    loaded, _ = Manifest.load(tmp_path, {})
    assert len(loaded.videos) == 50 and {e.state for e in loaded.videos.values()} == {"done"}
    commit.close()
    assert len(writes) == 1  # nothing changed since: nothing more to write
    with commit.change():  # after close: at once
        manifest.videos["/in/late.mp4"] = VideoEntry("late", state="failed")
    assert len(writes) == 2 and "late" in {e.name for e in Manifest.load(tmp_path, {})[0].videos.values()}
    with GroupCommit(manifest, 0).change():  # 0: a write per change, as before group commits
        manifest.videos["/in/v0.mp4"].state = "failed"
    assert len(writes) == 3


@pytest.mark.slow
def test_kill_9_loses_at_most_the_interval_and_leaves_a_readable_manifest(tmp_path: Path) -> None:
    videos, out = tmp_path / "videos", tmp_path / "out"
    shorts(videos, 40, frames=10)
    interval, slack = 0.5, 1.5  # slack: the sink's StreamDone to the main process, checksums, fsync
    config = tmp_path / "slow.yaml"  # a slow card (20 ms per image): files finish every ~0.2 s
    config.write_text("backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 20\n"
                      f"runtime:\n  max_open_sources: 2\n  manifest_interval_s: {interval}\n")
    cmd = [*VIDPIPE, "label", str(videos), "--out", str(out), "--config", str(config), "--no-video", "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # labeling under way, and some files finished long enough ago that they must be recorded
        wait_for(lambda: sum(p.stat().st_mtime < time.time() - interval - slack - 0.5
                             for p in out.glob("c*.jsonl")) >= 3, 60)
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a power cut would
        proc.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    recorded = states(out)  # valid JSON: the last complete write
    published = {p.stem: p.stat().st_mtime for p in out.glob("c*.jsonl")}
    assert len(published) < 40, "the job ended before it was killed"
    old = [name for name, t in published.items() if t < killed_at - interval - slack]
    assert old and all(recorded[name] == "done" for name in old), (old, recorded)
    assert main(["label", str(videos), "--out", str(out), "--resume", "--backend", "sim", "--no-video",
                 "--no-progress"]) == 0
    assert set(states(out).values()) == {"done"} and not list(out.glob("*.part"))
    assert all(len((out / f"c{i:02d}.jsonl").read_text().splitlines()) == 10 for i in range(40))


@pytest.mark.slow
def test_resume_over_many_done_videos_checks_each_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_video(tmp_path / "seed.mp4", frames=4, width=64, height=48)
    seed = tmp_path / "seed-out"
    assert main(["label", str(clip), "--out", str(seed), "--backend", "sim", "--no-progress"]) == 0
    videos = tmp_path / "videos"
    videos.mkdir()
    count = 300
    for i in range(count):
        os.link(clip, videos / f"v{i:03d}.mp4")
    out = tmp_path / "out"
    replicate_done(seed, sorted(videos.iterdir()), out)
    outputs = len(json.loads((seed / MANIFEST_NAME).read_text())["videos"][str(clip)]["outputs"])
    calls = {"fingerprint": 0, "checksum": 0}
    for name in calls:
        real = getattr(manifest_module, name)

        def counted(*args: object, _real: object = real, _name: str = name) -> str:
            calls[_name] += 1
            return _real(*args)  # type: ignore[operator, no-any-return]

        monkeypatch.setattr(manifest_module, name, counted)
    capsys.readouterr()
    t0 = time.monotonic()
    assert main(["label", str(videos), "--out", str(out), "--resume", "--backend", "sim", "--no-progress",
                 "-q"]) == 0
    seconds = time.monotonic() - t0
    assert calls == {"fingerprint": count, "checksum": count * outputs}, calls
    assert set(states(out).values()) == {"done"} and len(states(out)) == count
    assert seconds < 60  # about 1 s on 2 cores; a quadratic step would show at 300 already
    assert not list(out.glob("*.part")) and (out / "index.html").is_file()



def test_an_output_name_linked_to_an_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Planning resolves each folder once, not each path: a link in OUT is still followed."""
    (tmp_path / "in").mkdir()
    clip = write_video(tmp_path / "in" / "v.mp4", frames=2, width=64, height=48)
    out = tmp_path / "out"
    out.mkdir()
    (out / "v.jsonl").symlink_to(clip)
    assert main(["label", str(clip), "--out", str(out), "--backend", "sim", "--no-progress"]) == 2
    assert "v.jsonl would replace the input of the same name" in capsys.readouterr().err
    assert clip.stat().st_size > 0
