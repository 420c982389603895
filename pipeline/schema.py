"""What a config dataclass says about its keys: the docstring after each field, its type and its
default, walked down nested sections. The one source of the config reference, `vidpipe init` and
the JSON Schema that editors use to complete and check YAML files.

    for key in describe(JobConfig):          # Key("backend.max_batch", "auto or integer", None, "Images per ...")
        ...
    json_schema(JobConfig)                   # a JSON Schema (draft 2020-12) document
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union

from vidpipe.pipeline.config import AUTO


@dataclass(frozen=True)
class Key:
    path: str  # dotted, e.g. live.sources[].uri
    kind: str  # for people: "integer", "auto or integer", "one of: full, center-crop", "section"...
    default: Any  # the Python default (None for auto; a dataclass instance for a section)
    doc: str
    section: bool = False  # a nested settings class (its keys follow)
    required: bool = False


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal right after its declaration in `cls`'s source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def describe(cls: type, prefix: str = "") -> list[Key]:
    """Every key of `cls` and of its sections, in declaration order."""
    keys: list[Key] = []
    hints = typing.get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        path, tp = f"{prefix}{f.name}", hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else _default(f)
        item = _item_class(tp)
        if dataclasses.is_dataclass(tp):
            keys.append(Key(path, "section", default, docs.get(f.name, ""), section=True))
            keys += describe(tp, path + ".")  # type: ignore[arg-type]
        elif item is not None:
            keys.append(Key(path, f"list of {item.__name__}", default, docs.get(f.name, ""), section=True))
            keys += describe(item, path + "[].")
        else:
            keys.append(Key(path, kind(tp), default, docs.get(f.name, ""), required=required))
    return keys


def kind(tp: Any) -> str:
    """A field's type in words."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        if AUTO in tp.__metadata__:
            return "auto or " + kind(args[0])
        return kind(args[0])
    if origin is typing.Literal:
        return "one of: " + ", ".join(map(str, args))
    if origin in (Union, types.UnionType):
        return " or ".join(kind(a) for a in args if a is not type(None))
    if origin in (tuple, list):
        return f"list of {kind(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    words = {bool: "true or false", int: "integer", float: "number", str: "text"}
    return words.get(tp, getattr(tp, "__name__", str(tp)))


def json_schema(cls: type, title: str = "") -> dict[str, Any]:
    """A JSON Schema of `cls` (a YAML config is checked against it by editors such as VS Code)."""
    schema = _object(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title or cls.__name__, **schema}


def _object(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name])
        if f.name in docs:
            prop["description"] = docs[f.name]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        elif f.default is not dataclasses.MISSING and isinstance(f.default, bool | int | float | str):
            prop["default"] = f.default
        props[f.name] = prop
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    return {**out, "required": required} if required else out


def _type_schema(tp: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        if AUTO in tp.__metadata__:
            inner = "boolean" if bool in typing.get_args(args[0]) else "integer"
            return {"anyOf": [{"type": inner}, {"const": "auto"}, {"type": "null"}], "default": "auto"}
        return _type_schema(args[0])
    if dataclasses.is_dataclass(tp):
        return _object(tp)  # type: ignore[arg-type]
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type_schema(a) for a in args]}
    if origin in (tuple, list):
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object"}
    if tp is str:
        return {"type": ["string", "number"]}  # a camera index may be written as a number
    json_type = {bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(tp, "string")
    return {"type": json_type}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[operator]


def _item_class(tp: Any) -> type | None:
    """The settings class of a list of sections (live.sources), else None."""
    if typing.get_origin(tp) in (tuple, list):
        args = typing.get_args(tp)
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]  # type: ignore[return-value]
    return None
