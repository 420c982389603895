"""What the person at the terminal sees: a progress bar per stream and a final summary table."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


class ProgressBars:
    """One tqdm bar per stream (frames done / total, fps); silent when stderr is not a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bars: dict[str, tqdm] = {}

    def update(self, stream: str, done: int, total: int, **_: Any) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stream)
        if bar is None:
            bar = tqdm(
                total=total or None,
                desc=stream[:28],
                unit="frame",
                position=len(self.bars),
                leave=True,
                dynamic_ncols=True,
            )
            self.bars[stream] = bar
        if total and done > total:
            bar.total = done  # the container under-reported its frame count
        bar.update(done - bar.n)

    def close(self, stream: str | None = None) -> None:
        for name in [stream] if stream else list(self.bars):
            bar = self.bars.pop(name, None) if name else None
            if bar is not None:
                bar.close()


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def print_table(headers: list[str], rows: list[list[str]], stream: TextIO | None = None) -> None:
    print(format_table(headers, rows), file=stream or sys.stdout, flush=True)
