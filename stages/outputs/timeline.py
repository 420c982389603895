"""A compact index of what each live stream showed, for the console's label strips: per BUCKET_S
of capture time, the label most frames had, in OUT/timeline/STREAM.START.jsonl (segments as the
stream's JSONL: live.record_segment_s, under the same retention).

    {"run": "...", "t": 1767268810.0, "label": "tabby", "share": 0.9, "score": 0.81, "frames": 200}

A day of one camera is 8,640 short lines (~0.8 MB), where its full JSONL at 20 fps holds 1.7 M:
the strip for an hour or a day reads this, never the frames' lines. Written by the sink, a line
per bucket when the next one begins (and the open bucket when the stream ends).

Label events get a snapshot, OUT/snapshots/STREAM.START.jpg (START: the event's UTC second, `-N`
for a second one within it), the annotated frame that fired it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from vidpipe.stages.live_files import SNAPSHOTS, TIMELINE, utc_stamp
from vidpipe.stages.outputs.live_records import SegmentedJsonl

BUCKET_S = 10.0


class TimelineWriter:
    """One stream's index; see the module docstring."""

    def __init__(self, out: Path, stream: str, run_id: str, segment_s: float) -> None:
        (out / TIMELINE).mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.file = SegmentedJsonl(out / TIMELINE, stream, segment_s)
        self._bucket = -1.0
        self._labels: Counter[str] = Counter()
        self._scores: dict[str, float] = {}

    def add(self, t: float, label: str, score: float | None) -> None:
        bucket = t - t % BUCKET_S
        if bucket != self._bucket:
            self._flush()
            self._bucket = bucket
        self._labels[label] += 1
        self._scores[label] = self._scores.get(label, 0.0) + (score or 0.0)

    def _flush(self) -> None:
        if not self._labels:
            return
        label, count = self._labels.most_common(1)[0]
        frames = sum(self._labels.values())
        line = {"run": self.run_id, "t": self._bucket, "label": label, "share": round(count / frames, 3),
                "score": round(self._scores[label] / count, 3), "frames": frames}
        self.file.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n", self._bucket)
        self._labels.clear()
        self._scores.clear()

    def close(self) -> None:
        self._flush()
        self.file.close()


def save_snapshot(out: Path, stream: str, t: float, jpeg: bytes) -> str:
    """Writes the event's frame; its path relative to OUT (for the event's `snapshot` key)."""
    folder = out / SNAPSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp, n = utc_stamp(t), 1
    while (path := folder / f"{stream}.{stamp}{'' if n == 1 else f'-{n}'}.jpg").exists():
        n += 1
    tmp = path.with_suffix(".jpg.part")
    tmp.write_bytes(jpeg)
    tmp.replace(path)  # whole or absent: the console never shows half a picture
    return f"{SNAPSHOTS}/{path.name}"
