"""End to end: `vidpipe label` (the installed console script, in a subprocess) on the emulated card,
the whole alveo path through pynq 3.0.1: it labels every frame exactly as the cpu backend does
(the card runs the same model), and a hung kernel ends the run with one line, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from skimage import data

import vidpipe.hw.emulated as emu
from tests.media import write_video

VIDPIPE = Path(sys.executable).with_name("vidpipe")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cat_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photo = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    return write_video(tmp_path_factory.mktemp("video") / "cat.mp4", frames=12, width=160, height=120, photo=photo)


def _label(video: Path, out: Path, *args: str | Path) -> list[list[int]]:
    command = [VIDPIPE, "label", video, "--out", out, "--no-progress", "--no-video", *args]
    run = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in (out / f"{video.stem}.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(records)))
    return [r["top5"] for r in records]


def test_alveo_emu_labels_every_frame_as_cpu(cat_video: Path, tmp_path: Path, int8_model: Path) -> None:
    emulated = _label(cat_video, tmp_path / "emu", "--backend", "alveo-emu")
    cpu = _label(cat_video, tmp_path / "cpu", "--backend", "cpu")
    assert len(emulated) == 12
    assert emulated == cpu
    assert {frame[0] for frame in emulated} <= {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def test_two_cards_by_index_and_shell_name_agree_with_cpu(cat_video: Path, tmp_path: Path, int8_model: Path) -> None:
    """One infer process per card, the batches spread over both; results still in order."""
    config = tmp_path / "two.yaml"
    config.write_text("backend:\n  name: alveo-emu\n  max_batch: 2\n  alveo:\n"
                      "    devices: [0, xilinx_u250_xdma_201830_2]\n")
    two = _label(cat_video, tmp_path / "two", "--config", config)
    assert two == _label(cat_video, tmp_path / "cpu", "--backend", "cpu")


def _session_processes(sid: int) -> list[int]:
    """Processes still alive in session `sid`."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            alive.append(int(stat.parent.name))
    return alive


def _orphans(segments: set[Path]) -> list[Path]:
    """Segments whose creating process (vidpipe_<pid>_...) is gone: left behind. Others belong to
    whatever else runs vidpipe on this machine meanwhile."""
    return [s for s in segments if not Path(f"/proc/{s.name.split('_')[1]}").exists()]


def test_a_hung_card_ends_the_run_with_one_line(cat_video: Path, tmp_path: Path, int8_model: Path) -> None:
    config = tmp_path / "hang.yaml"
    config.write_text("backend:\n  max_batch: 4\n  alveo:\n    wait_timeout_s: 1.0\n"
                      "    wait_timeout_per_image_s: 0.1\n")
    shm_before = set(Path("/dev/shm").glob("vidpipe_*"))
    t0 = time.monotonic()
    proc = subprocess.Popen([str(VIDPIPE), "label", str(cat_video), "--out", str(tmp_path / "out"), "--backend",
                             "alveo-emu", "--no-video", "--no-progress", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, emu.HANG_ENV: "1"})  # batch 1 runs, batch 2 hangs
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if "did not finish" in line]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    card = "alveo-emu:0 (emulated0, xilinx_u250_xdma_201830_2)"
    assert f"{card}: resnet50_1 did not finish batch 2 (4 images" in errors[0]
    assert "within 1.40 s" in errors[0] and "the kernel hangs" in errors[0]
    assert elapsed < 60, f"took {elapsed:.1f} s"
    deadline = time.monotonic() + 10
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the process table: nothing to wait on for processes not our children
    assert _session_processes(proc.pid) == []
    assert _orphans(set(Path("/dev/shm").glob("vidpipe_*")) - shm_before) == []
    print(f"hung card: exit 1 after {elapsed:.1f} s")
