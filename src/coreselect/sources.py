"""What ``data`` may be: a path, a Hugging Face dataset id, or records the user already holds.

:func:`check_data` says whether a value is one of them (cheaply: nothing is read or imported);
:func:`load_data` reads any of them into a :class:`coreselect.data.Dataset`. Accepted:

* a path (``str`` or ``os.PathLike``) to a file or a ``save_to_disk`` folder, or a dataset id
  (see :mod:`coreselect.readers`);
* a ``datasets.Dataset`` (one split: ``dsd["train"]``, not a ``DatasetDict``);
* a pandas ``DataFrame`` (one record per row, columns as fields);
* a list (or tuple) of dicts;
* a :class:`coreselect.data.Dataset` already loaded.

Examples
--------
>>> describe([{"instruction": "Hi", "output": "Hello"}]), describe("train.jsonl")
('list', 'path')
>>> check_data(42)
Traceback (most recent call last):
...
coreselect.errors.ConfigError: data must be a path (a file or a save_to_disk folder), a Hugging Face dataset id, a datasets.Dataset, a pandas DataFrame or a list of dicts; got int
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Literal

from coreselect.data import FIELDS, Dataset, check_columns, from_records, load_dataset
from coreselect.errors import ConfigError

Kind = Literal["path", "dataset", "dataframe", "list", "loaded"]
ACCEPTED = ("a path (a file or a save_to_disk folder), a Hugging Face dataset id, a datasets.Dataset, "
            "a pandas DataFrame or a list of dicts")


def _is(obj: Any, module: str, cls: str) -> bool:
    """``isinstance(obj, module.cls)`` without importing ``module`` (not imported: it cannot be one)."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(obj, getattr(mod, cls, ()))


def describe(data: Any) -> Kind:
    """Which kind of data ``data`` is; :class:`ConfigError` naming what is accepted when none."""
    if isinstance(data, (str, os.PathLike)):
        return "path"
    if isinstance(data, Dataset):
        return "loaded"
    if _is(data, "datasets", "Dataset"):
        return "dataset"
    if _is(data, "pandas", "DataFrame"):
        return "dataframe"
    if isinstance(data, (list, tuple)):
        return "list"
    if _is(data, "datasets", "DatasetDict"):
        splits = ", ".join(data)
        raise ConfigError(f"data is a datasets.DatasetDict with the splits {splits}: pass one split, "
                          f"e.g. data[{next(iter(data), 'train')!r}]")
    if _is(data, "datasets", "IterableDataset"):
        raise ConfigError("data is a streaming datasets.IterableDataset: load it without streaming=True, "
                          "or take part of it first (Dataset.from_list(list(data.take(n))))")
    raise ConfigError(f"data must be {ACCEPTED}; got {type(data).__name__}")


def check_data(data: Any) -> None:
    """:class:`ConfigError` unless ``data`` is None (the demo) or of a kind :func:`load_data` reads."""
    if data is not None:
        describe(data)


def load_data(data: Any, *, on_error: Literal["raise", "skip"] = "raise",
              columns: Mapping[str, str] | None = None) -> Dataset:
    """Read ``data`` (any kind the module docstring lists) into a :class:`~coreselect.data.Dataset`.

    >>> ds = load_data([{"prompt": "Add 2 and 3.", "answer": "5"}], columns={"instruction": "prompt", "output": "answer"})
    >>> len(ds), ds.examples[0].messages[0]
    (1, ('user', 'Add 2 and 3.'))
    """
    kind = describe(data)
    if kind == "loaded":
        if columns:
            raise ConfigError("columns= applies when the data is read; this Dataset is already loaded")
        return data
    if kind == "path":
        return load_dataset(data, on_error=on_error, columns=columns)
    if kind == "dataset":
        return from_records(data.to_list(), name="Dataset", on_error=on_error, columns=columns)
    if kind == "dataframe":
        return from_records(data.to_dict(orient="records"), name="DataFrame", on_error=on_error, columns=columns)
    return from_records(data, name="list", on_error=on_error, columns=columns)


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``--columns instruction=prompt,output=response`` as the ``columns`` mapping (None when empty).

    >>> parse_columns("instruction=prompt, output=response")
    {'instruction': 'prompt', 'output': 'response'}
    """
    if not text:
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ConfigError("--columns takes FIELD=COLUMN pairs, comma-separated (e.g. instruction=prompt,"
                              f"output=response); got {part.strip()!r}")
        out[ours.strip()] = theirs.strip()
    return check_columns(out)


#: ``--columns``' help, shared by ``select`` and ``extract``.
COLUMNS_HELP = ("read differently named fields: FIELD=COLUMN pairs, comma-separated, e.g. "
                "instruction=prompt,output=response (fields: " + ", ".join(FIELDS) + ")")
#: The data argument's help, shared by ``select`` and ``extract``.
DATA_HELP = (".jsonl, .json, .parquet, .csv or .tsv (text ones optionally .gz), a datasets .arrow file or "
             "save_to_disk folder, or a Hugging Face dataset id owner/name[:split] (offline: from the local cache)")

__all__ = ["ACCEPTED", "COLUMNS_HELP", "DATA_HELP", "Kind", "check_data", "describe", "load_data", "parse_columns"]
