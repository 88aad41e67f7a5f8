"""The selector contract and the name -> class registry.

A selection method is one module that defines a :class:`Selector` subclass and registers it::

    @register("kmeans-centroid")
    class KMeansCentroid(Selector):
        def __init__(self, n_select: int, *, niter: int = 20, random_state: int = 0) -> None:
            self.n_select, self.niter, self.random_state = n_select, niter, random_state

        def _check_params(self) -> dict[str, Any]:  # its own parameters, checked
            return {"niter": self._int("niter", 1)}

        def _fit(self, X, y, *, niter, random_state) -> np.ndarray:  # indices, in pick order
            ...

``__init__`` only stores keyword arguments; :meth:`Selector.check_params` validates all of them
(``n_select`` and ``random_state`` here, the rest in the method's ``_check_params``) and is what
``fit`` calls first (as does the Ray side's fit), and what the pipeline calls before extraction;
``fit(X)`` computes and returns ``self``; learned state ends in ``_`` (``indices_``). A method
that can also run on features held by Ray actors sets ``distributed = True``; its per-actor
steps live on the Ray side (:mod:`coreselect.distributed.selectors`, one entry per such
method), so this package imports nothing from :mod:`coreselect.distributed`.

A method that reads per-row scores or stats (``ifd``, ``response_tokens``) names them in
``needs_scores``; ``fit(X, scores={...})`` then checks they are there and its ``_fit`` receives
them as ``scores``. Under a cost budget (``fit(X, costs=tokens, budget=N)``) a ``cost_aware``
method's ``_fit`` takes ``costs`` and ``budget`` itself; any other method is fitted as it is and
its picks are taken in pick order while they fit (:meth:`Selector.fit`).
"""

from __future__ import annotations

import difflib
import inspect
import logging
from typing import Any, ClassVar

import numpy as np

from coreselect.errors import ConfigError
from coreselect.selection._params import check_choice, check_float, check_int, check_seed

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Selector]] = {}


