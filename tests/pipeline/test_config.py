from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from vidpipe.pipeline.config import from_mapping, load_yaml, replace_path
from vidpipe.pipeline.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    size: int = 1
    ratio: float = 0.5
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    label: str | None = None


def test_maps_nested_values_and_converts_ints_to_floats() -> None:
    cfg = from_mapping(Outer, {"mode": "b", "inner": {"size": 3, "ratio": 2, "names": ["x", "y"]}})
    assert cfg == Outer("b", False, Inner(3, 2.0, ("x", "y")))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nope": 1}, "f.yaml: (top level): unknown key 'nope'"),
        ({"inner": {"size": "eight"}}, "f.yaml: inner.size: expected an integer, got 'eight'"),
        ({"inner": {"size": True}}, "inner.size: expected an integer, got True"),
        ({"mode": "c"}, "mode: expected one of a, b, got 'c'"),
        ({"flag": "yes"}, "flag: expected true or false"),
        ({"inner": 3}, "inner: expected a mapping, got 3"),
        ({"inner": {"names": [1.5, {}]}}, "inner.names[1]: expected a string"),
    ],
)
def test_errors_name_the_file_and_key_path(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping(Outer, data, source="f.yaml")
    assert message in str(err.value)


def test_yaml_errors_are_one_line_with_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(bad)
    assert str(bad) in str(err.value) and "line" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_yaml(tmp_path / "list.yaml")


def test_yaml_is_never_executed(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("a: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError):
        load_yaml(evil)


def test_replace_path_overrides_nested_values() -> None:
    cfg = replace_path(Outer(), "inner.size", 9)
    assert cfg.inner.size == 9 and Outer().inner.size == 1


def test_errors_carry_the_file_and_the_key_as_fields(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("inner:\n  size: eight\n")
    with pytest.raises(ConfigError) as err:
        from_mapping(Outer, load_yaml(path), source=str(path))
    assert (err.value.source, err.value.key) == (str(path), "inner.size")
