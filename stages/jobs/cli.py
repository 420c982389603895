"""The `vidpipe` command line.

    vidpipe label clip.mp4 more/*.mp4 --out results/        batch labeling
    vidpipe run configs/label-videos.yaml                      any job from a config file
    vidpipe live 0 rtsp://cam/stream                          live classification
    vidpipe devices                                            what can run inference here
    vidpipe users add alice --role admin -o results/          who may sign in to the live page
    vidpipe model                                              build the cpu backend's model
    vidpipe model teach photos/ --name bay                     your own classes (import, teach, list)

User mistakes end as one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidpipe.hw.registry import backend_names
from vidpipe.pipeline.config import replace_path
from vidpipe.pipeline.errors import ConfigError, StageFailed, VidpipeError
from vidpipe.pipeline.logs import enable_stack_dumps, setup_main_logging, shutdown_main_logging
from vidpipe.pipeline.machine import package_version
from vidpipe.stages.config import JobConfig, SourceSettings, load_job, override
from vidpipe.stages.jobs.api import runner, settle_config
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Job
from vidpipe.stages.jobs.cli_help import DESCRIPTION, EXAMPLES, Parser, unknown_flags
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.label import LabelJob, NoInputs
from vidpipe.stages.jobs.model_cli import add_model_parser, run_model
from vidpipe.stages.jobs.users_cli import add_users_parser, run_users

log = logging.getLogger("vidpipe")

# flag dest -> config key path
OVERRIDES = {
    "out": "output.dir",
    "backend": "backend.name",
    "batch": "backend.max_batch",
    "batch_timeout_ms": "backend.batch_timeout_ms",
    "workers": "preprocess.workers",
    "resize": "preprocess.resize",
    "start_method": "runtime.start_method",
    "port": "live.http_port",
    "host": "live.http_host",
    "ray": "cluster.ray_address",
    "model": "backend.cpu.model",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vidpipe", description=DESCRIPTION, epilog=EXAMPLES[""])
    version = package_version("vidpipe", "(not installed)")
    parser.add_argument("--version", action="version", version=f"vidpipe {version}", help="print the version and exit")
    _verbosity(parser, "_main")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    label = sub.add_parser("label", help="label video files and folders", epilog=EXAMPLES["label"])
    label.add_argument("inputs", nargs="+", help="video files or folders")
    run = sub.add_parser("run", help="run a job described by a YAML config", epilog=EXAMPLES["run"])
    run.add_argument("config", type=Path, help="the YAML job config (paths in it are relative to its folder)")
    run.add_argument("inputs", nargs="*", help="replace the config's inputs / live sources")
    live = sub.add_parser("live", help="classify live sources (cameras, streams)", epilog=EXAMPLES["live"])
    live.add_argument(
        "inputs",
        nargs="*",
        help="camera index, /dev/videoN, rtsp://..., http://..., folder, file (default: the config's live.sources)",
    )
    watch = sub.add_parser("watch", help="label video files as they arrive in a folder, exactly once, until Ctrl-C",
                           epilog=EXAMPLES["watch"])
    watch.add_argument("inputs", nargs=1, metavar="FOLDER", help="the folder to watch (and its subfolders)")
    for p in (label, live, watch):
        p.add_argument("-c", "--config", dest="config_file", type=Path, metavar="FILE",
                       help="YAML config (its paths are relative to its folder; flags override it)")
    for p in (label, run, live, watch):
        _job_flags(p)
    for p in (label, run, watch):
        _file_flags(p)
    for p in (live, run):
        _live_flags(p)
    live.add_argument("--loop", action="store_true", help="files and image folders start over at their end")
    live.add_argument("--ray", metavar="ADDRESS",
                      help="run the streams on a Ray cluster's nodes, served from here: auto, HOST:PORT or "
                           "ray://HOST:PORT")
    live.add_argument("--name", action="append", metavar="NAME",
                      help="the stream name of a source, once per source in order (default: from its uri)")
    for p in (label, run):
        p.add_argument("--ray", metavar="ADDRESS",
                       help="label on a Ray cluster: auto (the cluster `ray start` runs here), HOST:PORT or ray://HOST:PORT")
        p.add_argument("--profile", action="store_true",
                       help="after the run: upload, accelerator, download ms per image (as ResNet50-PYNQ --profile)")
        p.add_argument("--resume", action="store_true",
                       help="keep the videos an earlier run into the same --out finished (verified), redo the rest")
    devices = sub.add_parser("devices", help="list accelerators and backends")
    devices.add_argument("-c", "--config", dest="config_file", type=Path, metavar="FILE",
                         help="the backend settings of this config (e.g. its xclbin)")
    devices.add_argument("--json", action="store_true", help="the rows as JSON")
    init = sub.add_parser("init", help="write a commented config file for a job (every key, documented)",
                          epilog=EXAMPLES["init"])
    init.add_argument("kind", nargs="?", choices=["label", "watch", "live"], default="label", help="the job (label)")
    init.add_argument("path", nargs="?", help="where to write it (default vidpipe-KIND.yaml; - for stdout)")
    schema = sub.add_parser("schema", help="print the config's JSON Schema (for editors that check YAML)")
    for command in (label, run, live, watch, devices, init, schema, *add_model_parser(sub)):
        _verbosity(command)
    _verbosity(add_users_parser(sub))
    return parser


def _job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", help="output folder (default results/)")
    p.add_argument("-b", "--backend", help=f"{' | '.join(backend_names())} (default cpu; `vidpipe devices` lists them)")
    p.add_argument("-m", "--model", metavar="NAME",
                   help="the cpu model: a name from `vidpipe model list` (your classes) or a path "
                        "(default: the bundled ImageNet-1k one)")
    p.add_argument("--batch", type=int, help="max images per accelerator call (default: label/watch 128, live 4)")
    p.add_argument("--batch-timeout-ms", type=float, help="wait at most this long to fill a batch (default 5)")
    p.add_argument("--workers", type=int, help="preprocess processes (default: one per core)")
    p.add_argument("--resize", choices=["full", "center-crop"],
                   help="frame to 224x224: full (the whole frame, as ResNet50-PYNQ; default) or center-crop")
    p.add_argument("--start-method", choices=["spawn", "fork", "forkserver"],
                   help=argparse.SUPPRESS)  # how stage processes start: for tests and debugging


def _file_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-video", action="store_true", help="skip the annotated video (the report plays the input)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-file lines on stderr")


def _live_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--port", type=int, help="live view port (default 8080; 0 = any free port, logged at start)")
    p.add_argument("--host", help="live view address (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    p.add_argument("--no-http", action="store_true", help="no live view, MJPEG streams, /status.json or /metrics")
    p.add_argument("--record", action="store_true", help="record each stream, annotated, into --out")
    p.add_argument("--display", action="store_true", help="show a cv2 window (needs a screen)")
    p.add_argument("--serve", action="store_true",
                   help="a service: wait for streams added over the API, even when no source is left")


def _verbosity(p: argparse.ArgumentParser, suffix: str = "") -> None:
    """-v/-q before the subcommand (suffix "_main") and after it: both count."""
    p.add_argument("-v", "--verbose", dest=f"verbose{suffix}", action="count", default=0,
                   help="more log lines (-vv: debug)")
    p.add_argument("-q", "--quiet", dest=f"quiet{suffix}", action="count", default=0,
                   help="fewer log lines (-q: warnings and errors; -qq: errors)")


# flag dest -> (config key, value) when the flag is given
SWITCHES = {
    "no_video": ("output.video", False),
    "no_progress": ("output.progress", False),
    "display": ("live.display", True),
    "no_http": ("live.http", False),
    "record": ("live.record", True),
    "serve": ("live.serve", True),
}
LIVE_ONLY = ("port", "host", "no_http", "record", "display", "serve")  # `vidpipe run` of a label or watch config
FILES_ONLY = ("no_video", "no_progress", "resume")  # `vidpipe run` of a live config


def make_job(args: argparse.Namespace) -> JobConfig:
    source = "command line"
    if args.command == "run":
        job, source = load_job(args.config), str(args.config)
    elif args.config_file is not None:
        job, source = load_job(args.config_file), str(args.config_file)
    else:
        job = JobConfig()
    if args.command == "label" or (args.command == "run" and args.inputs and job.job == "label"):
        job = replace_path(job, "inputs", tuple(args.inputs))
        job = replace_path(job, "job", "label")
    elif args.command == "watch" or (args.command == "run" and args.inputs and job.job == "watch"):
        job = replace_path(job, "inputs", tuple(args.inputs))
        job = replace_path(job, "job", "watch")
    elif args.command == "live" or (args.command == "run" and args.inputs):
        job = replace_path(job, "job", "live")
        if args.inputs:
            job = replace_path(job, "live.sources", tuple(SourceSettings(uri=u) for u in args.inputs))
    flags = {key: getattr(args, dest) for dest, key in OVERRIDES.items() if getattr(args, dest, None) is not None}
    if flags:  # checked as a config file's keys are (--batch 0: auto, with one line)
        job = override(job, _nested(flags), "command line")
    _check_flags_apply(args, job, source)
    for dest, (key, value) in SWITCHES.items():
        if getattr(args, dest, False):
            job = replace_path(job, key, value)
    job = _name_and_loop(job, getattr(args, "name", None) or [], getattr(args, "loop", False))
    return settle_config(job, source)


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """{"backend.max_batch": 8} -> {"backend": {"max_batch": 8}}."""
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _check_flags_apply(args: argparse.Namespace, job: JobConfig, source: str) -> None:
    """`vidpipe run` takes the flags of every job; the ones that do not apply to the config's job are a mistake."""
    wrong = FILES_ONLY if job.job == "live" else LIVE_ONLY
    for dest in wrong:
        value = getattr(args, dest, None)
        if value is not None and value is not False:  # --port 0 is given
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to a {job.job} job ({source})", source=source)


