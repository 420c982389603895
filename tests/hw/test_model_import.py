"""`vidpipe model import`: exported classifiers the tests make themselves, imported into a model
cache of their own, run through `vidpipe label` and compared frame by frame with onnxruntime run
directly on the same frames with the same preprocessing; bad models: one line each, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.hw.onnx_models import exported_efficientnet, exported_input, run_directly, tiny_input, tiny_net
from tests.media import write_video
from vidpipe.hw.cpu import CpuModel
from vidpipe.hw.imagenet import class_names
from vidpipe.hw.model_build import photos, to_tensor
from vidpipe.hw.model_cache import list_models, models_dir, resolve_model
from vidpipe.hw.model_check import Hints
from vidpipe.hw.model_import import ImportRequest, import_model
from vidpipe.stages.config import load_job
from vidpipe.stages.jobs.cli import main

pytestmark = pytest.mark.timeout(300)
MINE = [f"mine-{n}" for n in class_names()]  # the exported model's own names: every output must show them


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("exported")
    (folder / "labels.txt").write_text("\n".join(MINE) + "\n")
    return exported_efficientnet(folder / "effnet.onnx"), folder / "labels.txt"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = photos()
    scenes = [p["chelsea"], p["coffee"], p["astronaut"], p["rocket"]]
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=32, width=320, height=240, scenes=scenes)


def _label(clip: Path, out: Path, *flags: str) -> list[dict]:
    assert main(["label", str(clip), "-o", str(out), "--no-progress", "--batch", "8", *flags]) == 0
    return [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]


def _frames(clip: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    return frames


def test_imported_model_labels_every_frame_as_onnxruntime_does(cache: Path, exported: tuple[Path, Path],
                                                               clip: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    model, labels = exported
    assert main(["model", "import", str(model), "--labels", str(labels), "--name", "effnet", "--no-quantize"]) == 0
    said = capsys.readouterr().out
    assert "input float NCHW RGB 224x224" in said and "mean: metadata" in said and "stored 'effnet'" in said
    out = tmp_path / "out"
    rows = _label(clip, out, "--model", "effnet")
    frames = _frames(clip)
    assert len(rows) == len(frames) == 32
    for row, frame in zip(rows, frames, strict=True):  # frame by frame: the same top-5 and scores
        direct = run_directly(model, exported_input(frame))[0]
        probs = np.exp(direct - direct.max()) / np.exp(direct - direct.max()).sum()
        top = np.argsort(-probs)[:5]
        assert row["top5"] == top.tolist(), row["frame"]
        assert row["names"] == [MINE[i] for i in top]
        assert np.allclose(row["scores"], probs[top], atol=2e-4)
    # the names reach every output: segments, subtitles, the report
    segments = json.loads((out / "clip.segments.json").read_text())["segments"]
    assert segments and all(s["name"].startswith("mine-") for s in segments)
    assert "mine-" in (out / "clip.vtt").read_text() and "mine-" in (out / "index.html").read_text()


@pytest.mark.slow
def test_resume_relabels_with_another_model(cache: Path, exported: tuple[Path, Path], clip: Path,
                                            tmp_path: Path) -> None:
    """The model is in the manifest's settings fingerprint: --resume with another one labels again."""
    if not resolve_model("effnet").is_file():
        model, labels = exported
        assert main(["model", "import", str(model), "--labels", str(labels), "--name", "effnet", "--no-quantize"]) == 0
    out = tmp_path / "out"
    assert _label(clip, out)[0]["names"][0] in class_names()
    assert _label(clip, out, "--resume")[0]["names"][0] in class_names()  # kept
    assert _label(clip, out, "--resume", "--model", "effnet")[0]["names"][0].startswith("mine-")


@pytest.mark.parametrize(("layout", "metadata", "flags", "expect", "opset"), [
    ("NHWC", {}, Hints(size=(64, 64), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), rgb=False),
     ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), False), 17),
    ("NCHW", {"Image.BitmapPixelFormat": "Bgr8", "Image.NominalPixelRange": "Normalized_1_1"}, Hints(),
     ((0.5,) * 3, (0.5,) * 3, False), 17),
    ("NCHW", {"mean": "0.485,0.456,0.406", "std": "[0.229, 0.224, 0.225]"}, Hints(),
     ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True), 11),  # an old opset: converted to 13
])
def test_layout_size_channels_and_normalization_from_flags_or_metadata(
        cache: Path, tmp_path: Path, layout: str, metadata: dict, flags: Hints, expect: tuple, opset: int) -> None:
    path = tiny_net(tmp_path / "tiny.onnx", layout=layout, size=64, metadata=metadata, opset=opset)
    (tmp_path / "l.txt").write_text("a\nb\nc\nd\n")
    info = import_model(ImportRequest(path, tmp_path / "l.txt", "tiny", flags, quantize=False, force=True),
                        say=lambda line: None)
    assert info.labels == ("a", "b", "c", "d") and f"{layout} {'RGB' if expect[2] else 'BGR'} 64x64" in info.input
    model = CpuModel(resolve_model("tiny"))
    images = list(photos().values())[:6]
    mine = model.probs(np.stack([to_tensor(img) for img in images]))
    for got, img in zip(mine, images, strict=True):
        direct = run_directly(path, tiny_input(img, 64, expect[0], expect[1], expect[2], layout))[0]
        assert np.allclose(got, direct, atol=3e-3), (got, direct)  # the resize: ORT's vs OpenCV's rounding


