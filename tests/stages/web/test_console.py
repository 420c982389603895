"""The console's reading of an output folder written by the live writers themselves: events newest
first and filtered, a label strip's range, recordings' time ranges, disk use, and /files serving
only what the writers make."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.media import CAT, write_video
from vidpipe.stages.live_files import utc_stamp
from vidpipe.stages.outputs.senders import JsonlSender
from vidpipe.stages.outputs.timeline import BUCKET_S, TimelineWriter, save_snapshot
from vidpipe.stages.web.console import Console
from vidpipe.stages.web.liveview import encode_jpeg

NOW = float(int(time.time()) - int(time.time()) % 10)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("console")
    sender = JsonlSender(out, 0)
    jpeg = encode_jpeg(CAT)
    fired = [("cam", "tabby"), ("door", "espresso"), ("cam", "espresso"), ("cam", "tabby")]
    for i, (stream, label) in enumerate(fired):
        t = NOW - 300 + 60 * i
        shot = save_snapshot(out, stream, t, jpeg)
        sender.offer({"type": "label", "stream": stream, "label": label, "time": t, "run": "r1", "snapshot": shot})
    sender.offer({"type": "clip", "stream": "cam", "label": "espresso", "label_start_time": NOW - 180.0004,
                  "path": str(out / "clips" / "cam_espresso_20261207-030000.mp4"), "run": "r1"})
    sender.close()
    timeline = TimelineWriter(out, "cam", "r1", 0)
    for k in range(360):  # an hour of 10-s buckets, ending now
        timeline.add(NOW - 3600 + k * BUCKET_S, "tabby" if k % 2 else "espresso", 0.8)
    timeline.close()
    write_video(out / f"cam.{utc_stamp(NOW - 120)}.mp4", frames=10, width=64, height=48)
    (out / "notes.txt").write_text("mine")
    (out / "users.json").write_text("{}")
    return out


def test_events_newest_first_filtered_with_snapshots_and_clips(out: Path) -> None:
    console = Console(out)
    events = console.events()
    assert [e["type"] for e in events] == ["clip", "label", "label", "label", "label"]
    assert [e.get("label") for e in events[1:]] == ["tabby", "espresso", "espresso", "tabby"]
    assert events[0]["clip"] == "/files/clips/cam_espresso_20261207-030000.mp4"
    assert all(e["snapshot"].startswith("/files/snapshots/") for e in events[1:])
    assert [e["clip"] for e in events[1:]] == [None, events[0]["clip"], None, None]  # the event that began it
    assert [e["stream"] for e in console.events(stream="door")] == ["door"]
    assert [e["label"] for e in console.events(stream="cam", label="espresso")] == ["espresso", "espresso"]
    assert len(console.events(limit=2)) == 2
    assert all(e["time"] < NOW - 200 for e in console.events(before=NOW - 200) if e["type"] == "label")


def test_timeline_range_and_its_event_marks(out: Path) -> None:
    strip = Console(out).timeline("cam", NOW - 600, NOW)
    assert len(strip["buckets"]) == 60 and strip["buckets"][0]["t"] == NOW - 600  # the last bucket: NOW - 10
    assert {b["label"] for b in strip["buckets"]} == {"tabby", "espresso"}
    assert [(e["type"], e["label"]) for e in strip["events"]] == [  # cam's, newest first
        ("clip", "espresso"), ("label", "tabby"), ("label", "espresso"), ("label", "tabby")]
    assert Console(out).timeline("nobody", NOW - 600, NOW)["buckets"] == []


def test_recordings_and_disk(out: Path) -> None:
    console = Console(out, keep_s=604800, max_disk_gb=5)
    (rec,) = console.recordings()
    assert rec["stream"] == "cam" and rec["start"] == NOW - 120 and rec["end"] >= rec["start"] and rec["bytes"] > 0
    assert console.recordings("door") == []
    disk = console.disk(["cam", "door"])
    assert set(disk["streams"]["cam"]) == {"recordings", "timeline", "snapshots"}
    assert disk["streams"]["(events)"]["jsonl"] > 0 and disk["retention"]["max_disk_gb"] == 5
    assert disk["total_bytes"] == sum(sum(v.values()) for v in disk["streams"].values())


@pytest.mark.parametrize(("relative", "served"), [
    ("snapshots/" + "cam.{stamp}.jpg", True),
    ("cam.{rec}.mp4", True),
    ("users.json", False), ("notes.txt", False), ("tls/key.pem", False), ("../etc/passwd", False),
    ("snapshots/../users.json", False), ("timeline/cam.{stamp}.jsonl", False), ("cam.{rec}.jsonl", False),
])
def test_files_serves_only_what_the_writers_make(out: Path, relative: str, served: bool) -> None:
    path = relative.format(stamp=utc_stamp(NOW - 300), rec=utc_stamp(NOW - 120))
    assert (Console(out).file(path) is not None) == served
