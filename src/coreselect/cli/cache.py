"""``coreselect cache list|clear``: the converted models and feature stores coreselect keeps."""

from __future__ import annotations

import argparse
import sys

HELP = "list or clear the cache of converted models and feature stores"
EPILOG = """examples:
  coreselect cache list                     # every entry with its size; stores with what they hold
  coreselect cache clear --features         # the feature stores and the record cache (asks first)
  coreselect cache clear --models --yes     # converted models and assembled GGUF files, no question
  coreselect cache clear --all --yes        # everything coreselect put there

The cache is $CORESELECT_CACHE, or ~/.cache/coreselect; nothing outside it is ever removed.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = acts.add_parser("list", help="list the cache with sizes", description="List the cache with sizes.")
    ls.set_defaults(run=run_list)
    cl = acts.add_parser("clear", help="remove feature stores and/or converted models",
                         description="Remove feature stores and/or converted models from the cache.")
    what = cl.add_argument_group("what (one or more)")
    what.add_argument("--features", action="store_true", help="feature stores (features/) and the record cache "
                      "(records/: each record's features by content)")
    what.add_argument("--models", action="store_true", help="converted models (models/) and assembled GGUF "
                      "files (gguf/); they are rebuilt from their packages on the next use")
    what.add_argument("--all", action="store_true", help="everything: stores, models, evaluation task files, "
                      "file hashes")
    cl.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    cl.set_defaults(run=run_clear)


def run_list(args: argparse.Namespace) -> int:
    from coreselect.cache import cache_entries, human_size
    from coreselect.models import cache_dir

    root = cache_dir()
    entries = cache_entries(root)
    if not entries:
        print(f"{root}: empty")
        return 0
    n = len(entries)
    print(f"{root}: {human_size(sum(e.size for e in entries))} in {n} entr{'y' if n == 1 else 'ies'}")
    for kind in dict.fromkeys(e.kind for e in entries):
        group = [e for e in entries if e.kind == kind]
        print(f"\n{kind}/ ({human_size(sum(e.size for e in group))})" if kind != "files" else "\nfiles")
        for e in group:
            about = e.describe()
            link = " (a link; clearing removes the link only)" if e.path.is_symlink() else ""
            print(f"  {human_size(e.size):>9}  {e.name}{link}" + (f"\n             {about}" if about else ""))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from coreselect.cache import FEATURE_KINDS, MODEL_KINDS, cache_entries, human_size, remove_entries
    from coreselect.errors import ConfigError
    from coreselect.models import cache_dir

    if not (args.features or args.models or args.all):
        raise ConfigError("cache clear: say what to remove: --features, --models or --all")
    kinds = None if args.all else (list(FEATURE_KINDS) if args.features else []) + (
        list(MODEL_KINDS) if args.models else [])
    root = cache_dir()
    entries = cache_entries(root, kinds=kinds)
    if not entries:
        print(f"{root}: nothing to remove")
        return 0
    total = human_size(sum(e.size for e in entries))
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"cache clear: would remove {len(entries)} entries ({total}) from {root}; "
                              "pass --yes to confirm (no terminal to ask on)")
        answer = input(f"remove {len(entries)} entries ({total}) from {root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    n, freed = remove_entries(entries, root)
    print(f"removed {n} entr{'y' if n == 1 else 'ies'} ({human_size(freed)}) from {root}")
    return 0
