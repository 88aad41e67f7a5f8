"""``coreselect.select``: pick a core set of data the user already holds, in three lines.

>>> import coreselect
>>> pool = [{"instruction": f"Add {i} and 1.", "output": str(i + 1)} for i in range(10)]
>>> result = coreselect.select(pool, n=3, method="random")
>>> result.indices, result.subset[0] is pool[result.indices[0]]
([4, 6, 2], True)

``data`` is a ``datasets.Dataset``, a pandas ``DataFrame``, a list of dicts, a path or a Hugging
Face dataset id (:mod:`coreselect.sources`); ``columns`` maps fields named otherwise
(``{"instruction": "prompt", "output": "completion"}``); ``features`` is a kind (``"hidden"``)
or your own feature matrix (a numpy array or torch tensor, one row per record, in input order:
no model runs, as with ``--features-file``); every other option is a field of
:class:`~coreselect.job.SelectJob` (``model``, ``seed``, ``keep_order``, ``work_dir``, ...) or of
:class:`~coreselect.features.config.FeatureConfig` (``layers``, ``pooling``, ...). Nothing is
written unless ``output=`` names a file (its format follows its extension, a manifest beside it);
extracted features are cached as for the CLI.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coreselect.errors import ConfigError

if TYPE_CHECKING:
    from coreselect.data import Dataset
    from coreselect.manifest import SelectionManifest

#: Parameters of :func:`select` itself, not passed through ``**options``.
_OWN = ("data", "ratio", "n", "method", "columns", "output")


@dataclass(repr=False)
class Selection:
    """What :func:`select` returns.

    ``indices``: 0-based positions of the picks in the input, in pick order (input order with
    ``keep_order=True``). ``subset``: the picked records in the type given — ``data.select(indices)``
    for a ``datasets.Dataset``, ``data.iloc[indices]`` for a DataFrame (its index labels kept), the
    same dict objects for a list, and a list of the records as read for a path or a dataset id.
    ``manifest``: the :class:`~coreselect.manifest.SelectionManifest` (method, budget, features,
    scores). ``output``: the file written, when ``output=`` was given (its manifest beside it as
    ``<output>.manifest.json``).
    """

    indices: list[int]
    subset: Any
    manifest: SelectionManifest
    output: Path | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (f"Selection({len(self.indices)} of {self.manifest.counts.pool} records, "
                f"method={self.manifest.method.name!r}, subset={type(self.subset).__name__})")


def select(data: Any, *, ratio: float | None = None, n: int | None = None, method: str | None = None,
           columns: Mapping[str, str] | None = None, output: str | os.PathLike[str] | None = None,
           **options: Any) -> Selection:
    """Pick a core set of ``data``; see the module docstring. Give ``ratio`` or ``n`` (or ``budget_tokens``).

    Wrong types and unknown options raise one :class:`~coreselect.errors.ConfigError` before any
    work; bad records one :class:`~coreselect.errors.BadRecordsError` listing them.
    """
    from coreselect.job import DEFAULT_METHOD, SelectJob
    from coreselect.pipeline import run_select
    from coreselect.sources import describe, load_data

    kind = describe(data)  # a wrong type fails before anything is read
    if ratio is None and n is None and options.get("budget_tokens") is None:
        raise ConfigError("select() needs a budget: ratio= (a share of the pool), n= (a count) or budget_tokens=")
    job = SelectJob(ratio=ratio, n=n, method=method or DEFAULT_METHOD,
                    output=None if output is None else os.fspath(output), **_job_options(options))
    ds = load_data(data, on_error=job.on_error, columns=columns)
    job.data = ds  # type: ignore[assignment]  # a loaded Dataset: run_select reads it as is
    if output is None:
        with tempfile.TemporaryDirectory(prefix="coreselect-") as tmp:
            job.output = str(Path(tmp) / "core.jsonl")  # written and dropped: the subset comes back in memory
            res = run_select(job)
        written = None
    else:
        res = run_select(job)
        written = res.output
    rows = [int(r) for r in res.indices]
    if job.keep_order:
        rows.sort()
    indices = [ds.examples[r].source_index for r in rows]
    return Selection(indices, _subset(data, kind, ds, rows, indices), res.manifest, written)


def _subset(data: Any, kind: str, ds: Dataset, rows: list[int], indices: list[int]) -> Any:
    if kind == "dataset":
        return data.select(indices)
    if kind == "dataframe":
        return data.iloc[indices]
    if kind == "list":
        return [data[i] for i in indices]
    return [ds.examples[r].record for r in rows]


def _is_matrix(value: Any) -> bool:
    """Whether ``features=`` is a feature matrix (an array, a tensor, nested lists), not a kind."""
    return hasattr(value, "shape") or hasattr(value, "__array__") or isinstance(value, (list, tuple))


def _job_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` as SelectJob keywords: FeatureConfig fields gathered into ``features``;
    an unknown name is one :class:`ConfigError` naming the closest known one."""
    from coreselect.features.config import FeatureConfig
    from coreselect.job import SelectJob

    job_names = [f.name for f in dataclasses.fields(SelectJob) if f.name not in (*_OWN, "features_matrix")]
    feature_names = [f.name for f in dataclasses.fields(FeatureConfig) if f.name != "kind"]
    job_opts: dict[str, Any] = {}
    feature_opts: dict[str, Any] = {}
    for name, value in options.items():
        if name == "features" and _is_matrix(value):  # the user's own features, one row per record
            job_opts["features_matrix"] = value
        elif name in job_names:
            job_opts[name] = value
        elif name in feature_names:
            feature_opts[name] = value
        else:
            known = sorted({*job_names, *feature_names, *_OWN} - {"data"})
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "options: " + ", ".join(known)
            raise ConfigError(f"select() got an unknown option {name!r} ({hint})")
    if feature_opts:
        base = job_opts.get("features")
        if base is None or isinstance(base, str):
            job_opts["features"] = FeatureConfig(**({"kind": base} if base else {}), **feature_opts)
        elif isinstance(base, FeatureConfig):
            job_opts["features"] = dataclasses.replace(base, **feature_opts)
    return job_opts


__all__ = ["Selection", "select"]
