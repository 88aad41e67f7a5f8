"""``coreselect methods``: list the registered selection methods."""

from __future__ import annotations

import argparse

HELP = "list the selection methods"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help=HELP, description=HELP + ".",
                       epilog="example: coreselect methods")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.selection import available_methods, get_selector_class

    for name in available_methods():
        doc = (get_selector_class(name).__doc__ or "").strip().splitlines()
        print(f"{name:20s} {doc[0] if doc else ''}")
    return 0
