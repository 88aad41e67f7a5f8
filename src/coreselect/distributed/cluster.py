"""Connecting to Ray and sharing work among actors.

``--ray-address`` follows Ray's own convention: ``auto`` joins the cluster started on this
machine with ``ray start``, ``ray://host:10001`` a remote one through Ray Client, and no address
starts a private single-node cluster for this process (Ray shuts it down when the process
exits). A session that already called ``ray.init`` (a notebook, a test) is reused as it is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coreselect.distributed import DistributedError
from coreselect.store import ShardPlan

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'coreselect[ray]'"


def import_ray() -> Any:
    """``import ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DistributedError(f"--engine ray needs Ray: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None) -> Any:
    """Make sure this process is connected to a Ray cluster; return the ``ray`` module.

    Examples
    --------
    >>> ray = connect("auto")  # doctest: +SKIP
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise DistributedError(f"cannot connect to {where} ({type(err).__name__}: {err})".splitlines()[0]) from None
    res = ray.cluster_resources()
    log.info("ray: %d CPUs, %d GPUs on %d nodes", int(res.get("CPU", 0)), int(res.get("GPU", 0)),
             len(alive_nodes(ray)))
    return ray


def alive_nodes(ray: Any) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


@dataclass(frozen=True)
class ActorLayout:
    """How many actors to start and what each one reserves."""

    n_actors: int
    num_cpus: float
    num_gpus: float


def extraction_layout(ray: Any, n_actors: int | None = None) -> ActorLayout:
    """One actor per GPU (``num_gpus=1``) when the cluster has GPUs, else one CPU actor per node.

    CPU actors split the cluster's CPUs evenly and run torch with that many threads, so two
    actors on one machine never oversubscribe its cores. More actors than GPUs (or CPUs) share
    them: each asks for an equal fraction, so that every actor can be placed.
    """
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
    if gpus:
        n = n_actors or gpus
        return ActorLayout(n, 1.0, _share(gpus, n))
    nodes = alive_nodes(ray)
    n = n_actors or max(1, len(nodes))
    per_node = min((int(nd.get("Resources", {}).get("CPU", cpus)) for nd in nodes), default=cpus) or 1
    return ActorLayout(n, min(_share(cpus, n) if n > cpus else float(cpus // n), float(per_node)), 0.0)


def _share(total: int, n: int) -> float:
    """A share of one unit for each of ``n`` actors on ``total`` units, at most 1, rounded down
    to 1/100, such that all ``n`` fit: Ray places a fractional request on a single GPU, so 3
    actors on 2 GPUs get 1/2 each (two on one GPU), not 2/3 (which only two GPUs could hold).

    >>> _share(2, 3), _share(2, 4), _share(4, 2), _share(1, 3)
    (0.5, 0.5, 1.0, 0.33)
    """
    return min(1.0, int(100 / math.ceil(n / total)) / 100)


#: Default cap on selection actors: the driver makes one call per actor per k-center pick.
MAX_SELECTION_ACTORS = 64


def selection_actors(ray: Any, n_shards: int, n_actors: int | None = None) -> int:
    """Number of selection actors: one per CPU of the cluster up to 64 by default, never more
    than shards."""
    if n_actors is None:
        n_actors = min(MAX_SELECTION_ACTORS, max(1, int(ray.cluster_resources().get("CPU", 1))))
    return max(1, min(n_actors, n_shards))


def group_shards(plans: Sequence[ShardPlan], n_groups: int) -> list[list[ShardPlan]]:
    """Split shards (in order) into ``n_groups`` contiguous groups of about the same row count.

    Examples
    --------
    >>> from coreselect.store import plan_shards
    >>> [[p.shard for p in g] for g in group_shards(plan_shards(10, 2), 2)]
    [[0, 1], [2, 3, 4]]
    """
    if not plans:
        return []
    n_groups = max(1, min(n_groups, len(plans)))
    total = plans[-1].end - plans[0].start
    groups: list[list[ShardPlan]] = [[] for _ in range(n_groups)]
    for p in plans:
        # the group whose share of the rows holds this shard's middle row
        g = min(n_groups - 1, ((p.start + p.end) // 2 - plans[0].start) * n_groups // total)
        groups[g].append(p)
    return [g for g in groups if g]


def check_positive(name: str, value: int | None) -> int | None:
    """``None`` or a positive int; anything else is a one-line error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DistributedError(f"{name} must be a positive integer, got {value!r}")
    return value


def root_cause(err: BaseException) -> str:
    """The innermost error behind Ray's wrappers, as ``Type: first line``.

    Examples
    --------
    >>> try:
    ...     try:
    ...         raise KeyError("shard-00004")
    ...     except KeyError as inner:
    ...         raise RuntimeError("task failed") from inner
    ... except RuntimeError as err:
    ...     root_cause(err)
    "KeyError: 'shard-00004'"
    """
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = getattr(err, "cause", None) or err.__cause__
        if not isinstance(nxt, BaseException):
            break
        err = nxt
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip(": ")
