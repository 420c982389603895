"""`vidpipe model`: the bundled model, and models of the user's own classes.

    vidpipe model                                     build the bundled ImageNet-1k model (as `build`)
    vidpipe model import m.onnx --labels l.txt --name parts     an exported classifier, made a vidpipe model
    vidpipe model teach photos/ --name bay            a new last layer from photos/CLASS/*.jpg|*.mp4
    vidpipe model list                                what the cache holds: classes, sizes
    vidpipe label clip.mp4 --model bay                label with it (or backend.cpu.model: bay)

Mistakes (a model with two inputs, 10 labels for 1000 outputs, a corrupt file...) are one line
each and exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from vidpipe.hw.model_cache import ModelInfo, check_name, list_models, models_dir
from vidpipe.hw.model_check import Hints
from vidpipe.stages.jobs.base import EXIT_OK
from vidpipe.stages.jobs.cli_help import EXAMPLES


def add_model_parser(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """The `model` command and its actions; returns every parser (for the shared -v/-q)."""
    model = sub.add_parser("model", help="the bundled model (build), your own classes (import, teach), list",
                           description=__doc__.split("\n\n")[0] if __doc__ else None, epilog=EXAMPLES["model"])
    model.add_argument("--force", action="store_true", help="rebuild the bundled model even if it exists")
    actions = model.add_subparsers(dest="action", metavar="ACTION")
    build = actions.add_parser("build", help="build the bundled ImageNet-1k model (the default action)")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    imp = actions.add_parser("import", help="an exported ONNX image classifier, made a vidpipe model")
    imp.add_argument("onnx", type=Path, metavar="MODEL.onnx", help="float input (N,3,H,W) or (N,H,W,3)")
    imp.add_argument("--labels", type=Path, required=True, help="class names, one a line, in output order")
    imp.add_argument("--size", type=_size, help="its input size, 224 or HxW (default: its input shape, else 224)")
    imp.add_argument("--mean", type=_triple, help="per-channel mean on the 0..1 scale, e.g. 0.485,0.456,0.406 "
                     "(default: the model's metadata, else ImageNet's)")
    imp.add_argument("--std", type=_triple, help="per-channel std, e.g. 0.229,0.224,0.225")
    order = imp.add_mutually_exclusive_group()
    order.add_argument("--rgb", dest="rgb", action="store_true", default=None, help="it takes RGB (the default)")
    order.add_argument("--bgr", dest="rgb", action="store_false", help="it takes BGR (Caffe, OpenCV exports)")
    imp.add_argument("--layout", type=str.upper, choices=["NCHW", "NHWC"], help="default: from its input shape")
    imp.add_argument("--outputs", choices=["auto", "logits", "probs"], default="auto",
                     help="what its output holds (auto: probs when a Softmax makes it)")
    imp.add_argument("--no-quantize", action="store_true", help="keep it float (no int8 quantization)")
    imp.add_argument("--calibrate", type=Path, metavar="FOLDER", help="images to calibrate int8 on "
                     "(default: the bundled photos; your own scenes are better)")
    teach = actions.add_parser("teach", help="learn your classes from FOLDER/CLASS/ images or short videos")
    teach.add_argument("folder", type=Path, metavar="FOLDER", help="one subfolder per class (and optionally other/)")
    teach.add_argument("--frames-per-video", type=int, default=8, help="frames taken from each video (8)")
    for p, default in ((imp, 0.0), (teach, 0.5)):
        p.add_argument("--name", type=_name, required=True, help="its name in the cache (--model NAME)")
        p.add_argument("--unknown-below", type=float, default=default, metavar="SCORE",
                       help=f"a frame whose best score is below this is labeled unknown (default {default:g}: "
                            + ("off)" if not default else "on)"))
        p.add_argument("--force", action="store_true", help="replace a model of that name")
    listing = actions.add_parser("list", help="the models in the cache: classes, sizes")
    listing.add_argument("--json", action="store_true", help="as JSON")
    return [model, build, imp, teach, listing]


def run_model(args: argparse.Namespace) -> int:
    action = args.action or "build"
    if action == "build":
        from vidpipe.hw.model_build import ensure_model
        from vidpipe.hw.paths import default_model_path

        path = ensure_model(default_model_path(), force=args.force)
        print(f"model ready: {path}")
        return EXIT_OK
    if action == "list":
        return _list(args.json)
    t0 = time.perf_counter()
    info = _import(args) if action == "import" else _teach(args)
    where = models_dir() / info.name
    print(f"stored {info.name!r}: {len(info.labels)} classes, {info.precision}, {info.size_bytes / 1e6:.1f} MB, "
          f"in {where} ({time.perf_counter() - t0:.1f} s)")
    print(f"use it: vidpipe label VIDEO --model {info.name}   (or backend.cpu.model: {info.name})")
    return EXIT_OK


def _import(args: argparse.Namespace) -> ModelInfo:
    from vidpipe.hw.model_import import ImportRequest, import_model

    calibration: tuple = ()
    if args.calibrate is not None:
        from vidpipe.stages.jobs.model_examples import images_in

        calibration = tuple(images_in(args.calibrate))
    hints = Hints(args.size, args.mean, args.std, args.rgb, args.layout, args.outputs)
    return import_model(ImportRequest(args.onnx, args.labels, args.name, hints, not args.no_quantize, calibration,
                                      args.unknown_below, args.force))


def _teach(args: argparse.Namespace) -> ModelInfo:
    from vidpipe.hw.model_cache import check_free
    from vidpipe.hw.model_teach import teach
    from vidpipe.stages.jobs.model_examples import examples_in

    check_free(args.name, args.force)  # before reading every example
    examples = examples_in(args.folder, args.frames_per_video)
    info, _ = teach(examples, args.name, str(args.folder.resolve()), args.unknown_below, args.force)
    print(f"confusion matrix: {models_dir() / info.name / 'confusion.png'}")
    return info


def _list(as_json: bool) -> int:
    models = list_models()
    if as_json:
        print(json.dumps([{**asdict(m), "labels": list(m.labels)} for m in models], indent=2))
        return EXIT_OK
    if not models:
        print(f"no models in {models_dir().parent}: `vidpipe model` builds the bundled one")
    for m in models:
        print(m.describe())
    return EXIT_OK


def _name(text: str) -> str:
    try:
        return check_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--name {text!r}: ")) from None


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: 224 or HxW, e.g. 256x320") from None
    if len(parts) not in (1, 2) or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"{text!r}: 224 or HxW, e.g. 256x320")
    return (parts[0], parts[-1])


def _triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: three numbers, e.g. 0.485,0.456,0.406") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: three numbers, e.g. 0.485,0.456,0.406")
    if max(values) > 1:  # given on the 0..255 scale (Caffe's 103.94,116.78,123.68)
        values = tuple(v / 255 for v in values)
    return (values[0], values[1], values[2])
