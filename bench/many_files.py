"""Many short files: what a job pays per file, side by side with one long file, in one run.

* short clips against one long clip of the same frames (320x180, sim, JSONL, the job's batch):
  the time of the many against the one (target: within 1.3x);
* a library of tiny clips (10 frames at 64x64): the whole job's wall time (target: under 60 s for
  1500 on 2 cores);
* `vidpipe label --resume` over a folder whose videos are all done (target: under 10 s for
  10,000): planning, verifying and the report, with nothing to label. The done folder is made by
  labeling one clip, then giving each of the N inputs (hard links to it) that clip's outputs and
  thumbnails (hard links) and manifest entry under its own name: what a real run would have left.

Times are launch -> exit of a fresh interpreter (bench.runner), nothing hidden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.inputs import ClipSpec, ensure_clip
from bench.runner import REPO, VidpipeRun, run_vidpipe
from bench.scaling import stream_links

JOB = {"backend": {"max_batch": "auto"}}  # sim, JSONL only (bench.runner.BASE_JOB), the job's own batch
LONG_TARGET = 1.3  # many short clips / one long clip of the same frames
LIBRARY_TARGET_S = 60.0
RESUME_TARGET_S = 10.0


@dataclass(frozen=True)
class Sizes:
    clips: int = 60
    clip_frames: int = 30
    library: int = 1500
    library_frames: int = 10
    done: int = 10_000


QUICK_SIZES = Sizes(clips=4, library=20, done=100)  # the smoke test runs every bench in 110 s


@dataclass(frozen=True)
class ManyFilesResult:
    sizes: Sizes
    long: VidpipeRun  # one clip of clips x clip_frames frames
    short: VidpipeRun  # `clips` clips of clip_frames frames
    library: VidpipeRun  # `library` clips of library_frames frames at 64x64
    resume_s: float  # `vidpipe label --resume` over `done` done videos
    resume_made_s: float  # making the done folder (not part of the target)

    @property
    def ratio(self) -> float:
        return self.short.total_s / self.long.total_s

    def to_json(self) -> dict[str, Any]:
        return {"sizes": asdict(self.sizes), "long": self.long.to_json(), "short": self.short.to_json(),
                "library": self.library.to_json(), "resume_s": self.resume_s, "resume_made_s": self.resume_made_s,
                "ratio": self.ratio}


def run(workdir: Path, quick: bool, inputs: Path | None = None) -> ManyFilesResult:
    sizes = QUICK_SIZES if quick else Sizes()
    long_clip = ensure_clip(ClipSpec(320, 180, sizes.clips * sizes.clip_frames), inputs)
    short_clip = ensure_clip(ClipSpec(320, 180, sizes.clip_frames), inputs)
    tiny = ensure_clip(ClipSpec(64, 64, sizes.library_frames), inputs)
    print(f"many files: 1 x {sizes.clips * sizes.clip_frames} frames vs {sizes.clips} x {sizes.clip_frames} ...",
          flush=True)
    long = run_vidpipe("1 long clip", [long_clip], JOB, workdir)
    short = run_vidpipe(f"{sizes.clips} short clips", [_folder(short_clip, sizes.clips, workdir, "short")], JOB,
                        workdir)
    print(f"many files: {sizes.library} clips of {sizes.library_frames} frames at 64x64 ...", flush=True)
    library = run_vidpipe(f"{sizes.library} tiny clips", [_folder(tiny, sizes.library, workdir, "tiny")], JOB,
                          workdir, timeout_s=3600)  # a process per file took 360 s
    print(f"many files: --resume over {sizes.done} done videos ...", flush=True)
    t0 = time.monotonic()
    folder, out = done_folder(tiny, sizes.done, workdir)
    made = time.monotonic() - t0
    return ManyFilesResult(sizes, long, short, library, time_resume(folder, out), made)


def _folder(clip: Path, count: int, workdir: Path, name: str) -> Path:
    """A folder of `count` hard links to `clip` (the job is given the folder, as a user would)."""
    stream_links(clip, count, workdir, name)
    return workdir / name


def _label(inputs: list[str], out: Path, *extra: str) -> float:
    """`vidpipe label` in a fresh interpreter (sim, defaults otherwise); its wall time."""
    cmd = [sys.executable, "-m", "vidpipe", "label", *inputs, "--out", str(out), "--backend", "sim",
           "--no-progress", "-q", *extra]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def done_folder(clip: Path, count: int, workdir: Path) -> tuple[Path, Path]:
    """(inputs folder, output folder) where each of `count` inputs is done: see the module docstring."""
    seed_out, out = workdir / "done-seed", workdir / "done-out"
    _label([str(clip)], seed_out)
    folder = workdir / "done-in"
    replicate_done(seed_out, stream_links(clip, count, workdir, folder.name), out)
    return folder, out


def replicate_done(seed_out: Path, inputs: list[Path], out: Path) -> None:
    """`out` as if each of `inputs` (copies or links of the one video labeled into `seed_out`) had
    been labeled there: the seed's outputs and thumbnails linked under each input's name, a
    manifest entry each."""
    manifest = json.loads((seed_out / "vidpipe-manifest.json").read_text())
    entry = next(iter(manifest["videos"].values()))
    seed = entry["name"]
    thumbs = [n.split("/")[-1] for n in manifest["job_outputs"] if n.startswith(f"thumbs/{seed}/")]
    out.mkdir()
    videos, job_outputs = {}, []
    for path in inputs:
        name = path.stem
        outputs = {}
        for output, digest in entry["outputs"].items():
            mine = name + output.removeprefix(seed)
            os.link(seed_out / output, out / mine)
            outputs[mine] = digest
        videos[str(path.absolute())] = {**entry, "name": name, "outputs": outputs}
        (out / "thumbs" / name).mkdir(parents=True, exist_ok=True)
        for thumb in thumbs:
            os.link(seed_out / "thumbs" / seed / thumb, out / "thumbs" / name / thumb)
            job_outputs.append(f"thumbs/{name}/{thumb}")
    manifest["videos"], manifest["job_outputs"] = videos, job_outputs
    (out / "vidpipe-manifest.json").write_text(json.dumps(manifest))


def time_resume(folder: Path, out: Path) -> float:
    return _label([str(folder)], out, "--resume")


def table(r: ManyFilesResult) -> str:
    from bench.report import table as text_table

    s = r.sizes
    rows = [
        [f"1 clip, {s.clips * s.clip_frames} frames (320x180)", f"{r.long.total_s:.2f}", f"{r.long.total_fps:,.0f}",
         f"{r.long.startup_s:.2f}"],
        [f"{s.clips} clips x {s.clip_frames} frames", f"{r.short.total_s:.2f}", f"{r.short.total_fps:,.0f}",
         f"{r.short.startup_s:.2f}"],
        [f"{s.library} clips x {s.library_frames} frames (64x64)", f"{r.library.total_s:.2f}",
         f"{r.library.total_fps:,.0f}", f"{r.library.startup_s:.2f}"],
        [f"--resume, {s.done:,} done videos", f"{r.resume_s:.2f}", "-", "-"],
    ]
    return ("Many files (sim, JSONL, the job's batch; launch -> exit)\n"
            + text_table(["job", "total s", "fps", "first frame s"], rows)
            + f"\nmany short / one long = {r.ratio:.2f}x; the done folder took {r.resume_made_s:.1f} s to make")


def targets(r: ManyFilesResult) -> list[tuple[str, str, str]]:
    s = r.sizes
    return [
        (f"{s.clips} clips x {s.clip_frames} frames within {LONG_TARGET}x of 1 clip of {s.clips * s.clip_frames}",
         f"{r.short.total_s:.2f} vs {r.long.total_s:.2f} s = {r.ratio:.2f}x", _met(r.ratio <= LONG_TARGET)),
        (f"{s.library} clips of {s.library_frames} frames at 64x64 in < {LIBRARY_TARGET_S:.0f} s",
         f"{r.library.total_s:.1f} s ({r.library.total_fps:,.0f} fps)", _met(r.library.total_s < LIBRARY_TARGET_S)),
        (f"--resume with {s.done:,} done videos, nothing to do, in < {RESUME_TARGET_S:.0f} s", f"{r.resume_s:.2f} s",
         _met(r.resume_s < RESUME_TARGET_S)),
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
