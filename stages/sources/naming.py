"""Stream names: the id of each input in messages, outputs (NAME.jsonl, NAME.mp4) and pages.

Files are named by their stem, made unique within the job (clip, clip-2, ...); live sources by
their configured name, cam0, host_path, or the file stem.
"""

from __future__ import annotations

import re
from pathlib import Path

from vidpipe.pipeline.redact import printable
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.sources.readers import source_kind

MAX_NAME_BYTES = 120  # + ".segments.json" and a "-NN" suffix stays far below NAME_MAX (255 bytes)


def safe_name(text: str, fallback: str = "video") -> str:
    """`text` as an output file name: one line, no path separators, valid UTF-8, not hidden,
    at most MAX_NAME_BYTES bytes. Any file name the filesystem allows maps to one."""
    text = printable(text).replace("/", "_").replace("\\", "_").strip()
    text = re.sub(r"^\.+", "_", text)  # ".clip" would be a hidden file
    encoded = text.encode("utf-8")[:MAX_NAME_BYTES]
    return encoded.decode("utf-8", "ignore").strip() or fallback


def unique_stream_names(paths: list[str], taken: dict[str, str] | None = None) -> list[str]:
    """One output name per input, unique within the job by construction: the file stem made
    safe (safe_name), then clip, clip-2, ... in order, compared without case (a case-insensitive
    filesystem would merge Clip and clip). `taken` maps inputs to the names an earlier run gave
    them (its manifest): they keep them, so a rerun writes over exactly its own outputs, and no
    new input takes one of them."""
    taken = taken or {}
    used = {name.casefold() for name in taken.values()}  # another input's outputs are never shared
    tried: dict[str, int] = {}  # stem -> the last number tried: many inputs of one stem stay linear
    names = []
    for p in paths:
        if p in taken:
            names.append(taken[p])
            continue
        stem = safe_name(Path(p).stem)
        name, n = stem, tried.get(stem.casefold(), 1)
        if n > 1:
            name = f"{stem}-{n}"
        while name.casefold() in used:
            n += 1
            name = f"{stem}-{n}"
        tried[stem.casefold()] = n
        used.add(name.casefold())
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
    return safe_name(Path(source.uri.rstrip("/")).stem, "source")
