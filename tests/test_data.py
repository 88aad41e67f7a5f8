from __future__ import annotations

import gzip
import json

import pytest

from coreselect.data import load_dataset
from coreselect.demo import demo_path
from coreselect.errors import DataError
from coreselect.output import default_output_name, subset_bytes

ALPACA = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5", "id": 7},
    {"instruction": "Translate", "input": "chat", "output": "cat"},
    {"instruction": "Name a colour.", "output": "Blue."},
]


def test_demo_dataset_is_varied():
    ds = load_dataset(demo_path())
    assert len(ds) >= 200
    assert len({e.record["category"] for e in ds.examples}) >= 15


def test_alpaca_jsonl_keeps_records_and_lines(alpaca_file):
    ds = load_dataset(alpaca_file(ALPACA))
    assert ds.format == "alpaca" and ds.container == "jsonl"
    assert ds.examples[0].record == ALPACA[0]
    assert ds.examples[1].messages == (("user", "Translate\n\nchat"), ("assistant", "cat"))
    assert [e.line for e in ds.examples] == [1, 2, 3]


@pytest.mark.parametrize("name", ["d.json", "d.json.gz", "d.jsonl.gz", "d.parquet"])
def test_containers_round_trip(tmp_path, name):
    p = tmp_path / name
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ALPACA), p)
    else:
        body = json.dumps(ALPACA, indent=1) if ".json." in name or name.endswith(".json") else \
            "".join(json.dumps(r) + "\n" for r in ALPACA)
        data = body.encode()
        p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    ds = load_dataset(p)
    assert len(ds) == 3
    out = tmp_path / ("out-" + default_output_name(ds))
    out.write_bytes(subset_bytes(ds, [2, 0], out))
    back = load_dataset(out)
    assert [e.record for e in back.examples] == [ds.examples[2].record, ds.examples[0].record]


def test_json_array_line_numbers(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c"}\n]\n')
    with pytest.raises(DataError) as e:
        load_dataset(p)
    assert str(e.value) == f'{p}:3: field "output": missing'


def test_sharegpt_and_messages(tmp_path):
    sg = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                            {"from": "gpt", "value": "Hello!"}]}
    ms = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}
    for rec, fmt in [(sg, "sharegpt"), (ms, "messages")]:
        p = tmp_path / f"{fmt}.jsonl"
        p.write_text(json.dumps(rec) + "\n")
        ds = load_dataset(p)
        assert ds.format == fmt
        assert ds.examples[0].messages[-1][0] == "assistant"


def test_bad_record_names_file_line_field(alpaca_file):
    p = alpaca_file([ALPACA[0], {"instruction": "x", "output": 3}])
    with pytest.raises(DataError, match=r'data.jsonl:2: field "output": must be a string, got a JSON number'):
        load_dataset(p)


def test_skip_mode_reports_and_keeps_positions(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\nnot json\n{"instruction": "c", "output": ""}\n'
                 '{"instruction": "d", "output": "e"}\n')
    ds = load_dataset(p, on_error="skip")
    assert len(ds) == 2 and len(ds.skipped) == 2
    assert [e.source_index for e in ds.examples] == [0, 3]
    assert "d.jsonl:2" in ds.skipped[0]


def test_jsonl_export_is_byte_exact(tmp_path):
    p = tmp_path / "d.jsonl"
    lines = ['{"output": "b",  "instruction": "a"}', '{"instruction":"c","output":"d"}']
    p.write_text("\n".join(lines) + "\n")
    ds = load_dataset(p)
    assert subset_bytes(ds, [1, 0], tmp_path / "o.jsonl").decode() == lines[1] + "\n" + lines[0] + "\n"
