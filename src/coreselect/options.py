"""Option sets: one dataclass each, from which the CLI, the YAML schema and the defaults come.

A set's fields are declared with :func:`option` (help, public name, flags, bounds); as in
lm-evaluation-harness's config dataclasses and Hugging Face's ``HfArgumentParser``, from that one
definition :func:`add_arguments` makes the argparse arguments (choices from ``Literal`` types,
comma-separated tuples, ``--flag``/``--no-flag`` booleans; no default is copied into argparse, so
an option left out keeps the dataclass default), :func:`from_args` builds the set from the parsed
namespace and :func:`from_mapping` from YAML (an unknown key names the closest known one, values
are type-checked, every error is one line). :func:`check`, called from each set's
``__post_init__``, checks choices and bounds, so the library, the CLI and YAML accept the same
values. Defaults that depend on other options are resolved in ``__post_init__``, once.

Examples
--------
>>> from coreselect.features.config import FeatureConfig
>>> from_mapping(FeatureConfig, {"features": "hidden", "max_length": 256}, "selector").layers
(-1,)
>>> from_mapping(FeatureConfig, {"layer": [8]}, "selector")
Traceback (most recent call last):
...
coreselect.errors.ConfigError: selector: unknown key 'layer' (did you mean 'layers'?)
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import json
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, Union

from coreselect.coercion import coerce, kind_of
from coreselect.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Option:
    """What :func:`option` records about a field (see there)."""

    help: str
    key: str = ""
    flags: tuple[str, ...] = ()
    off_flag: str = ""
    off_help: str = ""
    cli: bool = True
    yaml: bool = True
    group: str = ""
    exclusive: str = ""
    metavar: str | None = None
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    allowed: tuple[Any, ...] = ()
    default_text: str = ""
    flatten: bool = False


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
           help: str, **meta: Any) -> Any:
    """A dataclass field with option metadata.

    Parameters
    ----------
    default, default_factory : the library default (as for :func:`dataclasses.field`).
    help : the help text (CLI ``--help``, docs); ``(default: ...)`` is appended, from the default
        or ``default_text`` (when it is resolved from other options).
    key, flags : the public name (YAML key, CLI ``--key-with-dashes``) and the CLI flags when not
        derived from the field name. ``off_flag``/``off_help``: a boolean's flag setting it false.
    cli, yaml, group, exclusive : settable from the CLI / YAML; argparse (exclusive) group.
    minimum, above, maximum : bounds (inclusive, exclusive, inclusive); ``allowed`` values pass.
    flatten : the field is a nested option set whose options appear at this level.

    >>> option(0.5, help="share", above=0, maximum=1).metadata["option"].above
    0
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"option": Option(help=help, **meta)})


class OptionError(ConfigError):
    """A bad option value; ``str`` names the CLI flag (``--max-length must be at least 8, got 4``)."""

    def __init__(self, key: str, flag: str, problem: str) -> None:
        self.key, self.flag, self.problem = key, flag, problem
        super().__init__(f"{flag} {problem}")


class _Spec(typing.NamedTuple):
    field: dataclasses.Field  # the dataclass field, its Option, its resolved type, YAML key and CLI flags
    opt: Option
    type: Any
    key: str
    flags: tuple[str, ...]


@functools.cache
def _specs(cls: type) -> tuple[_Spec, ...]:
    """The option fields of ``cls`` with their resolved types, names and flags."""
    hints = typing.get_type_hints(cls)
    return tuple(_Spec(f, o, hints[f.name], o.key or f.name, o.flags or ("--" + (o.key or f.name).replace("_", "-"),))
                 for f in dataclasses.fields(cls) if (o := f.metadata.get("option")) is not None)


def _walk(cls: type, where: Callable[[_Spec], bool] = lambda s: True) -> Iterator[tuple[str | None, _Spec]]:
    """``(nested field or None, spec)`` of every option of ``cls``, nested sets flattened."""
    for s in _specs(cls):
        if s.opt.flatten:
            yield from ((s.field.name, sub) for sub in _specs(s.type) if where(sub))
        elif where(s):
            yield None, s


def _default_of(s: _Spec) -> Any:
    """The library default of an option."""
    return s.field.default_factory() if s.field.default_factory is not dataclasses.MISSING else s.field.default


# -- values: coerce() and kind_of() live in coreselect.coercion --------------------------------------


