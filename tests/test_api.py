"""``coreselect.select``: a datasets.Dataset, a DataFrame, a list of dicts or a path in; the picks
back in the type given, their 0-based input positions in pick order and the typed manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import coreselect
from coreselect.data import load_dataset
from coreselect.demo import demo_path
from coreselect.errors import BadRecordsError, ConfigError
from coreselect.manifest import SelectionManifest

POOL = [{"instruction": f"Add {i} and 1.", "input": "", "output": str(i + 1), "task": f"t{i % 3}"} for i in range(12)]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Each test runs in an empty folder, so that a file written by mistake shows."""
    monkeypatch.chdir(tmp_path)


def test_datasets_dataset_in_dataset_out(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(POOL)
    res = coreselect.select(ds, ratio=0.25, method="random", seed=3)
    assert isinstance(res.subset, datasets.Dataset) and len(res.subset) == 3 == len(res)
    assert res.subset.to_list() == [POOL[i] for i in res.indices]
    assert isinstance(res.manifest, SelectionManifest) and res.manifest.indices == res.indices
    assert res.manifest.data.path == "<Dataset>" and res.manifest.counts.pool == 12
    assert res.output is None and list(tmp_path.iterdir()) == []  # nothing written without output=


def test_dataframe_rows_keep_their_index_and_odd_values(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(POOL, index=[f"r{i}" for i in range(12)])
    df["score"] = [float("nan") if i % 4 == 0 else i / 2 for i in range(12)]  # missing values, numpy floats
    df["n"] = range(12)  # numpy ints
    res = coreselect.select(df, n=4, method="random", keep_order=True)
    assert res.indices == sorted(res.indices)
    assert list(res.subset.index) == [f"r{i}" for i in res.indices]
    assert res.subset.equals(df.iloc[res.indices])


def test_list_of_dicts_and_options(tmp_path):
    res = coreselect.select(POOL, n=5, method="random", label_columns=["task"])
    assert [id(r) for r in res.subset] == [id(POOL[i]) for i in res.indices]  # the same dicts
    assert set(res.manifest.scores["labels"]["task"]) >= {"labels_in_pool", "labels_in_core"}
    assert "5 of 12" in repr(res)


def test_path_gives_records_and_output_writes_file_and_manifest(tmp_path):
    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in POOL))
    res = coreselect.select(data, n=3, method="random")
    assert res.subset == [POOL[i] for i in res.indices] and sorted(p.name for p in tmp_path.iterdir()) == ["pool.jsonl"]
    res = coreselect.select(str(data), n=3, method="random", output=tmp_path / "core.csv")
    assert res.output == tmp_path / "core.csv" and (tmp_path / "core.csv.manifest.json").is_file()
    assert [e.record for e in load_dataset(res.output).examples] == [
        {k: str(v) for k, v in POOL[i].items()} for i in res.indices]  # CSV cells are text


def test_columns_map_fields_and_errors_name_the_users_field_and_position():
    rows = [{"prompt": r["instruction"], "completion": r["output"]} for r in POOL]
    res = coreselect.select(rows, n=2, method="random", columns={"instruction": "prompt", "output": "completion"})
    assert res.subset == [rows[i] for i in res.indices]
    bad = [*rows[:3], {"prompt": "x"}, {"prompt": "y", "completion": 7}]
    with pytest.raises(BadRecordsError) as e:
        coreselect.select(bad, n=2, method="random", columns={"instruction": "prompt", "output": "completion"})
    assert str(e.value) == ('list[3]: field "completion": missing; list[4]: field "completion": must be a string, '
                            'got a JSON number (2 bad records; --on-error skip leaves them out)')
    res = coreselect.select(bad, n=2, method="random", on_error="skip",
                            columns={"instruction": "prompt", "output": "completion"})
    assert set(res.indices) <= {0, 1, 2} and res.manifest.counts.skipped == 2


