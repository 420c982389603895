"""The job-level files of an output folder, built from what is on disk, by one function:

    rows = write_job_summary(out_dir, manifest, failures)
        -> OUT/summary.csv, OUT/summary.json      one row per input (stages.outputs.summary)
           OUT/index.html, OUT/thumbs/NAME/*.jpg  the report (stages.outputs.report, .thumbs)

The rows come from the job manifest (per input: name, state, error, frames, labeling time,
published outputs) and each video's NAME.segments.json, not from the events of this run, so a
--resume run (whose kept videos send no events) or a Ray job that filled the folder from many
hosts writes the same files. `failures`: input path -> one line, for the inputs that failed
before they got a manifest entry (missing, corrupt) or in this run.

These files are rewritten by every run. They are recorded in the manifest's `job_outputs`
before they are written; a file of the same name that is not recorded there is the user's: it
is left alone (one line says so) and the other files are still written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import cv2

from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.redact import printable
from vidpipe.stages.jobs.manifest import Manifest, VideoEntry
from vidpipe.stages.outputs.report import REPORT_HTML, write_report
from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.summary import SUMMARY_CSV, SUMMARY_JSON, VideoSummary, write_summary
from vidpipe.stages.outputs.thumbs import THUMBS_DIR, thumb_names, write_thumbnails
from vidpipe.stages.sources.files import open_capture

log = logging.getLogger(__name__)

JOB_FILES = (SUMMARY_CSV, SUMMARY_JSON, REPORT_HTML)
_SEGMENT_FIELDS = {f.name for f in fields(Segment)}


def write_job_summary(out_dir: Path, manifest: Manifest, failures: Mapping[str, str]) -> list[VideoSummary]:
    """See the module docstring. Returns the rows (sorted by video name)."""
    rows = collect_rows(out_dir, manifest, failures)
    wanted = {row.video: thumb_names(row.video, len(row.segments)) for row in rows}
    owned = set(manifest.job_outputs)
    names = [*JOB_FILES, *(name for names in wanted.values() for name in names)]
    foreign = [n for n in names if n not in owned and os.path.lexists(out_dir / n)]
    for name in foreign:
        if not name.startswith(THUMBS_DIR + "/"):
            log.warning("%s exists and was not written by vidpipe: not overwriting it",
                        printable(str(out_dir / name)))
    if thumbs := [n for n in foreign if n.startswith(THUMBS_DIR + "/")]:
        log.warning("%d thumbnails under %s exist and were not written by vidpipe: not overwriting them",
                    len(thumbs), printable(str(out_dir / THUMBS_DIR)))
    mine = [n for n in names if n not in foreign]
    _remove_stale(out_dir, owned - set(mine))
    manifest.job_outputs = sorted(set(mine))
    manifest.save()  # recorded before written: a run killed half-way still owns them
    allowed = set(mine)
    inputs: dict[str, list[Path]] = {}  # video name -> its inputs (one, unless the manifest is odd)
    for key, entry in manifest.videos.items():
        inputs.setdefault(entry.name, []).append(Path(key))
    for row in rows:
        _thumbnails(out_dir, row, inputs.get(row.video, []), [n if n in allowed else None for n in wanted[row.video]])
    write_summary(out_dir, rows, [n for n in (SUMMARY_CSV, SUMMARY_JSON) if n in allowed])
    if REPORT_HTML in allowed:
        write_report(out_dir, rows, {row.video: _read_text(out_dir / row.track) for row in rows if row.track})
    return rows


def collect_rows(out_dir: Path, manifest: Manifest, failures: Mapping[str, str]) -> list[VideoSummary]:
    """One row per manifest entry, plus one per failed input without an entry."""
    failed = {os.path.abspath(path): message for path, message in failures.items()}
    rows = [_entry_row(out_dir, key, entry, failed.pop(key, "")) for key, entry in manifest.videos.items()]
    for path, message in failed.items():
        rows.append(VideoSummary(printable(Path(path).name), printable(path), "failed", _about(path, message)))
    return sorted(rows, key=lambda r: (r.video.casefold(), r.video))


def _about(path: str, message: str) -> str:
    """The message without the input's path in front (the row has its own column for it)."""
    for prefix in (printable(path) + ": ", printable(os.path.relpath(path)) + ": "):
        if message.startswith(prefix):
            return message.removeprefix(prefix)
    return message


