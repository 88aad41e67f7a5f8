"""Record formats: which one a record is in, and its conversation as ``(role, content)`` turns.

==================  ==============================================================================
format              fields
==================  ==============================================================================
``alpaca``          ``instruction``, ``input`` (optional), ``output``, ``system`` (optional)
``sharegpt``        ``conversations``: a list of ``{"from", "value"}`` turns (ShareGPT) or of
                    ``{"role", "content"}`` turns (as Unsloth's ``standardize_sharegpt`` writes it)
``messages``        ``messages``: a list of ``{"role", "content"}`` turns (OpenAI/TRL chat)
``prompt-completion``  ``prompt`` and ``completion`` (TRL): two strings, or two lists of
                    ``{"role", "content"}`` messages (conversational)
==================  ==============================================================================

A record in none of them is refused once, naming the fields found and the ``--columns`` mapping
that reads them (:func:`unknown_format`).

Examples
--------
>>> parse("d.jsonl", 1, {"prompt": "Add 2 and 3.", "completion": "5"})
('prompt-completion', (('user', 'Add 2 and 3.'), ('assistant', '5')))
>>> parse("d.jsonl", 1, {"conversations": [{"role": "user", "content": "Hi"},
...                                        {"role": "assistant", "content": "Hello"}]})[1]
(('user', 'Hi'), ('assistant', 'Hello'))
>>> str(unknown_format("d.jsonl", 1, [{"question": "Add 2 and 3.", "answer": "5"}]))
'd.jsonl:1: unknown record format (fields found: question, answer; expected instruction/output, prompt/completion, conversations or messages): read them with --columns instruction=question,output=answer'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from coreselect.errors import DataError

Format = Literal["alpaca", "sharegpt", "messages", "prompt-completion"]
Turns = tuple[tuple[str, str], ...]

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}
_CHAT_ROLES = {k: k for k in ("user", "assistant", "system")}
EXPECTED = "instruction/output, prompt/completion, conversations or messages"

#: Field names that usually hold the prompt / the response, for the ``--columns`` suggestion.
_PROMPT_NAMES = ("question", "query", "problem", "instruction", "prompt", "input", "text", "source", "context")
_RESPONSE_NAMES = ("answer", "response", "output", "completion", "solution", "target", "reply", "chosen",
                   "label")


class UnknownFormat(DataError):
    """A record in none of the formats (:func:`detect`); :func:`unknown_format` says it for the file."""


def detect(p: str | Path, line: int, rec: Any) -> Format:
    """The format of one record (a :class:`DataError` when it is none)."""
    if not isinstance(rec, dict):
        raise DataError(str(p), f"record is a JSON {json_type(rec)}, expected an object", line=line)
    if "conversations" in rec:
        return "sharegpt"
    if "messages" in rec:
        return "messages"
    if "instruction" in rec or "output" in rec:
        return "alpaca"
    if "prompt" in rec and "completion" in rec:
        return "prompt-completion"
    found = ", ".join(map(str, rec)) or "none"
    raise UnknownFormat(str(p), f"unknown record format (fields found: {found}; expected {EXPECTED})", line=line)


def parse(p: str | Path, line: int, rec: Any) -> tuple[Format, Turns]:
    """``(format, turns)`` of one record; a :class:`DataError` naming line and field when bad."""
    fmt = detect(p, line, rec)
    return fmt, _PARSERS[fmt](Path(p), line, rec)


def unknown_format(p: str | Path, line: int, records: Sequence[Any]) -> DataError:
    """One error for a file whose records are in no known format: the fields found and the
    ``--columns`` mapping that would read them (guessed from their names and values)."""
    fields: dict[str, Any] = {}
    for rec in records:
        if isinstance(rec, dict):
            for k, v in rec.items():
                fields.setdefault(str(k), v)
    found = ", ".join(fields) if fields else "none"
    msg = f"unknown record format (fields found: {found}; expected {EXPECTED})"
    hint = suggest_columns(fields)
    return UnknownFormat(str(p), msg + (f": read them with --columns {hint}" if hint else
                                       ": map your prompt and response fields with --columns "
                                       "instruction=FIELD,output=FIELD"), line=line)


def suggest_columns(fields: dict[str, Any]) -> str:
    """The ``--columns`` value that would read records with these fields (``""`` when no guess).

    >>> suggest_columns({"dialog": [{"role": "user", "content": "Hi"}]})
    'messages=dialog'
    >>> suggest_columns({"turns": [{"from": "human", "value": "Hi"}]}), suggest_columns({"id": 3})
    ('conversations=turns', '')
    """
    for name, v in fields.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            if "role" in v[0] and "content" in v[0]:
                return f"messages={name}"
            if "from" in v[0] and "value" in v[0]:
                return f"conversations={name}"
    texts = [k for k, v in fields.items() if isinstance(v, str)]

    def pick(names: tuple[str, ...], avoid: str = "") -> str:
        low = {k.lower(): k for k in texts if k != avoid}
        exact = next((low[n] for n in names if n in low), "")
        return exact or next((k for n in names for k in texts if n in k.lower() and k != avoid), "")

    prompt = pick(_PROMPT_NAMES)
    response = pick(_RESPONSE_NAMES, avoid=prompt)
    return f"instruction={prompt},output={response}" if prompt and response else ""


def text(p: Path, line: int, rec: dict, key: str, *, required: bool = True, where: str = "") -> str:
    """The string field ``key`` of ``rec`` (``""`` when optional and absent or null)."""
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
        raise DataError(str(p), f"must be a string, got a JSON {json_type(v)}", line=line, field=name)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(str(p), "holds an invalid \\u escape (a lone surrogate)", line=line, field=name) from None
    return v


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(v), type(v).__name__)


def _alpaca(p: Path, line: int, rec: dict) -> Turns:
    instruction = text(p, line, rec, "instruction")
    inp = text(p, line, rec, "input", required=False)
    output = text(p, line, rec, "output")
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


def _turn_list(p: Path, line: int, rec: dict, key: str, roles: dict[str, str]) -> list[tuple[str, str]]:
    """The turns of the list ``rec[key]``: ``role``/``content`` objects, or ``from``/``value`` ones
    for ShareGPT's ``conversations``."""
    turns = rec[key]
    if not isinstance(turns, list) or not turns:
        raise DataError(str(p), "must be a non-empty list", line=line, field=key)
    out = []
    for j, t in enumerate(turns):
        where = f"{key}[{j}]."
        if not isinstance(t, dict):
            raise DataError(str(p), "must be an object", line=line, field=f"{key}[{j}]")
        role_key, text_key = ("from", "value") if key == "conversations" and "role" not in t else ("role", "content")
        role = text(p, line, t, role_key, where=where)
        if role not in roles:
            raise DataError(str(p), f"unknown role {role!r} (expected one of {', '.join(sorted(roles))})",
                            line=line, field=where + role_key)
        out.append((roles[role], text(p, line, t, text_key, where=where)))
    return out


