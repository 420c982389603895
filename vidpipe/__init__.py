"""vidpipe: streaming video classification for FPGA accelerators, from Python.

The public API (the CLI and the REST API are thin callers of it) lives here.
"""

from __future__ import annotations

from vidpipe.pipeline.errors import VidpipeError

__all__ = ["VidpipeError"]
