"""The one precision and device policy: bf16 only where the hardware runs it natively."""

from __future__ import annotations

import pytest

from coreselect import device
from coreselect.errors import ConfigError
from coreselect.features.config import FeatureConfig
from finetune.conftest import tiny_model as tiny_model_dir  # noqa: F401, F811

AVX2 = "flags: fpu sse4_2 avx2 fma f16c"
BF16 = "flags: fpu sse4_2 avx2 avx512f avx512_bf16"


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be a CPU-only machine with the given /proc/cpuinfo flags."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)

    def set_flags(flags: str) -> None:
        monkeypatch.setattr(device, "_proc_cpuinfo", lambda: flags)

    return set_flags


def test_auto_is_fp32_on_a_cpu_without_bf16_instructions_and_bf16_with_them(cpu):
    from coreselect.finetune.train import resolve_precision as train_precision

    cpu(AVX2)
    assert device.resolve_device("auto") == "cpu"
    assert device.resolve_precision("auto") == "fp32"
    assert train_precision("auto") == "fp32" and train_precision("auto", training=False) == "fp32"
    assert FeatureConfig().resolved_precision() == "fp32"
    cpu(BF16)
    assert device.resolve_precision("auto") == "bf16"
    assert FeatureConfig().resolved_precision() == "bf16" == train_precision("auto")
    assert device.resolve_precision("fp16") == "fp16"  # what the user asks for, as asked


def test_gpus_get_bf16_where_they_have_it_else_fp16(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert device.resolve_device() == "cuda" and device.resolve_precision() == "fp16"
    from coreselect.finetune.train import resolve_precision as train_precision

    assert train_precision("auto") == "fp32"  # fp16 training needs loss scaling: stays fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device.resolve_precision() == "bf16"
    assert device.resolve_precision("auto", "mps") == "fp16"


def test_a_missing_device_or_a_bad_value_is_a_one_line_error(cpu):
    cpu(AVX2)
    with pytest.raises(ConfigError, match="--device cuda: no CUDA GPU"):
        device.resolve_device("cuda")
    with pytest.raises(ConfigError, match="--precision must be one of"):
        device.resolve_precision("bf32")


def test_precision_enters_the_store_key_only_when_not_bf16(cpu):
    """Stores written before precision was an option are bf16 stores: their keys stay; an fp32
    extraction (auto on an AVX2 CPU) gets a key of its own, the device never."""
    cpu(BF16)
    bf16 = FeatureConfig().to_json()
    assert "precision" not in bf16 and "device" not in bf16
    assert FeatureConfig(device="cpu").to_json() == bf16
    cpu(AVX2)
    assert FeatureConfig().to_json() == {**bf16, "precision": "fp32"}
    assert FeatureConfig(precision="bf16").to_json() == bf16


def test_the_extractor_loads_the_model_in_the_resolved_precision(cpu, monkeypatch, tiny_model_dir):  # noqa: F811
    """select/extract load the selector in fp32 on a CPU without bf16 (they were fixed to bf16)."""
    from coreselect.features import extract, lm
    from coreselect.models import resolve_model

    seen = {}
    real = lm.load_model  # the language-model kinds' (features/lm.py) load the selector

    def spy(spec, **kw):
        seen.update(kw)
        return real(spec, **kw)

    monkeypatch.setattr(lm, "load_model", spy)
    cpu(AVX2)
    extract.shard_function(resolve_model(str(tiny_model_dir)), FeatureConfig(layers=(1,)))
    assert seen["dtype"] == "float32" and seen["device"] == "cpu"
    cpu(BF16)
    extract.shard_function(resolve_model(str(tiny_model_dir)), FeatureConfig(layers=(1,)))
    assert seen["dtype"] == "bfloat16"
    extract.shard_function(resolve_model(str(tiny_model_dir)), FeatureConfig(layers=(1,), precision="fp32"))
    assert seen["dtype"] == "float32"
