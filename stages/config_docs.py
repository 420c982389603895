"""The config, written out for people from its one source (the field docstrings, pipeline.schema):
the reference page of the docs, and commented YAML files (`vidpipe init`, configs/*.yaml).

    print(reference_markdown())
    print(example_yaml("live", {"live": {"sources": [{"uri": "0"}]}}))
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import yaml

from vidpipe.pipeline.schema import Key, describe, field_docs
from vidpipe.stages.config import JobConfig

# The sections each kind of job reads, in the order a config file shows them.
JOB_SECTIONS = {
    "label": ("job", "inputs", "output", "backend", "preprocess", "postprocess", "runtime", "cluster"),
    "watch": ("job", "inputs", "watch", "output", "backend", "preprocess", "postprocess", "runtime"),
    "live": ("job", "live", "output", "backend", "preprocess", "postprocess", "runtime", "cluster"),
}
INTERNAL = {"output.report_frames", "live.report_frames", "live.report_events"}  # set by the Python API
HEADERS = {
    "label": "Batch video labeling: `vidpipe run THIS.yaml`, or `vidpipe label FILES --config THIS.yaml`.",
    "watch": "Label files as they arrive in a folder: `vidpipe run THIS.yaml` (or `vidpipe watch DIR --config ...`).",
    "live": "Live classification: `vidpipe run THIS.yaml` (or `vidpipe live SOURCES --config ...`); Ctrl-C stops.",
}
COMMON_HEADER = """\
Every key is optional and shown with its default unless the example sets it; flags on the command
line override them. Relative paths (inputs, output.dir, backend files, live sources that are files)
are relative to this file's folder. `auto` lets vidpipe choose for the job and the machine.
Made by `vidpipe init` from the documentation of each key (docs: the configuration reference)."""
WIDTH = 100


def reference_markdown() -> str:
    """The configuration reference: one table per section, every key, its type, default and doc."""
    out = ["# Configuration reference", "",
           "Every key of a job config (YAML), generated from the documentation of each field. Types are "
           "checked when the file is loaded, and every mistake is reported at once, one line each "
           "naming the file and the key. `auto` (or null) lets vidpipe choose for the job and the machine.",
           ""]
    sections: dict[str, list[Key]] = {"": []}
    for key in describe(JobConfig):
        if key.path in INTERNAL:
            continue
        if key.section:
            sections[key.path] = []
        else:
            sections[key.path.rsplit(".", 1)[0].removesuffix("[]") if "." in key.path else ""].append(key)
    docs = {k.path: k.doc for k in describe(JobConfig) if k.section}
    for section, keys in sections.items():
        if not keys:
            continue
        out += [f"## `{section}`" + (" (a list: each item has these keys)" if section == "live.sources" else "")
                if section else "## Top level", ""]
        if docs.get(section):
            out += [docs[section], ""]
        out += ["| key | type | default | what it does |", "|---|---|---|---|"]
        out += [f"| `{k.path.rsplit('.', 1)[-1]}` | {k.kind} | {_cell(_show(k))} | {_cell(k.doc)} |" for k in keys]
        out.append("")
    return "\n".join(out)


def example_yaml(job: str, values: dict[str, Any] | None = None) -> str:
    """A commented config for `job` (label, watch, live): each key with its doc above it, `values`
    (nested mappings) where given, else the default."""
    lines = [*(f"# {line}" for line in textwrap.wrap(HEADERS[job], WIDTH - 2)),
             *(f"# {line}" for line in COMMON_HEADER.splitlines())]
    values = {**(values or {}), "job": job}
    docs = field_docs(JobConfig)
    for name in JOB_SECTIONS[job]:
        lines.append("")
        lines += _comment(docs.get(name, ""), "")
        lines += _render(name, getattr(JobConfig(), name), values.get(name, _UNSET), "", name)
    return "\n".join(lines) + "\n"


_UNSET = object()


def _render(name: str, default: Any, given: Any, indent: str, path: str) -> list[str]:
    if path in INTERNAL:
        return []
    if dataclasses.is_dataclass(default):
        lines = [f"{indent}{name}:"]
        docs = field_docs(type(default))  # type: ignore[arg-type]
        given = given if isinstance(given, dict) else {}
        for f in dataclasses.fields(default):
            sub = f"{path}.{f.name}"
            if sub in INTERNAL:
                continue
            lines += _comment(docs.get(f.name, ""), indent + "  ")
            lines += _render(f.name, getattr(default, f.name), given.get(f.name, _UNSET), indent + "  ", sub)
        return lines
    value = default if given is _UNSET else given
    if isinstance(value, list | tuple) and value and isinstance(value[0], dict):
        return [f"{indent}{name}:", *_sections_list(path, list(value), indent + "  ")]
    return [f"{indent}{name}: {_scalar(value, path)}"]


def _sections_list(path: str, items: list[dict[str, Any]], indent: str) -> list[str]:
    """A list of sections (live.sources): each given item with every key of its class."""
    from vidpipe.stages.config import SourceSettings

    docs = field_docs(SourceSettings)
    lines: list[str] = []
    for item in items:
        example = SourceSettings(**item)
        for i, f in enumerate(dataclasses.fields(example)):
            lines += _comment(docs.get(f.name, ""), indent if i == 0 else indent + "  ")
            lead = "- " if i == 0 else "  "
            lines.append(f"{indent}{lead}{f.name}: {_scalar(getattr(example, f.name), f'{path}[].{f.name}')}")
    return lines


def _comment(doc: str, indent: str) -> list[str]:
    text = " ".join(doc.split())
    return [f"{indent}# {line}" for line in textwrap.wrap(text, WIDTH - len(indent) - 2)] if text else []


def _scalar(value: Any, path: str) -> str:
    if value is None:
        return "auto"
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _show(key: Key) -> str:
    if key.required:
        return "(required)"
    if key.default is None:
        return "`auto`"
    return f"`{_scalar(key.default, key.path)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# configs/ in the repository (and in the package): made by example_yaml, checked by tests/test_configs.py.
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "label-videos.yaml": ("label", {"inputs": ["../sample/sample.mp4"], "output": {"dir": "../results"}}),
    "watch-folder.yaml": ("watch", {"inputs": ["../incoming"], "output": {"dir": "../results"}}),
    "live-camera.yaml": ("live", {"live": {"sources": [{"uri": "0"}]}, "output": {"dir": "../live-results"}}),
}


def write_examples(folder: str) -> None:
    """`python -m vidpipe.stages.config_docs configs/`: the example configs, anew."""
    from pathlib import Path

    for name, (job, values) in EXAMPLES.items():
        (Path(folder) / name).write_text(example_yaml(job, values), encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_examples(sys.argv[1])
