"""What `vidpipe --help` and `vidpipe COMMAND --help` say beyond the flags: what runs by default,
examples to copy; and the one-line answer to a mistyped flag (the command's usage, a did-you-mean)."""

from __future__ import annotations

import argparse
import difflib

DESCRIPTION = """\
Streaming video classification. By default the cpu backend runs a real ImageNet-1k classifier
(EfficientNet-Lite0, int8, onnxruntime); --backend alveo runs the ResNet50 dataflow accelerator on
Alveo U250 cards through pynq, alveo-emu the same code on an emulated card, sim the card's timing."""

EXAMPLES = {
    "": """\
examples:
  vidpipe label clip.mp4 videos/ -o results/     label files and folders; open results/index.html
  vidpipe watch incoming/ -o results/            label files as they arrive, until Ctrl-C
  vidpipe live 0                                 camera 0, live view on http://127.0.0.1:8080
  vidpipe init live cam.yaml                     a commented config to edit, then: vidpipe run cam.yaml
  vidpipe devices                                what can run inference here""",
    "label": """\
examples:
  vidpipe label clip.mp4 -o results/                    one file
  vidpipe label videos/ more/*.mkv -o results/ -b sim   folders (searched recursively), the card's timing
  vidpipe label videos/ -o results/ --resume            keep what an earlier run finished, redo the rest
  vidpipe label videos/ -o results/ --no-video          no annotated video (faster)
  vidpipe label /shared/videos -o /shared/out --ray auto   on every host of a Ray cluster""",
    "watch": """\
examples:
  vidpipe watch incoming/ -o results/            each new file once it stops growing, until Ctrl-C
  vidpipe watch incoming/ -o results/ -c job.yaml   with the settings of a config file""",
    "live": """\
examples:
  vidpipe live 0                                 camera 0; the live view on http://127.0.0.1:8080
  vidpipe live rtsp://user:pw@cam/stream clip.mp4 --name door --name demo --loop --record
  vidpipe live 0 --host 0.0.0.0 -p 8080          reachable from the network (a token guards the API)""",
    "run": """\
examples:
  vidpipe run job.yaml                           the job a config file describes (vidpipe init writes one)
  vidpipe run job.yaml other.mp4                 with other inputs""",
    "model": """\
examples:
  vidpipe model                                  build the bundled ImageNet-1k model (once)
  vidpipe model teach photos/ --name bay         photos/empty/*.jpg, photos/truck/*.mp4 ... -> model "bay"
  vidpipe model import net.onnx --labels names.txt --name parts --size 256 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
  vidpipe model list                             the models in the cache, their classes and sizes
  vidpipe label clip.mp4 --model bay             label with your classes""",
    "init": """\
examples:
  vidpipe init                                   vidpipe-label.yaml: every key of a label job, documented
  vidpipe init live cameras.yaml                 a live job's
  vidpipe init watch -                           to stdout""",
}


class Parser(argparse.ArgumentParser):
    """argparse with its examples shown verbatim."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def unknown_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Unknown arguments are the command's error (its usage, not the top-level one), with the
    closest flag of that command when there is one: `--bacth` -> did you mean --batch?"""
    command = _subparser(parser, getattr(args, "command", None)) or parser
    known = [o for action in command._actions for o in action.option_strings]
    first = next((x for x in extra if x.startswith("-")), extra[0])
    close = difflib.get_close_matches(first.split("=")[0], known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return None
