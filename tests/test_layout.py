"""The house rules that a reader relies on, checked: rooms import only downwards, modules and
functions stay small, every module says what it is for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages", "hw")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# room -> the rooms (of this project) it may import; a room always may import itself
MAY_IMPORT = {
    "pipeline": set(),
    "hw": {"pipeline"},
    "stages": {"pipeline", "hw"},  # the core stage processes, descriptors, events, config
    "stages.sources": {"pipeline", "hw", "stages"},
    "stages.web": {"pipeline", "hw", "stages"},
    "stages.outputs": {"pipeline", "hw", "stages", "stages.web"},
    "stages.jobs": {"pipeline", "hw", "stages", "stages.sources", "stages.web", "stages.outputs"},
}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def room_of(module: str) -> str | None:
    """The longest room name that `module` is in, e.g. stages.sources.files -> stages.sources."""
    rooms = [r for r in MAY_IMPORT if module == r or module.startswith(r + ".")]
    return max(rooms, key=len) if rooms else None


def imported(path: Path) -> set[str]:
    """The project modules `path` imports, named by room (vidpipe.stages.sink -> stages.sink)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n.removeprefix("vidpipe.") for n in names if n.startswith("vidpipe.")}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_rooms_import_only_downwards(path: Path) -> None:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    room = room_of(module)
    assert room is not None
    allowed = MAY_IMPORT[room] | {room}
    wrong = sorted(m for m in imported(path) if (r := room_of(m)) is not None and r not in allowed)
    assert not wrong, f"{module} ({room}) imports {wrong}: a room may import only {sorted(allowed)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small_and_say_what_they_are_for(path: Path) -> None:
    text = path.read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it (about 400 lines at most)"
    assert ast.get_docstring(tree) or not text.strip(), f"{path.name}: no module docstring"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions longer than {MAX_FUNCTION_LINES} lines: {long}"
