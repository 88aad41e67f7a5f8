"""One definition per option set: the CLI, a ``compare`` YAML and the library agree.

The drift tests go through the command line only (``coreselect select`` / ``train`` / ``compare``)
and stop each command where it hands its options over: ``run_select`` (a select job) or the
``config.json`` that ``compare`` writes before its first arm. They failed before the option sets
were unified (issue 12): hidden-state features took layer 15 from YAML but -1 from the CLI,
``compare`` defaulted to kcenter where ``select`` uses facility-location, ``compare`` trained a
full fine-tune at the LoRA learning rate and kept ``lora_alpha`` at 32 whatever the rank, and
``with_hidden``/``drop_default_system`` were unknown to the CLI and to YAML.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from coreselect.cli.main import main


class _Handed(Exception):
    """Raised by the stand-in for ``run_select``: carries the job the command built."""

    def __init__(self, job: Any) -> None:
        super().__init__("stopped at run_select")
        self.job = job


@pytest.fixture
def stop_at_select(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(job: Any) -> None:
        raise _Handed(job)

    monkeypatch.setattr("coreselect.pipeline.run_select", fake)


def _data(tmp_path: Path, n: int = 12) -> Path:
    p = tmp_path / "all.jsonl"
    p.write_text("".join(json.dumps({"instruction": f"Question number {i}?", "input": "",
                                     "output": f"Answer number {i}."}) + "\n" for i in range(n)))
    return p


def _select_job(argv: list[str]) -> Any:
    """The select job ``coreselect select ARGV`` builds."""
    with pytest.raises(_Handed) as caught:
        main(["-q", "select", "--n", "1", *argv])
    return caught.value.job


def _compare(tmp_path: Path, **sections: Any) -> tuple[Any, dict[str, Any]]:
    """The first arm's select job and the recorded config of ``coreselect compare`` on a tiny YAML."""
    import yaml

    tmp_path.mkdir(exist_ok=True)
    _data(tmp_path)
    cfg = {"pool": {"path": "all.jsonl", "limit": 8}, "eval": [{"name": "held", "path": "all.jsonl", "offset": 8}],
           "budgets": [0.5], "baselines": [], **sections}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(_Handed) as caught:
        main(["-q", "compare", str(tmp_path / "exp.yaml"), "-o", str(tmp_path / "run"), "--no-progress"])
    return caught.value.job, json.loads((tmp_path / "run" / "config.json").read_text())


# -- drift bugs (issue 12) --------------------------------------------------------------------------
def test_hidden_features_default_to_the_last_layer_everywhere(tmp_path: Path, stop_at_select: None) -> None:
    cli = _select_job(["--features", "hidden"])
    yaml_job, _ = _compare(tmp_path, selector={"features": "hidden"})
    library = type(cli.features)(kind="hidden")
    assert cli.features.layers == yaml_job.features.layers == library.layers == (-1,)
    assert _select_job([]).features.layers == (15,)  # activations: layer 15 (MADS)


def test_select_and_compare_default_to_the_same_method(tmp_path: Path, stop_at_select: None) -> None:
    yaml_job, recorded = _compare(tmp_path)  # no `methods:` key
    assert yaml_job.method == _select_job([]).method == "facility-location"  # docs/methods.md
    assert [m["name"] for m in recorded["methods"]] == ["facility-location"]


def test_compare_full_fine_tuning_gets_the_full_learning_rate(tmp_path: Path, stop_at_select: None) -> None:
    _, full = _compare(tmp_path / "full", trainee={"lora": False})
    _, lora = _compare(tmp_path / "lora", trainee={"lora": True, "lora_r": 8})
    assert full["trainee"]["lr"] == 2e-5  # as `coreselect train --full`
    assert lora["trainee"]["lr"] == 2e-4 and lora["trainee"]["lora_alpha"] == 16  # as `train --lora-r 8`


def test_with_hidden_and_drop_default_system_are_settable(tmp_path: Path, stop_at_select: None) -> None:
    cli = _select_job(["--with-hidden", "--drop-default-system"])
    yaml_job, _ = _compare(tmp_path, selector={"with_hidden": True, "drop_default_system": True})
    for job in (cli, yaml_job):
        assert job.features.with_hidden and job.features.drop_default_system


# -- the option machinery ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["coreselect.features.config:FeatureConfig", "coreselect.job:SelectJob",
                                  "coreselect.finetune.config:TrainConfig", "coreselect.finetune.config:EvalConfig"])
def test_cli_yaml_and_library_defaults_are_one(path: str) -> None:
    import importlib

    from coreselect.options import add_arguments, from_args, from_mapping

    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    p = argparse.ArgumentParser()
    add_arguments(p, cls)
    fixed = {"n": 1} if name == "SelectJob" else {}  # a select job needs a budget
    ns = p.parse_args(["--n", "1"] if fixed else [])
    assert from_args(cls, ns) == from_mapping(cls, {}, "x", **fixed) == cls(**fixed)


