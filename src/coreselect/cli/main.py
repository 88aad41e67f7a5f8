"""Entry point: ``coreselect <subcommand> ...``. Errors print one line and exit with code 2.

Command-line mistakes (an unknown flag, ``--ratio`` with ``--n``, a missing argument) are one
line too, with no usage dump; ``-v``/``-q`` work before or after the subcommand.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from typing import NoReturn

from coreselect._version import __version__
from coreselect.errors import CoreselectError

#: Subcommands in help order; each is a module ``coreselect.cli.<name>`` with ``add_parser``.
SUBCOMMANDS = ["select", "extract", "score", "report", "methods", "cache", "train", "evaluate", "compare", "pool"]


class UsageError(CoreselectError):
    """A command-line mistake found by argparse, as one line."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a :class:`UsageError` (one line, no usage dump).

    >>> p = Parser(prog="coreselect select")
    >>> g = p.add_mutually_exclusive_group()
    >>> _ = g.add_argument("--ratio"), g.add_argument("--n")
    >>> try:
    ...     p.parse_args(["--ratio", "0.1", "--n", "5"])
    ... except UsageError as err:
    ...     print(err)
    give only one of --ratio and --n
    """

    def error(self, message: str) -> NoReturn:
        both = re.fullmatch(r"argument (\S+): not allowed with argument (\S+)", message)
        if both:
            raise UsageError(f"give only one of {both.group(2)} and {both.group(1)}")
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _subcommand_modules():
    for name in SUBCOMMANDS:
        try:
            yield importlib.import_module(f"coreselect.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"coreselect.cli.{name}":
                raise


def _add_console_flags(p: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v``/``-q``; on a subcommand they default to nothing, so the top-level values stand."""
    kw = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-v", "--verbose", action="count", help="more log output: other libraries' messages and "
                   "warnings too (-vv: debug)", **({"default": 0} if top else kw))
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only",
                   **({"default": False} if top else kw))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="coreselect",
        description="Pick the small, diverse core set of an instruction dataset from a language "
                    "model's own neural activations.",
        epilog="example: coreselect select train.jsonl --ratio 0.15 -o core.jsonl",
    )
    p.add_argument("--version", action="version", version=f"coreselect {__version__}")
    _add_console_flags(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in _subcommand_modules():
        mod.add_parser(sub)
    stack = list(sub.choices.values())
    while stack:  # every subcommand, nested ones (cache list) too
        sp = stack.pop()
        _add_console_flags(sp, top=False)
        stack += [c for a in sp._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices.values()]
    return p


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag names the closest flag of its subcommand."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sp = sub.choices[args.command]
        for a in sp._actions:  # a nested subcommand (cache list)
            if isinstance(a, argparse._SubParsersAction) and getattr(args, a.dest, None) in a.choices:
                sp = a.choices[getattr(args, a.dest)]
        flags = [f for f in sp._option_string_actions if f.startswith("--")]
        bad = extra[0]
        close = difflib.get_close_matches(bad.split("=")[0], flags, n=1, cutoff=0.6) if bad.startswith("-") else []
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"unrecognized argument{'s' if len(extra) > 1 else ''}: {' '.join(extra)}{hint} "
                         f"(see `{sp.prog} --help`)")
    return args


def main(argv: list[str] | None = None) -> int:
    from coreselect.cli.console import configure

    try:
        args = _parse(build_parser(), argv)
    except UsageError as err:
        print(f"coreselect: error: {err}", file=sys.stderr)
        return 2
    progress = getattr(args, "progress", True) and not getattr(args, "no_progress", False)
    restore = configure(verbose=args.verbose, quiet=args.quiet, progress=progress)
    try:
        return args.run(args)
    except CoreselectError as err:
        print(f"coreselect: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a vanished directory...: no traceback, nothing half-written
        where = f"{err.filename}: " if err.filename else ""
        print(f"coreselect: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coreselect: interrupted; finished work is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
