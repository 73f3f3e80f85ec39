"""Typed configs from plain data: recipe sections, checkpoint configs, ``--set`` overrides.

Every config in reactcli is a dataclass whose fields carry their type and a docstring. This
module turns a mapping read from YAML or JSON into such a dataclass, checking every key against
the fields and every value against the field's type, and raises one :class:`ConfigError` line
naming the key, the value and what is allowed. Numbers written in scientific notation that
PyYAML reads as strings (``lr: 1e-3``) are read as numbers; a float must be finite.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union

from reactcli.errors import ConfigError

__all__ = ["from_mapping", "coerce", "field_names"]


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} keys"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` (see the module docstring), or a :class:`ConfigError`."""
    try:
        return _coerce(value, tp, where)
    except _Mismatch:
        raise ConfigError(f"{where}: {value!r} is not {_describe(tp)}") from None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Literal:
        for choice in typing.get_args(tp):
            if value == choice and type(value) is type(choice):
                return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for arm in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arm, where)
            except (_Mismatch, ConfigError):
                continue
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        items = [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise _Mismatch from None
        else:
            raise _Mismatch
        if not math.isfinite(out):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value


def from_mapping(cls: type, values: Any, where: str) -> Any:
    """An instance of the dataclass ``cls`` from ``values`` (a mapping, or None for the defaults).

    Unknown keys, values of the wrong type and values the class's own checks (``__post_init__``)
    refuse are one :class:`ConfigError` naming ``where.key``."""
    if values is None:
        values = {}
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(values).__name__} {values!r}")
    names = field_names(cls)
    unknown = sorted(str(k) for k in values if k not in names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