def _name_and_loop(job: JobConfig, names: list[str], loop: bool) -> JobConfig:
    """--name (one per live source, in order) and --loop (every source)."""
    if not names and not loop:
        return job
    sources = job.live.sources
    if len(names) > len(sources):
        raise ConfigError(f"--name given {len(names)} times for {len(sources)} live source(s)")
    named = [replace(s, name=names[i]) if i < len(names) else s for i, s in enumerate(sources)]
    return replace_path(job, "live.sources", tuple(replace(s, loop=True) if loop else s for s in named))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        unknown_flags(parser, args, extra)  # exits 2 with the command's usage
    level = log_level(args)
    enable_stack_dumps()
    log_queue = setup_main_logging(max(logging.DEBUG, min(level, logging.CRITICAL)))
    try:
        return _dispatch(args, log_queue, level)
    except StageFailed as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except NoInputs:
        return EXIT_FAILED  # each input that failed said why, in one line
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except VidpipeError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.warning("interrupted")
        return EXIT_INTERRUPTED
    finally:
        shutdown_main_logging()


def log_level(args: argparse.Namespace) -> int:
    """INFO, 10 lower per -v and 10 higher per -q, before and after the subcommand alike."""
    louder = getattr(args, "verbose", 0) + getattr(args, "verbose_main", 0)
    quieter = getattr(args, "quiet", 0) + getattr(args, "quiet_main", 0)
    return logging.INFO - 10 * louder + 10 * quieter