def coerce_fields(obj: Any) -> None:
    """Set each option of ``obj`` (a dataclass, frozen or not) to its value as its type
    (:func:`coerce`, numeric strings parsed: ``"0.2"`` as ``0.2``, ``15`` as ``(15,)`` for a tuple);
    a value of the wrong type is one :class:`OptionError`, never a ``TypeError`` later on.
    Options neither on the CLI nor in YAML (``data``, ``output``) are left as given.

    >>> from coreselect.features.config import FeatureConfig
    >>> FeatureConfig(layers=8).layers
    (8,)
    >>> FeatureConfig(max_length=[256])
    Traceback (most recent call last):
    ...
    coreselect.options.OptionError: --max-length must be an integer, got [256]
    """
    for s in _specs(type(obj)):
        v = getattr(obj, s.field.name)
        if s.opt.flatten or (not s.opt.cli and not s.opt.yaml) or v is None or v in s.opt.allowed:
            continue
        if s.type is str or (typing.get_origin(s.type) in (Union, types.UnionType) and str in typing.get_args(s.type)):
            if isinstance(v, os.PathLike):
                v = os.fspath(v)  # a path where a path name goes
        try:
            new = coerce(v, s.type, text=isinstance(v, str))
        except ValueError as err:
            problem = str(err)
            raise OptionError(s.key, s.flags[-1], "must be " + problem[len("expected "):]
                              if problem.startswith("expected ") else problem) from None
        if new is not v:
            object.__setattr__(obj, s.field.name, new)


def check(obj: Any) -> None:
    """Raise :class:`OptionError` for a value of the wrong type (:func:`coerce_fields`) or outside
    its choices or bounds.

    Examples
    --------
    >>> from coreselect.finetune.config import TrainConfig
    >>> TrainConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    coreselect.options.OptionError: --batch-size must be at least 1, got 0
    """
    coerce_fields(obj)
    for s in _specs(type(obj)):
        v = getattr(obj, s.field.name)
        if s.opt.flatten or v is None or v in s.opt.allowed:
            continue
        choices = _choices(s.type)
        problem = (f"must be one of {', '.join(map(str, choices))}, got {v!r}" if choices and v not in choices
                   else None if (s.opt.minimum, s.opt.above, s.opt.maximum) == (None, None, None) else _bounds(s.opt, v))
        if problem:
            raise OptionError(s.key, s.flags[-1], problem)


def _bounds(o: Option, v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return f"must be a number, got {v!r}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"must be finite, got {v}"
    extra = "".join(f" or {a}" for a in o.allowed)
    if o.above is not None and not v > o.above:
        return (f"must be positive{extra}, got {v}" if o.above == 0 else f"must be above {o.above}{extra}, got {v}")
    if o.minimum is not None and v < o.minimum:
        return f"must be at least {o.minimum}{extra}, got {v}"
    if o.maximum is not None and v > o.maximum:
        return f"must be at most {o.maximum}, got {v}"
    return None


# -- argparse --------------------------------------------------------------------------------------
def _help(s: _Spec) -> str:
    if s.opt.default_text:
        return f"{s.opt.help} (default: {s.opt.default_text})"
    d = _default_of(s)
    if d is None or d is False or d == () or d == {} or (s.type is bool and s.opt.off_flag):
        return s.opt.help
    shown = ",".join(map(str, d)) if isinstance(d, tuple) else d
    return f"{s.opt.help} (default: {shown})"


def _cli_type(s: _Spec) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return coerce(text, s.type, text=True)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _cli_flags(s: _Spec) -> tuple[str, ...]:
    """The flags of an option: a boolean has one that sets it to non-default, or both."""
    if s.type is not bool:
        return s.flags
    off = s.opt.off_flag or "--no-" + s.key.replace("_", "-")
    if s.opt.off_flag and s.opt.flags:
        return (*s.flags, off)
    return (off,) if _default_of(s) else s.flags


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, only: Iterable[str] | None = None,
                  required: Iterable[str] = ()) -> None:
    """Add the CLI options of ``cls`` (all, or the fields named in ``only``) to ``parser``.

    ``required`` names mutually exclusive groups of which one option must be given. Example: see
    :func:`from_args`.
    """
    groups: dict[str, Any] = {"": parser}

    def target(s: _Spec, nested: str | None) -> Any:
        group = s.opt.group or (_specs_by_name(cls)[nested].opt.group if nested else "")
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        x = "x:" + s.opt.exclusive
        if s.opt.exclusive and x not in groups:
            groups[x] = groups[group].add_mutually_exclusive_group(required=s.opt.exclusive in required)
        return groups[x if s.opt.exclusive else group]

    for nested, s in _walk(cls, lambda s: s.opt.cli):
        if only is not None and (nested or s.field.name) not in only:
            continue
        text, off, where = _help(s).replace("%", "%%"), s.opt.off_help.replace("%", "%%"), target(s, nested)
        kw: dict[str, Any] = {"dest": s.field.name, "default": argparse.SUPPRESS}
        if s.type is bool:
            on, flags = _default_of(s), _cli_flags(s)
            if len(flags) > 1:  # both ways, e.g. --lora / --full: the default one says so
                where = where.add_mutually_exclusive_group()
                where.add_argument(*flags[:-1], action="store_true", help=text + (" (default)" if on else ""), **kw)
                where.add_argument(flags[-1], action="store_false", help=off + ("" if on else " (default)"), **kw)
            else:
                where.add_argument(*flags, action="store_false" if on else "store_true",
                                   help=(off or text) if on else text, **kw)
        elif _choices(s.type):
            where.add_argument(*s.flags, choices=list(_choices(s.type)), help=text, metavar=s.opt.metavar, **kw)
        elif typing.get_origin(s.type) is dict:
            where.add_argument(*s.flags, action="append", help=text, metavar=s.opt.metavar or "KEY=VALUE", **kw)
        else:
            where.add_argument(*s.flags, type=_cli_type(s), help=text, metavar=s.opt.metavar, **kw)


