"""Instruction datasets in, instruction datasets out.

Formats read (each optionally ``.gz``; JSON array or JSON Lines; Parquet):

* Alpaca: ``{"instruction", "input" (optional), "output"}``
* ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}``
* chat messages: ``{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}``

Every record becomes an :class:`Example` holding normalised chat ``messages`` and the original
record untouched, so that export (:mod:`coreselect.output`) writes back exactly what came in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coreselect.errors import DataError

log = logging.getLogger(__name__)

Format = Literal["alpaca", "sharegpt", "messages"]
Container = Literal["jsonl", "json", "parquet"]

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}
_CHAT_ROLES = {"user", "assistant", "system"}


class _Invalid(str):
    """Stands in for a record that failed to parse (``on_error="skip"``); holds the reason."""


@dataclass(frozen=True)
class Example:
    """One instruction example.

    ``index`` is its row among the valid examples (the row of its features); ``source_index``
    its 0-based position among all records of the file (skipped ones included); ``messages`` a
    tuple of ``(role, content)`` with roles ``system``, ``user`` and ``assistant``; ``record``
    the original record; ``line`` its 1-based line in the file (row number for Parquet).
    """

    index: int
    messages: tuple[tuple[str, str], ...]
    record: dict[str, Any]
    line: int
    source_index: int = -1

    @property
    def prompt(self) -> str:
        """All user turns, joined (for length statistics and text embeddings)."""
        return "\n\n".join(c for r, c in self.messages if r == "user")

    @property
    def response(self) -> str:
        """All assistant turns, joined."""
        return "\n\n".join(c for r, c in self.messages if r == "assistant")


@dataclass
class Dataset:
    """Examples read from one file, with what is needed to write a subset back."""

    path: Path
    format: Format
    container: Container
    compressed: bool
    examples: list[Example]
    fingerprint: str
    raw_lines: list[str] | None = None  # JSONL: the exact source lines, for byte-exact export
    skipped: list[str] = field(default_factory=list)  # one-line reasons (``on_error="skip"``)
    #: Records whose conversation repeats an earlier record's; they are kept (and warned about).
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.examples)


def load_dataset(path: str | os.PathLike[str], *, on_error: Literal["raise", "skip"] = "raise") -> Dataset:
    """Read an instruction dataset; bad records raise :class:`DataError` (or are skipped).

    Examples
    --------
    >>> from coreselect.demo import demo_path
    >>> ds = load_dataset(demo_path())
    >>> ds.format, len(ds) > 200
    ('alpaca', True)
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(str(p), "is a directory, not a data file")
    name = p.name.lower()
    compressed = name.endswith(".gz")
    base = name[:-3] if compressed else name
    if base.endswith(".jsonl") or base.endswith(".ndjson"):
        container: Container = "jsonl"
    elif base.endswith(".json"):
        container = "json"
    elif base.endswith(".parquet") and not compressed:
        container = "parquet"
    else:
        raise DataError(str(p), "unknown file type (expected .jsonl, .json or .parquet, optionally .gz)")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(str(p), "file not found") from None
    except OSError as err:
        raise DataError(str(p), f"cannot read file ({err.strerror or err})") from None
    fingerprint = "sha256:" + hashlib.sha256(data).hexdigest()
    if compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(str(p), f"corrupted gzip ({err})") from None
    raw_lines: list[str] | None = None
    if container == "parquet":
        rows = _read_parquet(p)
    else:
        text = _decode(p, data)
        if container == "jsonl":
            rows, raw_lines = _read_jsonl(p, text, on_error)
        else:
            rows = _read_json_array(p, text)
    if not rows:
        what = "empty file" if not data else "only whitespace" if not data.strip() else "empty list"
        raise DataError(str(p), f"no records ({what})")
    ds = Dataset(p, "alpaca", container, compressed, [], fingerprint)
    fmt: Format | None = None
    keep_lines: list[str] = []
    seen: dict[tuple[tuple[str, str], ...], int] = {}  # conversation -> its first line
    dup_example = ""
    for i, (line, rec) in enumerate(rows):
        if isinstance(rec, _Invalid):
            ds.skipped.append(str(rec))
            continue
        try:
            rec_fmt = _detect(p, line, rec)
            if fmt is None:
                fmt = rec_fmt
            elif rec_fmt != fmt:
                raise DataError(str(p), f"{rec_fmt} record after {fmt} records (mixed formats)", line=line)
            messages = _PARSERS[rec_fmt](p, line, rec)
        except DataError as err:
            if on_error == "raise":
                raise
            ds.skipped.append(str(err))
            continue
        if messages in seen:
            ds.duplicates += 1
            dup_example = dup_example or f"line {line} repeats line {seen[messages]}"
        else:
            seen[messages] = line
        ds.examples.append(Example(len(ds.examples), messages, rec, line, i))
        if raw_lines is not None:
            keep_lines.append(raw_lines[i])
    if not ds.examples:
        raise DataError(str(p), f"no valid records ({len(ds.skipped)} skipped)")
    ds.format = fmt or "alpaca"
    ds.raw_lines = keep_lines if raw_lines is not None else None
    if ds.skipped:
        log.warning("%s: skipped %d bad records", p, len(ds.skipped))
    if ds.duplicates:
        log.warning("%s: %d duplicate records, kept (same conversation as an earlier record, e.g. %s)",
                    p, ds.duplicates, dup_example)
    return ds