def _need_both(p: Path, line: int, out: list[tuple[str, str]], key: str) -> Turns:
    if not any(r == "assistant" and c.strip() for r, c in out):
        raise DataError(str(p), "no non-empty assistant turn", line=line, field=key)
    if not any(r == "user" and c.strip() for r, c in out):
        raise DataError(str(p), "no non-empty user turn", line=line, field=key)
    return tuple(out)


def _turns(p: Path, line: int, rec: dict, key: str, roles: dict[str, str]) -> Turns:
    return _need_both(p, line, _turn_list(p, line, rec, key, roles), key)


def _prompt_completion(p: Path, line: int, rec: dict) -> Turns:
    """TRL's prompt-completion records: two strings, or two lists of messages (conversational)."""
    prompt, completion = rec["prompt"], rec["completion"]
    if isinstance(prompt, list) or isinstance(completion, list):
        for key, v in (("prompt", prompt), ("completion", completion)):
            if not isinstance(v, list):
                raise DataError(str(p), f"must be a list of messages like the other field, got a JSON {json_type(v)}",
                                line=line, field=key)
        turns = _turn_list(p, line, rec, "prompt", _CHAT_ROLES) + _turn_list(p, line, rec, "completion", _CHAT_ROLES)
        if not any(r == "user" and c.strip() for r, c in turns):
            raise DataError(str(p), "no non-empty user turn", line=line, field="prompt")
        if not any(r == "assistant" and c.strip() for r, c in turns):
            raise DataError(str(p), "no non-empty assistant turn", line=line, field="completion")
        return tuple(turns)
    user, answer = text(p, line, rec, "prompt"), text(p, line, rec, "completion")
    if not user.strip():
        raise DataError(str(p), "is empty", line=line, field="prompt")
    if not answer.strip():
        raise DataError(str(p), "is empty", line=line, field="completion")
    return (("user", user), ("assistant", answer))


_PARSERS = {
    "alpaca": _alpaca,
    "sharegpt": lambda p, n, r: _turns(p, n, r, "conversations", _SHAREGPT_ROLES),
    "messages": lambda p, n, r: _turns(p, n, r, "messages", _CHAT_ROLES),
    "prompt-completion": _prompt_completion,
}

__all__ = ["EXPECTED", "Format", "UnknownFormat", "detect", "json_type", "parse", "suggest_columns", "text",
           "unknown_format"]
