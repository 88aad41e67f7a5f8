"""The bad-input corpus (tests/data/bad, see its README.md) through the real CLI.

Every bad input must end in exactly one stderr line ``coreselect: error: <file>:<line>: field
"<f>": <what>`` (location parts where they apply), exit code 2, no traceback and no output file
or manifest. Inputs marked ACCEPTED in the README must work. Most cases fail before a model is
loaded; the few that need one use a tiny random Llama saved as a model folder.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _reliability import BAD, TINY_ARGS, assert_one_line_error, read_manifest
from coreselect.cli.main import main

# file, expected message (regex, after the path), record-level (skippable with --on-error skip)
DATA_CASES = [
    ("invalid_json_line.jsonl", r':2: invalid JSON \(Expecting value at column 44\)$', True),
    ("missing_instruction.jsonl", r':2: field "instruction": missing$', True),
    ("missing_output.jsonl", r':2: field "output": missing$', True),
    ("nonstring_instruction.jsonl", r':2: field "instruction": must be a string, got a JSON number$', True),
    ("nonstring_output.jsonl", r':2: field "output": must be a string, got a JSON array$', True),
    ("null_fields.jsonl", r':2: field "instruction": is null$', True),
    ("empty_instruction_output.jsonl", r':2: field "instruction": is empty$', True),
    ("mixed_formats.jsonl", r':2: sharegpt record after alpaca records \(mixed formats\)$', True),
    ("sharegpt_unknown_role.jsonl", r""":2: field "conversations\[1\]\.from": unknown role 'robot'""", True),
    ("messages_not_list.jsonl", r':2: field "messages": must be a non-empty list$', True),
    ("scalar_record.jsonl", r":2: record is a JSON number, expected an object$", True),
    ("unknown_record_format.jsonl", r":2: unknown record format \(fields found: question, answer; expected "
                                    r"instruction/output, prompt/completion, conversations or messages\)$", True),
    ("lone_surrogate.jsonl", r':2: field "output": holds an invalid \\u escape \(a lone surrogate\)$', True),
    ("deeply_nested.jsonl.gz", r":2: invalid JSON \(nested too deeply\)$", True),
    ("huge_integer.jsonl", r":2: invalid JSON \(Exceeds the limit \(4300 digits\)", True),
    ("all_bad.jsonl", r':1: field "output": missing; line 2: field "instruction": missing '
                      r'\(2 bad records; --on-error skip leaves them out\)$', False),
    # every bad record in one pass: the first 20 listed on the one line, all 25 counted
    ("many_bad.jsonl", r':1: field "output": must be a string, got a JSON number; line 2: field "output": missing; '
                       r'(line \d+: field "output": [^;]+; ){18}\.\.\. '
                       r'\(25 bad records, the first 20 listed; --on-error skip leaves them out\)$', False),
    ("ragged_row.csv", r":3: has 3 fields, the header has 2$", False),
    ("bad_quoting.csv", r""":3: invalid CSV \(',' expected after '"'\)$""", False),
    ("corrupted.arrow", r": cannot read Arrow \(", False),
    ("truncated_array.json", r":9: truncated JSON array \(the file ends inside a record\)$", False),
    ("trailing_garbage.json", r":11: text after the closing \]$", False),
    ("empty.jsonl", r": no records \(empty file\)$", False),
    ("whitespace_only.jsonl", r": no records \(only whitespace\)$", False),
    ("empty_array.json", r": no records \(empty list\)$", False),
    ("invalid_utf8.jsonl", r":3: invalid UTF-8 at byte 141$", False),
    ("nul_bytes.jsonl", r":2: NUL byte in file \(binary data\?\)$", False),
    ("unknown_extension.txt", r": unknown file type \(expected \.jsonl, \.json, \.parquet, \.csv, \.tsv or \.arrow "
                              r"\(text ones optionally \.gz\), a save_to_disk folder or a Hugging Face dataset id\)$", False),
    ("corrupted.jsonl.gz", r": corrupted gzip \(Error -3 while decompressing data", False),
    ("truncated.jsonl.gz", r": corrupted gzip \(Compressed file ended before the end-of-stream", False),
    ("directory.jsonl", r": is a directory, not a data file or a save_to_disk folder$", False),
    ("corrupted.parquet", r": cannot read Parquet \(", False),
]
RECORD_LEVEL = [(f, p) for f, p, rec in DATA_CASES if rec]


def _select(tmp_path: Path, data: str | Path, *extra: str) -> list[str]:
    return ["-q", "select", str(data), "-o", str(tmp_path / "out" / "core.jsonl"),
            "--work-dir", str(tmp_path / "work"), "--no-progress", *extra]


def _no_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


# -- data --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,pattern", [(f, p) for f, p, _ in DATA_CASES])
def test_bad_data_is_one_line_error_and_no_output(name, pattern, tmp_path, capsys):
    path = BAD / name
    code = main(_select(tmp_path, path, "--n", "1"))
    _, err = capsys.readouterr()
    assert_one_line_error(code, err, "^" + re.escape(str(path)) + pattern)
    _no_output(tmp_path)
    assert not (tmp_path / "work").exists()  # failed before any model or store was touched


@pytest.mark.parametrize("name,pattern", RECORD_LEVEL)
def test_on_error_skip_skips_and_reports(name, pattern, tmp_path, capsys):
    out = tmp_path / "out" / "core.jsonl"
    code = main(_select(tmp_path, BAD / name, "--n", "1", "--method", "random", "--on-error", "skip"))
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "skipped 1 bad records (listed in the manifest)" in stdout
    m = read_manifest(out)
    assert m["counts"]["skipped"] == 1 and m["counts"]["pool"] == 2
    assert len(m["skipped"]) == 1 and re.search(pattern, m["skipped"][0]), m["skipped"]
    assert m["skipped"][0].startswith(str(BAD / name))
    src = (BAD / name).read_bytes()
    src_lines = (gzip.decompress(src) if name.endswith(".gz") else src).decode().splitlines()
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and lines[0] in src_lines


def test_csv_on_error_skip_keeps_the_other_rows_as_csv(tmp_path, capsys):
    out = tmp_path / "out" / "core.csv"
    args = _select(tmp_path, BAD / "ragged_row.csv", "--n", "2", "--method", "random", "--on-error", "skip",
                   "--keep-order")
    args[args.index("-o") + 1] = str(out)
    code = main(args)
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "skipped 1 bad records (listed in the manifest)" in stdout
    assert out.read_text() == "instruction,output\nName a primary colour.,Blue.\nWhat is the capital of Italy?,Rome.\n"
    m = read_manifest(out)
    assert m["skipped"] == [f"{BAD / 'ragged_row.csv'}:3: has 3 fields, the header has 2"]
    assert m["indices"] == [0, 2] and m["data"]["container"] == "csv"


def test_skip_with_every_record_bad_is_an_error(tmp_path, capsys):
    code = main(_select(tmp_path, BAD / "all_bad.jsonl", "--n", "1", "--on-error", "skip"))
    assert_one_line_error(code, capsys.readouterr()[1], r"all_bad\.jsonl: no valid records \(2 skipped\)$")
    _no_output(tmp_path)


def test_missing_data_file(tmp_path, capsys):
    code = main(_select(tmp_path, tmp_path / "nope.jsonl", "--n", "1"))
    assert_one_line_error(code, capsys.readouterr()[1], r"nope\.jsonl: file not found$")
    _no_output(tmp_path)


def test_unreadable_file_via_monkeypatch(tmp_path, capsys, monkeypatch):
    """Tests run as root, where chmod 000 does not stop a read: fake the failing read instead."""
    target = tmp_path / "locked.jsonl"
    shutil.copy(BAD / "good.jsonl", target)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code = main(_select(tmp_path, target, "--n", "1"))
    assert_one_line_error(code, capsys.readouterr()[1], r"locked\.jsonl: cannot read file \(Permission denied\)$")
    _no_output(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads chmod 000 files")
def test_unreadable_file_chmod(tmp_path, capsys):
    target = tmp_path / "locked.jsonl"
    shutil.copy(BAD / "good.jsonl", target)
    target.chmod(0)
    try:
        code = main(_select(tmp_path, target, "--n", "1"))
    finally:
        target.chmod(0o644)
    assert_one_line_error(code, capsys.readouterr()[1], r"locked\.jsonl: cannot read file \(Permission denied\)$")


# -- accepted inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["utf8_bom.jsonl", "crlf.jsonl"])
def test_bom_and_crlf_are_accepted(name, tmp_path, capsys):
    from coreselect.data import load_dataset

    ds = load_dataset(BAD / name)
    assert len(ds) == 3 and ds.examples[0].record["instruction"] == "Name a primary colour."
    code = main(_select(tmp_path, BAD / name, "--n", "3", "--method", "random", "--keep-order"))
    assert code == 0, capsys.readouterr()[1]
    out = (tmp_path / "out" / "core.jsonl").read_bytes()
    assert b"\r" not in out and not out.startswith(b"\xef\xbb\xbf")
    assert [json.loads(x) for x in out.splitlines()] == [e.record for e in ds.examples]


def test_duplicates_are_accepted_counted_and_warned(tmp_path, capsys, caplog):
    from coreselect.data import load_dataset

    ds = load_dataset(BAD / "duplicates.jsonl")
    assert len(ds) == 6 and ds.duplicates == 3
    assert "3 duplicate records, kept" in caplog.text and "line 3 repeats line 1" in caplog.text
    code = main(_select(tmp_path, BAD / "duplicates.jsonl", "--n", "2", "--method", "random"))
    assert code == 0, capsys.readouterr()[1]
    m = read_manifest(tmp_path / "out" / "core.jsonl")
    assert m["counts"]["duplicates"] == 3 and m["counts"]["pool"] == 6


def test_huge_record_is_truncated_and_counted(tmp_path, capsys, caplog, tiny_dir):
    code = main(_select(tmp_path, BAD / "huge_record.jsonl.gz", "--n", "2", "--model", str(tiny_dir),
                        "--max-length", "64", *TINY_ARGS))
    assert code == 0, capsys.readouterr()[1]
    m = read_manifest(tmp_path / "out" / "core.jsonl")
    assert m["features"]["truncated"] == 1 and m["counts"]["pool"] == 3
    assert "1 of 3 examples were truncated to 64 tokens" in caplog.text
    from coreselect.store import FeatureStore

    store = FeatureStore.open(m["features"]["store"])
    assert store.manifest["stats"]["truncated"] == 1
    assert store.load(["truncated"])["truncated"].tolist() == [0, 1, 0]


# -- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,pattern", [
    (["--n", "0"], r"^--n must be a positive integer, got 0$"),
    (["--n", "-3"], r"^--n must be a positive integer, got -3$"),
    (["--n", "7"], r"^--n 7 is larger than the pool \(6 examples\)$"),
    (["--ratio", "0"], r"^--ratio must be in \(0, 1\], got 0\.0$"),
    (["--ratio", "-0.5"], r"^--ratio must be in \(0, 1\], got -0\.5$"),
    (["--ratio", "1.5"], r"^--ratio must be in \(0, 1\], got 1\.5$"),
    (["--ratio", "nan"], r"^--ratio must be in \(0, 1\], got nan$"),
    (["--ratio", "inf"], r"^--ratio must be in \(0, 1\], got inf$"),
    (["--n", "2", "--max-length", "4"], r"^--max-length must be at least 8, got 4$"),
    (["--n", "2", "--method", "kcentre"], r"^unknown selection method 'kcentre'\. Did you mean kcenter"),
])
def test_bad_budget_and_options(args, pattern, tmp_path, capsys):
    code = main(_select(tmp_path, BAD / "good.jsonl", *args))
    assert_one_line_error(code, capsys.readouterr()[1], pattern)
    _no_output(tmp_path)


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "out" / "core.jsonl"
    out.parent.mkdir()
    out.write_text("keep me\n")
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--method", "random"))
    assert_one_line_error(code, capsys.readouterr()[1], r"core\.jsonl: already exists \(pass --overwrite to replace it\)$")
    assert out.read_text() == "keep me\n" and sorted(p.name for p in out.parent.iterdir()) == ["core.jsonl"]
    assert main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--method", "random", "--overwrite")) == 0


def test_output_is_a_directory(tmp_path, capsys):
    (tmp_path / "out" / "core.jsonl").mkdir(parents=True)
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--method", "random", "--overwrite"))
    assert_one_line_error(code, capsys.readouterr()[1], r"core\.jsonl: is a directory$")


# -- models --------------------------------------------------------------------------------------
def test_missing_model_path(tmp_path, capsys):
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", "/nonexistent/model-dir"))
    assert_one_line_error(code, capsys.readouterr()[1], r"^/nonexistent/model-dir: model path not found$")
    _no_output(tmp_path)


def test_missing_gguf_file(tmp_path, capsys):
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", str(tmp_path / "m.gguf")))
    assert_one_line_error(code, capsys.readouterr()[1], r"m\.gguf: GGUF model file not found$")


def test_garbage_gguf(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CORESELECT_CACHE", str(tmp_path / "cache"))
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", str(BAD / "garbage_model.gguf")))
    assert_one_line_error(code, capsys.readouterr()[1], r"garbage_model\.gguf: cannot load GGUF model \(")
    _no_output(tmp_path)
    assert not list((tmp_path / "cache" / "models").iterdir())  # the half-converted folder is gone


def test_garbage_config_json(tmp_path, capsys):
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", str(BAD / "garbage_config_model")))
    assert_one_line_error(code, capsys.readouterr()[1],
                          r"garbage_config_model/config\.json: not a valid model config \(JSONDecodeError: ")
    _no_output(tmp_path)
    assert not (tmp_path / "work").exists()  # refused before a store was created


def test_garbage_weights(tmp_path, capsys, tiny_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" * 64)
    code = main(_select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", str(model), *TINY_ARGS))
    assert_one_line_error(code, capsys.readouterr()[1], r"model: cannot load model \(")
    _no_output(tmp_path)


# -- feature stores ------------------------------------------------------------------------------
def _extract(data: Path, store: Path, tiny_dir: Path, *extra: str) -> list[str]:
    return ["-q", "extract", str(data), "-o", str(store), "--model", str(tiny_dir), *TINY_ARGS, *extra]


def test_extract_refuses_a_store_of_other_data(tmp_path, capsys, tiny_dir):
    from _reliability import store_tensors

    data = tmp_path / "data.jsonl"
    shutil.copy(BAD / "good.jsonl", data)
    assert main(_extract(data, tmp_path / "feats", tiny_dir)) == 0
    before = store_tensors(tmp_path / "feats")
    data.write_text(data.read_text() + json.dumps({"instruction": "One more.", "output": "Yes."}) + "\n")
    capsys.readouterr()
    code = main(_extract(data, tmp_path / "feats", tiny_dir))
    assert_one_line_error(code, capsys.readouterr()[1],
                          r"feats: holds features of other data \(stored: .*data\.jsonl, sha256:\w+; "
                          r"now: sha256:\w+\), not of this run; use another directory or delete it$")
    assert store_tensors(tmp_path / "feats") == before
    # other options are named too
    shutil.copy(BAD / "good.jsonl", data)
    code = main(_extract(data, tmp_path / "feats", tiny_dir, "--max-length", "32"))
    assert_one_line_error(code, capsys.readouterr()[1], r"other options \(max_length 512 != 32\)")


def test_select_never_reuses_features_of_changed_data(tmp_path, capsys, tiny_dir):
    from coreselect.data import load_dataset
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import store_key
    from coreselect.models import resolve_model

    data = tmp_path / "data.jsonl"
    shutil.copy(BAD / "good.jsonl", data)
    args = _select(tmp_path, data, "--n", "2", "--model", str(tiny_dir), "--overwrite", *TINY_ARGS)
    assert main(args) == 0
    first = read_manifest(tmp_path / "out" / "core.jsonl")["features"]
    data.write_text(data.read_text().replace("Rome.", "Rome, on the Tiber."))
    assert main(args) == 0  # a new store next to the old one, never the old features
    second = read_manifest(tmp_path / "out" / "core.jsonl")["features"]
    assert second["key"] != first["key"] and second["store"] != first["store"]
    # a store directory that claims the new key's place but holds other features: refused
    shutil.rmtree(second["store"])
    shutil.copytree(first["store"], second["store"])
    key = store_key(load_dataset(data).fingerprint, resolve_model(str(tiny_dir)), FeatureConfig(layers=(-1,)))
    assert Path(second["store"]).name == key[:16]
    capsys.readouterr()
    code = main(args)
    assert_one_line_error(code, capsys.readouterr()[1], r"holds features of other data \(stored: ")


@pytest.fixture
def built_store(tmp_path, tiny_dir, capsys):
    """A select run with features in tmp/work; returns (args to rerun it, store dir)."""
    args = _select(tmp_path, BAD / "good.jsonl", "--n", "2", "--model", str(tiny_dir), *TINY_ARGS)
    assert main(args) == 0
    store = Path(read_manifest(tmp_path / "out" / "core.jsonl")["features"]["store"])
    for p in (tmp_path / "out").iterdir():
        p.unlink()
    capsys.readouterr()
    return args, store


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_shard_is_refused(damage, built_store, tmp_path, capsys):
    args, store = built_store
    shard = store / "shard-00000.safetensors"
    data = shard.read_bytes()
    shard.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    code = main(args)
    assert_one_line_error(code, capsys.readouterr()[1], r"shard-00000\.safetensors: corrupted shard \(.*\); "
                          r"delete it and rerun extract to recreate it$")
    _no_output(tmp_path)
    shard.unlink()  # as the message says: the rerun extracts the deleted shard again
    assert main(args) == 0 and shard.read_bytes() == data


def test_deleted_shard_is_extracted_again_and_temp_files_never_read(built_store, tmp_path, caplog):
    args, store = built_store
    shard = store / "shard-00000.safetensors"
    data = shard.read_bytes()
    shard.unlink()
    tmp = store / ".shard-00000.safetensors.k1ll3d.tmp"  # what a writer killed mid-write leaves
    tmp.write_bytes(data[: len(data) // 3])
    assert main(args) == 0
    assert "1 shards are missing; extracting them again" in caplog.text
    assert shard.read_bytes() == data and not tmp.exists()


@pytest.mark.parametrize("field,value,pattern", [
    ("n_rows", 99, r'n_rows is 99 but the data has 6 rows; delete the directory$'),
    ("shard_rows", 0, r'manifest\.json: field "shard_rows": must be a positive integer, got 0$'),
    ("shard_rows", "../x", r"""manifest\.json: field "shard_rows": must be a positive integer, got '\.\./x'$"""),
    ("n_rows", True, r'manifest\.json: field "n_rows": must be a positive integer, got True$'),
    ("dims", {"../../x": "y"}, r'manifest\.json: field "dims": must map group names to integers$'),
])
def test_tampered_store_manifest_is_refused(field, value, pattern, built_store, tmp_path, capsys):
    args, store = built_store
    m = json.loads((store / "manifest.json").read_text())
    m[field] = value
    (store / "manifest.json").write_text(json.dumps(m))
    code = main(args)
    assert_one_line_error(code, capsys.readouterr()[1], pattern)
    _no_output(tmp_path)


def test_extract_into_a_file_or_a_foreign_directory(tmp_path, capsys, tiny_dir):
    (tmp_path / "afile").write_text("x")
    code = main(_extract(BAD / "good.jsonl", tmp_path / "afile", tiny_dir))
    assert_one_line_error(code, capsys.readouterr()[1], r"afile: exists and is not a directory$")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    code = main(_extract(BAD / "good.jsonl", tmp_path / "foreign", tiny_dir))
    assert_one_line_error(code, capsys.readouterr()[1], r"foreign: exists and is not a feature store")
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["notes.txt"]


def test_extract_bad_shard_rows(tmp_path, capsys):
    code = main(["-q", "extract", str(BAD / "good.jsonl"), "-o", str(tmp_path / "f"), "--shard-rows", "0"])
    assert_one_line_error(code, capsys.readouterr()[1], r"^--shard-rows must be positive, got 0$")
    assert not (tmp_path / "f").exists()


def test_extract_on_error_skip_reports_count(tmp_path, capsys, tiny_dir):
    code = main(_extract(BAD / "missing_output.jsonl", tmp_path / "f", tiny_dir, "--on-error", "skip"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "2 examples" in out
    assert re.search(r'skipped 1 bad records: .*missing_output\.jsonl:2: field "output": missing', out)


# -- through a real process: nothing but the one line reaches the terminal ------------------------
@pytest.mark.parametrize("argv,pattern", [
    (["select", str(BAD / "invalid_json_line.jsonl"), "--n", "1"], r"invalid_json_line\.jsonl:2: invalid JSON"),
    (["select", str(BAD / "corrupted.jsonl.gz"), "--n", "1"], r"corrupted\.jsonl\.gz: corrupted gzip"),
    (["select", str(BAD / "good.jsonl"), "--ratio", "nan"], r"--ratio must be in \(0, 1\], got nan"),
    (["extract", str(BAD / "lone_surrogate.jsonl"), "-o", "feats"], r'lone_surrogate\.jsonl:2: field "output"'),
    (["select", str(BAD / "many_bad.jsonl"), "--n", "1"],
     r'many_bad\.jsonl:1: .*; line 23: .*; \.\.\. \(25 bad records, the first 20 listed; --on-error skip leaves them out\)$'),
    # a Hugging Face dataset id that is neither cached nor reachable: one line at once, no hub retries
    (["select", "nobody-xyz/no-such-dataset", "--n", "1"],
     r"^nobody-xyz/no-such-dataset: no such file, and no Hugging Face dataset of that name in the local cache "
     r"\(the Hub is unreachable or HF_HUB_OFFLINE is set\)$"),
])
def test_subprocess_shows_one_line_and_no_traceback(argv, pattern, tmp_path, tmp_path_factory):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path_factory.mktemp("hf_home"))}
    proc = subprocess.run([sys.executable, "-m", "coreselect.cli.main", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, pattern)
    assert list(tmp_path.iterdir()) == []


def test_every_corpus_file_is_used_and_listed():
    used = {f for f, _, _ in DATA_CASES} | {"utf8_bom.jsonl", "crlf.jsonl", "huge_record.jsonl.gz",
                                            "duplicates.jsonl", "good.jsonl", "garbage_model.gguf",
                                            "garbage_config_model"}
    present = {p.name for p in BAD.iterdir()} - {"README.md"}
    assert present == used
    readme = (BAD / "README.md").read_text()
    assert all(f"`{name}" in readme for name in present)


@pytest.mark.slow
def test_real_model_skips_bad_records_and_counts_truncation(tmp_path, capsys, default_spec):
    """End to end with the real default model: a bad line skipped, a 1 MB record truncated."""
    lines = (BAD / "good.jsonl").read_text().splitlines()[:3]
    huge = gzip.decompress((BAD / "huge_record.jsonl.gz").read_bytes()).decode().splitlines()[1]
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join([lines[0], '{"instruction": "x", "output": }', huge, *lines[1:]]) + "\n")
    out = tmp_path / "out" / "core.jsonl"
    code = main(_select(tmp_path, data, "--n", "2", "--on-error", "skip", "--max-length", "64"))
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "skipped 1 bad records" in stdout
    m = read_manifest(out)
    assert m["model"]["name"] == "smollm2-135m-instruct"
    assert m["counts"] == {"pool": 4, "selected": 2, "skipped": 1, "duplicates": 0}
    assert m["features"]["truncated"] == 1
    assert re.fullmatch(re.escape(str(data)) + r":2: invalid JSON \(Expecting value at column 32\)", m["skipped"][0])
