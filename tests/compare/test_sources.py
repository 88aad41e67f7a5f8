"""Presets a user can run (issue 19): a data source is a local file, a Hub id or a list tried in
order; a missing one is one line naming its YAML key and what to do, and nothing is left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from coreselect.cli.main import main
from coreselect.compare.config import load_config, parse_config
from coreselect.compare.run import run_experiment
from coreselect.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHARED = (ROOT.parent / "shared" / "data").resolve()  # paths are resolved (../shared may be a link)
PRESETS = sorted((ROOT / "examples").glob("*.yaml"))
ALPACA_PRESETS = [p for p in PRESETS if not p.stem.startswith("task_mixture")]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Hub and an empty Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for v in ("HF_DATASETS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "CORESELECT_DATA"):
        monkeypatch.delenv(v, raising=False)


def _base(**extra) -> dict:
    return {"pool": {"path": "pool.jsonl", "limit": 5}, "eval": [{"name": "held", "path": "pool.jsonl", "offset": 5}],
            "methods": [], "baselines": ["random"], **extra}


def _records(n: int) -> str:
    return "".join(json.dumps({"instruction": f"Add {i} and 1.", "output": str(i + 1)}) + "\n" for i in range(n))


def test_a_list_is_tried_in_order_local_file_first(tmp_path, monkeypatch):
    monkeypatch.delenv("CORESELECT_DATA", raising=False)
    both = {"path": ["data/pool.jsonl", "yahma/alpaca-cleaned"], "limit": 5}
    cfg = parse_config(_base(pool=both), tmp_path)
    assert cfg.pool.path == "yahma/alpaca-cleaned"  # no local file: the Hub id
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pool.jsonl").write_text(_records(10))
    cfg = parse_config(_base(pool=both), tmp_path)
    assert cfg.pool.path == str(tmp_path / "data" / "pool.jsonl")
    assert cfg.sources["pool.path"] == (cfg.pool.path, [cfg.pool.path, "yahma/alpaca-cleaned"])
    assert parse_config(_base(pool="yahma/alpaca-cleaned:train"), tmp_path).pool.path == "yahma/alpaca-cleaned:train"


def test_coreselect_data_names_the_folder_of_local_files(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pool.jsonl").write_text(_records(10))
    monkeypatch.setenv("CORESELECT_DATA", str(mine))
    cfg = parse_config(_base(pool={"path": "../../shared/data/pool.jsonl", "limit": 5}), tmp_path / "cfg")
    assert cfg.pool.path == str(mine / "pool.jsonl")


def test_bad_source_value_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^pool\.path: expected a data file, a Hugging Face dataset id or a list"):
        parse_config(_base(pool={"path": [], "limit": 5}), tmp_path)
    with pytest.raises(ConfigError, match=r"^build\.source: expected a data file"):
        parse_config(_base(build={"kind": "noisy-alpaca", "source": [3]}), tmp_path)


def test_missing_source_offline_is_one_line_naming_the_key_and_leaves_nothing(tmp_path, capsys, offline):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_base(pool={"path": ["data/pool.jsonl", "yahma/alpaca-cleaned"], "limit": 5})))
    out = tmp_path / "runs" / "exp"
    assert main(["-q", "compare", str(cfg), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == (f"coreselect: error: pool.path: {tmp_path / 'data' / 'pool.jsonl'} not found; yahma/alpaca-cleaned "
                   "not in the local Hugging Face cache and the Hub unreachable (or HF_HUB_OFFLINE set): run once "
                   "online to fetch it into the cache, point pool.path at a local copy, or set CORESELECT_DATA to "
                   "the folder holding pool.jsonl")
    assert not (tmp_path / "runs").exists()


def test_missing_build_source_names_build_source(tmp_path, capsys, offline):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**_base(pool="build:pool", eval=[{"name": "c", "path": "build:eval-clean"}]),
                                   "build": {"kind": "noisy-alpaca", "source": "t0.jsonl.gz"}}))
    assert main(["-q", "compare", str(cfg), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"error: build.source: {tmp_path / 't0.jsonl.gz'} not found: point build.source at a local copy" in err
    assert not (tmp_path / "out").exists()


def test_a_failed_first_start_removes_the_folders_it_made(tmp_path):
    (tmp_path / "pool.jsonl").write_text(_records(8))
    cfg = parse_config(_base(eval=[{"name": "held", "path": "pool.jsonl", "offset": 50}]), tmp_path)
    with pytest.raises(Exception, match="holds no records"):
        run_experiment(cfg, tmp_path / "runs" / "exp", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.jsonl"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data beside the clone (as CI has it)")
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_read_shared_data_beside_the_clone(preset, monkeypatch):
    monkeypatch.delenv("CORESELECT_DATA", raising=False)
    cfg = load_config(preset)
    assert cfg.sources and all(chosen.startswith(str(SHARED)) for chosen, _ in cfg.sources.values())


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_elsewhere_use_the_hub_or_say_what_to_do(preset, tmp_path, capsys, offline):
    copy = tmp_path / "a" / "b" / preset.name  # no ../../shared beside it
    copy.parent.mkdir(parents=True)
    shutil.copy(preset, copy)
    cfg = load_config(copy)
    if preset in ALPACA_PRESETS:
        assert {chosen for chosen, _ in cfg.sources.values()} == {"yahma/alpaca-cleaned"}
    key = "build.source" if cfg.build else "pool.path"
    assert main(["-q", "compare", str(copy), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"error: {key}: " in err and "CORESELECT_DATA" in err
    assert not (tmp_path / "out").exists()
