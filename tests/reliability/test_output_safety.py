"""No output ever lands on an input, ``--overwrite`` or not: same path, another spelling of it,
a symlink, a hard link. Each case runs the real CLI and checks the input is byte-identical after."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _reliability import assert_one_line_error
from coreselect.cli.main import main

RECORDS = [{"instruction": f"Name colour number {i}.", "input": "", "output": f"Colour {i} is blue."}
           for i in range(30)]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    p = tmp_path / "a.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return p


def _same_file_names(data: Path) -> dict[str, Path]:
    """Every way the tests name the input file again."""
    link = data.with_name("link.jsonl")
    link.symlink_to(data)
    hard = data.with_name("hard.jsonl")
    os.link(data, hard)
    dotted = data.parent / "." / "sub" / ".." / data.name
    (data.parent / "sub").mkdir()
    return {"same path": data, "dotted path": dotted, "symlink": link, "hard link": hard}


@pytest.mark.parametrize("how", ["same path", "dotted path", "symlink", "hard link", "relative"])
def test_select_refuses_output_that_is_the_input(data, how, capsys, monkeypatch):
    before = data.read_bytes()
    names = _same_file_names(data)
    if how == "relative":
        monkeypatch.chdir(data.parent)
        out = Path(data.name)
    else:
        out = names[how]
    code = main(["select", str(data), "--ratio", "0.1", "--method", "random", "-o", str(out), "--overwrite"])
    assert_one_line_error(code, capsys.readouterr().err, r"is the input .*the same file")
    assert data.read_bytes() == before
    assert not Path(str(out) + ".manifest.json").exists()


def test_select_still_overwrites_an_older_output(data, tmp_path, capsys):
    out = tmp_path / "core.jsonl"
    out.write_text("old\n")
    assert main(["-q", "select", str(data), "--ratio", "0.1", "--method", "random", "-o", str(out),
                 "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 3


def test_select_report_cannot_land_on_the_input(data, tmp_path, capsys):
    before = data.read_bytes()
    code = main(["select", str(data), "--ratio", "0.1", "--method", "random", "-o", str(tmp_path / "c.jsonl"),
                 "--report", str(data), "--overwrite"])
    assert_one_line_error(code, capsys.readouterr().err, r"is the input")
    assert data.read_bytes() == before


def test_report_cannot_land_on_its_manifest_or_data(data, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    assert main(["-q", "select", str(data), "--ratio", "0.1", "--method", "random", "-o", str(out)]) == 0
    manifest = Path(str(out) + ".manifest.json")
    before = manifest.read_bytes(), data.read_bytes()
    pytest.importorskip("matplotlib")
    for target in (manifest, data):
        code = main(["report", str(manifest), "-o", str(target), "--overwrite"])
        assert_one_line_error(code, capsys.readouterr().err, r"is the input")
    assert (manifest.read_bytes(), data.read_bytes()) == before


@pytest.mark.parametrize("where", ["data folder", "parent folder", "symlinked folder"])
def test_train_refuses_an_output_folder_holding_its_data(data, where, capsys):
    folder = data.parent
    if where == "parent folder":
        folder = data.parent.parent
    elif where == "symlinked folder":
        folder = data.parent.parent / f"{data.parent.name}-link"
        folder.symlink_to(data.parent, target_is_directory=True)
    before = data.read_bytes()
    code = main(["train", str(data), "-o", str(folder), "--overwrite", "--model", "no-model-needed"])
    assert_one_line_error(code, capsys.readouterr().err, r"holds the input")
    assert data.read_bytes() == before


def test_compare_refuses_an_output_folder_it_would_write_its_data_into(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "data").mkdir(parents=True)
    pool = runs / "data" / "pool.jsonl"  # compare writes DIR/data/pool.jsonl: it would eat this
    pool.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"instruction": "Say hi.", "input": "", "output": "Hi."}) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"pool: {{path: {pool}}}\neval: [{{name: h, path: {held}}}]\n")
    before = pool.read_bytes()
    code = main(["compare", str(cfg), "-o", str(runs)])
    assert_one_line_error(code, capsys.readouterr().err, r"holds the input")
    assert pool.read_bytes() == before


def test_importing_does_no_work():
    """``import coreselect`` (and its output module) reads no umask and imports no torch,
    transformers or ray: heavy imports stay in the functions that need them."""
    import subprocess
    import sys

    code = ("import os, sys; calls = []; real = os.umask\n"
            "os.umask = lambda m: (calls.append(m), real(m))[1]\n"
            "import coreselect, coreselect.output, coreselect.cli.main\n"
            "print(calls, sorted({'torch', 'transformers', 'ray'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
