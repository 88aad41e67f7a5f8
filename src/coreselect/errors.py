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
        what = f'field "{field}": {message}' if field else message
        super().__init__(f"{where}: {what}")


class ConfigError(CoreselectError):
    """A bad option or parameter value."""


class ModelError(CoreselectError):
    """A model could not be found or loaded."""


class StoreError(CoreselectError):
    """A feature store is missing, incomplete or does not match the data."""


class OutputExistsError(CoreselectError):
    """Refusing to overwrite an existing file without ``--overwrite``."""