class Selector:
    """Base class of all selection methods (scikit-learn estimator style).

    Subclasses implement ``_fit(X, y, **params) -> indices`` (int64, pick order, no
    duplicates), where ``params`` are what their ``_check_params`` returned plus
    ``random_state``, and may set extra learned attributes (``radii_``, ``labels_``...). ``X`` is
    a float32 C-contiguous ``(n_samples, n_features)`` array, already preprocessed by the
    pipeline.
    """

    name: ClassVar[str] = ""
    #: True when the method reads no features (e.g. ``random``): the pipeline may skip extraction.
    needs_features: ClassVar[bool] = True
    #: True when the method wants the raw pooled activations (e.g. ``neuron-coverage``
    #: thresholds them) instead of the centred, L2-normalised features the pipeline gives others.
    wants_raw_features: ClassVar[bool] = False
    #: True when the method also runs on features held by Ray actors; its distributed fit is
    #: :mod:`coreselect.distributed.selectors`' entry of the same name.
    distributed: ClassVar[bool] = False
    #: Per-row columns the method reads: scores (``ifd``, ``loss_cond``: extracted on demand, see
    #: :mod:`coreselect.features.scores`) or stats (``response_tokens``); ``fit`` gets them as
    #: ``scores={name: (n,) array}`` and ``_fit`` as ``scores``.
    needs_scores: ClassVar[tuple[str, ...]] = ()
    #: True when ``_fit`` takes ``costs`` and ``budget`` and selects under the budget itself
    #: (e.g. facility location's cost-benefit greedy).
    cost_aware: ClassVar[bool] = False

    n_select: int
    random_state: int

    def check_params(self, n_samples: int) -> dict[str, Any]:
        """Check every parameter for a pool of ``n_samples`` rows; return what the kernel gets.

        Raises a one-line :class:`~coreselect.errors.ConfigError` of the shape "The 'n_clusters'
        parameter of LTD must be ... Got ... instead." Needs no features, so a bad parameter
        fails before any is extracted.

        Examples
        --------
        >>> from coreselect.selection import make_selector
        >>> make_selector("ltd", n_select=40).check_params(1000)
        {'random_state': 0, 'n_clusters': 5, 'split': 'proportional', 'niter': 20}
        >>> make_selector("ltd", n_select=40, n_clusters="ten").check_params(1000)
        Traceback (most recent call last):
        ...
        coreselect.errors.ConfigError: The 'n_clusters' parameter of LTD must be an int in [1, 40]. Got 'ten' instead.
        """
        owner, k = type(self).__name__, self.n_select
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ConfigError(f"The 'n_select' parameter of {owner} must be an int. Got {k!r} instead.")
        if not 0 < k <= n_samples:
            raise ConfigError(f"The 'n_select' parameter of {owner} must be in [1, {n_samples}] "
                              f"(the pool size). Got {k} instead.")
        return {"random_state": check_seed(owner, self.random_state), **self._check_params()}

    def _check_params(self) -> dict[str, Any]:
        """The method's own parameters (all but ``n_select`` and ``random_state``), checked."""
        return {}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, scores: dict[str, np.ndarray] | None = None,
            costs: np.ndarray | None = None, budget: float | None = None) -> Selector:
        """Select ``n_select`` rows of ``X``; ``y`` is an optional per-row priority (higher
        first) used by order-dependent methods such as ``similarity-filter``.

        ``scores`` maps the per-row columns of :attr:`needs_scores` to ``(n,)`` arrays (NaN where
        a score is undefined); others are ignored. With ``costs`` (per row, positive: training
        tokens) and ``budget``, the picks cost at most ``budget`` in all and ``n_select`` is a cap
        (fewer rows may be picked): a :attr:`cost_aware` method selects under the budget itself;
        any other is fitted for a number of picks that exhausts the budget, and its picks are
        taken in pick order up to the first one that does not fit (``n_fitted_`` says how many
        it was fitted for; its other learned attributes are those of that fit).

        Examples
        --------
        >>> from coreselect.selection import make_selector
        >>> X = np.eye(4, dtype=np.float32)
        >>> sel = make_selector("random", n_select=4).fit(X, costs=np.array([5, 1, 1, 1]), budget=3)
        >>> int(np.array([5, 1, 1, 1])[sel.indices_].sum()) <= 3
        True
        """
        X = np.asarray(X)
        if X.ndim != 2:
            raise ConfigError(f"{self.name}: features must be 2-D, got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.floating):
            raise ConfigError(f"{self.name}: features must be floating point, got {X.dtype}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        params = self.check_params(n)
        if not all(np.isfinite(X[s : s + 65536]).all() for s in range(0, n, 65536)):  # no N x d temporary
            raise ConfigError(f"{self.name}: features contain NaN or infinity")
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            if y.shape != (n,):
                raise ConfigError(f"{self.name}: priority must have shape ({n},), got {y.shape}")
        checked = self._check_scores(scores, n)
        if self.needs_scores:
            params["scores"] = checked
        if budget is None and costs is None:
            self._set_indices(self._fit(X, y, **params))
            return self
        costs, budget = _check_budget(self.name, costs, budget, n)
        if self.cost_aware:
            self.n_fitted_ = self.n_select
            self._set_indices(self._fit(X, y, costs=costs, budget=budget, **params), at_most=True)
        else:
            self._fit_prefix(X, y, checked, costs, budget)
        return self

    def _check_scores(self, scores: dict[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
        """The columns of :attr:`needs_scores` from ``scores``, as float64 ``(n,)`` arrays."""
        scores = scores or {}
        missing = [k for k in self.needs_scores if k not in scores]
        if missing:
            from coreselect.features.scores import scores_for

            how = scores_for(missing)
            hint = f" (extracted with --scores {','.join(how)})" if how else " (a per-row stat of the feature store)"
            raise ConfigError(f"method {self.name!r} needs the per-row {', '.join(missing)}{hint}")
        out = {}
        for k in self.needs_scores:
            a = np.asarray(scores[k], dtype=np.float64)
            if a.shape != (n,):
                raise ConfigError(f"{self.name}: scores[{k!r}] must have shape ({n},), got {a.shape}")
            out[k] = a
        return out

    def _fit_prefix(self, X: np.ndarray, y: np.ndarray | None, scores: dict[str, np.ndarray], costs: np.ndarray,
                    budget: float) -> None:
        """Fit a copy for ``m`` picks, ``m`` doubled until its picks in order exhaust ``budget``."""
        cap = min(self.n_select, int(np.searchsorted(np.cumsum(np.sort(costs)), budget, side="right")))
        m = min(cap, max(1, int(np.ceil(1.25 * budget / costs.mean()))))
        while True:
            fitted = type(self)(**{**self.get_params(), "n_select": m}).fit(X, y, scores=scores)
            idx = fitted.indices_
            take = int(np.searchsorted(np.cumsum(costs[idx]), budget, side="right"))
            if take < m or m >= cap:
                break
            m = min(cap, 2 * m)
        log.info("%s: fitted for %d picks; the first %d fit the budget of %g", self.name, m, take, budget)
        vars(self).update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
        self.n_fitted_ = m
        self._set_indices(idx[:take], at_most=True)

    def _fit(self, X: np.ndarray, y: np.ndarray | None, **params: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _set_indices(self, idx: np.ndarray, *, at_most: bool = False) -> None:
        """Check and keep the picks (``indices_``); also what a distributed fit ends with."""
        idx = np.asarray(idx, dtype=np.int64)
        k = self.n_select
        ok = (idx.ndim == 1 and 1 <= len(idx) <= k) if at_most else idx.shape == (k,)
        if not ok or len(np.unique(idx)) != len(idx):
            raise AssertionError(f"{self.name} returned {idx.shape} indices, expected {'at most ' if at_most else ''}"
                                 f"{k} unique")
        self.indices_ = idx

    # -- parameter checks for ``_check_params``, reading the attribute of the same name --------
    def _int(self, name: str, low: int, high: int | None = None) -> int:
        return check_int(type(self).__name__, name, getattr(self, name), low, high)

    def _float(self, name: str, low: float, high: float) -> float:
        return check_float(type(self).__name__, name, getattr(self, name), low, high)

    def _choice(self, name: str, choices: tuple[str, ...]) -> str:
        return check_choice(type(self).__name__, name, getattr(self, name), choices)

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameters, as :func:`make_selector` takes them.

        Examples
        --------
        >>> from coreselect.selection import KCenterGreedy
        >>> KCenterGreedy.param_names()
        ['n_select', 'algorithm', 'project_dim', 'random_state']
        """
        sig = inspect.signature(cls.__init__)
        return [p.name for p in list(sig.parameters.values())[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, for manifests."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}


def _check_budget(owner: str, costs: np.ndarray | None, budget: float | None, n: int) -> tuple[np.ndarray, float]:
    """``(costs, budget)`` checked: positive finite ``(n,)`` costs, and a budget that the cheapest
    row fits in."""
    if costs is None or budget is None:
        raise ConfigError(f"{owner}: a budget needs both costs and budget")
    c = np.asarray(costs, dtype=np.float64)
    if c.shape != (n,) or not np.isfinite(c).all() or (c <= 0).any():
        raise ConfigError(f"{owner}: costs must be {n} positive numbers, one per row")
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) or not budget > 0:
        raise ConfigError(f"{owner}: the budget must be a positive number, got {budget!r}")
    if budget < c.min():
        raise ConfigError(f"the budget of {budget:g} tokens is below the cheapest record ({c.min():g} tokens)")
    return c, float(budget)


def register(name: str):
    """Class decorator adding a selector to the registry under ``name``."""

    def deco(cls: type[Selector]) -> type[Selector]:
        if name in _REGISTRY:
            raise ValueError(f"selection method {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available_methods(*, distributed: bool = False) -> list[str]:
    """Names of all registered selection methods (with ``distributed``, those that run on Ray
    actors), sorted.

    Examples
    --------
    >>> available_methods(distributed=True)
    ['facility-location', 'kcenter', 'ltd']
    """
    _load_builtin()
    return sorted(n for n, cls in _REGISTRY.items() if cls.distributed or not distributed)


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
    """Build a selector by name; a parameter it does not take is an error naming the closest.

    Examples
    --------
    >>> make_selector("ltd", n_select=10, n_cluster=2)
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: method 'ltd' has no parameter 'n_cluster'. Did you mean 'n_clusters'? Its parameters: n_select, n_clusters, split, niter, random_state
    """
    cls = get_selector_class(name)
    names = cls.param_names()
    for key in params:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"method {name!r} has no parameter {key!r}.{hint} Its parameters: {', '.join(names)}")
    try:
        return cls(n_select=n_select, **params)
    except TypeError as err:  # pragma: no cover - every name was checked above
        raise ConfigError(f"method {name!r}: {err}") from None


def _load_builtin() -> None:
    # Importing the package registers every built-in method (one module each).
    import coreselect.selection  # noqa: F401