def _entry_row(out_dir: Path, key: str, entry: VideoEntry, failure: str) -> VideoSummary:
    name = entry.name
    row = VideoSummary(name, printable(key), "failed" if failure else entry.state,
                       _about(key, failure or entry.error), frames=entry.frames, labeling_s=entry.seconds,
                       outputs=sorted(entry.outputs), host=entry.host)
    published = set(entry.outputs)
    if f"{name}.mp4" in published:
        row.media = f"{name}.mp4"
    elif os.path.isfile(key):
        row.media = _relative(key, out_dir)
    if f"{name}.vtt" in published:
        row.track = f"{name}.vtt"
    doc = _segments_doc(out_dir / f"{name}.segments.json") if f"{name}.segments.json" in published else None
    if doc is not None:
        _from_segments(row, doc)
    else:
        _from_video(row, [Path(key), out_dir / f"{name}.mp4"])
    notes = [entry.warning] if entry.warning else []
    if f"{name}.mp4" in published and row.width and row.height and (padded := padding_note(row.width, row.height)):
        notes.append(padded)
    row.warning = "; ".join(notes)
    return row


def padding_note(width: int, height: int) -> str:
    """What the annotated video does with an odd size (stages.outputs.writers.H264Writer), or ""."""
    if width % 2 == 0 and height % 2 == 0:
        return ""
    return (f"annotated video {width + width % 2}x{height + height % 2}, padded by one pixel from {width}x{height} "
            "(H.264 4:2:0 needs even sizes; every input pixel is kept)")


def _segments_doc(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        doc["segments"] = [Segment(**{k: v for k, v in s.items() if k in _SEGMENT_FIELDS})
                           for s in doc.get("segments", [])]
        return doc
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("%s: unreadable (%s): the report leaves its segments out", printable(str(path)), exc)
        return None


def _from_segments(row: VideoSummary, doc: dict[str, Any]) -> None:
    row.segments = doc["segments"]
    row.fps = _number(doc.get("fps"))
    row.width, row.height = _int(doc.get("width")), _int(doc.get("height"))
    row.top = [(str(s.get("name", "")), float(s.get("share", 0.0))) for s in doc.get("summary", [])
               if isinstance(s, dict)]
    if row.segments:
        row.duration_s = row.segments[-1].end_s
    elif row.fps:
        row.duration_s = row.frames / row.fps


def _from_video(row: VideoSummary, candidates: list[Path]) -> None:
    """No segments file (segments off, or none published): frame rate and size from the video."""
    for path in candidates:
        try:
            cap = open_capture(str(path))
        except (SourceError, OSError):
            continue
        try:
            if (fps := cap.get(cv2.CAP_PROP_FPS)) > 0:
                row.fps = float(fps)
                row.width, row.height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                row.duration_s = row.frames / row.fps if row.frames else None
                return
        finally:
            cap.release()


def _thumbnails(out_dir: Path, row: VideoSummary, inputs: list[Path], names: list[str | None]) -> None:
    """Writes the thumbnails that are missing or older than the video's segments file (kept
    videos keep theirs); row.thumbs gets every thumbnail that is there. Taken from the original
    input first (a clean picture: the label is in the caption), then the annotated video."""
    folder = str(out_dir)
    made = _mtime_ns(os.path.join(folder, f"{row.video}.segments.json")) or 0
    stamps = {n: _mtime_ns(os.path.join(folder, n)) for n in names if n}  # None: missing
    todo: list[str | None] = [n if n and (stamps[n] or made - 1) < made else None for n in names]  # missing or stale
    sources = [*inputs, out_dir / f"{row.video}.mp4"]
    written = write_thumbnails(out_dir, open_capture, sources, row.segments, todo) if any(todo) else [""] * len(names)
    row.thumbs = [w or (n if n and stamps[n] is not None else "") for n, w in zip(names, written, strict=True)]


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _remove_stale(out_dir: Path, names: set[str]) -> None:
    """Job files of an earlier run that this run does not write again (e.g. the thumbnails of a
    segment that no longer exists): vidpipe's own, so removed."""
    for name in sorted(names):
        if name.startswith(THUMBS_DIR + "/"):
            (out_dir / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                (out_dir / name).parent.rmdir()  # only when empty


def _relative(path: str, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive
        return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