def test_the_mapping_is_part_of_the_fingerprint(tmp_path):
    both = [{"instruction": "a", "output": "b", "alt": "c"}]
    plain = load_dataset_from(both, None)
    mapped = load_dataset_from(both, {"output": "alt"})
    assert plain.fingerprint != mapped.fingerprint and mapped.examples[0].response == "c"


def load_dataset_from(records, columns):
    from coreselect.sources import load_data

    return load_data(records, columns=columns)


@pytest.mark.parametrize("data,pattern", [
    (42, r"^data must be a path \(a file or a save_to_disk folder\), a Hugging Face dataset id, a datasets\.Dataset, "
         r"a pandas DataFrame or a list of dicts; got int$"),
    ({"instruction": "a"}, r"; got dict$"),
    (iter(POOL), r"; got list_iterator$"),
])
def test_wrong_types_are_one_config_error(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        coreselect.select(data, n=1)
    with pytest.raises(ConfigError, match=pattern):
        coreselect.SelectJob(data=data, n=1)


def test_a_manifest_of_in_memory_data_says_how_to_rescore_it(tmp_path, capsys):
    from coreselect.cli.main import main

    res = coreselect.select(POOL, n=2, method="random", output=tmp_path / "core.jsonl")
    assert res.output == tmp_path / "core.jsonl" and res.manifest.data.path == "<list>"
    assert main(["-q", "score", str(tmp_path / "core.jsonl.manifest.json")]) == 2
    assert capsys.readouterr().err == ("coreselect: error: <list>: records that were in memory (coreselect.select on "
                                       "a DataFrame, a Dataset or a list) cannot be read back: save them to a file "
                                       "and pass that\n")


def test_dataset_dict_and_unknown_options_say_what_to_do():
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(POOL)})
    with pytest.raises(ConfigError, match=r"DatasetDict with the splits train: pass one split, e\.g\. data\['train'\]"):
        coreselect.select(dd, n=1)
    with pytest.raises(ConfigError, match=r"^select\(\) got an unknown option 'methd' \(did you mean 'method'\?\)$"):
        coreselect.select(POOL, n=1, methd="random")
    with pytest.raises(ConfigError, match=r"^select\(\) needs a budget: ratio= \(a share of the pool\), n= "):
        coreselect.select(POOL, method="random")
    with pytest.raises(ConfigError, match=r"columns: unknown field 'prompt' \(columns maps coreselect's field to "
                                          r"yours: did you mean \{'instruction': 'prompt'\}\?\)"):
        coreselect.select(POOL, n=1, columns={"prompt": "instruction"})


def test_selectjob_features_by_kind_and_selectjob_with_records(tmp_path):
    from coreselect.features.config import FeatureConfig
    from coreselect.pipeline import run_select

    assert coreselect.SelectJob(features="text").features == FeatureConfig(kind="text")
    assert coreselect.SelectJob(features="hidden").features.layers == (-1,)
    with pytest.raises(ConfigError, match=r"^--features must be one of activations, hidden, text, got 'txt'$"):
        coreselect.SelectJob(features="txt")
    with pytest.raises(ConfigError, match=r"^features must be a FeatureConfig or a kind .*, got int$"):
        coreselect.SelectJob(features=3)
    res = run_select(coreselect.SelectJob(data=POOL, n=2, method="random", output=str(tmp_path / "c.jsonl")))
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 2 and res.manifest.data.container == "memory"


def test_tiny_model_in_memory_features_are_cached_like_a_file(tmp_path, tiny_dir, one_torch_thread):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([e.record for e in load_dataset(demo_path()).examples[:24]])
    opts = dict(model=str(tiny_dir), layers=[-1], work_dir=str(tmp_path / "feats"), progress=False)
    first = coreselect.select(ds, n=5, method="kcenter", **opts)
    assert first.manifest.features is not None and first.manifest.features.config["layers"] == [-1]
    again = coreselect.select(ds, n=5, method="kcenter", **opts)
    assert again.indices == first.indices and again.manifest.features.store == first.manifest.features.store
    assert again.manifest.timings["extract"] < first.manifest.timings["extract"]
    assert again.subset.to_list() == [ds[i] for i in first.indices]


