"""Data where the user already has it: CSV/TSV, Arrow files, save_to_disk folders, Hugging Face ids.

Each is read by the library and the CLI, errors name file, line (row) and field, and a subset
is written back in the container documented in coreselect/readers.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from coreselect.cli.main import main
from coreselect.data import load_dataset
from coreselect.errors import DataError
from coreselect.output import default_output_name, subset_bytes

RECORDS = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5", "task": "math"},
    {"instruction": "Write a haiku\nabout rain.", "input": "", "output": "Soft rain,\n\"wet\" roofs.", "task": "poem"},
    {"instruction": "Translate", "input": "chat", "output": "cat", "task": "translate"},
]


def _csv(rows: list[dict], delimiter: str = ",") -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _select(data, out: Path, *extra: str) -> list[str]:
    return ["-q", "select", str(data), "-o", str(out), "--no-progress", "--method", "random", *extra]


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.csv.gz"])
def test_csv_and_tsv_read_with_start_lines_and_round_trip(tmp_path, name):
    text = _csv(RECORDS, "\t" if ".tsv" in name else ",")
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    ds = load_dataset(p)
    assert [e.record for e in ds.examples] == RECORDS
    assert [e.line for e in ds.examples] == [2, 3, 6]  # record 2 spans lines 3-5 (quoted newlines)
    assert ds.container == ("tsv" if ".tsv" in name else "csv") and default_output_name(ds) == "core" + name[1:]
    out = tmp_path / ("out-" + default_output_name(ds))
    out.write_bytes(subset_bytes(ds, [2, 1], out))
    assert [e.record for e in load_dataset(out).examples] == [RECORDS[2], RECORDS[1]]


def test_csv_chat_cells_hold_json_and_round_trip(tmp_path):
    conv = [{"from": "human", "value": "Hi, you"}, {"from": "gpt", "value": "Hello"}]
    p = tmp_path / "chat.csv"
    p.write_text(_csv([{"conversations": json.dumps(conv), "source": "x"}]))
    ds = load_dataset(p)
    assert ds.format == "sharegpt" and ds.examples[0].messages == (("user", "Hi, you"), ("assistant", "Hello"))
    out = tmp_path / "core.csv"
    out.write_bytes(subset_bytes(ds, [0], out))
    assert load_dataset(out).examples[0].record == {"conversations": conv, "source": "x"}


def test_csv_long_cells_and_header_problems(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text(_csv([{"instruction": "Say a lot.", "output": "word " * 60_000}]))  # > csv's 128 KiB default
    assert len(load_dataset(p).examples[0].response) == 300_000
    p.write_text("instruction,output,output\na,b,c\n")
    with pytest.raises(DataError, match=r"long\.csv:1: column 'output' appears twice in the header$"):
        load_dataset(p)
    p.write_text("instruction,output\n")
    with pytest.raises(DataError, match=r"long\.csv: no records \(no rows after the header\)$"):
        load_dataset(p)


def test_arrow_file_and_save_to_disk_folders(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(RECORDS)
    ds.select([2, 0, 1]).save_to_disk(str(tmp_path / "disk"))  # an indices mapping: flattened when saved
    got = load_dataset(tmp_path / "disk")
    assert [e.record for e in got.examples] == [RECORDS[2], RECORDS[0], RECORDS[1]]
    assert got.container == "disk" and [e.line for e in got.examples] == [1, 2, 3]
    assert default_output_name(got) == "core.jsonl"
    arrow = next((tmp_path / "disk").glob("*.arrow"))
    assert [e.record for e in load_dataset(arrow).examples] == [e.record for e in got.examples]
    assert load_dataset(arrow).fingerprint == got.fingerprint  # the same bytes
    # a DatasetDict folder: its train split, or the split named by the folder
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    assert len(load_dataset(tmp_path / "dd")) == 3 and len(load_dataset(tmp_path / "dd" / "test")) == 1
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(tmp_path / "ab"))
    with pytest.raises(DataError, match=r"ab: holds the splits a, b: name one, e\.g\. .*ab/a$"):
        load_dataset(tmp_path / "ab")


def test_arrow_rows_are_named_in_errors(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([RECORDS[0], {**RECORDS[1], "output": ""}]).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r'/d:2: field "output": is empty$'):
        load_dataset(tmp_path / "d")


def test_cli_selects_from_csv_folder_and_arrow_and_writes_their_containers(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    (tmp_path / "d.csv").write_text(_csv(RECORDS))
    assert main(_select(tmp_path / "d.csv", tmp_path / "core.csv", "--n", "2", "--keep-order")) == 0
    back = load_dataset(tmp_path / "core.csv")
    assert all(e.record in RECORDS for e in back.examples) and len(back) == 2
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "disk"))
    assert main(_select(tmp_path / "disk", tmp_path / "core.jsonl", "--n", "2")) == 0
    lines = (tmp_path / "core.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) in RECORDS for x in lines)
    m = json.loads((tmp_path / "core.jsonl.manifest.json").read_text())
    assert m["data"]["container"] == "disk" and [RECORDS[i] for i in m["indices"]] == [json.loads(x) for x in lines]
    # -o core.arrow: an Arrow stream that datasets reads back
    assert main(_select(tmp_path / "disk", tmp_path / "core.arrow", "--n", "2")) == 0
    assert datasets.Dataset.from_file(str(tmp_path / "core.arrow")).to_list() == [json.loads(x) for x in lines]


def test_cli_columns_map_fields_and_name_the_users_field(tmp_path, capsys):
    rows = [{"prompt": r["instruction"], "response": r["output"]} for r in RECORDS]
    (tmp_path / "p.csv").write_text(_csv(rows + [{"prompt": "Nothing back.", "response": ""}]))
    args = _select(tmp_path / "p.csv", tmp_path / "core.csv", "--n", "2",
                   "--columns", "instruction=prompt,output=response")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'coreselect: error: {tmp_path / "p.csv"}:7: field "response": is empty'
    (tmp_path / "p.csv").write_text(_csv(rows))
    assert main(args) == 0
    m = json.loads((tmp_path / "core.csv.manifest.json").read_text())
    assert m["data"]["columns"] == {"instruction": "prompt", "output": "response"}
    assert load_dataset(tmp_path / "core.csv", columns=m["data"]["columns"]).examples[0].record in rows
    assert main(["-q", "score", str(tmp_path / "core.csv.manifest.json")]) == 0  # reloads with the mapping
    capsys.readouterr()
    assert main([*args[:-1], "instruction=prompt,outptu=response", "--overwrite"]) == 2
    assert "columns: unknown field 'outptu' (did you mean 'output'?" in capsys.readouterr().err


# -- Hugging Face dataset ids ----------------------------------------------------------------------
@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A local Hugging Face datasets cache holding ``fake-org/tiny`` (train: 3 records, test: 1),
    laid out as ``datasets`` leaves it after a download; the Hub itself is never contacted."""
    datasets = pytest.importorskip("datasets")
    from datasets.packaged_modules.json.json import Json

    cache = tmp_path / "hf_datasets"
    src = tmp_path / "src"
    src.mkdir()
    for split, recs in (("train", RECORDS), ("test", RECORDS[:1])):
        (src / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    builder = Json(cache_dir=str(tmp_path / "build"), dataset_name="tiny", hash="0123abcd",
                   data_files={s: str(src / f"{s}.jsonl") for s in ("train", "test")})
    builder.download_and_prepare()
    dest = cache / "fake-org___tiny" / "default" / "0.0.0" / "0123abcd"
    dest.parent.mkdir(parents=True)
    Path(builder.cache_dir).rename(dest)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_reads_offline_from_the_local_cache(hf_cache, tmp_path, capsys):
    ds = load_dataset("fake-org/tiny")
    assert [e.record for e in ds.examples] == RECORDS and ds.container == "hub"
    assert str(ds.path) == "fake-org/tiny" and ds.fingerprint.startswith("sha256:")
    assert len(load_dataset("fake-org/tiny:test")) == 1
    out = tmp_path / "out" / "core.jsonl"
    assert main(_select("fake-org/tiny", out, "--n", "2")) == 0
    assert [json.loads(x) in RECORDS for x in out.read_text().splitlines()] == [True, True]
    with pytest.raises(DataError, match=r"^fake-org/tiny:nope: no such file, and cannot load it as a Hugging Face "
                                        r"dataset \(ValueError: Unknown split"):
        load_dataset("fake-org/tiny:nope")


def test_unknown_hub_id_offline_fails_at_once_in_one_line(hf_cache, capsys, monkeypatch):
    import datasets

    def no_load(*a, **k):  # refused from the caches alone: datasets (and its retries) never runs
        raise AssertionError("datasets.load_dataset was called")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    with pytest.raises(DataError) as e:
        load_dataset("nobody-xyz/no-such-dataset")
    assert str(e.value) == ("nobody-xyz/no-such-dataset: no such file, and no Hugging Face dataset of that name in "
                            "the local cache (the Hub is unreachable or HF_HUB_OFFLINE is set)")


def test_unreachable_hub_is_detected_without_the_offline_variable(monkeypatch):
    from coreselect import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens here
    assert hub.hub_reachable() is False


def test_missing_file_and_id_shapes():
    with pytest.raises(DataError, match=r"nope\.csv: file not found$"):
        load_dataset("nope.csv")
    with pytest.raises(DataError, match=r"^no/such/dir: file not found$"):
        load_dataset("./no/such/dir")


# -- JSON Lines end at \n alone (issue 19) ----------------------------------------------------------
#: Characters str.splitlines() breaks at that a JSON string may hold as they are.
LINE_BREAKERS = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e"]


def _odd_records(ch: str, n: int = 10) -> list[dict]:
    return [{"instruction": f"Review {i}:{ch}great film" if i % 3 == 1 else f"Review {i}.",
             "input": "", "output": f"positive{ch}" if i % 3 == 1 else "negative"} for i in range(n)]


def _jsonl(records: list[dict], *, eol: str = "\n") -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + eol for r in records)


