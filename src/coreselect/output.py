"""Writing outputs safely: never half-written, never over what the user had, in the format the
output's name says (the input's by default); every check runs before any work."""

from __future__ import annotations

import functools
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from coreselect.data import Dataset
from coreselect.errors import OutputError, OutputExistsError


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
    """Refuse to clobber an existing file unless asked to, and an input file always; refuse a
    file whose folder cannot be made or written (:func:`check_folder`)."""
    check_not_input(path, inputs)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    if path.is_dir():
        raise OutputExistsError(f"{path}: is a directory")
    check_folder(path)


def check_folder(path: Path) -> None:
    """A one-line :class:`OutputError` when ``path`` cannot be written: a folder on its way is a
    file, or the nearest existing folder (where the missing ones would be made) is not writable.
    Nothing is created.

    >>> check_folder(Path(__file__) / "core.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    coreselect.errors.OutputError: .../output.py/core.jsonl: cannot be written (.../output.py is a file, not a folder)
    """
    problem = _folder_problem(path.absolute().parent)
    if problem:
        raise OutputError(f"{path}: cannot be written ({problem})")


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (made when missing), or None."""
    while not folder.exists() and folder.parent != folder:  # the missing folders are made on write
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    return None


def check_output_name(out: Path, expected: str) -> None:
    """A one-line :class:`OutputError` unless ``out``'s name ends in a type export writes;
    ``expected`` is the input's (``.jsonl``), named first. Checked before any work.

    >>> check_output_name(Path("core.txt"), ".jsonl")
    Traceback (most recent call last):
    ...
    coreselect.errors.OutputError: core.txt: unknown output type (expected .jsonl like the input, or .json, .parquet, .csv, .tsv, .arrow; text ones optionally .gz)
    """
    from coreselect.readers import container_of

    if container_of(out.name) is None:
        others = [e for e in (".jsonl", ".json", ".parquet", ".csv", ".tsv", ".arrow") if e != expected.removesuffix(".gz")]
        raise OutputError(f"{out}: unknown output type (expected {expected} like the input, or {', '.join(others)}; "
                          "text ones optionally .gz)")


def check_store_folder(folder: Path) -> None:
    """A one-line :class:`OutputError` when a feature store cannot be made at ``folder`` (``-o`` of
    ``extract``): it is a file, or its folder cannot be made or written."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a directory")  # as the store says it
    problem = _folder_problem(folder.absolute())
    if problem:
        raise OutputError(f"{folder}: cannot be created or written ({problem})")


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


def output_container(out: Path) -> tuple[str, bool]:
    """``(container, gzipped)`` that ``-o out`` is written in, from its name like the readers'
    (:func:`coreselect.readers.container_of`); any other name gets JSON Lines (``select`` refuses
    one first: :func:`check_output_name`).

    >>> output_container(Path("core.csv.gz")), output_container(Path("core.arrow")), output_container(Path("core.txt"))
    (('csv', True), ('arrow', False), ('jsonl', False))
    """
    from coreselect.readers import container_of

    return container_of(out.name) or ("jsonl", out.name.lower().endswith(".gz"))


def subset_bytes(ds: Dataset, order: Sequence[int], out: Path) -> bytes:
    """Serialise the records at ``order`` in the container of ``out`` (which follows the input).

    JSON Lines from JSON Lines (or in-memory records) are the source lines byte for byte; CSV/TSV
    cells that hold lists or objects are written as JSON (which the CSV reader parses back for
    ``conversations`` and ``messages``); ``.arrow`` is an Arrow IPC stream, as ``datasets`` writes.
    """
    container, compressed = output_container(out)
    records = [ds.examples[i].record for i in order]
    if container in ("parquet", "arrow"):
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records)
        buf = io.BytesIO()
        if container == "parquet":
            pq.write_table(table, buf)
        else:
            with pa.ipc.new_stream(buf, table.schema) as writer:
                writer.write_table(table)
        return buf.getvalue()
    if container == "json":
        data = (json.dumps(records, ensure_ascii=False, indent=2) + "\n").encode()
    elif container in ("csv", "tsv"):
        data = _csv_bytes(records, "\t" if container == "tsv" else ",")
    else:
        lines: Iterator[str] = (
            ds.raw_lines[i] if ds.raw_lines is not None
            else json.dumps(ds.examples[i].record, ensure_ascii=False) for i in order
        )
        data = "".join(line + "\n" for line in lines).encode()
    # mtime=0 keeps gzip output byte-identical across runs
    return gzip.compress(data, mtime=0) if compressed else data


def _csv_bytes(records: Sequence[dict], delimiter: str) -> bytes:
    import csv
    import io

    header: dict[str, None] = {}
    for rec in records:
        header.update(dict.fromkeys(rec))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    for rec in records:
        w.writerow([_cell(rec.get(k)) for k in header])
    return buf.getvalue().encode()


def _cell(v: object) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def default_output_name(ds: Dataset) -> str:
    """``core.jsonl``-style name in the input's container, e.g. ``core.json.gz``; JSON Lines for
    Arrow files, ``save_to_disk`` folders, Hugging Face ids and in-memory records."""
    ext = {"json": ".json", "parquet": ".parquet", "csv": ".csv", "tsv": ".tsv"}.get(ds.container, ".jsonl")
    return "core" + ext + (".gz" if ds.compressed else "")
