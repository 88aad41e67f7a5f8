"""The selection methods that also run on Ray actors: each one's distributed fit, by name.

A selector (:mod:`coreselect.selection`) says *whether* it runs on actors (``distributed =
True``); how it does lives here, on the Ray side, so the selection package imports nothing from
this one. Each entry of :data:`FITS` takes the selector, a :class:`~.ray_select.FeatureActors`
pool and the parameters its ``check_params`` returned, sets the learned attributes ``fit`` would
set besides ``indices_``, and returns the picks; :func:`fit_distributed` checks and keeps them.
A new distributed method is one entry here plus ``distributed = True`` on its class.

Examples
--------
>>> sorted(FITS) == available_methods(distributed=True)
True
>>> fit_distributed(make_selector("ltd", n_select=100), pool).indices_  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from coreselect.distributed.ray_select import FeatureActors, facility_location_ray, kcenter_ray, ltd_ray
from coreselect.errors import ConfigError
from coreselect.selection import available_methods
from coreselect.selection.base import Selector
from coreselect.selection.facility_location import FacilityLocation
from coreselect.selection.kcenter import KCenterGreedy
from coreselect.selection.ltd import LTD


def _kcenter(selector: KCenterGreedy, pool: FeatureActors, *, algorithm: str, project_dim: int | None,
             random_state: int) -> np.ndarray:
    """The dense kernel on the actors, whatever ``algorithm`` says (:func:`.ray_select.kcenter_ray`)."""
    with pool.projected(project_dim, random_state):  # radii_ in the projection, as in fit
        idx, selector.radii_ = kcenter_ray(pool, selector.n_select, random_state=random_state)
    return idx


def _ltd(selector: LTD, pool: FeatureActors, **params: Any) -> np.ndarray:
    """The same steps as LTD's ``fit``, on the actors (:func:`.ray_select.ltd_ray`)."""
    return selector._fitted(ltd_ray(pool, selector.n_select, **params), params)


def _facility_location(selector: FacilityLocation, pool: FeatureActors, *, n_neighbors: int, graph: str,
                       optimizer: str, epsilon: float, nprobe: int, partition_picks: float | None,
                       random_state: int) -> np.ndarray:
    """RandGreeDi on the actors (:func:`.ray_select.facility_location_ray`)."""
    idx, selector.gains_, selector.info_ = facility_location_ray(
        pool, selector.n_select, n_neighbors=n_neighbors, graph=graph, optimizer=optimizer, epsilon=epsilon,
        nprobe=nprobe, partition_picks=partition_picks, random_state=random_state)
    return idx


#: Method name -> its fit on a pool of actors, for every method with ``distributed = True``.
FITS: dict[str, Callable[..., np.ndarray]] = {"facility-location": _facility_location, "kcenter": _kcenter,
                                              "ltd": _ltd}


def fit_distributed(selector: Selector, pool: FeatureActors) -> Selector:
    """Select ``selector.n_select`` rows of the features held by a pool of Ray actors.

    Sets the same learned attributes as :meth:`Selector.fit <coreselect.selection.base.Selector.fit>`
    on the prepared features; see :mod:`coreselect.distributed.ray_select` for how equal they
    are. Only methods with ``distributed`` set run this way; returns ``selector``.
    """
    fit = FITS.get(selector.name) if selector.distributed else None
    if fit is None:
        raise ConfigError(f"method {selector.name!r} does not run on Ray; use one of "
                          f"{', '.join(available_methods(distributed=True))}")
    params = selector.check_params(pool.n_rows)
    selector._set_indices(fit(selector, pool, **params))
    return selector


__all__ = ["FITS", "fit_distributed"]