@pytest.mark.parametrize("ch", LINE_BREAKERS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKERS])
@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_jsonl_lines_end_at_newline_only(tmp_path, ch, eol):
    recs = _odd_records(ch)
    p = tmp_path / "d.jsonl"
    p.write_bytes(_jsonl(recs, eol=eol).encode())
    ds = load_dataset(p)
    assert [e.record for e in ds.examples] == recs
    assert [e.line for e in ds.examples] == list(range(1, 11))
    assert [e.source_index for e in ds.examples] == list(range(10))
    out = tmp_path / "core.jsonl"
    out.write_bytes(subset_bytes(ds, [1, 4], out))
    assert out.read_bytes() == _jsonl([recs[1], recs[4]]).encode()  # byte-exact, CRLF dropped
    assert [e.record for e in load_dataset(out).examples] == [recs[1], recs[4]]


@pytest.mark.parametrize("ch", LINE_BREAKERS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKERS])
def test_json_array_and_gz_jsonl_keep_odd_characters(tmp_path, ch):
    recs = _odd_records(ch, 4)
    (tmp_path / "d.json").write_text(json.dumps(recs, ensure_ascii=False, indent=1), encoding="utf-8")
    assert [e.record for e in load_dataset(tmp_path / "d.json").examples] == recs
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(_jsonl(recs).encode()))
    assert [e.record for e in load_dataset(tmp_path / "d.jsonl.gz").examples] == recs


