"""Stream names: the id of each input in messages, outputs (NAME.jsonl, NAME.mp4) and pages.

Files are named by their stem, made unique within the job (clip, clip-2, ...); live sources by
their configured name, cam0, host_path, or the file stem.
"""

from __future__ import annotations

import re
from pathlib import Path

from stages.config import SourceSettings
from stages.sources.readers import source_kind


def unique_stream_names(paths: list[str]) -> list[str]:
    """File stems, made unique in order (clip, clip-2, ...): no two outputs share a name, even
    when an input's own stem looks like a made-up one (clip, clip, clip-2)."""
    taken: set[str] = set()
    names = []
    for p in paths:
        stem = Path(p).stem or "video"
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        names.append(name)
    return names


def stream_name(source: SourceSettings) -> str:
    """A short, file-name-safe id: the configured name, cam0, host_path, or the file stem."""
    if source.name:
        return source.name
    kind = source_kind(source.uri)
    if kind == "camera":
        return "cam" + re.sub(r"\D", "", source.uri)
    if kind == "url":
        rest = re.sub(r"^[a-zA-Z][\w+.-]*://([^@/]*@)?", "", source.uri).split("?")[0]
        return re.sub(r"[^\w.-]+", "_", rest).strip("_")[:40] or "stream"
    return Path(source.uri.rstrip("/")).stem or "source"
