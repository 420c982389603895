"""Scaling: vidpipe on sim with 1, 2, 4 preprocess workers (one stream), and with 1, 2, 4 streams
(input files decoded at the same time, default workers).

The card runs batches of SCALING_BATCH (its modeled maximum is then ~1977 fps), so that what
limits these runs is the host, not the card. Streams are hard links to the same clip under
distinct names (one output set each).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner import VidpipeRun, repeat_vidpipe

SCALING_BATCH = 256


@dataclass(frozen=True)
class ScalingRun:
    axis: str  # "workers" or "streams"
    value: int
    run: VidpipeRun

    def to_json(self) -> dict[str, Any]:
        return {"axis": self.axis, "value": self.value, **self.run.to_json()}


def stream_links(clip: Path, count: int, workdir: Path, name: str = "streams") -> list[Path]:
    """`count` hard links to `clip` (copies across file systems) in workdir/name (a folder per
    clip: links already there are kept). Not symbolic links: vidpipe labels a file given twice
    once, and a symbolic link is the file it points to."""
    folder = workdir / name
    folder.mkdir(exist_ok=True)
    links = []
    for i in range(count):
        link = folder / f"stream{i + 1}{clip.suffix}"
        if not link.exists():
            try:
                os.link(clip.resolve(), link)
            except OSError:
                shutil.copyfile(clip, link)
        links.append(link)
    return links


def run(clip: Path, workdir: Path, quick: bool, repeat: int) -> list[ScalingRun]:
    batch = 32 if quick else SCALING_BATCH
    values = (1, 2) if quick else (1, 2, 4)
    out = []
    for workers in values:
        print(f"scaling: {workers} preprocess workers ...", flush=True)
        job = {"backend": {"max_batch": batch}, "preprocess": {"workers": workers}}
        out.append(ScalingRun("workers", workers, repeat_vidpipe(f"{workers} workers", [clip], job, workdir, repeat)))
    for streams in values:
        print(f"scaling: {streams} streams ...", flush=True)
        job = {"backend": {"max_batch": batch}, "runtime": {"max_open_sources": streams}}
        links = stream_links(clip, streams, workdir)
        out.append(ScalingRun("streams", streams, repeat_vidpipe(f"{streams} streams", links, job, workdir, repeat)))
    return out
