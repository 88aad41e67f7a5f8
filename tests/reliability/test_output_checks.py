"""The output is checked before any work (issue 19): its type and its folder, for ``select``
(CLI and library) and ``extract -o``; the error names the output, never an internal temp file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import coreselect
from _reliability import BAD, assert_one_line_error
from coreselect.cli.main import main
from coreselect.errors import OutputError

GOOD = BAD / "good.jsonl"
NO_MODEL = ["--model", "/no/such/model"]  # the output's error must come first: no model is touched


def _select(data: Path, out: Path, *extra: str) -> list[str]:
    return ["-q", "select", str(data), "-o", str(out), "--n", "2", "--no-progress", *extra]


@pytest.mark.parametrize("name,expected", [("core.txt", ".jsonl"), ("core", ".jsonl"), ("core.jsonl.bak", ".jsonl")])
def test_select_refuses_an_unknown_output_type_naming_the_expected_suffix(tmp_path, capsys, name, expected):
    out = tmp_path / name
    code = main(_select(GOOD, out, *NO_MODEL))
    assert_one_line_error(code, capsys.readouterr().err,
                          rf"^{out}: unknown output type \(expected {expected} like the input, or \.json, \.parquet, "
                          r"\.csv, \.tsv, \.arrow; text ones optionally \.gz\)$")
    assert sorted(tmp_path.iterdir()) == []


def test_the_expected_suffix_is_the_inputs(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("instruction,output\nAdd 2 and 3.,5\nName a colour.,Blue\nSay hi.,Hi\n")
    code = main(_select(data, tmp_path / "core.txt", "--method", "random"))
    assert_one_line_error(code, capsys.readouterr().err, r"core\.txt: unknown output type \(expected \.csv like the input")
    assert main(_select(data, tmp_path / "core.parquet", "--method", "random")) == 0  # another known type converts


def test_select_refuses_an_output_under_a_file_before_any_work(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "sub" / "core.jsonl"
    code = main(_select(GOOD, out, *NO_MODEL, "--work-dir", str(tmp_path / "work")))
    assert_one_line_error(code, capsys.readouterr().err,
                          rf"^{out}: cannot be written \({tmp_path / 'notes.txt'} is a file, not a folder\)$")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


def test_select_refuses_an_unwritable_folder_naming_it(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real(p, mode, **kw))
    out = locked / "new" / "core.jsonl"
    code = main(_select(GOOD, out, *NO_MODEL))
    err = capsys.readouterr().err
    assert_one_line_error(code, err, rf"^{out}: cannot be written \(no permission to write in {locked}\)$")
    assert ".tmp" not in err and list(locked.iterdir()) == []


def test_library_select_checks_the_output_first(tmp_path):
    pool = [{"instruction": f"Add {i} and 1.", "output": str(i + 1)} for i in range(6)]
    with pytest.raises(OutputError, match=r"core\.txt: unknown output type \(expected \.jsonl like the input"):
        coreselect.select(pool, n=2, method="random", output=tmp_path / "core.txt")
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match=r"is a file, not a folder"):
        coreselect.select(pool, n=2, model="/no/such/model", output=tmp_path / "f" / "core.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_extract_refuses_an_impossible_store_folder_before_any_work(tmp_path, capsys, where):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / ("" if where == "file" else "feats")
    code = main(["-q", "extract", str(GOOD), "-o", str(out), "--no-progress", *NO_MODEL])
    pattern = (rf"^{tmp_path / 'notes.txt'}: exists and is not a directory$" if where == "file"
               else rf"^{out}: cannot be created or written \({tmp_path / 'notes.txt'} is a file, not a folder\)$")
    assert_one_line_error(code, capsys.readouterr().err, pattern)
    assert (tmp_path / "notes.txt").read_text() == "mine"
