"""A local Ray cluster for the tests of ``coreselect.distributed`` (skipped when Ray is missing).

Each test module gets its own two-CPU cluster (module scope), shut down after its last test.
Ray starts in a few seconds on an idle machine and in 10-20 s on a busy one, so the modules
share as much as they can within themselves.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

#: Ray workers import test helpers (e.g. a fault-injecting actor class) from here.
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - a cluster left by another module
        ray.shutdown()
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