def _dispatch(args: argparse.Namespace, log_queue: Any, level: int) -> int:
    if args.command == "devices":
        from vidpipe.stages.jobs.devices import print_devices

        return print_devices(args.config_file, args.json)
    if args.command == "users":
        return run_users(args)
    if args.command in ("init", "schema"):
        from vidpipe.stages.jobs.init import write_init, write_schema

        return write_init(args.kind, args.path) if args.command == "init" else write_schema()
    if args.command == "model":
        return run_model(args)
    config = make_job(args)
    job = _job(config, args)
    if config.job == "label":
        assert isinstance(job, LabelJob)
        return runner(config, job)(job, log_queue, level)  # here, or on the Ray cluster
    if config.job == "live" and config.cluster.ray_address:
        from vidpipe.stages.jobs.live_ray import run_live_on_ray

        return run_live_on_ray(config)  # this process serves; the streams run on the cluster's nodes
    return run_job(job, log_queue, level)


def _job(config: JobConfig, args: argparse.Namespace) -> Job:
    if config.job == "live":
        from vidpipe.stages.jobs.live import LiveJob

        return LiveJob(config)
    if config.job == "watch":
        from vidpipe.stages.jobs.watch import WatchJob

        return WatchJob(config)
    return LabelJob(config, resume=getattr(args, "resume", False), profile=getattr(args, "profile", False))


if __name__ == "__main__":
    sys.exit(main())
