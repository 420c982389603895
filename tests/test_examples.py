"""The examples run as their docstrings say: labeling and live events from Python, and the
webhook receiver getting a live job's label events."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.media import random_bytes, write_video
from tests.stages.jobs.test_label_job import photo
from tests.stages.jobs.test_live_job import Live
from vidpipe.stages.live_files import segments

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_label_from_python_prints_a_table_from_the_in_memory_summary(tmp_path: Path) -> None:
    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "cat.mp4", frames=30, width=160, height=120, fps=10, photo=photo("chelsea"))
    random_bytes(videos / "broken.mp4", 2000)
    run = subprocess.run([sys.executable, str(EXAMPLES / "label_from_python.py"), str(videos), "--backend", "cpu"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # one video failed, the other is labeled
    assert re.search(r"^cat +done +30  (tiger cat|Egyptian cat|tabby) \(100%\)$", run.stdout, re.M), run.stdout
    assert re.search(r"^  +0\.00 - +3\.00 s  \w.*\(0\.\d\d\)$", run.stdout, re.M)  # the one segment
    assert re.search(r"^broken\.mp4 +failed: not a readable video", run.stdout, re.M)
    assert re.search(r"^cat: (tiger cat|Egyptian cat|tabby) on \d+ frames$", run.stdout, re.M)
    assert "Traceback" not in run.stderr and list(tmp_path.iterdir()) == [videos]  # nothing written


def test_live_events_prints_label_changes_and_adds_a_stream(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cat.mp4", frames=40, width=160, height=120, fps=20, photo=photo("chelsea"))
    coffee = write_video(tmp_path / "coffee.mp4", frames=40, width=160, height=120, fps=20, photo=photo("coffee"))
    run = subprocess.run([sys.executable, str(EXAMPLES / "live_events.py"), str(video), "--add", str(coffee),
                          "--seconds", "6"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert re.search(r"^\d{4}-\d\d-\d\dT\S+ cat: (tiger cat|Egyptian cat|tabby) \(0\.\d\d\)$", run.stdout, re.M)
    assert re.search(r"^streams: cat, added$", run.stdout, re.M), run.stdout
    assert re.search(r"^\S+ added: espresso", run.stdout, re.M), run.stdout
    assert "Traceback" not in run.stderr


def test_the_event_receiver_prints_a_live_jobs_label_events(tmp_path: Path) -> None:
    receiver = subprocess.Popen([sys.executable, str(EXAMPLES / "event_receiver.py"), "--port", "0"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        url = receiver.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        video = write_video(tmp_path / "cat.mp4", frames=40, width=160, height=120, fps=20, photo=photo("chelsea"))
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"backend:\n  name: cpu\nlive:\n  http: false\n  events:\n    webhook: {url}\n"
                       f"  sources:\n    - uri: {video}\n      name: door\n")
        live = Live(["--config", str(cfg)], tmp_path / "out")
        assert live.proc.wait(timeout=60) == 0  # the file ends: so does the live job (no API)
        (jsonl,) = segments(tmp_path / "out", "events")  # OUT/events.START.jsonl: one run, one segment
        events = [json.loads(x) for x in jsonl.read_text().splitlines()]
        assert any(e["type"] == "label" for e in events)
    finally:
        receiver.terminate()
        printed = receiver.communicate(timeout=10)[0]
    assert re.search(r"^\d{4}-\d\d-\d\dT\S+ door: .+ \d\.\d\d$", printed, re.M), printed