def _specs_by_name(cls: type) -> dict[str, _Spec]:
    return {s.field.name: s for s in _specs(cls)}


def _choices(tp: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` type (also inside ``X | None``), else ``()``."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    return next((typing.get_args(a) for a in typing.get_args(tp) if typing.get_origin(a) is Literal), ())


def key_values(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``["k=1", "name=x"]`` -> ``{"k": 1, "name": "x"}`` (values read as JSON when they parse).

    >>> key_values(["n_clusters=50", "metric=cosine"], "--param")
    {'n_clusters': 50, 'metric': 'cosine'}
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def from_args(cls: type, ns: argparse.Namespace, **fixed: Any) -> Any:
    """Build ``cls`` from parsed CLI arguments (absent options keep their defaults) and ``fixed``.

    >>> from coreselect.features.config import FeatureConfig
    >>> p = argparse.ArgumentParser()
    >>> add_arguments(p, FeatureConfig)
    >>> from_args(FeatureConfig, p.parse_args(["--features", "hidden", "--with-hidden"])).layers
    (-1,)
    """
    kw: dict[str, Any] = {}
    for s in _specs(cls):
        name = s.field.name
        if s.opt.flatten and name not in fixed:
            kw[name] = from_args(s.type, ns)
        elif not s.opt.flatten and hasattr(ns, name):
            v = getattr(ns, name)
            kw[name] = key_values(v, s.flags[-1]) if isinstance(v, list) and typing.get_origin(s.type) is dict else v
    return cls(**{**kw, **fixed})


# -- YAML ------------------------------------------------------------------------------------------
def check_keys(where: str, given: Iterable[Any], known: Sequence[str]) -> None:
    """A one-line :class:`ConfigError` for the first unknown key, naming the closest known one.

    Example: see the module docstring (``from_mapping`` calls it).
    """
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def as_mapping(where: str, value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, ``{}`` for null, else a one-line :class:`ConfigError`.

    >>> as_mapping("trainee", None), as_mapping("trainee", {"lr": 1e-4})
    ({}, {'lr': 0.0001})
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {kind_of(value)}")
    return value


def from_mapping(cls: type, value: Any, where: str, *, only: Iterable[str] | None = None, **fixed: Any) -> Any:
    """Build ``cls`` from a YAML mapping; unknown keys and bad values are one-line errors.

    ``only`` restricts the accepted keys to some fields (nested sets by their field name);
    ``fixed`` are set as given. Examples: see the module docstring.
    """
    d, keep = as_mapping(where, value), None if only is None else set(only)
    by_key = {s.key: (nested, s) for nested, s in _walk(cls, lambda s: s.opt.yaml)
              if keep is None or (nested or s.field.name) in keep}
    check_keys(where, d, list(by_key))
    kw: dict[str, Any] = {}
    inner: dict[str, dict[str, Any]] = {}
    for key, v in d.items():
        nested, s = by_key[key]
        try:
            v = coerce(v, s.type)
        except ValueError as err:
            raise ConfigError(f"{where}.{key}: {err}") from None
        (inner.setdefault(nested, {}) if nested else kw)[s.field.name] = v
    try:
        for name, sub in inner.items():
            kw[name] = _specs_by_name(cls)[name].type(**sub)
        return cls(**{**kw, **fixed})
    except OptionError as err:
        raise ConfigError(f"{where}.{err.key}: {err.problem}") from None


def describe(cls: type) -> list[dict[str, Any]]:
    """One row per option of ``cls``: field, YAML key, CLI flags, default, help (for docs and tests).

    >>> from coreselect.finetune.config import TrainConfig
    >>> [(r["yaml"], r["cli"]) for r in describe(TrainConfig) if r["field"] == "lora"]
    [('lora', '--lora / --full')]
    """
    return [{"field": s.field.name, "set": nested or cls.__name__, "yaml": s.key if s.opt.yaml else None,
             "cli": " / ".join(_cli_flags(s)) if s.opt.cli else None, "default": _default_of(s),
             "help": _help(s)} for nested, s in _walk(cls)]


__all__ = ["Option", "OptionError", "add_arguments", "as_mapping", "check", "check_keys", "coerce", "coerce_fields",
           "describe", "from_args", "from_mapping", "key_values", "option"]
