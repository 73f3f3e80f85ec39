"""Typed configs from plain data: recipe sections, checkpoint configs, ``--set`` overrides.

Every config in reactcli is a dataclass whose fields carry their type and a docstring. This
module turns a mapping read from YAML or JSON into such a dataclass, checking every key against
the fields and every value against the field's type, and raises one :class:`ConfigError` line
naming the key, the value and what is allowed. Numbers written in scientific notation that
PyYAML reads as strings (``lr: 1e-3``) are read as numbers; a float must be finite.

Ranges are declared where a field is, with :class:`Range` in an ``Annotated`` type (or one of the
aliases below), and checked by the same parser::

    epochs: PositiveInt = 10          # >= 1
    lr: PositiveFloat = 2e-5          # > 0
    dropout: Probability = 0.1        # in [0, 1]
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from reactcli.errors import ConfigError

__all__ = ["from_mapping", "coerce", "field_names", "Range", "PositiveInt", "NonNegativeInt", "PositiveFloat",
           "NonNegativeFloat", "Probability"]


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field (``Annotated[int, Range(min=1)]``); ``open_min``: strictly above ``min``."""

    min: float | None = None
    max: float | None = None
    open_min: bool = False
    open_max: bool = False

    def check(self, value: Any, where: str) -> None:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        low = self.min is not None and (value <= self.min if self.open_min else value < self.min)
        high = self.max is not None and (value >= self.max if self.open_max else value > self.max)
        if low or high:
            raise ConfigError(f"{where}: {value!r} is out of range; allowed: {self.describe()}")

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{'(' if self.open_min else '['}{self.min:g}, {self.max:g}{')' if self.open_max else ']'}"
        if self.min is not None:
            return f"{'>' if self.open_min else '>='} {self.min:g}"
        return f"{'<' if self.open_max else '<='} {self.max:g}"


PositiveInt = Annotated[int, Range(min=1)]
NonNegativeInt = Annotated[int, Range(min=0)]
PositiveFloat = Annotated[float, Range(min=0, open_min=True)]
NonNegativeFloat = Annotated[float, Range(min=0)]
Probability = Annotated[float, Range(min=0, max=1)]


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        ranges = [e.describe() for e in extras if isinstance(e, Range)]
        return _describe(base) + (f" ({', '.join(ranges)})" if ranges else "")
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
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        out = _coerce(value, base, where)
        for extra in extras:
            if isinstance(extra, Range):
                extra.check(out, where)
        return out
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
        refused: list[ConfigError] = []  # an arm of the right type whose value is refused (range, NaN)
        for arm in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arm, where)
            except _Mismatch:
                continue
            except ConfigError as exc:
                refused.append(exc)
        if refused:
            raise refused[0]
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
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {k: coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
