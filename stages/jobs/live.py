"""Live classification: cameras, streams, image folders and real-time files, several at once,
batched together on one accelerator, until Ctrl-C (exit 0), or until every source has ended when
the API is off.

Sources that can never open (a camera whose device is not there, a missing file, a folder without
images, an unknown URL scheme) are one line each at start, and exit 1. At run time, once every
configured source has failed for good and no stream is left, the run ends (exit 1). `live.serve`
(--serve) runs a service instead: it waits for streams added over the API.

Latest policy (bounded latency): each source keeps only its newest frame, preprocess drops
frames older than `live.stale_after_ms`, queues are short; every drop is counted.

A service: streams are added and removed while it runs. The live view's API (stages.web.api, in
the sink process) sends each request over the control link (stages.web.control); this job answers
it on the supervisor's thread (Supervisor.watch) and starts the new source process with
Supervisor.add_process, or sets the removed source's own stop event (its StreamEnd then flows
and its outputs finalize). Crashed sources, preprocess, infer and sink processes are restarted by
the supervisor (live.restart); the job tells the sink, which counts them in /metrics and
/status.json. A restarted sink is renewed (Supervisor.on_restart): a new control link (the dead
sink may have left half a message in the old one), the same HTTP port (port 0 is settled here,
at start), and what the dead sink knew (stages.outputs.live_sink: SinkMemory, SinkResume).

Each run has a run id (stages.outputs.live_records), logged at start, in /status.json, in every
JSONL line and event.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import re
import secrets
import socket
from dataclasses import dataclass, replace
from typing import Any

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import ConfigError, SourceError
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.recovery import RestartPolicy, StageRestarted
from vidpipe.pipeline.redact import mask_url
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor
from vidpipe.stages.config import (
    JobConfig,
    LiveSettings,
    SourceSettings,
)
from vidpipe.stages.events import SourceProblem, StreamDone
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_OK, GraphPlan, GraphShape
from vidpipe.stages.outputs.display import probe_display
from vidpipe.stages.outputs.live import LiveOutputsFactory
from vidpipe.stages.outputs.live_records import RunInfo, build_info
from vidpipe.stages.outputs.live_sink import LiveSinkStage, SinkMemory
from vidpipe.stages.outputs.notify import parse_mqtt_url
from vidpipe.stages.outputs.writers import ensure_output_dir
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.live import LiveSourceParams, LiveSourceStage, SourceGaveUp
from vidpipe.stages.sources.naming import stream_name, unique_stream_names
from vidpipe.stages.sources.readers import never_opens
from vidpipe.stages.web.access import auth_on, loopback, settle_access
from vidpipe.stages.web.control import AddStream, ListStreams, Notice, RemoveStream, Reply, Request
from vidpipe.stages.web.liveview import check_port_free

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_][\w.-]{0,63}")  # names become file names in the output folder


@dataclass
class _Stream:
    name: str
    source: SourceSettings
    stop: SharedFlag  # set to remove the stream
    seq: Any  # multiprocessing RawValue: next frame number (kept across source restarts)
    origin: str  # "config" or "api"
    removing: bool = False


class LiveJob:
    """`vidpipe live`: see the module docstring and stages.jobs.base for the protocol."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config  # settled (stages.jobs.api.settle_config): checked, auto values chosen
        self.live: LiveSettings = config.live  # with the API token filled in by prepare()
        self.failed: dict[str, str] = {}  # stream -> one-line error
        self.streams: dict[str, _Stream] = {}
        self.supervisor: Supervisor | None = None
        self._mp = multiprocessing.get_context(config.runtime.start_method)
        self._frames: SlotRing | None = None
        self._outbox: Channel | None = None
        self._api = False  # the control link is made (the live view's API is on)
        self._control: Any = None  # main end of the control link
        self._sink_end: Any = None
        self.memory = SinkMemory()  # for a restarted sink
        self._configured: set[str] = set()  # the configured streams that started
        self._gave_up: set[str] = set()  # streams whose source failed for good
        self.run = RunInfo()  # its id now; what runs is filled in by outputs(), once the graph is sized

    @property
    def names(self) -> list[str]:
        return list(self.streams)

    def prepare(self) -> GraphShape:
        live = self.config.live
        if not live.sources and not live.serve:
            raise ConfigError("live: no sources (give them on the command line or in live.sources, or --serve to "
                              "wait for streams added over the API)", key="live.sources")
        sources = self._openable(live)
        if live.events.mqtt:
            parse_mqtt_url(live.events.mqtt)
        if live.display:
            probe_display()  # no screen: one line now, not a failed sink later
        if live.http:
            check_port_free(live.http_host, live.http_port)  # busy: one line now, not a failed sink later
            settle_access(live, self.config.output.dir)  # a bad certificate: one line now; the first admin
        if live.http and live.http_port == 0:  # any free port, once: a restarted sink comes back on it
            self.live = replace(self.live, http_port=_free_port(live.http_host))
        self._api = api = live.http and live.api
        if api:
            self.live = replace(self.live, api_token=settle_api_token(live))
            self._link()
        ensure_output_dir(self.config.output.dir)
        log.info("run %s (in every line of %s/STREAM.START.jsonl)", self.run.run_id, self.config.output.dir)
        for name, source in sources:
            log.info("source %s: %s", name, mask_url(source.uri))
            self.streams[name] = self._new(name, source, "config")
        self._configured = set(self.streams)
        r = live.restart
        policy = RestartPolicy(r.max_restarts, r.window_s, r.backoff_initial_s, r.backoff_max_s)
        # a frame waiting in a queue is latency: keep live queues short
        queue_size = min(self.config.runtime.queue_size, max(2, self.config.backend.batch))
        return GraphShape(live.max_width * live.max_height * 3, queue_size, 0, live.stale_after_ms / 1000.0,
                          restart=policy, open_sources=api or live.serve, sink=LiveSinkStage)

    def _openable(self, live: LiveSettings) -> list[tuple[str, SourceSettings]]:
        sources, problems = openable(live)
        self.failed.update(problems)
        return sources

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        self._frames, self._outbox = frames, outbox
        return [self._spec(s) for s in self.streams.values()]

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        # called by the graph once it is sized (run_graph may have lowered the workers to fit /dev/shm)
        infers = tuple(f"infer-{i}" for i in range(plan.infer_procs))
        stages = (*(f"preprocess-{i}" for i in range(plan.workers)), *infers)
        self.run = replace(self.run, build=build_info(self.config.backend.name), stages=stages, infers=infers)
        return self._outputs_factory(self._sink_end)

    def _outputs_factory(self, control: Any) -> LiveOutputsFactory:
        """The sink's outputs, at start and for a sink restarted after a crash (`control`: its end
        of the control link, or None)."""
        return LiveOutputsFactory(self.live, self.config.output, control, self.run)

    def attach(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        supervisor.on_restart("sink", self._renew_sink)
        if self._control is not None:
            supervisor.watch(self._control, self._on_control)

    def on_event(self, event: Event) -> None:
        self.memory.on_event(event)
        if isinstance(event, SourceProblem):
            self.failed[event.stream] = event.message
            log.error("%s", event.message)
            if isinstance(event, SourceGaveUp):
                self._gave_up.add(event.stream)
                self._end_if_none_left(event.stream)
        elif isinstance(event, StageRestarted):
            if event.stage == "sink":
                self._unlink()  # a new one with the new sink (_renew_sink); nothing to read in this one
            self._notify(event)
        elif isinstance(event, StreamDone):
            if (s := self.streams.get(event.stream)) is not None and s.removing:
                del self.streams[event.stream]
                log.info("source %s: removed", event.stream)
            self._end_if_none_left(event.stream)

    def close(self) -> None:
        self._unlink()

    def finish(self, interrupted: bool) -> None:
        """Nothing to sum up: a live job's files are complete as they are written."""

    def exit_code(self, interrupted: bool) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK

    def release(self) -> None:
        """A live job claims nothing beyond its processes."""

    # -- streams at run time (the supervisor's thread) ----------------------------------------
    def _new(self, name: str, source: SourceSettings, origin: str) -> _Stream:
        return _Stream(name, source, SharedFlag(self._mp), self._mp.RawValue("q", 0), origin)

    def _spec(self, s: _Stream) -> ProcSpec:
        assert self._frames is not None and self._outbox is not None
        live = self.config.live
        params = LiveSourceParams(s.name, s.source, self._frames, live.max_width, live.max_height, s.stop, s.seq)
        return ProcSpec(f"source:{s.name}", LiveSourceStage(params, outbox=self._outbox))

    def _on_control(self) -> None:
        request: Request = self._control.recv()  # EOFError: the sink is gone (the supervisor unwatches)
        body = request.body
        if isinstance(body, AddStream):
            code, answer = self.add_stream(body.source)
        elif isinstance(body, RemoveStream):
            code, answer = self.remove_stream(body.name)
        elif isinstance(body, ListStreams):
            code, answer = self.list_streams()
        else:
            code, answer = 400, {"error": f"unknown request {type(body).__name__}"}
        self._control.send(Reply(request.id, code, answer))

    # The REST API (through the control link) and the Python API (LiveRun) call these, on the
    # supervisor's thread; each answers (HTTP status, body) as the REST API does.
    def list_streams(self) -> tuple[int, dict[str, Any]]:
        self._forget_stopped()
        return 200, {"streams": [self._describe(s) for s in self.streams.values()]}

    def add_stream(self, source: SourceSettings, origin: str = "api") -> tuple[int, dict[str, Any]]:
        self._forget_stopped()
        name, where = stream_name(source), "POST /api/streams" if origin == "api" else "add_stream()"
        taken = {n: s.removing for n, s in self.streams.items()}
        if (refused := refuse_stream(source, where, taken, self.live.max_streams)) is not None:
            return refused
        s = self._new(name, source, origin)
        assert self.supervisor is not None
        if not self.supervisor.add_process("sources", self._spec(s)):
            return 503, {"error": "the pipeline is stopping"}
        self.streams[name] = s
        log.info("source %s added: %s", name, mask_url(source.uri))
        return 201, {"stream": self._describe(s)}

    def remove_stream(self, name: str, origin: str = "api") -> tuple[int, dict[str, Any]]:
        self._forget_stopped()
        s = self.streams.get(name)
        if s is None or s.removing:
            where = f"DELETE /api/streams/{name}" if origin == "api" else "remove_stream()"
            return 400, {"error": f"{where}: name: no stream named {name!r}", "key": "name"}
        s.removing = True
        s.stop.set()  # the source ends its stream: StreamEnd flows, the outputs finalize
        log.info("source %s: removing", name)
        return 200, {"stream": self._describe(s)}

    def _forget_stopped(self) -> None:
        """Streams whose source process has ended (removed, failed, file over) free their name."""
        if self.supervisor is not None:
            for name in [n for n in self.streams if not self.supervisor.running(f"source:{n}")]:
                del self.streams[name]

    def _describe(self, s: _Stream) -> dict[str, Any]:
        return {"name": s.name, "uri": mask_url(s.source.uri), "origin": s.origin,
                "removing": s.removing, "realtime": s.source.realtime, "loop": s.source.loop}

    def _notify(self, event: Any) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):  # the sink is gone: nobody to tell
                self._control.send(Notice(event))

    def _end_if_none_left(self, ended: str) -> None:
        """Every configured source failed for good and, `ended` having ended, no other stream runs:
        the run ends (exit 1), unless it serves (live.serve: it waits for streams added over the API)."""
        sup = self.supervisor
        if self.live.serve or sup is None or sup.stop_sources.is_set() or not self._configured <= self._gave_up:
            return
        if any(sup.running(f"source:{n}") for n in self.streams if n != ended and n not in self._gave_up):
            return
        log.info("no source left: the run ends (--serve would wait for streams added over the API)")
        sup.drain()

    # -- the sink and its control link ---------------------------------------------------------
    def _link(self) -> Any:
        """A new control link, watched once the supervisor runs; returns the sink's end."""
        self._unlink()
        self._control, self._sink_end = self._mp.Pipe(duplex=True)
        if self.supervisor is not None:
            self.supervisor.watch(self._control, self._on_control)
        return self._sink_end

    def _unlink(self) -> None:
        if self._control is not None and self.supervisor is not None:
            self.supervisor.unwatch(self._control)
        for conn in (self._control, self._sink_end):
            if conn is not None:
                conn.close()
        self._control = self._sink_end = None

    def _renew_sink(self, spec: ProcSpec) -> ProcSpec:
        """The sink that starts after a crash (Supervisor.on_restart): its own control link and
        outputs factory (same settings, same port), and what the dead sink knew."""
        dead = spec.stage
        assert isinstance(dead, LiveSinkStage)
        outputs = self._outputs_factory(self._link() if self._api else None)
        resume = self.memory.resume({n: mask_url(s.source.uri) for n, s in self.streams.items()})
        return ProcSpec(spec.name, LiveSinkStage(replace(dead.params, outputs=outputs), dead.inbox, resume=resume))