def _decode(p: Path, data: bytes) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DataError(str(p), "NUL byte in file (binary data?)", line=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(str(p), f"invalid UTF-8 at byte {err.start}", line=line) from None
    return text.removeprefix("\ufeff")


def _read_jsonl(p: Path, text: str, on_error: str) -> tuple[list[tuple[int, Any]], list[str]]:
    rows: list[tuple[int, Any]] = []
    raw: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except (ValueError, RecursionError) as err:
            e = DataError(str(p), _json_problem(err), line=n)
            if on_error == "raise":
                raise e from None
            rows.append((n, _Invalid(e)))
            raw.append("")
            continue
        raw.append(line.rstrip("\r"))
    return rows, raw


def _json_problem(err: ValueError | RecursionError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON ({err.msg} at column {err.colno})"
    if isinstance(err, RecursionError):
        return "invalid JSON (nested too deeply)"
    return f"invalid JSON ({str(err).splitlines()[0]})"  # e.g. an integer with > 4300 digits


def _read_json_array(p: Path, text: str) -> list[tuple[int, Any]]:
    dec = json.JSONDecoder()
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
        return _read_jsonl(p, text, "raise")[0]
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


def _read_parquet(p: Path) -> list[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as err:
        raise DataError(str(p), f"cannot read Parquet ({err})") from None
    return [(i + 1, r) for i, r in enumerate(table.to_pylist())]


def _detect(p: Path, line: int, rec: Any) -> Format:
    if not isinstance(rec, dict):
        raise DataError(str(p), f"record is a JSON {_json_type(rec)}, expected an object", line=line)
    if "conversations" in rec:
        return "sharegpt"
    if "messages" in rec:
        return "messages"
    if "instruction" in rec or "output" in rec:
        return "alpaca"
    raise DataError(str(p), "unknown record format (expected instruction/output, conversations "
                    "or messages)", line=line)


def _text(p: Path, line: int, rec: dict, key: str, *, required: bool = True, where: str = "") -> str:
    name = where + key
    if key not in rec:
        if required:
            raise DataError(str(p), "missing", line=line, field=name)
        return ""
    v = rec[key]
    if v is None:
        if required:
            raise DataError(str(p), "is null", line=line, field=name)
        return ""
    if not isinstance(v, str):
        raise DataError(str(p), f"must be a string, got a JSON {_json_type(v)}", line=line, field=name)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(str(p), "holds an invalid \\u escape (a lone surrogate)", line=line, field=name) from None
    return v


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(v), type(v).__name__)


def _alpaca(p: Path, line: int, rec: dict) -> tuple[tuple[str, str], ...]:
    instruction = _text(p, line, rec, "instruction")
    inp = _text(p, line, rec, "input", required=False)
    output = _text(p, line, rec, "output")
    if not instruction.strip() and not inp.strip():
        raise DataError(str(p), "is empty", line=line, field="instruction")
    if not output.strip():
        raise DataError(str(p), "is empty", line=line, field="output")
    user = f"{instruction}\n\n{inp}" if inp.strip() else instruction
    msgs = [("user", user), ("assistant", output)]
    system = rec.get("system")
    if isinstance(system, str) and system.strip():
        msgs.insert(0, ("system", system))
    return tuple(msgs)


def _turns(p: Path, line: int, rec: dict, key: str, role_key: str, text_key: str,
           roles: dict[str, str]) -> tuple[tuple[str, str], ...]:
    turns = rec[key]
    if not isinstance(turns, list) or not turns:
        raise DataError(str(p), "must be a non-empty list", line=line, field=key)
    out = []
    for j, t in enumerate(turns):
        where = f"{key}[{j}]."
        if not isinstance(t, dict):
            raise DataError(str(p), "must be an object", line=line, field=f"{key}[{j}]")
        role = _text(p, line, t, role_key, where=where)
        if role not in roles:
            raise DataError(str(p), f"unknown role {role!r} (expected one of {', '.join(sorted(roles))})",
                            line=line, field=where + role_key)
        out.append((roles[role], _text(p, line, t, text_key, where=where)))
    if not any(r == "assistant" and c.strip() for r, c in out):
        raise DataError(str(p), "no non-empty assistant turn", line=line, field=key)
    if not any(r == "user" and c.strip() for r, c in out):
        raise DataError(str(p), "no non-empty user turn", line=line, field=key)
    return tuple(out)


_PARSERS = {
    "alpaca": _alpaca,
    "sharegpt": lambda p, n, r: _turns(p, n, r, "conversations", "from", "value", _SHAREGPT_ROLES),
    "messages": lambda p, n, r: _turns(p, n, r, "messages", "role", "content",
                                       {k: k for k in _CHAT_ROLES}),
}
