"""`coreselect compare` on a tiny config: arms run, results are written, a rerun resumes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coreselect.cli.main import main
from coreselect.errors import ConfigError
from coreselect.experiment import plan_arms, run_experiment
from coreselect.experiment_config import load_config, parse_config


def _write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _config(tmp_path: Path, model: Path, records, **extra) -> Path:
    import yaml

    _write(tmp_path / "all.jsonl", records(40))
    cfg = {
        "pool": {"path": "all.jsonl", "offset": 0, "limit": 30},
        "eval": [{"name": "held", "path": "all.jsonl", "offset": 30, "limit": 10}],
        "trainee": {"model": str(model), "max_steps": 2, "batch_size": 4, "max_length": 64, "precision": "fp32"},
        "methods": [], "budgets": [0.2], "seeds": [0], "baselines": ["random", "full"],
        "evaluation": {"max_length": 64, "batch_size": 8, "base": False},
    }
    cfg.update(extra)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_compare_runs_writes_results_and_resumes(tiny_model: Path, records, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, tiny_model, records)
    out = tmp_path / "run"
    assert main(["compare", str(cfg_path), "-o", str(out), "--no-progress"]) == 0
    assert "| random-20pct-s0 | random |" in capsys.readouterr().out
    for name in ("results.csv", "results.md", "results.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["arm"] for r in rows] == ["random-20pct-s0", "full-s0"]
    assert [int(r["n_train"]) for r in rows] == [6, 30]
    assert all(float(r["loss:held"]) > 0 and int(r["train_tokens"]) > 0 for r in rows)
    assert (out / "arms" / "random-20pct-s0" / "model" / "adapter_config.json").is_file()
    sel = json.loads((out / "arms" / "random-20pct-s0" / "select.json").read_text())
    assert len(sel["indices"]) == 6 and all(0 <= i < 30 for i in sel["indices"])

    # A rerun skips every finished stage ...
    markers = {p: p.stat().st_mtime_ns for p in (out / "arms").glob("*/*.json")}
    caplog.clear()
    with caplog.at_level("INFO", logger="coreselect.experiment"):
        rows2 = run_experiment(load_config(cfg_path), out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in markers} == markers
    assert sum("(cached)" in r.getMessage() for r in caplog.records) == 6
    assert [r["loss:held"] for r in rows2] == [float(r["loss:held"]) for r in rows]

    # ... and a stage whose marker is gone (an interrupted run) is redone, the others kept.
    (out / "arms" / "full-s0" / "eval.json").unlink()
    caplog.clear()
    with caplog.at_level("INFO", logger="coreselect.experiment"):
        run_experiment(load_config(cfg_path), out, progress=False)
    assert sum("(cached)" in r.getMessage() for r in caplog.records) == 5
    assert (out / "arms" / "full-s0" / "eval.json").is_file()


def test_overlapping_eval_set_is_rejected(tiny_model: Path, records, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, tiny_model, records,
                       eval=[{"name": "leaky", "path": "all.jsonl", "offset": 25, "limit": 10}])
    assert main(["compare", str(cfg_path), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "eval set 'leaky' overlaps the pool: 5 of its 10 records" in err


def test_overlap_check_folds_case_and_whitespace(tmp_path: Path, records) -> None:
    from coreselect.data import load_dataset
    from coreselect.experiment import check_disjoint

    recs = records(3)
    pool = load_dataset(_write(tmp_path / "pool.jsonl", recs))
    twin = dict(recs[1], output="  " + recs[1]["output"].upper().replace(" ", "\n "))
    ev = load_dataset(_write(tmp_path / "eval.jsonl", [twin]))
    with pytest.raises(ConfigError, match="eval record 0 = pool record 1"):
        check_disjoint(pool, {"ev": ev})


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = {"pool": "p.jsonl", "eval": ["e.jsonl"]}
    with pytest.raises(ConfigError, match="did you mean 'budgets'"):
        parse_config({**base, "budget": [0.1]}, tmp_path)
    with pytest.raises(ConfigError, match="trainee: unknown key 'epoch'"):
        parse_config({**base, "trainee": {"epoch": 1}}, tmp_path)
    with pytest.raises(ConfigError, match="unknown selection method 'kcentre'"):
        parse_config({**base, "methods": ["kcentre"]}, tmp_path)
    with pytest.raises(ConfigError, match="budgets"):
        parse_config({**base, "budgets": [1.5]}, tmp_path)
    cfg = parse_config({**base, "methods": ["kcenter"], "budgets": [0.1, 50], "seeds": [0, 1]}, tmp_path)
    names = [a.name for a in plan_arms(cfg)]
    assert names[-3:] == ["base", "full-s0", "full-s1"]
    assert "kcenter-10pct-s1" in names and "random-n50-s0" in names and len(names) == 1 + 2 * 2 * 2 + 2
    assert cfg.pool.path == str((tmp_path / "p.jsonl").resolve())


def test_preset_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "examples" / "cpu_small.yaml")
    assert cfg.pool.limit == 1000 and cfg.eval[0].offset == 1000 and cfg.eval[0].limit == 200
    assert [a.method for a in plan_arms(cfg)] == ["kcenter", "random", "base", "full"]
    assert cfg.trainee.model == "gemma3-270m" and cfg.trainee.lora
