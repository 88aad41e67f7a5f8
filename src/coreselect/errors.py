"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


class CoreselectError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits with code 2.

    Messages that quote another library's error may hold line breaks; ``str`` joins the lines
    with ``" | "`` so that the error always stays on one line.

    Examples
    --------
    >>> str(CoreselectError("cannot load model (first line\\nsecond line)"))
    'cannot load model (first line | second line)'
    """

    def __str__(self) -> str:
        return " | ".join(line.strip() for line in super().__str__().splitlines() if line.strip())


class DataError(CoreselectError):
    """A problem with an input record, located by file, line and field.

    Examples
    --------
    >>> str(DataError("data.jsonl", "missing field", line=3, field="output"))
    'data.jsonl:3: field "output": missing field'
    """

    def __init__(
        self, path: str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = self.path if line is None else f"{self.path}:{line}"
        self.what = f'field "{field}": {message}' if field else message
        super().__init__(f"{where}: {self.what}")


class BadRecordsError(DataError):
    """Every bad record of a file, found in one pass: the first ones listed, all counted.

    One bad record reads exactly as its :class:`DataError`; several are joined with ``"; "``
    (still one line; the file is named once, then ``line N``) and followed by the count.
    ``errors`` holds the listed ones, ``total`` counts them all.

    Examples
    --------
    >>> errs = [DataError("d.jsonl", "missing", line=n, field="output") for n in (2, 5)]
    >>> str(BadRecordsError(errs[:1], total=1))
    'd.jsonl:2: field "output": missing'
    >>> str(BadRecordsError(errs, total=7))
    'd.jsonl:2: field "output": missing; line 5: field "output": missing; ... (7 bad records, the first 2 listed; --on-error skip leaves them out)'
    """

    def __init__(self, errors: list[DataError], *, total: int) -> None:
        first = errors[0]
        self.errors, self.total = list(errors), total
        super().__init__(first.path, first.message, line=first.line, field=first.field)
        if total > 1:
            listed = "; ".join(f"line {e.line}: {e.what}" if i and e.path == first.path and e.line is not None
                               else str(e) for i, e in enumerate(errors))
            more = "; ..." if total > len(errors) else ""
            which = "" if total == len(errors) else f", the first {len(errors)} listed"
            self.args = (f"{listed}{more} ({total} bad records{which}; --on-error skip leaves them out)",)


class ConfigError(CoreselectError):
    """A bad option or parameter value."""


class ModelError(CoreselectError):
    """A model could not be found or loaded."""


class StoreError(CoreselectError):
    """A feature store is missing, incomplete or does not match the data."""


class OutputError(CoreselectError):
    """An output that cannot be written: an unknown type, a folder that cannot be made or written."""


class OutputExistsError(OutputError):
    """Refusing to overwrite an existing file without ``--overwrite``."""
