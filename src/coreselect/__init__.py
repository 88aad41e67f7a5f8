"""coreselect: pick the small, diverse core set of an instruction-tuning dataset using a
language model's own neural activations (MADS), then prove the pick was worth it.

Library use::

    from coreselect import SelectJob, run_select
    result = run_select(SelectJob(data="train.jsonl", ratio=0.15, output="core.jsonl"))
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["SelectJob", "SelectResult", "__version__", "run_select"]


def __getattr__(name: str):  # lazy: importing coreselect stays cheap (no torch)
    if name in {"SelectJob", "SelectResult", "run_select"}:
        from coreselect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
