"""Containers in, rows out: every file type, folder and hub id that coreselect reads.

:func:`read_rows` turns a path or a Hugging Face dataset id into ``(line, record)`` rows and what
export needs to write a subset back; :mod:`coreselect.data` then validates and normalises the
records. Line numbers are what an error names:

=================================  =========  ===============================  ======================
source                             container  line numbers                     default export (``-o``)
=================================  =========  ===============================  ======================
``.jsonl`` / ``.ndjson`` (``.gz``)  jsonl      file lines                       ``core.jsonl`` (byte-exact)
``.json`` (``.gz``)                 json       line where the record starts     ``core.json``
``.parquet``                        parquet    rows, from 1                     ``core.parquet``
``.csv`` / ``.tsv`` (``.gz``)       csv / tsv  line where the record starts     ``core.csv`` / ``core.tsv``
``.arrow`` (``datasets``' files)    arrow      rows, from 1                     ``core.jsonl``
``save_to_disk`` folder             disk       rows, from 1                     ``core.jsonl``
``owner/name[:split]`` (the Hub)    hub        rows, from 1                     ``core.jsonl``
=================================  =========  ===============================  ======================

CSV/TSV cells are text: Alpaca columns (``instruction``, ``input``, ``output``) map directly; a
``conversations`` or ``messages`` cell holding a JSON list is parsed (and written back as JSON),
as is a ``prompt`` or ``completion`` cell holding a JSON list of messages.

Examples
--------
>>> container_of("train.csv.gz"), container_of("data.arrow"), container_of("notes.txt")
(('csv', True), ('arrow', False), None)
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreselect.errors import DataError

log = logging.getLogger(__name__)

#: Text containers (optionally gzipped) and binary ones, by file name ending.
TEXT_CONTAINERS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
BINARY_CONTAINERS = {".parquet": "parquet", ".arrow": "arrow"}
ACCEPTED = ("expected .jsonl, .json, .parquet, .csv, .tsv or .arrow (text ones optionally .gz), "
            "a save_to_disk folder or a Hugging Face dataset id")
_CHAT_KEYS = ("conversations", "messages")  # list-valued fields a CSV cell holds as JSON
_MESSAGE_KEYS = ("prompt", "completion")  # TRL's fields, a CSV cell holds as JSON when conversational


class _Invalid(str):
    """Stands in for a record that failed to parse; holds the reason (a :class:`DataError`)."""

    def __new__(cls, err: DataError) -> _Invalid:
        obj = super().__new__(cls, str(err))
        obj.error = err
        return obj


@dataclass
class Rows:
    """What a reader found: ``(line, record)`` rows and how to write a subset back."""

    rows: list[tuple[int, Any]]
    container: str
    compressed: bool
    fingerprint: str
    raw_lines: list[str] | None = None  # JSONL: the exact source lines, for byte-exact export
    empty: str = "empty file"  # what "no records (...)" says when there are none


def container_of(name: str) -> tuple[str, bool] | None:
    """``(container, gzipped)`` from a file name, or None for a name no reader takes."""
    low = name.lower()
    gz = low.endswith(".gz")
    base = low[:-3] if gz else low
    for ext, kind in TEXT_CONTAINERS.items():
        if base.endswith(ext):
            return kind, gz
    for ext, kind in BINARY_CONTAINERS.items():
        if base.endswith(ext) and not gz:
            return kind, False
    return None


def read_rows(source: str | Path) -> Rows:
    """Read a data file, a ``save_to_disk`` folder or a Hugging Face dataset id into rows.

    File-level problems (unreadable, corrupt, truncated) raise :class:`DataError`; a record that
    does not parse becomes an ``_Invalid`` row, so that every bad record is reported in one pass.
    """
    p = Path(source)
    if p.is_dir():
        if (p / "state.json").is_file() or (p / "dataset_dict.json").is_file():
            return _read_disk(p)
        raise DataError(str(p), "is a directory, not a data file or a save_to_disk folder")
    kind = container_of(p.name)
    if not p.exists() and str(source).startswith("<") and str(source).endswith(">"):  # a manifest's "<DataFrame>"
        raise DataError(str(source), "records that were in memory (coreselect.select on a DataFrame, a Dataset or "
                                     "a list) cannot be read back: save them to a file and pass that")
    if not p.exists():
        from coreselect import hub

        if kind is None and hub.looks_like_id(str(source)):
            records, fingerprint = hub.load(str(source))
            return Rows([(i + 1, r) for i, r in enumerate(records)], "hub", False, fingerprint, empty="empty split")
        raise DataError(str(p), "file not found")
    if kind is None:
        raise DataError(str(p), f"unknown file type ({ACCEPTED})")
    container, compressed = kind
    if container in BINARY_CONTAINERS.values():
        fingerprint = _sha256_files([p])
        table = _read_parquet(p) if container == "parquet" else _read_arrow(p)
        return Rows(_table_rows(table), container, False, fingerprint, empty="no rows")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise DataError(str(p), f"cannot read file ({err.strerror or err})") from None
    fingerprint = "sha256:" + hashlib.sha256(data).hexdigest()
    if compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(str(p), f"corrupted gzip ({err})") from None
    empty = "empty file" if not data else "only whitespace" if not data.strip() else "empty list"
    text = decode(p, data)
    raw: list[str] | None = None
    if container == "jsonl":
        rows, raw = read_jsonl(p, text)
    elif container == "json":
        rows = read_json_array(p, text)
    else:
        rows = read_csv(p, text, "\t" if container == "tsv" else ",")
        empty = empty if not text.strip() else "no rows after the header"
    return Rows(rows, container, compressed, fingerprint, raw, empty)


def decode(p: Path, data: bytes) -> str:
    """UTF-8 text of a file (a leading byte-order mark dropped); NUL bytes and bad UTF-8 are errors."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DataError(str(p), "NUL byte in file (binary data?)", line=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(str(p), f"invalid UTF-8 at byte {err.start}", line=line) from None
    return text.removeprefix("\ufeff")


