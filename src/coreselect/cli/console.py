"""The CLI's console: which logs, warnings and progress bars reach the terminal.

By default the terminal shows coreselect's own progress (its ``INFO`` lines, as bare messages),
warnings and errors, and the command's one summary on stdout. Other libraries (faiss' loader,
transformers, sentence-transformers, datasets, huggingface_hub, lm-eval) and Python warnings
(``FutureWarning``, ``DeprecationWarning``...) are silent unless they report an error; ``-v``
shows them (``-vv``: debug), ``-q`` keeps warnings and errors only. ``--no-progress`` turns off
every progress bar: coreselect's, model conversions and downloads.

Libraries are set through their environment variables before they are imported (the CLI
imports none of them before the command runs), and through their setters when a caller (a test)
already imported them. :func:`configure` returns a function that undoes all of it.

Examples
--------
>>> restore = configure(verbose=0, quiet=False, progress=True, levels=True)
>>> logging.getLogger("coreselect").getEffectiveLevel() == logging.INFO
True
>>> logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
False
>>> restore()
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable

#: The library's root logger: its records are the console's own.
LIBRARY_LOGGER = "coreselect"
#: Loggers that stay at WARNING even with ``-v`` (one line per HTTP request or file lock).
CHATTY = ("httpx", "httpcore", "urllib3", "filelock", "fsspec")


class ConsoleFormatter(logging.Formatter):
    """coreselect's ``INFO`` lines as bare messages, warnings and errors with their level;
    with ``detail``, every record with its level and logger (``INFO faiss.loader: ...``).

    >>> r = logging.LogRecord("coreselect.x", logging.WARNING, "", 0, "5 examples truncated", None, None)
    >>> ConsoleFormatter().format(r)
    'warning: 5 examples truncated'
    """

    def __init__(self, detail: bool = False) -> None:
        super().__init__()
        self.detail = detail

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and self.detail:
            msg += "\n" + self.formatException(record.exc_info)
        if self.detail:
            return f"{record.levelname} {record.name}: {msg}"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        return msg


class ConsoleHandler(logging.StreamHandler):
    """A stream handler that writes around an open progress bar (``tqdm.write``), so a log line
    never lands on the bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")
        if tqdm is None:
            super().emit(record)
            return
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 -- logging's own contract: report, never raise
            self.handleError(record)


def _set_env(saved: dict[str, str | None], name: str, value: str) -> None:
    saved.setdefault(name, os.environ.get(name))
    os.environ[name] = value


def configure(verbose: int = 0, quiet: bool = False, progress: bool = True, *,
              levels: bool | None = None) -> Callable[[], None]:
    """Set up the console for one command; returns the function that restores what was before.

    ``verbose``: 0 (coreselect's progress), 1 (``-v``: other libraries' info and Python
    warnings too) or 2+ (``-vv``: debug). ``quiet``: warnings and errors only. ``progress``:
    False turns off every progress bar. ``levels``: set the loggers' levels and add a console
    handler; default: only when logging is not set up yet (as :func:`logging.basicConfig`), so
    a host that configured it (an application, pytest's log capture) keeps its own.
    """
    lib = logging.getLogger(LIBRARY_LOGGER)
    root = logging.getLogger()
    chatty = {name: logging.getLogger(name) for name in CHATTY}
    saved_levels = {"": root.level, LIBRARY_LOGGER: lib.level, **{n: lg.level for n, lg in chatty.items()}}
    saved_env: dict[str, str | None] = {}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # kept: a fork after tokenising warns otherwise
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    own = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    others = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.ERROR
    handler = None
    if levels if levels is not None else not root.handlers:
        lib.setLevel(own)
        root.setLevel(others)
        for lg in chatty.values():
            lg.setLevel(max(others, logging.WARNING) if verbose < 2 else logging.DEBUG)
        if not root.handlers:
            handler = ConsoleHandler(sys.stderr)
            handler.setFormatter(ConsoleFormatter(detail=verbose > 0))
            root.addHandler(handler)

    # libraries with their own handlers, through the variables they read when imported
    level_name = "debug" if verbose > 1 else "info" if verbose == 1 else "error"
    for var in ("TRANSFORMERS_VERBOSITY", "HF_HUB_VERBOSITY", "DATASETS_VERBOSITY"):
        _set_env(saved_env, var, level_name)
    _set_env(saved_env, "TRANSFORMERS_NO_ADVISORY_WARNINGS", "0" if verbose else "1")
    if not progress:
        for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
            _set_env(saved_env, var, "1")
    undo_libs = _set_imported_libraries(level_name, progress)

    catcher = warnings.catch_warnings()
    catcher.__enter__()
    if verbose == 0:
        warnings.simplefilter("ignore")  # third-party Future/Deprecation/UserWarnings; ours are log records

    def restore() -> None:
        catcher.__exit__(None, None, None)
        undo_libs()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if handler is not None:
            root.removeHandler(handler)
        for name, level in saved_levels.items():
            logging.getLogger(name or None).setLevel(level)

    return restore


def _set_imported_libraries(level_name: str, progress: bool) -> Callable[[], None]:
    """Verbosity and bars of the libraries already imported (their environment was read then)."""
    undo: list[Callable[[], None]] = []
    level = getattr(logging, level_name.upper())
    for module, logger in (("transformers", "transformers"), ("huggingface_hub", "huggingface_hub"),
                           ("datasets", "datasets")):
        if module in sys.modules:
            lg = logging.getLogger(logger)
            before = lg.level
            lg.setLevel(level)
            undo.append(lambda lg=lg, before=before: lg.setLevel(before))
    if not progress and "huggingface_hub" in sys.modules:
        import huggingface_hub.utils as hub

        if not hub.are_progress_bars_disabled():
            hub.disable_progress_bars()
            undo.append(hub.enable_progress_bars)
    if not progress and "datasets" in sys.modules:
        import datasets

        if not datasets.utils.are_progress_bars_disabled():
            datasets.utils.disable_progress_bars()
            undo.append(datasets.utils.enable_progress_bars)

    def restore() -> None:
        for fn in reversed(undo):
            fn()

    return restore


__all__ = ["CHATTY", "LIBRARY_LOGGER", "ConsoleFormatter", "ConsoleHandler", "configure"]