def openable(live: LiveSettings) -> tuple[list[tuple[str, SourceSettings]], dict[str, str]]:
    """The configured sources with their stream names, less those that can never open (name -> one
    line each, logged); SourceError (exit 1) if there are such, unless the run serves."""
    names = unique_stream_names([f"{stream_name(s)}.x" for s in live.sources])
    problems = {name: f"live.sources[{i}]: {why}"
                for i, (name, source) in enumerate(zip(names, live.sources, strict=True))
                if (why := never_opens(source.uri))}
    if problems and not live.serve:
        first = next(s for n, s in zip(names, live.sources, strict=True) if n in problems)
        raise SourceError("\n".join(problems.values()), path=first.uri)
    for line in problems.values():
        log.error("%s", line)
    return [(n, s) for n, s in zip(names, live.sources, strict=True) if n not in problems], problems


def refuse_stream(source: SourceSettings, where: str, taken: dict[str, bool],
                  max_streams: int) -> tuple[int, dict[str, Any]] | None:
    """Why a stream cannot be added, as the API answers it (400, body), or None. `taken`: the
    streams that run (name -> being removed)."""
    name = stream_name(source)
    if not SAFE_NAME.fullmatch(name):
        return 400, {"error": f"{where}: name: {name!r} must be letters, digits, _ . - (it names files)",
                     "key": "name"}
    if name in taken:
        why = "is still being removed" if taken[name] else "already exists"
        return 400, {"error": f"{where}: name: a stream named {name!r} {why}", "key": "name"}
    if why := never_opens(source.uri):
        return 400, {"error": f"{where}: uri: {why}", "key": "uri"}
    if len(taken) >= max_streams:
        return 400, {"error": f"{where}: live.max_streams: {max_streams} streams run already",
                     "key": "live.max_streams"}
    return None


def settle_api_token(live: LiveSettings) -> str:
    """The configured token; off loopback with none and sign-in off, a generated one (printed once)."""
    if live.api_token or loopback(live.http_host) or auth_on(live):
        return live.api_token
    token = secrets.token_urlsafe(24)
    log.warning("live view on %s: POST/DELETE /api/streams need 'Authorization: Bearer %s' "
                "(generated; set live.api_token to choose one)", live.http_host, token)
    return token


def _free_port(host: str) -> int:
    """A port free on `host` now (for live.http_port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
