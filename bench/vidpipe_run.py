"""One vidpipe label run in its own process, timed: `python -m bench.vidpipe_run SPEC.json RESULT.json`.

SPEC holds the job as a config mapping (the YAML structure) and the launcher's monotonic clock
at launch. The run is what `vidpipe label` does (probe, plan, run_graph under the supervisor),
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
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from pipeline.channels import Channel  # noqa: E402
from pipeline.config import from_mapping  # noqa: E402
from pipeline.logs import setup_main_logging, shutdown_main_logging  # noqa: E402
from pipeline.shm import SlotRing  # noqa: E402
from pipeline.supervisor import ProcSpec  # noqa: E402
from stages.config import JobConfig  # noqa: E402
from stages.descriptors import Result, StreamEnd, StreamStart  # noqa: E402
from stages.file_source import run_file_source  # noqa: E402
from stages.graph import plan, run_graph  # noqa: E402
from stages.infer import LabelInfo  # noqa: E402
from stages.label_job import JobReport, probe_inputs  # noqa: E402
from stages.label_outputs import LabelOutputs, LabelOutputsFactory  # noqa: E402


class TimedOutputs:
    """LabelOutputs that also note when each frame was written (sink process)."""

    def __init__(self, inner: LabelOutputs) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.compute: list[float] = []  # the card's compute time per image (s)
        self.latency: list[float] = []  # decode -> written (s)

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        self.inner.write(result, frame, t_sink)
        self.times.append(time.monotonic())
        self.compute.append(result.timings.get("compute", 0.0))
        self.latency.append(time.time() - result.frame.t_capture)

    def drop(self, result: Result) -> None:
        self.inner.drop(result)

    def finish(self, end: StreamEnd | None) -> dict[str, Any]:
        summary = self.inner.finish(end)
        summary["bench_times"] = self.times
        summary["bench_compute"] = self.compute
        summary["bench_latency"] = self.latency
        return summary


class TimedOutputsFactory(LabelOutputsFactory):
    """Picklable, like LabelOutputsFactory."""

    def __call__(self, start: StreamStart, labels: LabelInfo) -> TimedOutputs:  # type: ignore[override]
        return TimedOutputs(super().__call__(start, labels))


def run(spec: dict[str, Any]) -> dict[str, Any]:
    job = from_mapping(JobConfig, spec["job"], source="bench spec")
    report = JobReport()
    infos = probe_inputs(list(job.inputs), report)
    if not infos or report.failed:
        raise SystemExit(f"bench: unreadable inputs: {report.failed}")
    Path(job.output.dir).mkdir(parents=True, exist_ok=True)
    graph = plan(job, max(i.width * i.height * 3 for i in infos))

    def sources(frames: SlotRing, out: Channel) -> list[ProcSpec]:
        return [ProcSpec(f"decode:{i.stream}", run_file_source, (i, frames, out)) for i in infos]

    done: dict[str, dict[str, Any]] = {}

    def on_event(kind: str, stage: str, data: dict[str, Any]) -> None:
        if kind == "stream_done":
            done[data["stream"]] = data
        elif kind == "source_error":
            report.failed[data["stream"]] = data["message"]

    t_graph = time.monotonic()
    run_graph(job, graph, sources, TimedOutputsFactory(job), on_event, setup_main_logging(logging.WARNING),
              logging.WARNING)
    t_end = time.monotonic()
    keys = ("bench_times", "bench_compute", "bench_latency")
    writes = sorted(row for d in done.values() for row in zip(*(d["summary"][k] for k in keys), strict=True))
    return {
        "t_process": T_PROCESS,
        "t_graph": t_graph,
        "t_end": t_end,
        "times": [w[0] for w in writes],
        "compute": [w[1] for w in writes],
        "latency": [w[2] for w in writes],
        "frames": sum(d["frames"] for d in done.values()),
        "errors": {**report.failed, **{k: d["error"] for k, d in done.items() if d["error"]}},
        "plan": {"frame_slots": graph.frame_slots, "frame_bytes": graph.frame_bytes,
                 "tensor_slots": graph.tensor_slots, "workers": graph.workers, "batch": job.backend.max_batch},
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
