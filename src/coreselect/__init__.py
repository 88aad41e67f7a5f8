"""coreselect: pick the small, diverse core set of an instruction-tuning dataset using a
language model's own neural activations (MADS), then prove the pick was worth it.

Library use::

    import coreselect
    result = coreselect.select(ds, ratio=0.15)   # a datasets.Dataset, a DataFrame, a list of dicts, a path
    core = result.subset                          # the picks, in the type given: ds.select(result.indices)

    from coreselect import SelectJob, run_select  # the CLI's job, files in and out
    result = run_select(SelectJob(data="train.jsonl", ratio=0.15, output="core.jsonl"))

    feats = coreselect.load_features("core.jsonl.manifest.json")  # the feature matrix, picks, labels
"""

from __future__ import annotations

import os

from coreselect._version import __version__

# oneDNN (torch's CPU matmul backend) caches compiled kernels per input shape, 1,024 by default.
# Extraction runs batches of ever-new shapes, so that cache grew the process by ~50 MB per 512
# records (5.2 GB over the 51,924-record Alpaca pool); 64 entries keep it bounded at the same
# speed (docs/performance.md). Read when oneDNN first runs, so it is set before torch is used.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

__all__ = ["Features", "SelectJob", "SelectResult", "Selection", "__version__", "load_features", "run_select", "select"]


def __dir__() -> list[str]:  # the lazy names too, so that dir() and tab completion list the API
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})


def __getattr__(name: str):  # lazy: importing coreselect stays cheap (no torch)
    if name == "SelectJob":
        from coreselect.job import SelectJob

        return SelectJob
    if name in {"select", "Selection"}:
        from coreselect import api

        return getattr(api, name)
    if name in {"load_features", "Features"}:
        from coreselect import featureset

        return getattr(featureset, name)
    if name in {"SelectResult", "run_select"}:
        from coreselect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
