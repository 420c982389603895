"""Transport: what it costs to hand one frame to another process.

* slot hand-off (vidpipe): the pixels are already in a pipeline.shm.SlotRing slot (the decoder
  writes there); a descriptor goes through a pipeline.channels.Channel; the consumer maps the
  slot (no copy) and releases it;
* slot + copy in: the same when the producer has the frame in its own memory first (a live
  source copies the captured frame into the slot);
* multiprocessing.Queue: the frame array itself is put (pickled, piped, unpickled).

Between two real processes (spawn), for a 1080p BGR frame and a 224x224x3 int8 tensor. Two
numbers each: one-way latency of a single frame (the consumer acknowledges before the next is
sent: no queueing), median over the sends; and the streamed cost per frame (many frames back to
back through a bounded queue: wall time / frames, i.e. the throughput cost).
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from dataclasses import asdict, dataclass
from multiprocessing.context import SpawnContext
from typing import Any

import numpy as np

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.shm import SlotRing

SHAPES: dict[str, tuple[tuple[int, ...], Any]] = {
    "1080p BGR frame": ((1080, 1920, 3), np.uint8),
    "224x224x3 int8 tensor": ((224, 224, 3), np.int8),
}
METHODS = ("slot hand-off", "slot + copy in", "multiprocessing.Queue")


@dataclass(frozen=True)
class TransportResult:
    payload: str
    method: str
    latency_us: float  # one frame, no queueing: median one-way
    streamed_us: float  # per frame, back to back
    frames: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _consumer(method: str, shape: tuple[int, ...], dtype: Any, inbox: Any, acks: Any, ring: SlotRing | None) -> None:
    """Receives until None; acknowledges each item with its one-way latency when asked."""
    while True:
        item = inbox.get()
        if item is None:
            return
        t_sent, ack, payload = item
        if ring is not None:
            view = ring.view(payload, shape, dtype)  # map the slot: no copy
            _ = view[0, 0, 0]
            ring.release(payload)
        else:
            _ = payload[0, 0, 0]
        if ack:
            acks.put(time.perf_counter() - t_sent)


def _send(method: str, frame: np.ndarray, inbox: Any, ring: SlotRing | None, ack: bool) -> None:
    if ring is None:
        inbox.put((time.perf_counter(), ack, frame))
        return
    t0 = time.perf_counter()
    slot = ring.acquire(timeout=5.0)
    assert slot is not None
    if method == "slot + copy in":
        ring.view(slot, frame.shape, frame.dtype)[:] = frame
    inbox.put((t0, ack, slot))


def measure(ctx: SpawnContext, payload: str, method: str, frames: int) -> TransportResult:
    shape, dtype = SHAPES[payload]
    frame = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8).view(dtype)
    ring = SlotRing(ctx, 8, frame.nbytes, "transport") if method != METHODS[2] else None
    abort = SharedFlag(ctx)
    inbox: Any = Channel(ctx, "transport", 4, abort) if ring is not None else ctx.Queue(4)
    acks: Any = ctx.Queue()
    proc = ctx.Process(target=_consumer, args=(method, shape, dtype, inbox, acks, ring))
    proc.start()
    try:
        for _ in range(3):  # warm-up: the consumer has imported and mapped everything
            _send(method, frame, inbox, ring, True)
            acks.get(timeout=60)
        lat = []
        for _ in range(max(3, frames // 4)):
            _send(method, frame, inbox, ring, True)
            lat.append(acks.get(timeout=60))
        t0 = time.perf_counter()
        for i in range(frames):
            _send(method, frame, inbox, ring, i == frames - 1)
        acks.get(timeout=120)  # the last one has arrived
        streamed = (time.perf_counter() - t0) / frames
        inbox.put(None)
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
        if ring is not None:
            ring.close()
            ring.unlink()
    return TransportResult(payload, method, statistics.median(lat) * 1e6, streamed * 1e6, frames)


def run(quick: bool) -> list[TransportResult]:
    ctx = multiprocessing.get_context("spawn")
    out = []
    for payload in SHAPES:
        for method in METHODS:
            big = payload.startswith("1080p")
            frames = (20 if big else 200) if quick else (200 if big else 4000)
            if method == "slot hand-off":
                frames *= 5  # cheap: more frames for a stable figure
            print(f"transport: {payload}, {method} ...", flush=True)
            out.append(measure(ctx, payload, method, frames))
    return out
