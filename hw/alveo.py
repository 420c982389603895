"""`alveo`: the ResNet50 dataflow accelerator on an Alveo card, driven through pynq 3.0.1.

Exactly the host API of the release (Xilinx/ResNet50-PYNQ host/infer_pynq_threaded.py):

    ol = pynq.Overlay(xclbin, device=pynq.Device.devices[i]); accel = ol.resnet50_1
    fcbuf = pynq.allocate((1000, 2048), dtype=np.int8, target=ol.PLRAM0)  # once
    fcbuf[:] = weights; fcbuf.sync_to_device()
    inbuf[k], outbuf[k] = pynq.allocate(..., target=ol.bank0)             # once per buffer set
    start(k, n):  inbuf[k][:n].sync_to_device(); h[k] = accel.start(inbuf[k], outbuf[k], fcbuf, n)
    wait(k):      h[k].wait(); outbuf[k][:n].sync_from_device(); copy

Only the filled part of a buffer set is synced (pynq syncs a slice's own bytes). With
`emulate: true` (or backend `alveo-emu`) the same code runs on hw.emulated's card.

Before downloading, the card's shell is checked against the xclbin's platform (hw.alveo_cards);
after, that pynq starts the kernel through ERT and which memory each buffer goes to
(hw.alveo_overlay: the xclbin's connectivity unless configured). pynq's own wait() never gives
up on a hung kernel: wait() and close() here wait against a deadline (hw.alveo_pynq.wait_done).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.hw.alveo_cards import (
    check_shell,
    emulated_cards,
    no_device_message,
    pick_card,
    real_devices,
    xclbin_platform,
)
from vidpipe.hw.alveo_overlay import buffer_targets, check_ert, find_kernel, find_memory
from vidpipe.hw.alveo_pynq import bind_kernel_driver, check_command, import_pynq, wait_done
from vidpipe.hw.base import FC_SHAPE, INPUT_DTYPE, INPUT_SHAPE, NUM_CLASSES, TOP_K, BatchOutput, check_start
from vidpipe.hw.fcweights import load_fc_weights
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.pipeline.errors import BackendError, one_line

log = logging.getLogger(__name__)
_DEFAULTS = AlveoSettings()
_users: dict[Any, int] = {}  # pynq device -> open AlveoBackends on it in this process
_users_lock = threading.Lock()
# Buffers a hung kernel may still write to: never freed (a PynqBuffer frees itself when it is
# collected, so they are kept here), XRT releases them when the process exits.
_abandoned: list[Any] = []


@dataclass(frozen=True)
class _Running:
    handle: Any
    n: int
    batch: int  # 1, 2, ...: the batches this backend started
    upload_s: float
    t_started: float


def _last_user(device: Any) -> bool:
    """One backend less on `device`; True if it was the last one."""
    with _users_lock:
        left = _users.pop(device, 1) - 1
        if left:
            _users[device] = left
        return not left


class AlveoBackend:
    """Accelerator on the card named by `settings.alveo.devices[slot]` (pynq.Device.devices, or
    the emulated cards when emulating)."""

    labels_meaningful = True

    def __init__(self, settings: BackendSettings, slot: int = 0) -> None:
        self.cfg = settings.alveo
        self.emulated = settings.name == "alveo-emu" or settings.alveo.emulate
        self.name = "alveo-emu" if self.emulated else "alveo"
        self.max_batch = settings.batch
        self.buffer_sets = settings.buffer_sets
        if self.max_batch < 1 or self.buffer_sets < 1:
            raise BackendError(f"{self.name}: need max_batch >= 1 and buffer_sets >= 1")
        if not 0 <= slot < len(self.cfg.devices):
            raise BackendError(f"{self.name}: infer process {slot} has no card in backend.alveo.devices")
        if self.cfg.wait_timeout_s <= 0 or self.cfg.wait_timeout_per_image_s < 0:
            raise BackendError(f"{self.name}: alveo.wait_timeout_s must be > 0, wait_timeout_per_image_s >= 0")
        self.slot = slot
        self.device_spec = self.cfg.devices[slot]
        self.card = f"{self.name}:{self.device_spec}"  # the card, as errors name it (its index once opened)
        self.device: Any = None
        self.overlay: Any = None
        self.kernel: Any = None
        self.xclbin: Path | None = None
        self.fcbuf: Any = None
        self.inbufs: list[Any] = []
        self.outbufs: list[Any] = []
        self._running: dict[int, _Running] = {}
        self._hung: dict[int, _Running] = {}  # buffer set -> a batch that never finished
        self._batches = 0
        self._names: list[str] | None = None

    # -- open / close --------------------------------------------------------------------
    def open(self) -> None:
        if self.overlay is not None:
            return
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        pynq = import_pynq()
        xclbin = self.xclbin = self._xclbin_path()
        platform = xclbin_platform(xclbin)
        weights = load_fc_weights(self._weights_path())
        self._names = self._load_names()
        self.device = self._select_device(pynq, platform, xclbin)
        bind_kernel_driver(xclbin, self.cfg.kernel)  # before Overlay(): it binds drivers when it is created
        try:
            overlay = pynq.Overlay(str(xclbin.resolve()), device=self.device)
        except Exception as exc:
            raise BackendError(f"cannot load {xclbin} on {self.card} ({self.device.tag}): {one_line(exc)}",
                               device=self.card) from exc
        with _users_lock:
            self.overlay = overlay
            _users[self.device] = _users.get(self.device, 0) + 1
        self.kernel = find_kernel(self.overlay, self.cfg.kernel, xclbin)
        check_ert(self.kernel, self.cfg.kernel, f"{self.card} ({self.device.tag})")
        self._allocate_buffers(pynq, weights, buffer_targets(self.overlay, self.cfg.kernel, self.cfg, xclbin))
        log.info("%s: %s on %s (%s, %s), %d x %d-image buffer sets", self.name, xclbin, self.card, self.device.tag,
                 self.device.name, self.buffer_sets, self.max_batch)

    def _allocate_buffers(self, pynq: Any, weights: np.ndarray, targets: tuple[str, str, str]) -> None:
        """The FC weights (filled and synced once), then every buffer set's input and output."""
        xclbin = self.xclbin or Path()
        in_mem, out_mem, fc_mem = (
            find_memory(self.overlay, name, what, xclbin)
            for name, what in zip(targets, ("input", "output", "FC weights"), strict=True)
        )
        self.fcbuf = self._allocate(pynq, FC_SHAPE, np.int8, fc_mem, targets[2])
        self.fcbuf[:] = weights
        self.fcbuf.sync_to_device()
        for _ in range(self.buffer_sets):
            self.inbufs.append(self._allocate(pynq, (self.max_batch, *INPUT_SHAPE), INPUT_DTYPE, in_mem, targets[0]))
            self.outbufs.append(self._allocate(pynq, (self.max_batch, TOP_K), np.uint32, out_mem, targets[1]))

    def _allocate(self, pynq: Any, shape: tuple[int, ...], dtype: Any, target: Any, name: str) -> Any:
        try:
            return pynq.allocate(shape, dtype=dtype, target=target)
        except Exception as exc:
            size = f"{int(np.prod(shape)) * np.dtype(dtype).itemsize} bytes"
            raise BackendError(
                f"cannot allocate {shape} {np.dtype(dtype)} ({size}) in {name} of {self.card} "
                f"({name} holds {target.size} bytes in all): {one_line(exc)}",
                device=self.card,
            ) from exc

    def close(self) -> None:
        """Wait for batches still running (their buffers must outlive them) against their
        deadlines, free every buffer, and the overlay when no other backend in this process uses
        the device. After a hung batch, what the stuck kernel may still touch (the FC weights, its
        buffer set, the CU context) is left to XRT, which frees it when the process exits.
        Idempotent; safe after a failed open(). Never blocks longer than the wait deadlines."""
        for k, run in list(self._running.items()):
            if self._hung or not self._finished(run):  # behind a hung batch no batch finishes
                self._hung[k] = run
        self._running.clear()
        keep = [self.fcbuf, *(b for k in self._hung for b in (self.inbufs[k], self.outbufs[k]))] if self._hung else []
        for buf in [self.fcbuf, *self.inbufs, *self.outbufs]:
            if buf is not None and not any(buf is b for b in keep):
                buf.freebuffer()
        _abandoned.extend(keep)
        self.fcbuf, self.inbufs, self.outbufs, self.kernel = None, [], [], None
        overlay, self.overlay = self.overlay, None
        if overlay is not None and _last_user(self.device) and not self._hung:
            overlay.free()  # closes the device's CU contexts and its XRT handle: nobody else uses them
        if self._hung:
            batches = ", ".join(str(run.batch) for run in self._hung.values())
            log.warning("%s: batch %s never finished: its buffers and the CU context are left to XRT; "
                        "reset the card (xbutil reset) before using it again", self.card, batches)
        self._hung.clear()

    def _finished(self, run: _Running) -> bool:
        try:
            return wait_done(run.handle, time.monotonic() + self._timeout_s(run.n))
        except Exception as exc:  # closing anyway: the batch's result is lost either way
            log.debug("%s: batch %d failed while closing: %s", self.card, run.batch, exc)
            return True

    # -- configuration -------------------------------------------------------------------
    def _xclbin_path(self) -> Path:
        path = Path(self.cfg.xclbin).expanduser()
        if path.is_file():
            return path
        if self.emulated and self.cfg.xclbin == _DEFAULTS.xclbin:
            from vidpipe.hw.emulated import write_emulated_xclbin
            from vidpipe.hw.paths import cache_dir

            return write_emulated_xclbin(cache_dir() / "emulated" / "resnet50.xclbin")
        raise BackendError(f"xclbin {path} (alveo.xclbin) not found")

    def _weights_path(self) -> Path:
        path = Path(self.cfg.fc_weights).expanduser()
        if path.is_file() or not (self.emulated and self.cfg.fc_weights == _DEFAULTS.fc_weights):
            return path
        from vidpipe.hw.emulated import write_emulated_weights
        from vidpipe.hw.paths import cache_dir

        return write_emulated_weights(cache_dir() / "emulated" / "fcweights.npy")

    def _load_names(self) -> list[str]:
        from vidpipe.hw.imagenet import class_names, load_label_file

        return load_label_file(Path(self.cfg.labels).expanduser()) if self.cfg.labels else class_names()

    def _select_device(self, pynq: Any, platform: str, xclbin: Path) -> Any:
        devices = emulated_cards(self.cfg.devices) if self.emulated else real_devices(pynq)
        if not devices:
            raise BackendError(no_device_message())
        index = pick_card(devices, self.cfg.devices, self.slot)
        self.card = f"{self.name}:{index}"
        check_shell(devices[index], index, platform, xclbin)
        return devices[index]

    def _timeout_s(self, n: int) -> float:
        return self.cfg.wait_timeout_s + self.cfg.wait_timeout_per_image_s * n

    # -- batches -------------------------------------------------------------------------
    def input_buffer(self, buffer_set: int) -> np.ndarray:
        self._check_open()
        return self.inbufs[buffer_set]

    def start(self, buffer_set: int, n: int) -> None:
        self._check_open()
        check_start(self.name, buffer_set, n, self.buffer_sets, self.max_batch, self._running)
        if self._hung:
            raise BackendError(f"{self.card}: the kernel hangs since batch {min(r.batch for r in self._hung.values())}",
                               device=self.card)
        try:
            t0 = time.perf_counter()
            self.inbufs[buffer_set][:n].sync_to_device()  # only the filled images cross PCIe
            t1 = time.perf_counter()
            handle = self.kernel.start(self.inbufs[buffer_set], self.outbufs[buffer_set], self.fcbuf, n)
        except Exception as exc:
            raise BackendError(f"{self.card}: cannot start {self.cfg.kernel} on {n} images: {one_line(exc)}",
                               device=self.card) from exc
        self._batches += 1
        self._running[buffer_set] = _Running(handle, n, self._batches, t1 - t0, time.perf_counter())

    def wait(self, buffer_set: int) -> BatchOutput:
        run = self._running.pop(buffer_set, None)
        if run is None:
            raise BackendError(f"{self.name}: wait() on buffer set {buffer_set}, which was not started")
        what = f"{self.cfg.kernel} failed on batch {run.batch} ({run.n} images)"
        try:
            done = wait_done(run.handle, time.monotonic() + self._timeout_s(run.n))
            if done:
                check_command(run.handle)
        except Exception as exc:
            raise BackendError(f"{self.card}: {what}: {one_line(exc)}", device=self.card, batch=run.batch) from exc
        if not done:
            self._hung[buffer_set] = run
            raise BackendError(self._hang_message(run, buffer_set), device=self.card, batch=run.batch)
        try:
            t2 = time.perf_counter()
            out = self.outbufs[buffer_set][: run.n]
            out.sync_from_device()
            top5 = np.array(out, dtype=np.uint32)  # a plain copy: the device buffer is reused
            t3 = time.perf_counter()
        except Exception as exc:
            raise BackendError(f"{self.card}: {what}: {one_line(exc)}", device=self.card, batch=run.batch) from exc
        if top5.size and (worst := int(top5.max())) >= NUM_CLASSES:
            raise BackendError(f"{self.card}: kernel returned class id {worst} (>= {NUM_CLASSES}): wrong xclbin?")
        return BatchOutput(top5, None, run.upload_s, t2 - run.t_started, t3 - t2)

    def _hang_message(self, run: _Running, buffer_set: int) -> str:
        limit = f"{self._timeout_s(run.n):.2f} s (alveo.wait_timeout_s + {run.n} x alveo.wait_timeout_per_image_s)"
        return (f"{self.card} ({self.device.tag}, {self.device.name}): {self.cfg.kernel} did not finish batch "
                f"{run.batch} ({run.n} images, buffer set {buffer_set}) within {limit}: the kernel hangs; "
                "reset the card (xbutil reset) before using it again")

    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = self._load_names()
        return list(self._names)

    def _check_open(self) -> None:
        if self.overlay is None or self.kernel is None:
            raise BackendError(f"{self.name}: backend used before open()")
