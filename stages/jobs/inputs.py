"""Which inputs a labeling job runs, under which names, and which it keeps from an earlier run.

    plan = plan_inputs(config, manifest, resume, report)
    plan.run    -> VideoInfos to label (their manifest entries are `pending` and saved)
    plan.kept   -> finished entries kept by --resume (verified: same input, settings, outputs)

The rules that keep a user's files safe: outputs never land on an input (a ConfigError: exit 2
before anything runs), a file in the output folder that vidpipe did not create is never written
over (that video fails in one line, the others run), folder scans skip vidpipe's own outputs, and
names stay the same across reruns (the manifest remembers them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidpipe.pipeline.errors import ConfigError, SourceError
from vidpipe.pipeline.redact import printable
from vidpipe.stages.config import JobConfig
from vidpipe.stages.jobs.manifest import MANIFEST_NAME, Manifest, VideoEntry, settings_change
from vidpipe.stages.outputs.frame_outputs import known_suffixes
from vidpipe.stages.outputs.label import output_names
from vidpipe.stages.outputs.writers import PART_SUFFIX
from vidpipe.stages.sources.files import VideoInfo, find_videos, probe, real_path
from vidpipe.stages.sources.naming import unique_stream_names

log = logging.getLogger(__name__)


class FailureLog(Protocol):
    def fail(self, path: str, message: str) -> None: ...


@dataclass
class InputPlan:
    run: list[VideoInfo] = field(default_factory=list)
    kept: list[tuple[str, VideoEntry]] = field(default_factory=list)  # input path -> its entry
    again: dict[str, str] = field(default_factory=dict)  # input path -> why a done video runs again


def plan_inputs(config: JobConfig, manifest: Manifest, previous: dict[str, Any] | None, resume: bool,
                failures: FailureLog, save: bool = True) -> InputPlan:
    """See the module docstring. `previous`: the settings the manifest was written with; `save`:
    the manifest is saved at the end (else the caller saves it, once the folder is its)."""
    out = manifest.folder
    paths, errors = find_videos(list(config.inputs), skip=vidpipe_outputs())
    for error in errors:
        failures.fail(error.path, str(error))
    keys = [os.path.abspath(p) for p in paths]
    names = unique_stream_names(keys, taken=manifest.names())
    _refuse_outputs_on_inputs(config, out, keys, names)
    owned = _owned_names(manifest)
    changed = settings_change(previous, manifest.settings)
    plan = InputPlan()
    for path, key, name in zip(paths, keys, names, strict=True):
        entry = manifest.videos.get(key)
        if resume and entry is not None and entry.state == "done":
            why = changed or entry.input_change(Path(path)) or entry.output_change(out)
            if not why:
                plan.kept.append((key, entry))
                continue
            plan.again[path] = why
        if foreign := _foreign_file(out, name, config, owned):
            failures.fail(path, f"{printable(str(out / foreign))} exists and was not written by vidpipe: "
                                "not overwriting it (move it, or choose another --out)")
            continue
        try:
            info = probe(path, name)
        except SourceError as exc:
            failures.fail(path, str(exc))
            if entry is not None:
                entry.state, entry.error = "failed", str(exc)
            continue
        entry = manifest.entry(key, name)
        entry.state, entry.error, entry.frames = "pending", "", 0
        entry.stat_input(Path(path))
        remove_parts(out, name)
        plan.run.append(info)
    if save:
        save_manifest(manifest)
    return plan


def save_manifest(manifest: Manifest) -> None:
    try:
        manifest.save()
    except OSError as exc:
        raise SourceError(f"{printable(str(manifest.path))}: cannot write the job manifest ({exc.strerror})",
                          path=str(manifest.path)) from None


def vidpipe_outputs() -> Callable[[Path], bool]:
    """A folder scan's filter: files that the manifest beside them records as vidpipe's outputs
    (this job's output folder, or an earlier job's, inside an input folder). The manifest is
    written before any output, so even a killed run's outputs are known."""
    owned: dict[Path, set[str]] = {}  # by folder as given: resolved once each, not once per file

    def skip(path: Path) -> bool:
        folder = path.parent
        if folder not in owned:
            owned[folder] = _manifest_outputs(folder.resolve() / MANIFEST_NAME)
        return path.name in owned[folder]

    return skip


def _manifest_outputs(path: Path) -> set[str]:
    try:
        videos = json.loads(path.read_text(encoding="utf-8")).get("videos", {})
        suffixes = known_suffixes()
        return {f"{v['name']}{s}" for v in videos.values() for s in suffixes}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return set()


def _refuse_outputs_on_inputs(config: JobConfig, out: Path, keys: list[str], names: list[str]) -> None:
    folders: dict[str, str] = {}
    inputs = {real_path(k, folders) for k in keys}
    real_out = os.path.realpath(out)
    # an output is a plain name in OUT: it lands on an input there, or on one a link of OUT points to
    here = {os.path.basename(i) for i in inputs if os.path.dirname(i) == real_out}
    links = {entry.name for entry in os.scandir(out) if entry.is_symlink()} if out.is_dir() else set()
    for name in names:
        for output in output_names(name, config.output):
            if output in here or (output in links and os.path.realpath(out / output) in inputs):
                raise ConfigError(
                    f"output.dir: {printable(str(out / output))} would replace the input of the same name: "
                    "choose another --out", key="output.dir")


def _owned_names(manifest: Manifest) -> set[str]:
    """vidpipe's own files in the output folder: every output (and .part) an entry may have."""
    names = manifest.owned()
    suffixes = known_suffixes()
    names |= {f"{e.name}{s}" for e in manifest.videos.values() for s in suffixes}
    return names | {n + PART_SUFFIX for n in names}


def _foreign_file(out: Path, name: str, config: JobConfig, owned: set[str]) -> str:
    """The first file this video would write over that vidpipe did not create ("" if none)."""
    for output in output_names(name, config.output):
        for candidate in (output, output + PART_SUFFIX):
            if candidate not in owned and os.path.lexists(out / candidate):
                return candidate
    return ""


def remove_parts(out: Path, name: str) -> None:
    """Half-written outputs of this video (a run killed outright, a sink that died): never left
    to be taken for output."""
    for suffix in known_suffixes():
        part = out / f"{name}{suffix}{PART_SUFFIX}"
        if part.exists():
            log.warning("removing the unfinished %s", printable(str(part)))
            part.unlink(missing_ok=True)
