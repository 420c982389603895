"""Live recordings (fragmented MP4) in a real headless Chromium: a finished one and one whose
writer was killed mid-way both load, play and seek. On the same page, a split annotated video
(chunks joined without re-encoding, stages.outputs.chunks) plays across a chunk boundary and seeks
into a later chunk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.processes import wait_for
from tests.stages.web.test_liveview_browser import CHROMIUM, Chromium, wait_js
from vidpipe.stages.outputs.chunks import chunk_path
from vidpipe.stages.outputs.remux import join_chunks
from vidpipe.stages.outputs.writers import H264Writer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

RECORD = """
import sys, time
import numpy as np
from pathlib import Path
from vidpipe.stages.config import OutputSettings
from vidpipe.stages.outputs.recording import SegmentedRecording
folder, frames = Path(sys.argv[1]), int(sys.argv[2])
rec = SegmentedRecording(folder, "cam", (320, 240), OutputSettings(video_preset="veryfast"), segment_s=0)
rng = np.random.default_rng(0)
t0 = time.time()
for i in range(frames):
    image = np.full((240, 320, 3), (i * 7) % 255, np.uint8)
    image[::8] = rng.integers(0, 255, (30, 320, 3), dtype=np.uint8)  # texture: real-sized fragments
    rec.write(image, i / 15, t0 + i / 15)
    print(i, flush=True)
    time.sleep(1 / 30)
rec.close()
"""


def record(folder: Path, frames: int, kill_after: int | None = None) -> Path:
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", RECORD, str(folder), str(frames)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    if kill_after is None:
        assert proc.wait(60) == 0
    else:
        wait_for(lambda: int(proc.stdout.readline() or -1) >= kill_after)  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    (path,) = folder.glob("cam.*.mp4")
    return path


def joined(folder: Path) -> Path:
    """A 4 s video of three chunks (0.4 s GOPs), joined as a split job joins them."""
    folder.mkdir()
    final, chunks = folder / "split.mp4", []
    for k in range(3):
        writer = H264Writer(chunk_path(final, k), 320, 240, 15, preset="veryfast", fmt="mp4", vfr=True, origin_s=0.0,
                            options={"g": "6"})
        for i in range(20 * k, 20 * k + 20):
            writer.write(np.full((240, 320, 3), (i * 7) % 255, np.uint8), i / 15)
        chunks.append(chunk_path(final, k))
        writer.close()
    join_chunks(chunks, final)
    return final


def test_finished_and_cut_off_recordings_play_and_seek_in_chromium(tmp_path: Path) -> None:
    finished = record(tmp_path / "finished", 60)  # 4 s at 15 fps
    cut = record(tmp_path / "cut", 600, kill_after=60)  # killed after 4 s of stream time
    split = joined(tmp_path / "split")  # chunks start at 0, 1.33 and 2.67 s
    page = tmp_path / "page.html"
    page.write_text("".join(f'<video id="{name}" muted preload="auto" src="{path.as_uri()}"></video>'
                            for name, path in (("finished", finished), ("cut", cut), ("split", split))))
    chromium = Chromium(tmp_path / "profile", "--allow-file-access-from-files")
    try:
        cdp = chromium.page("about:blank")
        cdp.open(page.as_uri())
        for name in ("finished", "cut", "split"):
            video = f"document.getElementById({json.dumps(name)})"
            assert cdp.evaluate(wait_js(f"{video}.readyState >= 2", f"{name} loaded", 20_000)) is True
            assert cdp.evaluate(f"{video}.play().then(() => true)") is True
            played = 1.5 if name == "split" else 0.5  # the split one: past its first chunk
            assert cdp.evaluate(wait_js(f"{video}.currentTime > {played}", f"{name} playing", 20_000)) is True
            cdp.evaluate(f"{video}.pause(); {video}.currentTime = 1.5")
            assert cdp.evaluate(wait_js(f"!{video}.seeking && Math.abs({video}.currentTime - 1.5) < 0.1",
                                        f"{name} seek", 20_000)) is True
        assert cdp.evaluate("document.getElementById('finished').duration") == pytest.approx(4.0, abs=0.2)
        assert cdp.evaluate("document.getElementById('cut').duration") >= 2.0  # up to its last fragment
        assert cdp.evaluate("document.getElementById('split').duration") == pytest.approx(4.0, abs=0.1)
        split_js = "document.getElementById('split')"
        cdp.evaluate(f"{split_js}.currentTime = 3.0")  # into the third chunk
        assert cdp.evaluate(wait_js(f"!{split_js}.seeking && Math.abs({split_js}.currentTime - 3.0) < 0.1 && "
                                    f"{split_js}.getVideoPlaybackQuality().corruptedVideoFrames === 0",
                                    "split seek", 20_000)) is True
        cdp.close()
    finally:
        chromium.close()