@pytest.mark.slow
def test_int8_keeps_the_float_top1(cache: Path, exported: tuple[Path, Path]) -> None:
    lines: list[str] = []
    info = import_model(ImportRequest(*exported, "effnet8", force=True), say=lines.append)
    assert info.precision == "int8" and info.extra["int8_top1_agreement"] >= 0.85, lines
    print(lines, info.extra)
    tensors = np.stack([to_tensor(img) for img in photos().values()])
    ids, _ = CpuModel(resolve_model("effnet8")).classify(tensors)
    bundled, _ = CpuModel().classify(tensors)
    assert (ids[:, 0] == bundled[:, 0]).sum() >= len(tensors) - 2  # the same network, quantized the same way


def _bad(folder: Path, kind: str) -> tuple[list[str], int]:
    """argv for a bad import of `kind`, and how many lines it must say."""
    labels = folder / "four.txt"
    labels.write_text("a\nb\nc\nd\n")
    if kind == "two inputs":
        return [str(tiny_net(folder / "two.onnx", inputs=2)), "--labels", str(labels)], 1
    if kind == "10 labels for 1000 outputs":
        (folder / "ten.txt").write_text("\n".join(f"c{i}" for i in range(10)))
        return [str(exported_efficientnet(folder / "e.onnx")), "--labels", str(folder / "ten.txt")], 1
    if kind == "corrupt file":
        good = tiny_net(folder / "good.onnx").read_bytes()
        (folder / "corrupt.onnx").write_bytes(good[: len(good) // 2])
        return [str(folder / "corrupt.onnx"), "--labels", str(labels)], 1
    if kind == "wrong rank":
        return [str(tiny_net(folder / "rank3.onnx", rank=3)), "--labels", str(labels)], 1
    if kind == "an opset onnxruntime cannot run":
        return [str(tiny_net(folder / "o99.onnx", opset=99)), "--labels", str(labels)], 1
    (folder / "three.txt").write_text("a\nb\nc\n")  # two problems at once: two lines
    return [str(tiny_net(folder / "two.onnx", inputs=2)), "--labels", str(folder / "three.txt")], 2


@pytest.mark.parametrize("kind", ["two inputs", "10 labels for 1000 outputs", "corrupt file", "wrong rank",
                                  "an opset onnxruntime cannot run", "two problems"])
def test_bad_models_are_one_line_each_exit_2_nothing_written(cache: Path, tmp_path: Path, kind: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv, count = _bad(tmp_path, kind)
    before = sorted(p.name for p in models_dir().iterdir()) if models_dir().is_dir() else []
    assert main(["model", "import", *argv, "--name", "bad"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    print("\n".join(err))
    assert len(err) == count and "Traceback" not in "\n".join(err)
    words = {"two inputs": "2 inputs (image, extra0)", "10 labels for 1000 outputs": "10 labels for the 1000 outputs",
             "corrupt file": "not a valid ONNX model", "wrong rank": "has rank 3",
             "an opset onnxruntime cannot run": "opset 99 is not one onnxruntime", "two problems": "2 inputs"}
    assert words[kind] in err[0]
    assert (sorted(p.name for p in models_dir().iterdir()) if models_dir().is_dir() else []) == before


def test_list_names_and_config(cache: Path, exported: tuple[Path, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tiny_net(tmp_path / "t.onnx")
    (tmp_path / "l.txt").write_text("a\nb\nc\nd\n")
    assert main(["model", "import", str(tiny), "--labels", str(tmp_path / "l.txt"), "--name", "listed",
                 "--unknown-below", "0.3"]) == 0
    assert main(["model", "import", str(tiny), "--labels", str(tmp_path / "l.txt"), "--name", "listed"]) == 2
    assert "exists" in capsys.readouterr().err  # never replaced without --force
    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "(bundled)" in listing and "listed" in listing and "5 classes" in listing
    assert "a, b, c, d, unknown" in listing
    assert main(["model", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["listed"]["labels"][-1] == "unknown" and rows["listed"]["fingerprint"].startswith("sha256:")
    # a config names it (not a path beside the config), --model overrides; a missing name is one line
    cfg = tmp_path / "job.yaml"
    cfg.write_text("backend:\n  cpu:\n    model: listed\n")
    assert load_job(cfg).backend.cpu.model == "listed"
    assert {m.name for m in list_models()} >= {"listed", "(bundled)"}
    assert main(["label", str(tmp_path / "none.mp4"), "--model", "nosuch", "-o", str(tmp_path / "o")]) == 1
    assert "model 'nosuch' is not in the model cache" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
