"""Writing outputs safely: never half-written, never over what the user had, in the input's format."""

from __future__ import annotations

import functools
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from coreselect.data import Dataset
from coreselect.errors import OutputExistsError


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one existing file: same path, a symlink or a hard link to it.

    Examples
    --------
    >>> same_file(__file__, __file__), same_file(__file__, "/no/such/file")
    (True, False)
    """
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing or unreadable: not one file
        return False


def check_not_input(path: Path, inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse an output that is one of the inputs (by inode), ``--overwrite`` or not."""
    for inp in inputs:
        if same_file(path, inp):
            raise OutputExistsError(f"{path}: is the input {inp} (the same file); "
                                    "choose another output, --overwrite never replaces an input")


def check_not_inside(folder: Path, inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse an output folder that is an input or holds one (it is replaced as a whole)."""
    for inp in inputs:
        p = Path(inp)
        if any(same_file(folder, q) for q in (p, *p.absolute().parents)):
            raise OutputExistsError(f"{folder}: holds the input {inp}; "
                                    "choose another output folder, --overwrite never replaces an input")


def check_writable(path: Path, overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Refuse to clobber an existing file unless asked to, and an input file always."""
    check_not_input(path, inputs)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    if path.is_dir():
        raise OutputExistsError(f"{path}: is a directory")


@functools.cache
def _umask() -> int:
    """The process umask, read at the first write (not at import: no work at import time).

    Read once: ``os.umask`` can only be read by setting it, which would race with other threads.
    """
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that it is either absent, old, or complete: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def subset_bytes(ds: Dataset, order: Sequence[int], out: Path) -> bytes:
    """Serialise the records at ``order`` in the container of ``out`` (which follows the input)."""
    name = out.name.lower()
    compressed = name.endswith(".gz")
    base = name[:-3] if compressed else name
    if base.endswith(".parquet"):
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([ds.examples[i].record for i in order]), buf)
        return buf.getvalue()
    if base.endswith(".json"):
        body = json.dumps([ds.examples[i].record for i in order], ensure_ascii=False, indent=2)
        data = (body + "\n").encode()
    else:
        lines: Iterator[str] = (
            ds.raw_lines[i] if ds.raw_lines is not None
            else json.dumps(ds.examples[i].record, ensure_ascii=False) for i in order
        )
        data = "".join(line + "\n" for line in lines).encode()
    # mtime=0 keeps gzip output byte-identical across runs
    return gzip.compress(data, mtime=0) if compressed else data


def default_output_name(ds: Dataset) -> str:
    """``core.jsonl``-style name in the input's container, e.g. ``core.json.gz``."""
    ext = {"jsonl": ".jsonl", "json": ".json", "parquet": ".parquet"}[ds.container]
    return "core" + ext + (".gz" if ds.compressed else "")