def jsonl_lines(text: str) -> list[str]:
    r"""The lines of JSON Lines text: split on ``\n`` only, a trailing ``\r`` (CRLF) dropped.

    Not ``str.splitlines()``, which also breaks at characters that JSON strings may hold as they
    are (U+2028, U+2029, U+0085, form feed, ...); a final newline ends the last line.

    >>> jsonl_lines('{"a": "x\u2028y\x85z"}\r\n{"b": 1}\n')
    ['{"a": "x\u2028y\x85z"}', '{"b": 1}']
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


#: Raw control characters inside strings are accepted (RFC 8259 wants them escaped, but the
#: record is unambiguous and Python's own ``json`` reads it with ``strict=False``).
_DECODER = json.JSONDecoder(strict=False)


def read_jsonl(p: Path, text: str) -> tuple[list[tuple[int, Any]], list[str]]:
    r"""JSON Lines: one row per non-blank line, an ``_Invalid`` row for a line that is not JSON.

    Lines end at ``\n`` alone (:func:`jsonl_lines`), so that a record's line number and its
    position among the records are the ones every other tool sees.
    """
    rows: list[tuple[int, Any]] = []
    raw: list[str] = []
    for n, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, _DECODER.decode(line)))
        except (ValueError, RecursionError) as err:
            rows.append((n, _Invalid(DataError(str(p), _json_problem(err), line=n))))
            raw.append("")
            continue
        raw.append(line)
    return rows, raw


def _json_problem(err: ValueError | RecursionError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON ({err.msg} at column {err.colno})"
    if isinstance(err, RecursionError):
        return "invalid JSON (nested too deeply)"
    return f"invalid JSON ({str(err).splitlines()[0]})"  # e.g. an integer with > 4300 digits


def read_json_array(p: Path, text: str) -> list[tuple[int, Any]]:
    """A JSON array, each record numbered by the line it starts on (JSON Lines in a .json file are accepted)."""
    dec = _DECODER
    pos, line = 0, 1
    n = len(text)

    def skip_ws(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    pos = skip_ws(pos)
    if pos == n:
        return []
    if text[pos] != "[":
        # A JSON file holding one object per line is common enough to accept.
        return read_jsonl(p, text)[0]
    pos = skip_ws(pos + 1)
    rows: list[tuple[int, Any]] = []
    last = 0
    while True:
        line += text.count("\n", last, pos)
        last = pos
        if pos >= n:
            raise DataError(str(p), "truncated JSON array (no closing ])", line=line)
        if text[pos] == "]" and not rows:
            return rows
        try:
            obj, end = dec.raw_decode(text, pos)
        except (ValueError, RecursionError) as err:
            if isinstance(err, json.JSONDecodeError) and err.pos >= len(text.rstrip()):
                raise DataError(str(p), "truncated JSON array (the file ends inside a record)",
                                line=err.lineno) from None
            at = err.lineno if isinstance(err, json.JSONDecodeError) else line
            raise DataError(str(p), _json_problem(err), line=at) from None
        rows.append((line, obj))
        pos = skip_ws(end)
        if pos < n and text[pos] == ",":
            pos = skip_ws(pos + 1)
        elif pos < n and text[pos] == "]":
            if skip_ws(pos + 1) != n:
                raise DataError(str(p), "text after the closing ]", line=line + text.count("\n", last, pos))
            return rows
        else:
            raise DataError(str(p), "truncated JSON array (expected , or ])",
                            line=line + text.count("\n", last, pos))


def read_csv(p: Path, text: str, delimiter: str) -> list[tuple[int, Any]]:
    """CSV/TSV with a header row; each record numbered by the line it starts on.

    A row with another number of fields than the header is an ``_Invalid`` row; a quoting error
    stops the file (the rows after it cannot be trusted).

    >>> read_csv(Path("d.csv"), 'instruction,output\\n"Add 2,\\n3",5\\nName a colour,Blue\\n', ",")
    [(2, {'instruction': 'Add 2,\\n3', 'output': '5'}), (4, {'instruction': 'Name a colour', 'output': 'Blue'})]
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the default 128 KiB cap refuses long answers
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, Any]] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if header is None:
                header = [h.strip() for h in row]
                dup = next((h for i, h in enumerate(header) if h in header[:i]), None)
                if dup is not None:
                    raise DataError(str(p), f"column {dup!r} appears twice in the header", line=line)
                continue
            if len(row) != len(header):
                problem = f"has {len(row)} fields, the header has {len(header)}"
                rows.append((line, _Invalid(DataError(str(p), problem, line=line))))
                continue
            rec: dict[str, Any] = dict(zip(header, row))
            for key in (*_CHAT_KEYS, *_MESSAGE_KEYS):
                v = rec.get(key)
                if isinstance(v, str) and v.lstrip().startswith("["):
                    try:
                        parsed = json.loads(v)
                    except ValueError:
                        continue  # left a string: validation says "must be a non-empty list"
                    if key in _CHAT_KEYS or (isinstance(parsed, list) and all(isinstance(m, dict) for m in parsed)):
                        rec[key] = parsed  # a prompt/completion cell: only a list of messages
            rows.append((line, rec))
    except csv.Error as err:
        raise DataError(str(p), f"invalid {'TSV' if delimiter == chr(9) else 'CSV'} ({err})",
                        line=reader.line_num) from None
    return rows


