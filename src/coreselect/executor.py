"""Executors: where the extraction and selection steps run (the datatrove shape).

An executor only decides where the steps run; the steps are written once, in the modules that
own them (see :mod:`coreselect.engine`):

* :class:`LocalExecutor`: this process; the shards one after the other, the selector on the
  whole prepared matrix (:mod:`coreselect.engine`, with the :class:`Executor` contract).
* :class:`~coreselect.distributed.executor.RayExecutor`: the shards on a Ray Data actor pool;
  ``kcenter`` and ``ltd`` on Ray actors that hold the shards, any other method as locally.

Both write the same store (same key, same shard files, same manifest), resume the same way (a
shard whose file exists is done) and give the same picks (docs/scale.md says how equal). This
module, the layer above both, picks one by ``--engine``.

Examples
--------
>>> executor = make_executor("local")
>>> store = executor.extract(ds, resolve_model(None), FeatureConfig(), "feats/")  # doctest: +SKIP
>>> selected = executor.select(make_selector("kcenter", n_select=100), store)  # doctest: +SKIP
>>> type(executor).__name__
'LocalExecutor'
"""

from __future__ import annotations

from coreselect.engine import Executor, LocalExecutor, Selected, extract_features
from coreselect.errors import ConfigError

ENGINES = ("local", "ray")


def make_executor(engine: str, *, address: str | None = None, n_actors: int | None = None) -> Executor:
    """The executor of ``--engine``: ``"local"``, or ``"ray"`` (``address``, ``n_actors``: see
    :class:`~coreselect.distributed.executor.RayExecutor`).

    Examples
    --------
    >>> make_executor("local")
    LocalExecutor()
    >>> make_executor("slurm")
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: --engine must be local or ray, got 'slurm'
    """
    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from coreselect.distributed.executor import RayExecutor

        return RayExecutor(address=address, n_actors=n_actors)
    raise ConfigError(f"--engine must be {' or '.join(ENGINES)}, got {engine!r}")


__all__ = ["ENGINES", "Executor", "LocalExecutor", "Selected", "extract_features", "make_executor"]
