"""The job manifest: what makes a labeling job's outputs exactly once, resumable, and never
written over a file vidpipe did not create.

    OUT/vidpipe-manifest.json = {
      "version": 1,
      "settings": {...every setting that changes results...},
      "videos": {"/abs/input.mp4": {"name": "input", "size": ..., "mtime_ns": ..., "fingerprint": "sha256:...",
                                    "state": "done", "error": "", "frames": 225, "host": "...",
                                    "outputs": {"input.jsonl": "sha256:...", ...}}, ...},
      "job_outputs": ["summary.csv", "summary.json", "index.html", "thumbs/input/seg000.jpg", ...]}

`job_outputs`: the job-level files vidpipe wrote into the folder (the summary and the report,
rewritten by every run): recorded before they are written, so a file of the same name that is
not listed is the user's and is never written over.

It is written atomically (NAME.tmp, fsync, rename, fsync of the folder), so a crash or a power
loss leaves the previous or the next version, never a torn one: at once when inputs are planned
(before any output is made), and for finished videos in groups (GroupCommit: at most every
runtime.manifest_interval_s, and at the end). States:
`pending` (planned or running: redone by --resume), `done` (outputs complete, checksums
recorded), `incomplete` (cut short: outputs finalized but partial), `failed` (the input or its
outputs failed). GNU parallel's --joblog/--resume is the model; unlike it, a finished entry is
verified (input unchanged, same settings, outputs present with their checksums) before it is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.pipeline.digest import checksum
from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.redact import printable

log = logging.getLogger(__name__)

MANIFEST_NAME = "vidpipe-manifest.json"
VERSION = 1
SAMPLE_BYTES = 1 << 20  # the fingerprint reads this much at the start, middle and end of a file


def fingerprint(path: Path, size: int) -> str:
    """A content fingerprint that costs three reads, not the whole file: sha256 of the size and
    of 1 MiB at the start, the middle and the end (a video edited in place changes one of them,
    and its size or mtime almost always)."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))
    return "sha256:" + digest.hexdigest()


@dataclass
class VideoEntry:
    name: str  # the stream name: outputs are OUT/NAME.*
    size: int = 0
    mtime_ns: int = 0
    fingerprint: str = ""
    state: str = "pending"  # pending | done | incomplete | failed
    error: str = ""
    warning: str = ""  # one line: done, with something to say (damaged frames)
    frames: int = 0
    seconds: float = 0.0  # labeling time (first output made -> done)
    host: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # file name -> checksum

    def stat_input(self, path: Path) -> None:
        st = path.stat()
        self.size, self.mtime_ns = st.st_size, st.st_mtime_ns
        self.fingerprint = fingerprint(path, st.st_size)

    def input_change(self, path: Path) -> str:
        """Why `path` is not the input this entry was made from ("" if it is)."""
        try:
            st = path.stat()
        except OSError as exc:
            return f"input unreadable ({exc.strerror})"
        if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns):
            return "input changed (size or modification time)"
        if fingerprint(path, st.st_size) != self.fingerprint:
            return "input changed (content)"
        return ""

    def output_change(self, folder: Path) -> str:
        """Why the recorded outputs are not all there as written ("" if they are)."""
        if not self.outputs:
            return "no outputs recorded"
        for name, digest in self.outputs.items():
            try:
                now = checksum(folder / name)
            except OSError:  # gone, or a folder now: either way not the output it was
                return f"output {printable(name)} is missing"
            if now != digest:
                return f"output {printable(name)} was modified"
        return ""


