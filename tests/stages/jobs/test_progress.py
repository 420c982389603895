"""The terminal: progress bars in a real pseudo-terminal (80 columns) read back through a terminal
emulator (pyte), one line per file when stderr is not a terminal, a summary table that fits."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

from tests.media import truncate, write_video
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.jobs.progress import ProgressBars, format_table

ROOT = Path(__file__).resolve().parents[3]
BAR = re.compile(r"^.{16} \[[#.]{5,40}\] +\d+/(\d+|\?) frames +\d+ fps(  ETA \d+:\d\d)?$")
LONG = "a-video-file-with-a-name-much-longer-than-any-terminal-line-is-wide-" + "x" * 40


def test_lines_fit_any_width() -> None:
    bars = ProgressBars(enabled=True)
    bars.start(3, 300)
    bars.update(LONG, 10, 100, 50.0)
    bars.update("short", 100, 100, 50.0)
    for width in (20, 40, 80, 200):
        lines = bars.lines(width)
        assert len(lines) == 3 and all(len(line) <= width - 1 for line in lines)
    assert all(BAR.match(line) for line in bars.lines(80)), bars.lines(80)
    assert bars.lines(80)[-1].startswith("all 0/3 files")


def test_the_summary_table_fits_80_columns() -> None:
    rows = [[LONG, "120", "83.2", "Egyptian cat 40%, espresso 35%, missile 25%", "failed: " + "why " * 30],
            ["cat", "20", "90.0", "tabby 100%", "ok"]]
    table = format_table(["video", "frames", "fps", "labels (share of time)", "status"], rows).splitlines()
    assert all(len(line) <= 80 for line in table) and len(table) == 4
    assert table[3].startswith("cat ") and table[2].startswith(LONG[:10]) and "~" in table[2]
    assert "120" in table[2] and "83.2" in table[2]  # the numbers are never cut


def test_without_a_terminal_one_line_per_file_started_and_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.mp4", frames=12)
    assert main(["label", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--out", str(tmp_path / "out"),
                 "--backend", "sim"]) == 0
    captured = capsys.readouterr()
    for name in ("a", "b"):
        assert f"{name}: started (12 frames)" in captured.err and f"{name}: finished, 12 frames in" in captured.err
    assert "\r" not in captured.err and "\x1b[" not in captured.err  # no bars in a log file
    assert "~" not in captured.out  # not a terminal: the table is whole, for a script or a log
    assert captured.out.splitlines()[0].split() == ["video", "frames", "labeled", "fps", "labels", "(share", "of",
                                                    "time)", "status"]
    assert captured.out.splitlines()[-1].startswith(f"report: {tmp_path / 'out' / 'index.html'}")


def run_in_pty(argv: list[str], columns: int = 80, rows: int = 24, timeout: float = 120.0) -> tuple[int, list[bytes]]:
    """Runs argv with a pseudo-terminal of columns x rows as its stdin/stdout/stderr; returns its
    exit code and what it wrote, in the chunks it arrived in."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, close_fds=True,
                            env={**os.environ, "TERM": "xterm"}, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        os.close(master)
    return code, chunks


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bars_in_a_pseudo_terminal_never_leave_stale_text(tmp_path: Path) -> None:
    videos = tmp_path / "in"
    videos.mkdir()
    for name, frames in (("first", 60), (LONG, 45), ("third", 30)):
        write_video(videos / f"{name}.mp4", frames=frames, width=96, height=64)
    truncate(write_video(tmp_path / "long.mkv", frames=60, width=96, height=64), videos / "cut.mkv")
    slow = tmp_path / "slow.yaml"  # a slow card: the bars are drawn many times
    slow.write_text("backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 15\n")
    code, chunks = run_in_pty([sys.executable, "-m", "vidpipe.stages.jobs.cli", "label", str(videos), "--out",
                         str(tmp_path / "out"), "--config", str(slow), "--workers", "1"])
    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)
    most_bars = 0
    # A redraw is one write(2), but a pty read may return part of it (the rest is already on its
    # way): the screen is checked where each redraw ends (erase below, \x1b[J), not mid-write.
    for chunk in re.split(rb"(?<=\x1b\[J)", b"".join(chunks)):
        stream.feed(chunk)
        lines = [line.rstrip() for line in screen.display]
        bars = [line for line in lines if "] " in line and " frames " in line]
        assert all(BAR.match(line) for line in bars), "\n".join(lines)  # whole lines, nothing stale after them
        if bars:
            assert bars[-1].startswith("all ") and lines.index(bars[-1]) == max(map(lines.index, bars))
        most_bars = max(most_bars, len(bars))
    final = [line.rstrip() for line in screen.display]
    assert code == 1, "\n".join(final)  # cut.mkv is truncated
    assert most_bars >= 3  # two files open at once, plus the overall line
    assert not [line for line in final if BAR.match(line)]  # the bars are gone at the end
    text = "\n".join(final)
    assert "video" in text and "labels (share of time)" in text and "cut.mkv: decoded" in text.replace("\n", "")
    table = final[next(i for i, line in enumerate(final) if line.startswith("video ")):]
    assert any(line.startswith(LONG[:8]) and "~" in line for line in table)  # the long name, cut to fit
