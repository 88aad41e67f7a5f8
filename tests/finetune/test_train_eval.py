"""`coreselect train` and `coreselect evaluate` on a tiny random model, a few steps."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from coreselect.cli.main import main
from coreselect.errors import ConfigError, OutputExistsError
from coreselect.finetune.train import MANIFEST, TrainConfig, train


def test_train_writes_a_loadable_adapter(tiny_model: Path, alpaca_file: Path, tmp_path: Path) -> None:
    from peft import AutoPeftModelForCausalLM

    out = tmp_path / "adapter"
    res = train(alpaca_file, out, TrainConfig(model=str(tiny_model), max_steps=2, batch_size=4, max_length=128,
                                              progress=False))
    assert (out / "adapter_config.json").is_file() and (out / MANIFEST).is_file()
    assert not list(tmp_path.glob(".adapter.*"))  # no temporary folder left behind
    m = json.loads((out / MANIFEST).read_text())
    assert m == res.manifest
    assert m["kind"] == "lora" and m["data"]["rows"] == 24 and m["data"]["fingerprint"].startswith("sha256:")
    assert m["train"]["steps"] == 2 and m["train"]["tokens"] > m["train"]["response_tokens"] > 0
    assert m["train"]["tokens_per_second"] > 0 and math.isfinite(m["train"]["final_loss"])
    assert m["data"]["prompt_format"] == "chat-template"
    assert m["train"]["activation_checkpointing"] is False  # TRL's default is on; ours is off
    model = AutoPeftModelForCausalLM.from_pretrained(out)
    assert any("lora_" in n for n, _ in model.named_parameters())
    with pytest.raises(OutputExistsError):
        train(alpaca_file, out, TrainConfig(model=str(tiny_model), max_steps=1, progress=False))


def test_activation_checkpointing_changes_memory_not_results(tiny_model: Path, alpaca_file: Path,
                                                             tmp_path: Path) -> None:
    losses = {}
    for ckpt in (False, True):
        res = train(alpaca_file, tmp_path / str(ckpt), TrainConfig(
            model=str(tiny_model), max_steps=3, batch_size=4, max_length=128, logging_steps=1, progress=False,
            precision="fp32",
            activation_checkpointing=ckpt))
        assert res.manifest["train"]["activation_checkpointing"] is ckpt
        losses[ckpt] = [h["loss"] for h in res.manifest["train"]["loss_history"]]
    assert len(losses[False]) == 3
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_train_rejects_bad_options(tiny_model: Path, alpaca_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--lr"):
        train(alpaca_file, tmp_path / "x", TrainConfig(model=str(tiny_model), lr=-1.0))
    with pytest.raises(ConfigError, match="max-steps"):
        train(alpaca_file, tmp_path / "x", TrainConfig(model=str(tiny_model), max_steps=0))


def test_cli_train_full_then_evaluate(tiny_alpaca_model: Path, alpaca_file: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "full"
    rc = main(["-q", "train", str(alpaca_file), "-o", str(out), "--model", str(tiny_alpaca_model), "--full",
               "--max-steps", "2", "--batch-size", "4", "--max-length", "96", "--no-progress"])
    assert rc == 0
    assert "alpaca prompts" in capsys.readouterr().out
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    report = tmp_path / "eval.json"
    rc = main(["-q", "evaluate", str(out), "--data", str(alpaca_file), "--max-length", "96", "-o", str(report),
               "--no-progress"])
    assert rc == 0
    r = json.loads(report.read_text())
    assert math.isfinite(r["loss"]) and r["loss"] > 0 and r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-3)
    d = r["datasets"][str(alpaca_file)]
    assert d["examples"] == 24 and d["response_tokens"] > 0 and d["prompt_format"] == "alpaca"


def test_evaluate_adapter_matches_between_batch_sizes(tiny_model: Path, alpaca_file: Path, tmp_path: Path) -> None:
    from coreselect.finetune.evaluate import evaluate

    out = tmp_path / "adapter"
    train(alpaca_file, out, TrainConfig(model=str(tiny_model), max_steps=1, batch_size=4, max_length=96,
                                        progress=False))
    a = evaluate(str(out), alpaca_file, max_length=96, batch_size=1, precision="fp32", limit=10)
    b = evaluate(str(out), alpaca_file, max_length=96, batch_size=7, precision="fp32", limit=10)
    assert a["kind"] == "lora" and math.isfinite(a["loss"])
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_tasks_need_lm_eval(tiny_model: Path, alpaca_file: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if it were not installed
    rc = main(["evaluate", str(tiny_model), "--data", str(alpaca_file), "--tasks", "hellaswag"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "coreselect[eval]" in err


def test_validation_split_keeps_the_best_epoch(tiny_model: Path, alpaca_file: Path, tmp_path: Path) -> None:
    """--val-share scores every epoch on held-out training rows and keeps the best epoch's weights."""
    res = train(alpaca_file, tmp_path / "a", TrainConfig(model=str(tiny_model), epochs=3, batch_size=8,
                                                         max_length=128, val_share=0.25, lr=5e-3, progress=False))
    v = res.manifest["train"]["validation"]
    assert v["rows"] == 6 and res.manifest["data"]["rows"] == 24  # 18 rows trained on, 6 scored
    assert [h["epoch"] for h in v["history"]] == [1.0, 2.0, 3.0]
    best = min(v["history"], key=lambda h: h["loss"])
    assert v["best_step"] == best["step"] and v["best_loss"] == pytest.approx(best["loss"], abs=1e-5)
    assert not list((tmp_path / "a").glob("checkpoint-*"))
    with pytest.raises(ConfigError, match="--early-stopping.*needs --val-share"):
        TrainConfig(early_stopping=2)


def test_tail_average_keeps_the_mean_of_the_last_steps() -> None:
    """--average-tail 0.5 over 4 steps: the weights after steps 3 and 4, averaged, are what is kept."""
    from types import SimpleNamespace

    import torch

    from coreselect.finetune.trainer import TailAverage

    model = torch.nn.Linear(2, 1, bias=False)
    frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    model.register_parameter("frozen", frozen)
    cb = TailAverage(0.5)
    for step in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(step))
            frozen.fill_(float(step))
        cb.on_step_end(None, SimpleNamespace(global_step=step, max_steps=4), None, model=model)
    cb.on_train_end(None, SimpleNamespace(global_step=4, max_steps=4), None, model=model)
    assert model.weight.tolist() == [[3.5, 3.5]] and frozen.item() == 4.0 and cb.steps == 2
    assert TailAverage(0.01).first_averaged(10) == 10 and TailAverage(1.0).first_averaged(10) == 1


def test_tail_average_through_train(tiny_model: Path, alpaca_file: Path, tmp_path: Path) -> None:
    """The same seeded run with and without --average-tail: the averaged adapter differs, the manifest
    says how many steps were averaged, and the option cannot be mixed with --val-share."""
    import torch
    from safetensors.torch import load_file

    base = dict(model=str(tiny_model), max_steps=4, batch_size=4, max_length=96, lr=5e-3, progress=False)
    last = train(alpaca_file, tmp_path / "last", TrainConfig(**base))
    avg = train(alpaca_file, tmp_path / "avg", TrainConfig(**base, average_tail=0.5))
    assert last.manifest["train"]["averaged_steps"] is None and avg.manifest["train"]["averaged_steps"] == 2
    a = load_file(tmp_path / "last" / "adapter_model.safetensors")
    b = load_file(tmp_path / "avg" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="--average-tail.*--val-share"):
        TrainConfig(average_tail=0.2, val_share=0.1)

