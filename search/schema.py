"""Dataclasses from plain dicts (TOML), with errors a user can act on.

A tiny, strict reader: every key must be a field ("did you mean"), every value must have the
field's type, and each error names the dotted path of the offending key, e.g.
``space.bits: expected a list of integers, got 'four'``. Defaults live in the dataclasses only.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping

from trustbits.errors import TrustbitsError, did_you_mean


class SpecError(TrustbitsError):
    """A study spec that cannot be read as written."""


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (arg, *_) = typing.get_args(tp) or (object,)
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(arg, 'values')}"
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(names) + (" (or absent)" if type(None) in typing.get_args(tp) else "")
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value, tp, path: str):
    """`value` checked (and lightly converted: int -> float, list -> tuple) against `tp`."""
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except SpecError:
                continue
        raise SpecError(f"{path}: expected {_type_name(tp)}, got {value!r}", "fix the value in the spec")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: expected a table, got {value!r}", f"write it as [{path}]")
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{path}: expected {_type_name(tp)}, got {value!r}", "fix the value in the spec")
        (arg, *_) = typing.get_args(tp) or (typing.Any,)
        items = [_convert(v, arg, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: expected a table, got {value!r}", "fix the value in the spec")
        _, val_tp = typing.get_args(tp)
        return {str(k): _convert(v, val_tp, f"{path}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise SpecError(f"{path}: expected {_type_name(tp)}, got {value!r}", "fix the value in the spec")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise SpecError(f"{path}: expected {_type_name(tp)}, got {value!r}", "fix the value in the spec")
    return value


def from_dict(cls, data: Mapping, path: str = ""):
    """An instance of dataclass `cls` from `data`; unknown keys and wrong types are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            raise SpecError(f"unknown key '{where}' ({did_you_mean(key, fields)})", "remove it or fix its spelling")
        kwargs[key] = _convert(value, hints[key], where)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise SpecError(f"{path or 'spec'}: {e}", "add the missing key") from e


def to_dict(obj) -> dict:
    """A dataclass as plain JSON-ready data (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(obj)