def test_bad_line_number_is_the_files_with_odd_characters(tmp_path):
    text = _jsonl(_odd_records("\u2028", 4)) + '{"instruction": "x\x85y", "output": \n'
    (tmp_path / "d.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:5: invalid JSON"):
        load_dataset(tmp_path / "d.jsonl")


def _pool_with_a_bad_line(tmp_path: Path) -> tuple[Path, list[dict], int]:
    """10 valid records (U+0085, U+2028 and a form feed inside strings) and an invalid line 5."""
    recs = [{"instruction": f"Review {i}:\x85good{chr(0x2028)}film\x0c", "input": "", "output": f"label {i}"}
            for i in range(10)]
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    lines.insert(4, '{"instruction": "broken", ')  # record position 4 of 11
    p = tmp_path / "imdb.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p, recs, 4


def test_cli_skip_indices_name_the_records_position_in_the_input(tmp_path, capsys):
    p, recs, bad = _pool_with_a_bad_line(tmp_path)
    positions = [*range(bad), None, *range(bad, 10)]  # input position -> valid record (None: the bad line)
    out = tmp_path / "core.jsonl"
    assert main(_select(p, out, "--n", "10", "--on-error", "skip")) == 0, capsys.readouterr()[1]
    m = json.loads((tmp_path / "core.jsonl.manifest.json").read_text())
    assert m["counts"]["pool"] == 10 and m["counts"]["skipped"] == 1
    assert m["skipped"] == [f"{p}:5: invalid JSON (Expecting property name enclosed in double quotes at column 27)"]
    assert sorted(m["indices"]) == [i for i in range(11) if i != bad]  # every index inside the file
    assert [recs[positions[i]] for i in m["indices"]] == [json.loads(x) for x in out.read_text().split("\n")[:-1]]
    assert m["lines"] == [i + 1 for i in m["indices"]]
    # without skipping, on the same records with the bad line removed: indices are 0..9
    good = tmp_path / "good.jsonl"
    good.write_text(_jsonl(recs), encoding="utf-8")
    out2 = tmp_path / "core2.jsonl"
    assert main(_select(good, out2, "--n", "4")) == 0, capsys.readouterr()[1]
    m2 = json.loads((tmp_path / "core2.jsonl.manifest.json").read_text())
    assert [recs[i] for i in m2["indices"]] == [json.loads(x) for x in out2.read_text().split("\n")[:-1]]


def test_api_skip_indices_name_the_records_position_in_the_input(tmp_path):
    import coreselect

    p, recs, bad = _pool_with_a_bad_line(tmp_path)
    res = coreselect.select(p, n=10, method="random", on_error="skip")
    assert sorted(res.indices) == [i for i in range(11) if i != bad]
    records = [json.loads(x) if i != bad else None for i, x in enumerate(p.read_text().split("\n")[:-1])]
    assert res.subset == [records[i] for i in res.indices]
    assert res.manifest.indices == res.indices
