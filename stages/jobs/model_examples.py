"""The pictures `vidpipe model teach` learns from and `vidpipe model import --calibrate` calibrates
on, read from folders: images as OpenCV reads them, videos as the label job decodes them (upright,
the same FFmpeg), each frame made into the accelerator tensor as every backend gets it."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from vidpipe.hw.model_build import to_tensor
from vidpipe.hw.model_teach import Example
from vidpipe.pipeline.errors import ConfigError, SourceError, one_line
from vidpipe.stages.sources.files import VIDEO_EXTENSIONS, open_capture
from vidpipe.stages.sources.readers import IMAGE_EXTENSIONS

log = logging.getLogger("vidpipe")


def images_in(folder: Path, limit: int = 200) -> list[np.ndarray]:
    """Up to `limit` BGR images found under `folder` (name order); ConfigError when there is none."""
    if not folder.is_dir():
        raise ConfigError(f"--calibrate {folder}: not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    images = [img for p in paths if (img := cv2.imread(str(p), cv2.IMREAD_COLOR)) is not None]
    if not images:
        raise ConfigError(f"--calibrate {folder}: no readable images ({', '.join(IMAGE_EXTENSIONS)})")
    return images


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """About `count` frames spread evenly over the video (by its frame count; only those decoded
    into pictures, so a long video costs no memory)."""
    cap = open_capture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        wanted = set(np.linspace(0, max(total - 1, 0), count).astype(int).tolist()) if total > 0 else {0}
        frames, index = [], 0
        while index <= max(wanted) and cap.grab():
            if index in wanted and (picture := cap.retrieve()[1]) is not None:
                frames.append(picture)
            index += 1
        return frames
    finally:
        cap.release()


def examples_in(folder: Path, frames_per_video: int = 8) -> list[Example]:
    """One Example per readable image or video in each subfolder (its class) of `folder`; files
    that cannot be read are logged and skipped."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder (expected one subfolder of images or videos per class)")
    examples: list[Example] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in sub.rglob("*") if p.is_file()):
            frames = _read(path, frames_per_video)
            if frames:
                examples.append(Example(sub.name, str(path), np.stack([to_tensor(f) for f in frames])))
    if not examples:
        raise ConfigError(f"{folder}: no images or videos in subfolders (one subfolder per class: "
                          f"{folder}/empty/*.jpg, {folder}/truck/*.mp4, ...)")
    return examples


def _read(path: Path, frames_per_video: int) -> list[np.ndarray]:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: not a readable image, skipped", path)
        return [] if img is None else [img]
    if suffix in VIDEO_EXTENSIONS:
        try:
            return video_frames(path, frames_per_video)
        except SourceError as exc:
            log.warning("%s, skipped", one_line(exc))
    return []
