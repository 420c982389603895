"""`vidpipe init [label|watch|live] [PATH]` and `vidpipe schema`: a commented config to start from,
and the JSON Schema editors check config files with; both made from the documentation of each key
(stages.config_docs, pipeline.schema). A file that exists is never written over."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.schema import json_schema
from vidpipe.stages.config import JobConfig
from vidpipe.stages.config_docs import example_yaml
from vidpipe.stages.jobs.exits import EXIT_OK

STARTERS: dict[str, dict[str, Any]] = {  # what a new config of each kind starts with
    "label": {"inputs": ["videos/"]},
    "watch": {"inputs": ["incoming/"]},
    "live": {"live": {"sources": [{"uri": "0"}]}},
}


def write_init(kind: str, path: str | None) -> int:
    text = example_yaml(kind, STARTERS[kind])
    if path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    target = Path(path or f"vidpipe-{kind}.yaml")
    try:
        with target.open("x", encoding="utf-8") as f:  # "x": never over a file that exists
            f.write(text)
    except FileExistsError:
        raise ConfigError(f"{target}: exists already: not writing over it (give another path)") from None
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write it: {exc.strerror}") from None
    print(f"wrote {target}: edit it, then `vidpipe run {target}`")
    return EXIT_OK


def write_schema() -> int:
    json.dump(json_schema(JobConfig, "vidpipe job config"), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return EXIT_OK