def test_import_coreselect_stays_light():
    code = ("import sys, coreselect; coreselect.select; coreselect.Selection; "
            "print(sorted(m for m in ('torch', 'transformers', 'ray', 'datasets', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    assert out.strip() == "[]"


# -- issue 19: library calls --------------------------------------------------------------------
def test_dir_lists_the_lazy_api():
    names = dir(coreselect)
    assert {"select", "Selection", "SelectJob", "run_select", "SelectResult", "load_features", "Features",
            "__version__"} <= set(names)
    assert all(hasattr(coreselect, n) for n in coreselect.__all__)


def test_option_types_are_coerced_or_one_config_error():
    res = coreselect.select(POOL, ratio="0.25", method="random", layers=15, seed="1")  # numeric strings, an int
    assert len(res) == 3 and res.manifest.budget.ratio == 0.25
    from coreselect.features.config import FeatureConfig

    assert FeatureConfig(layers=8).layers == (8,)
    assert coreselect.SelectJob(ratio=0.1, label_columns="task,template").label_columns == ("task", "template")
    import numpy as np

    assert coreselect.select(POOL, n=np.int64(2), method="random").manifest.budget.n == 2
    for kw, pattern in [({"ratio": "a fifth"}, r"^--ratio must be a number, got 'a fifth'$"),
                        ({"n": 2.5}, r"^--n must be an integer, got 2\.5$"),
                        ({"n": 2, "layers": "x"}, r"^--layers must be an integer, got 'x'$"),
                        ({"n": 2, "max_length": [256]}, r"^--max-length must be an integer, got \[256\]$"),
                        ({"n": 2, "keep_order": "yes"}, r"^--keep-order must be true or false, got 'yes'$")]:
        with pytest.raises(ConfigError, match=pattern):
            coreselect.select(POOL, method="random", **kw)


def test_features_takes_a_matrix_like_features_file(tmp_path):
    import numpy as np

    X = np.random.default_rng(0).normal(size=(len(POOL), 6)).astype(np.float32)
    np.save(tmp_path / "f.npy", X)
    by_file = coreselect.select(POOL, n=4, features_file=str(tmp_path / "f.npy"))
    by_matrix = coreselect.select(POOL, n=4, features=X)
    assert by_matrix.indices == by_file.indices and by_matrix.manifest.features.config == {"kind": "matrix"}
    torch = pytest.importorskip("torch")
    assert coreselect.select(POOL, n=4, features=torch.from_numpy(X)).indices == by_file.indices
    for bad, pattern in [(X[:5], r"^<features>: 5 feature rows for a pool of 12 records"),
                         (X[:, 0], r"^features must be a numeric 2-D matrix \(one row per record\), got shape \(12,\)"),
                         (np.array([["a"] * 2] * 12), r"^features must be a numeric 2-D matrix")]:
        with pytest.raises(ConfigError, match=pattern):
            coreselect.select(POOL, n=4, features=bad)
    with pytest.raises(ConfigError, match=r"^features= \(a matrix\) cannot be used with --model"):
        coreselect.select(POOL, n=4, features=X, model="smollm2-135m-instruct")


def test_features_matrix_rows_per_input_record_with_skipped_records():
    import numpy as np

    pool = [*POOL[:3], {"instruction": "no output"}, *POOL[3:]]  # record 3 is skipped
    X = np.random.default_rng(0).normal(size=(len(pool), 6)).astype(np.float32)
    res = coreselect.select(pool, n=len(POOL), features=X, on_error="skip")
    assert sorted(res.indices) == [i for i in range(len(pool)) if i != 3]
    valid_rows = np.delete(X, 3, axis=0)  # or a row per valid record
    assert coreselect.select(pool, n=5, features=valid_rows, on_error="skip").indices == \
        coreselect.select(pool, n=5, features=X, on_error="skip").indices
