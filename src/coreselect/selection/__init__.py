"""Selection methods: one module each, found by name through the registry in :mod:`.base`.

>>> from coreselect.selection import make_selector
>>> make_selector("kcenter", n_select=2).name
'kcenter'
"""

from __future__ import annotations

from coreselect.selection import kcenter  # noqa: F401  (registers "kcenter")
from coreselect.selection.base import (
    Selector,
    available_methods,
    get_selector_class,
    make_selector,
    register,
)
from coreselect.selection.kcenter import KCenterGreedy, kcenter_greedy

__all__ = [
    "KCenterGreedy",
    "Selector",
    "available_methods",
    "get_selector_class",
    "kcenter_greedy",
    "make_selector",
    "register",
]
