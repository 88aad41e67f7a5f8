"""Option values as their declared types: :func:`coerce` (used by :mod:`coreselect.options`
for the CLI, YAML and library calls alike)."""

from __future__ import annotations

import numbers
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, Union


def kind_of(v: Any) -> str:
    """What a YAML/JSON value is, in words (``a list``, ``null``)."""
    return "null" if v is None else {bool: "a boolean", int: "an integer", float: "a number",
                                     str: "a string", list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def coerce(value: Any, tp: Any, *, text: bool = False) -> Any:
    """``value`` as type ``tp`` (ints for floats, lists as tuples, ``"8,15"`` as ``(8, 15)``).

    With ``text``, a string is parsed (CLI values). Raises ``ValueError`` with the problem.

    Examples
    --------
    >>> coerce("8,-1", tuple[int, ...]), coerce(15, tuple[int, ...]), coerce("2e-4", float)
    ((8, -1), (15,), 0.0002)
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return coerce(value, inner, text=text)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin in (tuple, Sequence) or tp is tuple:
        item = args[0] if args else Any
        if isinstance(value, str):
            return tuple(coerce(v.strip(), item, text=True) for v in value.split(",") if v.strip())
        if isinstance(value, (list, tuple)):
            return tuple(coerce(v, item, text=text) for v in value)
        return (coerce(value, item, text=text),)
    if (origin is dict or tp is dict) and not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {kind_of(value)}")
    if tp is bool and not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    if tp in (int, float):
        what = "an integer" if tp is int else "a number"
        if isinstance(value, str) and (text or tp is float):  # YAML 1.1 reads 2e-4 as a string
            try:
                return tp(value)
            except ValueError:
                raise ValueError(f"expected {what}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if tp is int else numbers.Real):
            raise ValueError(f"expected {what}, got {value!r}")
        if type(value) not in (int, float):  # numpy scalars as Python numbers
            return int(value) if isinstance(value, numbers.Integral) else float(value)
        return value  # an int stays an int (1 == 1.0): stage keys hash the options as given
    if tp is str and not isinstance(value, str):
        raise ValueError(f"expected a string, got {kind_of(value)}")
    return value


__all__ = ["coerce", "kind_of"]