class Manifest:
    """OUT/vidpipe-manifest.json in memory; `save()` after each change (see the module docstring)."""

    def __init__(self, folder: Path, settings: dict[str, Any], videos: dict[str, VideoEntry] | None = None,
                 job_outputs: list[str] | None = None) -> None:
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        self.settings = settings
        self.videos: dict[str, VideoEntry] = videos or {}
        self.job_outputs: list[str] = job_outputs or []  # folder-relative paths, see the module docstring

    @classmethod
    def load(cls, folder: Path, settings: dict[str, Any]) -> tuple[Manifest, dict[str, Any] | None]:
        """The folder's manifest (a new one if there is none) and the settings it was made with."""
        path = folder / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(folder, settings), None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: unreadable job manifest ({exc}); move it away to start over",
                              key="output.dir") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ConfigError(f"{path}: not a vidpipe {VERSION} job manifest; move it away to start over",
                              key="output.dir")
        fields = {f.name for f in dataclasses.fields(VideoEntry)}
        videos = {path: VideoEntry(**{k: v for k, v in entry.items() if k in fields})
                  for path, entry in data.get("videos", {}).items()}
        job_outputs = [str(n) for n in data.get("job_outputs", []) if isinstance(n, str)]
        return cls(folder, settings, videos, job_outputs), data.get("settings")

    def names(self) -> dict[str, str]:
        """Input path -> the name an earlier run gave it (kept: stable names across reruns)."""
        return {path: entry.name for path, entry in self.videos.items()}

    def owned(self) -> set[str]:
        """Every file name some entry recorded as its output: vidpipe's own files."""
        return {name for entry in self.videos.values() for name in entry.outputs}

    def entry(self, path: str, name: str) -> VideoEntry:
        entry = self.videos.get(path)
        if entry is None or entry.name != name:
            entry = self.videos[path] = VideoEntry(name)
        return entry

    def checksums(self, names: list[str]) -> dict[str, str]:
        """The checksums of the outputs among `names` that exist (the others were not produced)."""
        return {n: checksum(self.folder / n) for n in names if (self.folder / n).is_file()}

    def save(self) -> None:
        self.write(self.dumps())

    def dumps(self) -> str:
        """The file's text: one line per video (readable and diffable), each made by json's C
        encoder (json.dumps with `indent` is pure Python: seconds for 10,000 videos)."""
        head = json.dumps({"version": VERSION, "settings": self.settings, "job_outputs": sorted(set(self.job_outputs))},
                          ensure_ascii=True)
        videos = ",\n".join(f" {json.dumps(path, ensure_ascii=True)}: {json.dumps(vars(entry), ensure_ascii=True)}"
                            for path, entry in sorted(self.videos.items()))
        return f'{head[:-1]}, "videos": {{\n{videos}\n}}}}\n'

    def write(self, text: str) -> None:
        """Atomically: NAME.tmp, fsync, rename, fsync of the folder (see the module docstring)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.folder)


class GroupCommit:
    """Many finished videos' records in one write of the manifest: at most every `interval_s`
    (runtime.manifest_interval_s), by a thread of its own, and at `close()`; 0: at every change.
    A record waits at most `interval_s` (and one write) for the disk, so a crash or a power cut
    loses at most that long of finished videos (--resume labels them again), and a job of many
    short files does not rewrite a file that grows with the job after each one of them.

        with commit.change():      # the job's thread: entries change under the lock
            entry.state = "done"
        with commit.change(now=True): ...   # written before the block returns (a planned entry,
                                             # which must be on disk before its outputs are made)
        commit.close()             # the last write, the thread joined (idempotent)
    """

    def __init__(self, manifest: Manifest, interval_s: float) -> None:
        self.manifest, self.interval_s = manifest, interval_s
        self._cond = threading.Condition()
        self._dirty = self._closed = False
        self._said = ""  # the last write error logged (said once, not every interval)
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def change(self, now: bool = False) -> Iterator[None]:
        with self._cond:
            yield
            self._dirty = True
            if now or self.interval_s <= 0 or self._closed:
                self._write()
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="manifest-commit", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            if self._dirty:
                self._write()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                self._cond.wait_for(lambda: self._dirty or self._closed)
                # the first change since the last write waits out the interval: later ones join it
                self._cond.wait_for(lambda: self._closed, timeout=self.interval_s)
                if self._dirty and not self._closed:
                    self._write()

    def _write(self) -> None:
        """Under the lock: the entries do not change while they are written."""
        try:
            self.manifest.save()
            self._dirty, self._said = False, ""
        except OSError as exc:  # a full disk: the outputs failed too, and are said; retried later
            if exc.strerror != self._said:
                log.error("%s: cannot write the job manifest (%s): --resume will label the videos finished "
                          "since its last write again", self.manifest.path, exc.strerror)
            self._said = exc.strerror or "?"


def _fsync_dir(folder: Path) -> None:
    """The rename itself survives a power loss only once the folder is synced."""
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened or synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def settings_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """One line naming the first result-changing setting that differs ("" if none)."""
    if old is None:
        return ""
    flat_old, flat_new = _flatten(old), _flatten(new)
    for key in sorted(set(flat_old) | set(flat_new)):
        if flat_old.get(key) != flat_new.get(key):
            return f"settings changed ({key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r})"
    return ""


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
