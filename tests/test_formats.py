"""Record formats beyond Alpaca (issue 19): TRL's prompt/completion, Unsloth's conversations with
role/content, ShareGPT's from/value; a file in no known format is refused once, with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import coreselect
from coreselect.cli.main import main
from coreselect.data import load_dataset
from coreselect.errors import DataError

USER, BOT = {"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}
TURNS = (("user", "Add 2 and 3."), ("assistant", "5"))


def _write(tmp_path: Path, records: list[dict], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    return p


@pytest.mark.parametrize("record,fmt", [
    ({"prompt": "Add 2 and 3.", "completion": "5"}, "prompt-completion"),
    ({"prompt": [USER], "completion": [BOT]}, "prompt-completion"),
    ({"conversations": [USER, BOT]}, "sharegpt"),
    ({"conversations": [{"from": "human", "value": "Add 2 and 3."}, {"from": "gpt", "value": "5"}]}, "sharegpt"),
    ({"messages": [USER, BOT]}, "messages"),
], ids=["trl-standard", "trl-conversational", "unsloth-conversations", "sharegpt", "messages"])
def test_formats_are_read(tmp_path, record, fmt):
    ds = load_dataset(_write(tmp_path, [record, record]))
    assert ds.format == fmt and ds.examples[0].messages == TURNS and ds.examples[1].record == record


def test_conversational_prompt_completion_keeps_system_and_turns(tmp_path):
    rec = {"prompt": [{"role": "system", "content": "Be brief."}, USER], "completion": [BOT]}
    assert load_dataset(_write(tmp_path, [rec])).examples[0].messages == (("system", "Be brief."), *TURNS)


@pytest.mark.parametrize("record,pattern", [
    ({"prompt": "Hi", "completion": [BOT]}, r':1: field "prompt": must be a list of messages like the other field'),
    ({"prompt": [USER], "completion": []}, r':1: field "completion": must be a non-empty list'),
    ({"prompt": "  ", "completion": "5"}, r':1: field "prompt": is empty'),
    ({"conversations": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]},
     r""":1: field "conversations\[1\]\.role": unknown role 'robot'"""),
])
def test_bad_records_of_the_new_formats_name_line_and_field(tmp_path, record, pattern):
    with pytest.raises(DataError, match=pattern):
        load_dataset(_write(tmp_path, [record]))


def test_columns_messages_reads_conversations_with_role_and_content(tmp_path):
    p = _write(tmp_path, [{"conversations": [USER, BOT], "id": 1}])
    ds = load_dataset(p, columns={"messages": "conversations"})
    assert ds.format == "messages" and ds.examples[0].messages == TURNS


def test_unknown_format_is_one_error_naming_fields_and_the_columns_fix(tmp_path, capsys):
    p = _write(tmp_path, [{"question": f"What is {i} + 1?", "answer": str(i + 1), "id": i} for i in range(30)])
    with pytest.raises(DataError) as err:
        load_dataset(p)
    msg = str(err.value)
    assert msg == (f"{p}:1: unknown record format (fields found: question, answer, id; expected instruction/output, "
                   "prompt/completion, conversations or messages): read them with --columns "
                   "instruction=question,output=answer")
    for flag in ([], ["--on-error", "skip"]):  # once, skipping or not
        assert main(["-q", "select", str(p), "--n", "2", "-o", str(tmp_path / "core.jsonl"), *flag]) == 2
        stderr = capsys.readouterr().err
        assert stderr.count("unknown record format") == 1 and len(stderr.strip().splitlines()) == 1
        assert "--columns instruction=question,output=answer" in stderr
    assert not (tmp_path / "core.jsonl").exists()
    ds = load_dataset(p, columns={"instruction": "question", "output": "answer"})  # the suggested fix works
    assert len(ds) == 30


def test_unknown_format_suggests_messages_for_a_list_of_role_content(tmp_path):
    p = _write(tmp_path, [{"dialog": [USER, BOT]}])
    with pytest.raises(DataError, match=r"fields found: dialog; .*: read them with --columns messages=dialog$"):
        load_dataset(p)


def test_library_select_reads_prompt_completion_and_names_unknown_format_once():
    rows = [{"prompt": f"Add {i} and 1.", "completion": str(i + 1)} for i in range(6)]
    res = coreselect.select(rows, n=2, method="random")
    assert res.subset == [rows[i] for i in res.indices] and res.manifest.data.format == "prompt-completion"
    with pytest.raises(DataError, match=r"^list\[0\]: unknown record format \(fields found: q, a;"):
        coreselect.select([{"q": "x", "a": "y"}] * 3, n=1, method="random")


def test_csv_with_conversational_prompt_completion_cells(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('prompt,completion\n"[{""role"": ""user"", ""content"": ""Add 2 and 3.""}]",'
                 '"[{""role"": ""assistant"", ""content"": ""5""}]"\n[1] is a list,"no, text"\n')
    ds = load_dataset(p)
    assert ds.examples[0].messages == TURNS
    assert ds.examples[1].messages == (("user", "[1] is a list"), ("assistant", "no, text"))
