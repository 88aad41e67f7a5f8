"""One precision and device policy for every model coreselect loads (selector, scores, trainee,
evaluation) and for the kernels that pick a dtype (k-center).

``auto`` picks bf16 only where the hardware runs it natively: a CUDA GPU with bf16, or a CPU with
AVX512-BF16 or AMX instructions. Elsewhere it picks fp32 (fp16 on an older CUDA GPU and on Apple
``mps``). Why: on a CPU without those instructions bf16 matrix products are emulated and run ~5x
slower than fp32 (measured: 10 vs 53 GFLOP/s, 2 threads, torch 2.13 on an AVX2-only EPYC;
``benchmarks/precision_speed.py`` prints both side by side on any machine).

Examples
--------
>>> resolve_precision("fp32")
'fp32'
>>> torch_dtype_name("bf16"), torch_dtype_name("fp16"), torch_dtype_name("fp32")
('bfloat16', 'float16', 'float32')
>>> resolve_precision("auto", "cpu", cpu_flags="fpu avx2")
'fp32'
>>> resolve_precision("auto", "cpu", cpu_flags="avx2 avx512_bf16")
'bf16'
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Precision = Literal["auto", "bf16", "fp16", "fp32"]
Device = Literal["auto", "cpu", "cuda", "mps"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}

PRECISION_HELP = ("numeric precision of the model: auto = bf16 where the hardware runs it natively (a CUDA GPU "
                  "with bf16, a CPU with AVX512-BF16 or AMX), fp16 on an older GPU or Apple mps, else fp32 "
                  "(bf16 is ~5x slower than fp32 on a CPU without those instructions)")
DEVICE_HELP = "where the model runs: auto = cuda when present, else mps (Apple silicon), else cpu"


@functools.lru_cache(maxsize=1)
def _proc_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16(cpu_flags: str | None = None) -> bool:
    """Whether the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX); unknown counts as no.

    ``cpu_flags``: the flags to read instead of ``/proc/cpuinfo`` (tests).
    """
    flags = _proc_cpuinfo() if cpu_flags is None else cpu_flags
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``mps`` when present, else ``cpu``; an
    explicit device that is not there is an error (one line)."""
    import torch

    from coreselect.errors import ConfigError

    if device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible to torch")
    if device == "mps" and not has_mps:
        raise ConfigError("--device mps: torch reports no Apple mps device")
    return device


def resolve_precision(precision: str = "auto", device: str = "auto", *, cpu_flags: str | None = None) -> str:
    """The precision ``auto`` means on ``device`` (resolved first when ``auto``); others as given."""
    from coreselect.errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device == "auto" and cpu_flags is None:
        device = resolve_device(device)
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "mps":
        return "fp16"
    return "bf16" if cpu_has_bf16(cpu_flags) else "fp32"


def torch_dtype_name(precision: str) -> str:
    """The torch dtype name of a resolved precision (``bf16`` -> ``bfloat16``)."""
    return _DTYPE[precision]


def describe(precision: str, device: str) -> str:
    """``'bf16 on cpu (AVX512-BF16)'``: what ran, for logs and manifests."""
    if device == "cpu":
        return f"{precision} on cpu ({'native bf16' if cpu_has_bf16() else 'no bf16 instructions'})"
    return f"{precision} on {device}"


__all__ = ["DEVICES", "DEVICE_HELP", "PRECISIONS", "PRECISION_HELP", "Device", "Precision", "cpu_has_bf16",
           "describe", "resolve_device", "resolve_precision", "torch_dtype_name"]
