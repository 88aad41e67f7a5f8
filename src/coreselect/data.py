"""Instruction datasets in, instruction datasets out: records -> validated, normalised examples.

Record formats (the readers of :mod:`coreselect.readers` bring them from JSON Lines, JSON,
Parquet, CSV/TSV, Arrow, ``save_to_disk`` folders and Hugging Face dataset ids;
:func:`from_records` from lists of dicts, DataFrames and ``datasets.Dataset`` objects):

* Alpaca: ``{"instruction", "input" (optional), "output"}``
* ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}``
* chat messages: ``{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}``
  (``conversations`` may hold such ``role``/``content`` turns too, as Unsloth writes them)
* TRL's prompt-completion: ``{"prompt": ..., "completion": ...}``, two strings or two lists of
  ``role``/``content`` messages (see :mod:`coreselect.formats`)

Fields named otherwise are mapped with ``columns={"instruction": "question", ...}`` (coreselect's
name -> yours); errors then name your field, and records in no known format are refused once,
naming the fields found and the mapping that would read them. Every record becomes an :class:`Example` holding
normalised chat ``messages`` and the original record untouched, so that export
(:mod:`coreselect.output`) writes back exactly what came in. Bad records are all found in one
pass: :class:`~coreselect.errors.BadRecordsError` lists the first :data:`MAX_LISTED`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coreselect.errors import BadRecordsError, ConfigError, DataError
from coreselect.formats import Format, UnknownFormat, parse, unknown_format
from coreselect.readers import Rows, _Invalid, read_rows

log = logging.getLogger(__name__)

#: Where the records came from (see :mod:`coreselect.readers`); ``memory`` for in-memory records.
Container = Literal["jsonl", "json", "parquet", "csv", "tsv", "arrow", "disk", "hub", "memory"]
#: How many bad records one error lists (all are counted).
MAX_LISTED = 20
#: The record fields ``columns=`` can map to a differently named field.
FIELDS = ("instruction", "input", "output", "system", "conversations", "messages")


@dataclass(frozen=True)
class Example:
    """One instruction example.

    ``index`` is its row among the valid examples (the row of its features); ``source_index``
    its 0-based position among all records of the file (skipped ones included); ``messages`` a
    tuple of ``(role, content)`` with roles ``system``, ``user`` and ``assistant``; ``record``
    the original record; ``line`` its 1-based line in the file (row number for Parquet, Arrow,
    hub and in-memory records).
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
    """Examples read from one source, with what is needed to write a subset back."""

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
    #: The ``columns=`` mapping the records were read with (None: the fields' own names).
    columns: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.examples)


def fold_text(*parts: str) -> str:
    """Text parts of a record folded for "is this the same record" checks: joined, lower-cased,
    every run of whitespace one space. The one normaliser behind the pool/eval overlap check
    (:func:`coreselect.compare.stages.text_hash`) and duplicate detection when pools are built
    (:func:`coreselect.compare.pools.normalised_text`).

    The parts are joined with U+001F, which ``str.split`` counts as whitespace, so in effect with
    a space; kept so, since cached stage keys and built pools hash this text.

    >>> fold_text("Say  HI there", "To Bob ")
    'say hi there to bob'
    """
    return " ".join("\x1f".join(parts).lower().split())


def load_dataset(path: str | os.PathLike[str], *, on_error: Literal["raise", "skip"] = "raise",
                 columns: Mapping[str, str] | None = None) -> Dataset:
    """Read an instruction dataset: a file, a ``save_to_disk`` folder or a Hugging Face dataset id.

    Bad records raise one :class:`~coreselect.errors.BadRecordsError` naming each (up to
    :data:`MAX_LISTED`), or are skipped with ``on_error="skip"``.

    Examples
    --------
    >>> from coreselect.demo import demo_path
    >>> ds = load_dataset(demo_path())
    >>> ds.format, len(ds) > 200
    ('alpaca', True)
    """
    cols = check_columns(columns)
    rows = read_rows(path)
    return _build(str(path), rows, on_error, cols)


def from_records(records: Iterable[Any], *, name: str = "list", on_error: Literal["raise", "skip"] = "raise",
                 columns: Mapping[str, str] | None = None) -> Dataset:
    """In-memory records (dicts) as a :class:`Dataset`; errors name them ``name[i]`` (0-based).

    The fingerprint is that of the records as JSON Lines, so the feature cache works as for a file.

    >>> ds = from_records([{"prompt": "Hi", "output": "Hello"}], columns={"instruction": "prompt"})
    >>> ds.examples[0].messages, ds.container, str(ds.path)
    ((('user', 'Hi'), ('assistant', 'Hello')), 'memory', '<list>')
    >>> from_records([{"instruction": "Hi"}], name="DataFrame")
    Traceback (most recent call last):
    ...
    coreselect.errors.BadRecordsError: DataFrame[0]: field "output": missing
    """
    cols = check_columns(columns)
    rows: list[tuple[int, Any]] = []
    raw: list[str] = []
    h = hashlib.sha256()
    for i, rec in enumerate(records):
        try:
            line = json.dumps(_clean(rec), ensure_ascii=False, default=_jsonable)
        except (TypeError, ValueError) as err:
            rows.append((i + 1, _Invalid(DataError(name, f"cannot be written as JSON ({err})", line=i + 1))))
            raw.append("")
            continue
        h.update(line.encode("utf-8", "surrogatepass") + b"\n")
        rows.append((i + 1, json.loads(line)))
        raw.append(line)
    src = Rows(rows, "memory", False, "sha256:" + h.hexdigest(), raw, empty="empty list")

    def locate(err: DataError) -> DataError:
        return DataError(f"{name}[{err.line - 1}]", err.message, field=err.field) if err.line else err

    return _build(f"<{name}>", src, on_error, cols, locate)


