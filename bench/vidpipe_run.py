"""One vidpipe label run in its own process, timed: `python -m bench.vidpipe_run SPEC.json RESULT.json`.

SPEC holds the job as a config mapping (the YAML structure) and the launcher's monotonic clock
at launch. The run is what `vidpipe label` does (a LabelJob on run_graph under the supervisor),
with the label outputs wrapped to note the monotonic time of every frame written: from these
the launcher gets the startup cost (launch -> first frame written), the steady-state rate and
the total. CLOCK_MONOTONIC is system wide on Linux, so times from the sink compare directly.
"""

from __future__ import annotations

import time

T_PROCESS = time.monotonic()  # before the heavy imports: they are part of the cost

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from vidpipe.pipeline.config import from_mapping  # noqa: E402
from vidpipe.pipeline.events import Event  # noqa: E402
from vidpipe.pipeline.logs import setup_main_logging, shutdown_main_logging  # noqa: E402
from vidpipe.stages.config import JobConfig  # noqa: E402
from vidpipe.stages.descriptors import LabelInfo, Result, StreamEnd, StreamStart  # noqa: E402
from vidpipe.stages.events import OutputSummary, StreamDone  # noqa: E402
from vidpipe.stages.jobs.api import settle_config  # noqa: E402
from vidpipe.stages.jobs.base import GraphPlan  # noqa: E402
from vidpipe.stages.jobs.graph import run_graph  # noqa: E402
from vidpipe.stages.jobs.label import LabelJob  # noqa: E402
from vidpipe.stages.outputs.label import LabelOutputs, LabelOutputsFactory  # noqa: E402
from vidpipe.stages.sink import Lane  # noqa: E402


@dataclass(frozen=True)
class TimedSummary(OutputSummary):
    """The label outputs' summary plus, per frame written: monotonic time, card compute (s) and
    decode -> written latency (s)."""

    times: tuple[float, ...] = ()
    compute: tuple[float, ...] = ()
    latency: tuple[float, ...] = ()


class TimedOutputs:
    """LabelOutputs that also note when each frame was written (sink process)."""

    def __init__(self, inner: LabelOutputs) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.compute: list[float] = []  # the card's compute time per image (s)
        self.latency: list[float] = []  # decode -> written (s)

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> bool:
        handed_on = self.inner.write(result, frame, t_sink)
        self.times.append(time.monotonic())
        self.compute.append(result.timings.get("compute", 0.0))
        self.latency.append(time.time() - result.frame.t_capture)
        return handed_on

    def drop(self, result: Result) -> None:
        self.inner.drop(result)

    @property
    def done_lane(self) -> Lane | None:
        return self.inner.done_lane

    def finish(self, end: StreamEnd | None) -> TimedSummary:
        summary = self.inner.finish(end)
        return TimedSummary(summary.top, summary.segments, tuple(self.times), tuple(self.compute), tuple(self.latency))


class TimedOutputsFactory(LabelOutputsFactory):
    """Picklable, like LabelOutputsFactory."""

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None = None) -> TimedOutputs:  # type: ignore[override]
        return TimedOutputs(super().__call__(start, labels, lane))


class TimedLabelJob:
    """`vidpipe label` with timed outputs, no terminal output: how a new job plugs into the runner
    (the Job protocol), here around a LabelJob's planning, graph and record."""

    def __init__(self, config: JobConfig) -> None:
        self.label = LabelJob(config, table=False)
        self.config = config
        self.report = self.label.report
        self.prepare, self.sources, self.release = self.label.prepare, self.label.sources, self.label.release
        self.close = self.label.close

    def outputs(self, plan: GraphPlan) -> TimedOutputsFactory:
        return TimedOutputsFactory(self.config.output, self.config.postprocess, self.label.graph.encoders)

    def on_event(self, event: Event) -> None:
        if isinstance(event, StreamDone):
            self.report.done[event.stream] = event  # the bench writes no manifest, summary or report
        else:
            self.label.on_event(event)

    def finish(self, interrupted: bool) -> None:
        """Nothing: the bench reads the report."""

    def exit_code(self, interrupted: bool) -> int:
        return self.label.exit_code(interrupted)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    config = settle_config(from_mapping(JobConfig, spec["job"], source="bench spec"), "bench spec")
    job = TimedLabelJob(replace(config, output=replace(config.output, progress=False)))
    shape = job.prepare()
    if job.report.failed:
        raise SystemExit(f"bench: unreadable inputs: {job.report.failed}")
    t_graph = time.monotonic()
    graph = run_graph(job, shape, setup_main_logging(logging.WARNING), logging.WARNING).plan
    t_end = time.monotonic()
    done = job.report.done.values()
    summaries = [d.summary for d in done if isinstance(d.summary, TimedSummary)]
    writes = sorted(row for s in summaries for row in zip(s.times, s.compute, s.latency, strict=True))
    return {
        "t_process": T_PROCESS,
        "t_graph": t_graph,
        "t_end": t_end,
        "times": [w[0] for w in writes],
        "compute": [w[1] for w in writes],
        "latency": [w[2] for w in writes],
        "frames": sum(d.frames for d in done),
        "errors": {**job.report.failed, **{d.stream: d.error for d in done if d.error}},
        "plan": {"frame_slots": graph.frame_slots, "frame_bytes": graph.frame_bytes,
                 "tensor_slots": graph.tensor_slots, "workers": graph.workers, "batch": job.config.backend.max_batch,
                 "encoders": job.label.graph.encoders},
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        result = run(spec)
    finally:
        shutdown_main_logging()
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
