"""Phone videos upright: frames stored turned, with the display matrix that shows them upright, are
decoded upright (all three turns), probed at their display size, labeled as the upright picture,
and their annotated video is written upright at the display size."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.media import write_turned_video, write_with_display_matrix
from tests.stages.jobs.test_label_job import photo
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.sources.files import open_capture, probe

pytestmark = pytest.mark.timeout(120)


def upright_picture() -> np.ndarray:
    picture = np.zeros((240, 320, 3), np.uint8)
    picture[:120, :160] = 255  # a white top-left quadrant: any turn or mirror moves it
    return picture


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_frames_are_decoded_upright_at_the_display_size(turns: int, tmp_path: Path) -> None:
    path = write_turned_video(tmp_path / f"turned{turns}.mp4", upright_picture(), turns, frames=3)
    info = probe(str(path), "v")
    assert (info.width, info.height) == (320, 240)  # the display size, whatever the stored one
    cap = open_capture(str(path))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok and frame.shape == (240, 320, 3)
    assert np.abs(frame.astype(int) - upright_picture()).mean() < 8


# Mirrored display matrices, and what they show, from FFmpeg's definition of the matrix (libavutil/
# display.h: (p, q) is shown at (a p + c q, b p + d q)): the stored frame is the upright picture
# moved by the inverse. OpenCV alone would show each of them turned instead (it reads only an angle).
MIRRORED = {
    "mirror left-right": ((-1, 0, 0, 1), lambda up: np.fliplr(up)),
    "transpose": ((0, 1, 1, 0), lambda up: up.swapaxes(0, 1)),
    "anti-transpose": ((0, -1, -1, 0), lambda up: np.rot90(up, 2).swapaxes(0, 1)),
}


@pytest.mark.parametrize("case", sorted(MIRRORED))
def test_mirrored_display_matrices_are_shown_as_they_say(case: str, tmp_path: Path) -> None:
    matrix, stored_from = MIRRORED[case]
    path = write_with_display_matrix(tmp_path / "m.mp4", stored_from(upright_picture()), *matrix)
    info = probe(str(path), "m")
    assert (info.width, info.height) == (320, 240) and info.orient is not None
    out = tmp_path / "out"
    assert main(["label", str(path), "--out", str(out), "--no-progress", "-b", "sim", "--no-video",
                 "--resize", "full"]) == 0
    cap = open_capture(str(path))  # what vidpipe's decode process does with it
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    ok, stored = cap.read()
    cap.release()
    from vidpipe.stages.sources.orientation import apply

    shown = apply(info.orient, stored)
    assert ok and shown.shape == (240, 320, 3) and np.abs(shown.astype(int) - upright_picture()).mean() < 8


def test_a_portrait_phone_video_is_labeled_upright_and_written_upright(tmp_path: Path) -> None:
    cat = cv2.resize(photo("chelsea"), (240, 320))  # portrait: 240 wide, 320 high
    path = write_turned_video(tmp_path / "phone.mp4", cat, turns=1, frames=12)
    out = tmp_path / "out"
    assert main(["label", str(path), "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "phone.jsonl").read_text().splitlines()]
    assert all(r["names"][0] in ("tiger cat", "Egyptian cat", "tabby") for r in rows)
    assert min(r["scores"][0] for r in rows) > 0.5
    summary = json.loads((out / "summary.json").read_text())["videos"][0]
    assert (summary["width"], summary["height"]) == (240, 320)
    with av.open(str(out / "phone.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (240, 320)
        first = next(container.decode(video=0)).to_ndarray(format="bgr24")
    lower = slice(200, 320)  # below the overlay's text: the photo itself, upright
    assert np.abs(first[lower].astype(int) - cat[lower]).mean() < 25
