"""Checks of selector parameters, all with one message shape.

:meth:`Selector.check_params <coreselect.selection.base.Selector.check_params>` runs them (through
``Selector._int``/``_float``/``_choice`` in each method's ``_check_params``) before ``fit`` or
``fit_distributed`` does any work, and the pipeline before extraction::

    The 'n_clusters' parameter of LTD must be an int in [1, 145]. Got 0 instead.

Examples
--------
>>> check_int("LTD", "n_clusters", 3, 1, 10)
3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from coreselect.errors import ConfigError

#: faiss takes its seed as a C ``int``.
MAX_SEED = 2**31 - 1


def _fail(owner: str, name: str, what: str, value: Any) -> ConfigError:
    return ConfigError(f"The '{name}' parameter of {owner} must be {what}. Got {value!r} instead.")


def check_int(owner: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` in ``[low, high]`` (no upper bound when ``high`` is None)."""
    span = f"in [{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(owner, name, f"an int {span}", value)
    if value < low or (high is not None and value > high):
        raise _fail(owner, name, f"an int {span}", value)
    return int(value)


def check_float(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a ``float`` in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    span = f"{'(' if low_open else '['}{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(owner, name, f"a float in {span}", value)
    v = float(value)
    if not math.isfinite(v) or v > high or v < low or (low_open and v == low):
        raise _fail(owner, name, f"a float in {span}", value)
    return v


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise _fail(owner, name, f"one of {options}", value)
    return str(value)


def check_seed(owner: str, value: Any) -> int:
    """Return ``random_state`` as an ``int`` usable by both NumPy and faiss."""
    return check_int(owner, "random_state", value, 0, MAX_SEED)
