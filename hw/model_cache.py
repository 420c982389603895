"""The model cache: the bundled model and the ones users import or teach, by name.

    ~/.cache/vidpipe/efficientnet_lite0_int8.onnx     the bundled model (`vidpipe model`)
    ~/.cache/vidpipe/models/NAME/model.onnx           an imported or taught model (input contract inside)
    ~/.cache/vidpipe/models/NAME/info.json            what `vidpipe model list` shows (ModelInfo)

A stored model carries its class names in its own ONNX metadata (LABELS_KEY), so a model file
copied anywhere and named by path (`backend.cpu.model: /x/model.onnx`) still names its classes;
info.json is the listing and the record of where it came from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidpipe.hw.paths import cache_dir, default_model_path
from vidpipe.pipeline.digest import checksum
from vidpipe.pipeline.errors import BackendError, ConfigError

LABELS_KEY = "vidpipe.labels"  # ONNX metadata: the class names as a JSON list, in output order
MODEL_FILE = "model.onnx"
INFO_FILE = "info.json"
UNKNOWN = "unknown"  # the label of a frame no class is sure of (see hw.model_import.add_head_tail)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def models_dir() -> Path:
    return cache_dir() / "models"


def is_model_name(value: str) -> bool:
    """`bay`, `loading-bay_2`: a name in the cache, not a path (no separator, no suffix)."""
    return bool(_NAME.match(value))


def check_name(name: str) -> str:
    if not is_model_name(name):
        raise ConfigError(f"--name {name!r}: letters, digits, - and _ only (at most 64), "
                          "starting with a letter or digit")
    return name


def resolve_model(spec: str) -> Path:
    """`backend.cpu.model` -> the .onnx to load: "" the bundled model; a name the cache's model of
    that name (even beside a folder of that name: `teach bay/ --name bay`, then `--model bay`); a
    folder its model.onnx; else the path itself."""
    if not spec:
        return default_model_path()
    cached = models_dir() / spec / MODEL_FILE
    if is_model_name(spec) and (cached.is_file() or not Path(spec).exists()):
        return cached
    path = Path(spec).expanduser()
    return path / MODEL_FILE if path.is_dir() else path


def missing_model_message(spec: str, path: Path) -> str:
    """The one line for a model that is not there."""
    if spec and is_model_name(spec) and path == models_dir() / spec / MODEL_FILE:
        names = ", ".join(i.name for i in list_models()) or "none yet"
        return (f"model {spec!r} is not in the model cache {models_dir()} (there: {names}); "
                "`vidpipe model import` or `vidpipe model teach` makes one")
    return f"cpu model not found at {path}: build it with `vidpipe model`"


def labels_from_metadata(metadata: dict[str, str]) -> list[str] | None:
    """The class names a stored model carries, or None (the bundled model: ImageNet-1k)."""
    raw = metadata.get(LABELS_KEY)
    if raw is None:
        return None
    names = json.loads(raw)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BackendError(f"model metadata {LABELS_KEY} is not a list of names")
    return names


@dataclass(frozen=True)
class ModelInfo:
    """One cached model, as info.json records it."""

    name: str
    labels: tuple[str, ...]
    kind: str  # imported | taught | bundled
    source: str  # the file or folder it was made from
    precision: str  # int8 | float
    input: str  # what the original model took, e.g. "float NCHW RGB 224x224, mean .., std .."
    fingerprint: str = ""  # sha256 of model.onnx
    size_bytes: int = 0
    created: str = ""
    unknown_below: float = 0.0  # top score below which the label is `unknown` (0: never)
    extra: dict[str, Any] = field(default_factory=dict)  # teach: held-out accuracy per class

    def describe(self) -> str:
        """One line of `vidpipe model list`."""
        shown = ", ".join(self.labels[:6]) + (f", ... ({len(self.labels)} in all)" if len(self.labels) > 6 else "")
        extra = f"  accuracy {self.extra['accuracy']:.1%}" if "accuracy" in self.extra else ""
        return (f"{self.name:<16} {self.kind:<8} {len(self.labels):>4} classes  {self.precision:<5} "
                f"{self.size_bytes / 1e6:6.1f} MB  in: {self.input}{extra}\n{'':<18}classes: {shown}")


def model_path(name: str) -> Path:
    return models_dir() / check_name(name) / MODEL_FILE


def check_free(name: str, force: bool) -> None:
    """Before any work: a name in use is refused unless `force`."""
    if (models_dir() / check_name(name)).exists() and not force:
        raise ConfigError(f"model {name!r} exists in {models_dir()}: another --name, or --force to replace it")


def store(name: str, built: Path, info: ModelInfo, extras: tuple[Path, ...] = ()) -> ModelInfo:
    """Moves the finished model file `built` (and `extras`, e.g. teach's confusion.png) into the
    cache as NAME, replacing one of that name, with its info.json: a folder made beside and
    renamed into place, so a reader never sees half."""
    folder = models_dir() / check_name(name)
    staging = models_dir() / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        os.replace(built, staging / MODEL_FILE)
        final = ModelInfo(**{**asdict(info), "labels": tuple(info.labels), "name": name,
                             "fingerprint": checksum(staging / MODEL_FILE),
                             "size_bytes": (staging / MODEL_FILE).stat().st_size})
        (staging / INFO_FILE).write_text(json.dumps(asdict(final), indent=2) + "\n", encoding="utf-8")
        for extra in extras:
            os.replace(extra, staging / extra.name)
        old = folder.with_name(f".{name}.{os.getpid()}.old")
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


@contextmanager
def staging_dir(name: str) -> Iterator[Path]:
    """A scratch folder in the cache for building model NAME, gone afterwards (whatever happens)."""
    staging = models_dir() / f".{check_name(name)}.{os.getpid()}.build"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_info(folder: Path) -> ModelInfo | None:
    try:
        raw = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        raw["labels"] = tuple(raw["labels"])
        return ModelInfo(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def list_models() -> list[ModelInfo]:
    """The cached models (the bundled one first when built), by name."""
    rows = []
    bundled = default_model_path()
    if bundled.is_file():
        rows.append(ModelInfo("(bundled)", tuple(_imagenet()), "bundled", "vidpipe model",
                              "int8", "EfficientNet-Lite0 224x224", size_bytes=bundled.stat().st_size))
    folders = sorted(models_dir().iterdir()) if models_dir().is_dir() else []
    rows.extend(info for f in folders if not f.name.startswith(".") and (info := read_info(f)) is not None)
    return rows


def _imagenet() -> list[str]:
    from vidpipe.hw.imagenet import class_names

    return class_names()
