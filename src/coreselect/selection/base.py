"""The selector contract and the name -> class registry.

A selection method is one module that defines a :class:`Selector` subclass and registers it::

    @register("kcenter")
    class KCenterGreedy(Selector):
        def __init__(self, n_select: int, *, random_state: int = 0) -> None: ...
        def _fit(self, X, y) -> np.ndarray: ...   # returns indices in pick order

``__init__`` only stores keyword arguments; ``fit(X)`` validates them, computes and returns
``self``; learned state ends in ``_`` (``indices_``).
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, ClassVar

import numpy as np

from coreselect.errors import ConfigError

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Selector]] = {}


class Selector:
    """Base class of all selection methods (scikit-learn estimator style).

    Subclasses implement ``_fit(X, y) -> indices`` (int64, pick order, no duplicates) and may set
    extra learned attributes (``radii_``, ``labels_``...). ``X`` is a float32 C-contiguous
    ``(n_samples, n_features)`` array, already preprocessed by the pipeline.
    """

    name: ClassVar[str] = ""
    #: True when the method reads no features (e.g. ``random``): the pipeline may skip extraction.
    needs_features: ClassVar[bool] = True
    #: True when the method wants the raw pooled activations (e.g. ``neuron-coverage``
    #: thresholds them) instead of the centred, L2-normalised features the pipeline gives others.
    wants_raw_features: ClassVar[bool] = False

    n_select: int
    random_state: int

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Selector:
        """Select ``n_select`` rows of ``X``; ``y`` is an optional per-row priority (higher
        first) used by order-dependent methods such as ``similarity-filter``."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ConfigError(f"{self.name}: features must be 2-D, got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.floating):
            raise ConfigError(f"{self.name}: features must be floating point, got {X.dtype}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        k = self.n_select
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ConfigError(
                f"The 'n_select' parameter of {type(self).__name__} must be an int. Got {k!r} instead."
            )
        if not 0 < k <= n:
            raise ConfigError(
                f"The 'n_select' parameter of {type(self).__name__} must be in [1, {n}] "
                f"(the pool size). Got {k} instead."
            )
        if not np.isfinite(X).all():
            raise ConfigError(f"{self.name}: features contain NaN or infinity")
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            if y.shape != (n,):
                raise ConfigError(f"{self.name}: priority must have shape ({n},), got {y.shape}")
        idx = np.asarray(self._fit(X, y), dtype=np.int64)
        if idx.shape != (k,) or len(np.unique(idx)) != k:
            raise AssertionError(f"{self.name} returned {idx.shape} indices, expected {k} unique")
        self.indices_ = idx
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, for manifests."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}


def register(name: str):
    """Class decorator adding a selector to the registry under ``name``."""

    def deco(cls: type[Selector]) -> type[Selector]:
        if name in _REGISTRY:
            raise ValueError(f"selection method {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available_methods() -> list[str]:
    """Names of all registered selection methods, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_selector_class(name: str) -> type[Selector]:
    """Look a method up by name; an unknown name suggests the closest ones."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown selection method {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def make_selector(name: str, n_select: int, **params: Any) -> Selector:
    """Build a selector by name, rejecting parameters it does not take."""
    cls = get_selector_class(name)
    try:
        return cls(n_select=n_select, **params)
    except TypeError as err:
        raise ConfigError(f"method {name!r}: {err}") from None


def _load_builtin() -> None:
    # Importing the package registers every built-in method (one module each).
    import coreselect.selection  # noqa: F401