def _read_parquet(p: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p)
    except (pa.ArrowException, OSError) as err:
        raise DataError(str(p), f"cannot read Parquet ({err})") from None


def _read_arrow(p: Path) -> Any:
    """An Arrow IPC stream (what ``datasets`` writes) or file."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(p)) as src:
            try:
                return pa.ipc.open_stream(src).read_all()
            except pa.ArrowInvalid:
                src.seek(0)
                return pa.ipc.open_file(src).read_all()
    except (pa.ArrowException, OSError) as err:
        raise DataError(str(p), f"cannot read Arrow ({err})") from None


def _read_disk(p: Path) -> Rows:
    """A ``datasets`` ``save_to_disk`` folder: its Arrow shards in order (the ``train`` split of a DatasetDict)."""
    folder = p
    if (p / "dataset_dict.json").is_file():
        splits = _json_file(p / "dataset_dict.json").get("splits") or []
        pick = "train" if "train" in splits else splits[0] if len(splits) == 1 else None
        if pick is None:
            raise DataError(str(p), f"holds the splits {', '.join(map(str, splits))}: name one, e.g. {p / str(splits[0])}"
                            if splits else "dataset_dict.json lists no splits")
        log.info("%s: reading the %r split", p, pick)
        folder = p / pick
    state = _json_file(folder / "state.json")
    try:
        files = [folder / f["filename"] for f in state["_data_files"]]
    except (KeyError, TypeError):
        raise DataError(str(folder / "state.json"), "not a save_to_disk state (no _data_files list)") from None
    fingerprint = _sha256_files(files)
    import pyarrow as pa

    tables = [_read_arrow(f) for f in files]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0] if tables else pa.table({})
    return Rows(_table_rows(table), "disk", False, fingerprint, empty="no rows")


def _json_file(p: Path) -> dict[str, Any]:
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(str(p), f"cannot read ({err})") from None
    if not isinstance(d, dict):
        raise DataError(str(p), "must hold a JSON object")
    return d


def _table_rows(table: Any) -> list[tuple[int, Any]]:
    return [(i + 1, r) for i, r in enumerate(table.to_pylist())]


def _sha256_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        try:
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError as err:
            raise DataError(str(f), f"cannot read file ({err.strerror or err})") from None
    return "sha256:" + h.hexdigest()


__all__ = ["ACCEPTED", "Rows", "container_of", "decode", "jsonl_lines", "read_csv", "read_json_array", "read_jsonl",
           "read_rows"]