def test_yaml_values_are_checked_in_one_line() -> None:
    from coreselect.errors import ConfigError
    from coreselect.features.config import FeatureConfig
    from coreselect.finetune.config import TrainConfig
    from coreselect.options import from_mapping

    assert from_mapping(FeatureConfig, {"layers": "8,15"}, "s").layers == (8, 15)
    assert from_mapping(FeatureConfig, {"layers": 3}, "s").layers == (3,)
    assert from_mapping(TrainConfig, {"lr": "2e-4"}, "t").lr == 2e-4  # YAML 1.1 reads 2e-4 as a string
    cases = [(FeatureConfig, {"layer": [1]}, r"^s: unknown key 'layer' \(did you mean 'layers'\?\)$"),
             (FeatureConfig, {"max_length": 4}, r"^s\.max_length: must be at least 8, got 4$"),
             (FeatureConfig, {"pooling": "sum"}, r"^s\.pooling: must be one of mean, last, max, got 'sum'$"),
             (FeatureConfig, {"layers": ["x"]}, r"^s\.layers: expected an integer, got 'x'$"),
             (FeatureConfig, {"layers": []}, r"^s\.layers: must name at least one layer$"),
             (TrainConfig, {"max_steps": 0}, r"^s\.max_steps: must be at least 1 or -1, got 0$"),
             (TrainConfig, {"lora": "yes"}, r"^s\.lora: expected true or false, got 'yes'$"),
             (TrainConfig, {"epochs": 0}, r"^s\.epochs: must be positive, got 0$")]
    for cls, d, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            from_mapping(cls, d, "s")


def test_feature_store_keys_are_unchanged(monkeypatch) -> None:
    """``FeatureConfig.to_json`` is hashed into store keys: existing caches must stay valid (the
    stores of the first default, mean over all tokens, included). They were all bf16 stores: on
    a CPU with bf16 instructions ``auto`` keeps their keys (elsewhere fp32 gets keys of its own)."""
    from coreselect.features.config import FeatureConfig

    monkeypatch.setattr("coreselect.device._proc_cpuinfo", lambda: "flags: avx2 avx512_bf16")

    mean_all = {"kind": "activations", "layers": [15], "pooling": "mean", "span": "all", "max_length": 512,
                "with_hidden": False}
    assert FeatureConfig(pooling="mean", span="all").to_json() == mean_all
    assert FeatureConfig().to_json() == {**mean_all, "pooling": "last", "span": "prompt"}
    assert FeatureConfig(kind="hidden", layers=(-1,)).to_json()["layers"] == [-1]
    assert FeatureConfig(drop_default_system=True).to_json()["drop_default_system"] is True


def test_compare_stage_keys_are_unchanged(monkeypatch) -> None:
    """The select and train stage keys hash the selector and trainee options as the first version
    did (names, values, ``epochs: 1`` an int), so the runs of examples/cpu_small.yaml stay cached."""
    import hashlib

    from coreselect.compare.config import load_config, selector_json, trainee_json

    monkeypatch.setattr("coreselect.device._proc_cpuinfo", lambda: "flags: avx2 avx512_bf16")  # bf16 runs
    cfg = load_config(Path(__file__).resolve().parents[1] / "examples" / "cpu_small.yaml")
    trainee = trainee_json(cfg.trainee)
    blob = json.dumps([selector_json(cfg.selector), trainee], sort_keys=True, default=str)
    assert hashlib.sha256(blob.encode()).hexdigest()[:20] == "571934a82420efe5adb6"  # computed before issue 12


def test_cli_flags_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from coreselect.finetune.config import TrainConfig
    from coreselect.options import describe

    flags = {r["field"]: r["cli"] for r in describe(TrainConfig)}
    assert flags["lora"] == "--lora / --full" and flags["group_by_length"] == "--no-group-by-length"
    assert main(["-q", "select", "--n", "1", "--max-length", "4"]) == 2
    assert capsys.readouterr().err.strip() == "coreselect: error: --max-length must be at least 8, got 4"
    assert main(["-q", "select", "--n", "1", "--param", "oops"]) == 2
    assert capsys.readouterr().err.strip() == "coreselect: error: --param expects KEY=VALUE, got 'oops'"


def test_scores_dedup_and_token_budget_are_settable_everywhere(tmp_path: Path, stop_at_select: None) -> None:
    from coreselect.features.config import FeatureConfig
    from coreselect.job import SelectJob
    from coreselect.options import from_mapping

    job = _select_job(["--scores", "ifd", "--dedup", "0.95", "--budget-tokens", "5000"])
    assert (job.features.scores, job.dedup, job.budget_tokens) == (("ifd",), 0.95, 5000)
    assert from_mapping(FeatureConfig, {"scores": ["ifd"]}, "s").scores == ("ifd",)
    assert from_mapping(SelectJob, {"dedup": 0.9, "budget_tokens": 100}, "s").dedup == 0.9
    # a method that reads scores turns them on; the library, CLI and YAML agree
    assert _select_job(["--method", "quality-fl"]).features.scores == ("ifd",)
    assert SelectJob(method="ifd").features == from_mapping(SelectJob, {}, "s", method="ifd").features
    # the budget alone is enough; --ratio/--n are no longer required by argparse
    with pytest.raises(_Handed):
        main(["-q", "select", "--budget-tokens", "100"])


def test_bad_dedup_and_budget_values_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv, message in ((["--n", "1", "--dedup", "1.5"], "--dedup must be at most 1, got 1.5"),
                          (["--n", "1", "--dedup", "0"], "--dedup must be positive, got 0.0"),
                          (["--n", "1", "--budget-tokens", "0"], "--budget-tokens must be positive, got 0"),
                          ([str(_data(tmp_path))], "give --ratio, --n or --budget-tokens")):
        assert main(["-q", "select", *argv]) == 2
        assert capsys.readouterr().err.strip() == f"coreselect: error: {message}"
