"""summary.csv / summary.json / index.html / thumbnails: what a labeling job leaves for people and pandas."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from urllib.parse import unquote

import av
import cv2
import numpy as np
import pytest

from tests.media import write_video
from tests.stages.outputs.conftest import LabeledJob
from vidpipe.pipeline.digest import checksum
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.jobs.manifest import MANIFEST_NAME, Manifest
from vidpipe.stages.jobs.summary import write_job_summary
from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.summary import CSV_HEADER
from vidpipe.stages.outputs.writers import SEGMENT_CSV_HEADER, SegmentsWriter

pytestmark = pytest.mark.timeout(180)
CATS = ("tiger cat", "Egyptian cat", "tabby")


def rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_HEADER
        return {r["video"]: r for r in reader}


def test_one_row_per_input_with_units_documented(labeled: LabeledJob) -> None:
    table = rows(labeled.out)
    assert sorted(table) == ["broken.mp4", "cup shot #1", "scenes"]
    broken, scenes, cup = table["broken.mp4"], table["scenes"], table["cup shot #1"]
    assert broken["status"] == "failed" and "not a readable video" in broken["error"] and broken["frames"] == "0"
    assert broken["input"] == str(labeled.inputs / "broken.mp4") and broken["outputs"] == ""
    assert (scenes["status"], scenes["frames"], scenes["fps"], scenes["width"], scenes["height"]) == (
        "done", "120", "25.0", "320", "180")
    assert float(scenes["duration_s"]) == pytest.approx(4.8) and float(cup["duration_s"]) == pytest.approx(1.0)
    assert scenes["top1"] in (*CATS, "espresso", "missile", "projectile") and 0 < float(scenes["top1_share"]) < 1
    assert cup["top1"] == "espresso" and float(cup["top1_share"]) == pytest.approx(1.0)
    assert scenes["outputs"].split(";") == ["scenes.jsonl", "scenes.mp4", "scenes.segments.csv",
                                             "scenes.segments.json", "scenes.vtt"]
    assert float(scenes["labeling_s"]) > 0 and float(scenes["labeling_fps"]) > 0
    doc = json.loads((labeled.out / "summary.json").read_text())
    assert "seconds" in doc["columns"]["duration_s"] and "inclusive" in doc["segment_ends"]
    assert [v["video"] for v in doc["videos"]] == ["broken.mp4", "cup shot #1", "scenes"]
    assert doc["videos"][2]["top_labels"][0]["name"] == scenes["top1"]
    with (labeled.out / "scenes.segments.csv").open(newline="") as f:
        segs = list(csv.DictReader(f))
    assert list(segs[0]) == list(SEGMENT_CSV_HEADER) and {s["video"] for s in segs} == {"scenes"}
    assert int(segs[0]["start_frame"]) == 0 and int(segs[-1]["end_frame"]) == 119  # both ends inclusive


def local_references(page: str) -> list[str]:
    return [unquote(u) for u in re.findall(r'(?:src|href)="([^"#][^"]*)"', page) if not u.startswith("data:")]


@pytest.mark.parametrize("report", ["out", "plain"])
def test_the_report_refers_only_to_files_beside_it(labeled: LabeledJob, report: str) -> None:
    out = getattr(labeled, report)
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and "//" not in "".join(local_references(page))
    refs = local_references(page)
    assert refs and all((out / r).is_file() for r in refs), [r for r in refs if not (out / r).is_file()]
    videos = [r for r in refs if r.endswith(".mp4")]
    expected = ["cup shot #1.mp4", "scenes.mp4"] if report == "out" else ["../in/cup shot #1.mp4", "../in/scenes.mp4"]
    assert sorted(videos) == expected  # without annotated videos the report plays the inputs
    assert sorted(r for r in refs if r.endswith(".vtt")) == ["cup shot #1.vtt", "scenes.vtt"]


def test_a_thumbnail_per_segment_from_its_middle_frame(labeled: LabeledJob) -> None:
    segments = json.loads((labeled.out / "scenes.segments.json").read_text())["segments"]
    thumbs = sorted((labeled.out / "thumbs" / "scenes").glob("*.jpg"))
    assert [t.name for t in thumbs] == [f"seg{i:03d}.jpg" for i in range(len(segments))] and len(thumbs) >= 2
    cap = cv2.VideoCapture(str(labeled.inputs / "scenes.mp4"))
    try:
        for seg, thumb in zip(segments, thumbs, strict=True):
            image = cv2.imread(str(thumb))
            assert image is not None and max(image.shape[:2]) <= 240 and thumb.stat().st_size < 30_000
            cap.set(cv2.CAP_PROP_POS_FRAMES, (seg["start_frame"] + seg["end_frame"]) // 2)
            ok, frame = cap.read()
            assert ok
            small = cv2.resize(frame, image.shape[1::-1], interpolation=cv2.INTER_AREA)
            others = [cv2.imread(str(t)) for t in thumbs if t != thumb]
            mine = np.abs(small.astype(int) - image).mean()
            assert mine < 8 and all(mine < np.abs(small.astype(int) - o).mean() / 2 for o in others)
    finally:
        cap.release()


def label(*args: str) -> int:
    return main(["label", *args, "--backend", "sim", "--no-progress", "--no-video"])


def test_files_vidpipe_did_not_write_are_left_alone_and_the_rest_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=10)
    out = tmp_path / "out"
    (out / "thumbs" / "clip").mkdir(parents=True)
    (out / "summary.csv").write_text("my own table\n")
    (out / "thumbs" / "clip" / "seg000.jpg").write_bytes(b"my picture")
    assert label(str(clip), "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert f"{out / 'summary.csv'} exists and was not written by vidpipe: not overwriting it" in err
    assert "1 thumbnails under" in err and "Traceback" not in err
    assert (out / "summary.csv").read_text() == "my own table\n"
    assert (out / "thumbs" / "clip" / "seg000.jpg").read_bytes() == b"my picture"
    assert json.loads((out / "summary.json").read_text())["videos"][0]["video"] == "clip"
    assert "clip" in (out / "index.html").read_text()
    owned = json.loads((out / MANIFEST_NAME).read_text())["job_outputs"]
    assert "summary.csv" not in owned and {"summary.json", "index.html"} <= set(owned)
    (out / "summary.csv").unlink()  # the user moves theirs away: the next run writes vidpipe's own
    assert label(str(clip), "--out", str(out)) == 0
    assert rows(out)["clip"]["status"] == "done"


def test_resume_rewrites_the_summary_with_the_kept_videos_and_new_failures(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.mp4", frames=12)
    out = tmp_path / "out"
    assert label(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--out", str(out)) == 0
    first = rows(out)
    (out / "summary.json").unlink()
    missing = tmp_path / "gone.mp4"
    assert label(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(missing), "--out", str(out), "--resume") == 1
    again = rows(out)
    assert {k: again[k]["top1"] for k in ("a", "b")} == {k: first[k]["top1"] for k in ("a", "b")}
    assert again["a"]["status"] == again["b"]["status"] == "done" and again["a"]["frames"] == "12"
    assert again["gone.mp4"]["status"] == "failed" and "no such file" in again["gone.mp4"]["error"]
    assert len(json.loads((out / "summary.json").read_text())["videos"]) == 3


def test_thumbnails_of_segments_that_are_gone_are_removed(tmp_path: Path) -> None:
    """write_job_summary on its own, as a job that fills the folder some other way (Ray) calls it."""
    video = write_video(tmp_path / "v.mp4", frames=50)
    out = tmp_path / "out"
    out.mkdir()
    manifest = Manifest(out, {})
    entry = manifest.entry(str(video), "v")
    entry.state, entry.frames = "done", 50

    def publish(cuts: list[tuple[float, float]]) -> None:
        segs = [Segment(i, f"label {i}", a, b, round(a * 25), round(b * 25) - 1, round((b - a) * 25), 0.5)
                for i, (a, b) in enumerate(cuts)]
        SegmentsWriter.write(out / "v.segments.json", None, segs, [], {"video": str(video), "fps": 25.0, "frames": 50})
        entry.outputs = {"v.segments.json": checksum(out / "v.segments.json")}

    publish([(0.0, 0.8), (0.8, 1.2), (1.2, 2.0)])
    summary = write_job_summary(out, manifest, {})
    assert [len(r.thumbs) for r in summary] == [3] and all(summary[0].thumbs)
    publish([(0.0, 2.0)])
    write_job_summary(out, manifest, {str(tmp_path / "x.mp4"): f"{tmp_path / 'x.mp4'}: no such file"})
    assert sorted(p.name for p in (out / "thumbs" / "v").iterdir()) == ["seg000.jpg"]
    assert set(Manifest.load(out, {})[0].job_outputs) == {"summary.csv", "summary.json", "index.html",
                                                          "thumbs/v/seg000.jpg"}
    assert rows(out)["x.mp4"]["error"] == "no such file"


def test_an_odd_size_is_padded_by_one_pixel_and_says_so(tmp_path: Path) -> None:
    import subprocess

    from tests.media import write_odd_video
    from tests.processes import VIDPIPE

    video = write_odd_video(tmp_path / "odd.mkv", frames=6, width=321, height=241)
    out = tmp_path / "out"
    run = subprocess.run([*VIDPIPE, "label", str(video), "--out", str(out), "--no-progress", "--backend", "sim"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    note = "annotated video 322x242, padded by one pixel from 321x241 (H.264 4:2:0 needs even sizes"
    assert f"odd: {note}" in run.stderr  # one line when it happens
    row = json.loads((out / "summary.json").read_text())["videos"][0]
    assert (row["width"], row["height"]) == (321, 241) and row["warning"].startswith(note)
    assert note in (out / "summary.csv").read_text() and note in (out / "index.html").read_text()
    with av.open(str(out / "odd.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (322, 242)
