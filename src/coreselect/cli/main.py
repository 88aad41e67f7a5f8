"""Entry point: ``coreselect <subcommand> ...``. Errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from coreselect import __version__
from coreselect.errors import CoreselectError

#: Subcommands in help order; each is a module ``coreselect.cli.<name>`` with ``add_parser``.
SUBCOMMANDS = ["select", "extract", "score", "report", "methods", "train", "evaluate", "compare", "pool"]


def _subcommand_modules():
    for name in SUBCOMMANDS:
        try:
            yield importlib.import_module(f"coreselect.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"coreselect.cli.{name}":
                raise


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coreselect",
        description="Pick the small, diverse core set of an instruction dataset from a language "
                    "model's own neural activations.",
        epilog="example: coreselect select train.jsonl --ratio 0.15 -o core.jsonl",
    )
    p.add_argument("--version", action="version", version=f"coreselect {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in _subcommand_modules():
        mod.add_parser(sub)
    return p


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock", "fsspec", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _quiet_libraries()
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
        print("coreselect: interrupted; finished shards are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