def check_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    """``columns`` checked: keys among :data:`FIELDS`, values column names.

    >>> check_columns({"prompt": "instruction"})
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: columns: unknown field 'prompt' (columns maps coreselect's field to yours: did you mean {'instruction': 'prompt'}?)
    """
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise ConfigError(f"columns must be a dict from coreselect's field names ({', '.join(FIELDS)}) to yours, "
                          f"e.g. {{'instruction': 'prompt'}}; got {type(columns).__name__}")
    for ours, theirs in columns.items():
        if ours not in FIELDS:
            if theirs in FIELDS:
                hint = f"columns maps coreselect's field to yours: did you mean {{{theirs!r}: {ours!r}}}?"
            else:
                close = difflib.get_close_matches(str(ours), FIELDS, n=1)
                hint = (f"did you mean {close[0]!r}? " if close else "") + f"fields: {', '.join(FIELDS)}"
            raise ConfigError(f"columns: unknown field {ours!r} ({hint})")
        if not isinstance(theirs, str) or not theirs:
            raise ConfigError(f"columns: {ours!r} must map to a column name, got {theirs!r}")
    return dict(columns)


def _build(name: str, src: Rows, on_error: str, columns: dict[str, str],
           locate: Callable[[DataError], DataError] | None = None) -> Dataset:
    """Validate and normalise the rows of one source (the one loop every source goes through)."""
    p = Path(name)
    if not src.rows:
        raise DataError(name, f"no records ({src.empty})")
    fingerprint = src.fingerprint
    if columns:  # the same file read through another mapping gives other examples, other features
        key = fingerprint + json.dumps(columns, sort_keys=True)
        fingerprint = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    ds = Dataset(p, "alpaca", src.container, src.compressed, [], fingerprint,  # type: ignore[arg-type]
                 columns=columns or None)
    bad: list[DataError] = []
    n_bad = 0
    fmt: Format | None = None
    keep_lines: list[str] = []
    seen: dict[tuple[tuple[str, str], ...], int] = {}  # conversation -> its first line
    dup_example = ""
    unknown: list[tuple[int, Any]] = []  # records in no known format: said once when no record is in one
    for i, (line, rec) in enumerate(src.rows):
        err: DataError | None = rec.error if isinstance(rec, _Invalid) else None
        if err is None:
            view = _view(rec, columns)
            try:
                rec_fmt, messages = parse(p, line, view)
                if fmt is None:
                    fmt = rec_fmt
                elif rec_fmt != fmt:
                    raise DataError(str(p), f"{rec_fmt} record after {fmt} records (mixed formats)", line=line)
            except UnknownFormat as e:
                unknown.append((line, rec))
                err = e
            except DataError as e:
                err = _their_field(e, columns)
        if err is not None:
            err = locate(err) if locate else err
            if on_error == "skip":
                ds.skipped.append(str(err))
            else:
                n_bad += 1
                if len(bad) < MAX_LISTED:
                    bad.append(err)
            continue
        if messages in seen:
            ds.duplicates += 1
            dup_example = dup_example or f"line {line} repeats line {seen[messages]}"
        else:
            seen[messages] = line
        ds.examples.append(Example(len(ds.examples), messages, rec, line, i))
        if src.raw_lines is not None:
            keep_lines.append(src.raw_lines[i])
    if unknown and not ds.examples:  # not one line per record: the fields and the mapping, once
        err = unknown_format(p, unknown[0][0], [r for _, r in unknown[:20]])
        raise locate(err) if locate else err
    if bad:
        raise BadRecordsError(bad, total=n_bad)
    if not ds.examples:
        raise DataError(name, f"no valid records ({len(ds.skipped)} skipped)")
    ds.format = fmt or "alpaca"
    ds.raw_lines = keep_lines if src.raw_lines is not None else None
    if ds.skipped:
        log.warning("%s: skipped %d bad records", name, len(ds.skipped))
    if ds.duplicates:
        log.warning("%s: %d duplicate records, kept (same conversation as an earlier record, e.g. %s)",
                    name, ds.duplicates, dup_example)
    return ds


def _view(rec: Any, columns: dict[str, str]) -> Any:
    """The record as the parsers read it: each mapped field under coreselect's name (only).

    >>> _view({"conversations": [], "id": 1}, {"messages": "conversations"})
    {'id': 1, 'messages': []}
    """
    if not columns or not isinstance(rec, dict):
        return rec
    mapped = set(columns) | set(columns.values())  # a mapped field is read under coreselect's name only
    view = {k: v for k, v in rec.items() if k not in mapped}
    for ours, theirs in columns.items():
        if theirs in rec:
            view[ours] = rec[theirs]
    return view


def _their_field(err: DataError, columns: dict[str, str]) -> DataError:
    """``err`` naming the user's field (``prompt``) rather than coreselect's (``instruction``)."""
    if not columns or not err.field:
        return err
    for ours, theirs in columns.items():
        if err.field == ours or err.field.startswith((ours + "[", ours + ".")):
            return DataError(err.path, err.message, line=err.line, field=theirs + err.field[len(ours):])
    return err


def _clean(rec: Any) -> Any:
    """A DataFrame's missing values (float NaN) as null."""
    if isinstance(rec, Mapping):
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
    return rec


def _jsonable(obj: Any) -> Any:
    """numpy values, timestamps and pandas' NA for ``json.dumps``."""
    if type(obj).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"a {type(obj).__name__} is not JSON")
