"""``coreselect methods [NAME]``: list the selection methods, or one method's parameters.

A method's parameters come from its class: names, types and defaults from ``__init__``'s
signature, descriptions from the numpydoc ``Parameters`` section of its docstring, rendered as
plain text (no reST markup).

Examples
--------
>>> rst_to_text("see :func:`~coreselect.selection.kcenter.kcenter_greedy` (default ``\\"auto\\"``)")
'see kcenter_greedy (default "auto")'
>>> [(p.name, p.type, p.default) for p in method_params("kcenter")][1:3]
[('algorithm', 'str', "'auto'"), ('project_dim', 'int | None', 'None')]
"""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
from typing import NamedTuple

HELP = "list the selection methods, or one method's parameters"
EPILOG = """examples:
  coreselect methods              # every method, one line each
  coreselect methods ltd          # its parameters (set with --param NAME=VALUE), types and defaults
"""

#: Parameters set by ``select``'s own flags rather than ``--param``.
SET_BY_FLAGS = {"n_select": "--ratio / --n", "random_state": "--seed"}


class Param(NamedTuple):
    """One parameter of a selection method, as ``coreselect methods NAME`` shows it."""

    name: str
    type: str
    default: str
    help: str


def rst_to_text(text: str) -> str:
    """Docstring reST as plain text: roles (``:func:`~a.b``` -> ``b``), literals, emphasis."""
    text = re.sub(r":\w+:`~?([^`<]*?)\s*(?:<[^>]*>)?`", lambda m: m.group(1).rsplit(".", 1)[-1] if
                  m.group(0).split("`")[1].startswith("~") else m.group(1).lstrip("."), text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _doc_sections(doc: str) -> tuple[str, dict[str, str]]:
    """The summary line and ``{name: description}`` of a numpydoc ``Parameters`` section."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary = rst_to_text(lines[0]) if lines else ""
    params: dict[str, str] = {}
    inside, current = False, None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if set(nxt.strip()) == {"-"} and line.strip():  # a section heading
            inside, current = line.strip() == "Parameters", None
            continue
        if not inside or set(line.strip()) == {"-"}:
            continue
        head = re.match(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.*)$", line)
        if head and not line.startswith(" "):
            names = [n.strip() for n in head.group(1).split(",")]
            for n in names:
                params[n] = head.group(2)
            current = names
        elif current and line.strip():
            for n in current:
                params[n] += " " + line.strip()
    return summary, {k: rst_to_text(v) for k, v in params.items()}


def method_params(name: str) -> list[Param]:
    """The parameters of method ``name``: type and default from its signature, help from its docstring."""
    from coreselect.selection import get_selector_class

    cls = get_selector_class(name)
    _, docs = _doc_sections(cls.__doc__ or "")
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        tp = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        default = "required" if p.default is p.empty else repr(p.default)
        out.append(Param(p.name, str(tp or "").replace("np.", "numpy."), default, docs.get(p.name, "")))
    return out


def describe_method(name: str, width: int = 100) -> str:
    """The text ``coreselect methods NAME`` prints."""
    from coreselect.selection import get_selector_class

    cls = get_selector_class(name)
    summary, _ = _doc_sections(cls.__doc__ or "")
    reads = ("no features" if not cls.needs_features else
             "raw pooled activations" if cls.wants_raw_features else "normalised features (--normalize)")
    if cls.needs_scores:
        reads += " and the per-row " + ", ".join(cls.needs_scores)
    lines = [f"{name}: {summary}", f"reads: {reads}",
             "engines: local, ray" if cls.distributed else "engines: local (with --engine ray: extraction only)",
             "budget: " + ("--budget-tokens maximises gain per token" if cls.cost_aware
                           else "--budget-tokens takes the picks in order while they fit"), "",
             "parameters (--param NAME=VALUE, JSON values):"]
    params = method_params(name)
    w = max(len(p.name) for p in params) + 2
    for p in params:
        head = f"  {p.name:<{w}}{p.type} = {p.default}" if p.default != "required" else f"  {p.name:<{w}}{p.type}"
        if p.name in SET_BY_FLAGS:
            head += f"   (set by {SET_BY_FLAGS[p.name]})"
        lines.append(head)
        if p.help:
            lines += textwrap.wrap(p.help, width, initial_indent=" " * (w + 4), subsequent_indent=" " * (w + 4))
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", default=None, help="a method: show its parameters, types and defaults")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.selection import available_methods, get_selector_class

    if args.name:
        print(describe_method(args.name))
        return 0
    for name in available_methods():
        summary, _ = _doc_sections(get_selector_class(name).__doc__ or "")
        print(f"{name:20s} {summary}")
    print("\n`coreselect methods NAME` lists a method's parameters.")
    return 0
