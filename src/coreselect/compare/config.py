"""The YAML configuration of ``coreselect compare``: parsed into dataclasses, checked up front.

Relative paths are relative to the YAML file's folder. Unknown keys are errors that name the
closest known key, so a typo never silently becomes a default.

Example (``examples/cpu_small.yaml`` is a complete one)::

    pool: {path: ../../shared/data/alpaca_cleaned.jsonl.gz, offset: 0, limit: 1000}
    eval:
      - {name: heldout, path: ../../shared/data/alpaca_cleaned.jsonl.gz, offset: 1000, limit: 200}
    selector: {model: smollm2-135m-instruct, layers: [15], max_length: 256}
    trainee: {model: gemma3-270m, lora: true, epochs: 1, lr: 2.0e-4, max_length: 256}
    methods: [kcenter]
    budgets: [0.15]
    seeds: [0]
    baselines: [random, full]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from coreselect.errors import ConfigError
from coreselect.finetune.train import TrainConfig


@dataclass(frozen=True)
class DataSlice:
    """Records ``[offset, offset + limit)`` of a data file (``limit: null`` = to the end)."""

    path: str
    offset: int = 0
    limit: int | None = None
    name: str = ""


@dataclass(frozen=True)
class SelectorConfig:
    model: str | None = None  # None: the default selector model
    features: str = "activations"
    layers: tuple[int, ...] = (15,)
    pooling: str = "mean"
    span: str = "all"
    max_length: int = 512
    normalize: str = "center-l2"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    max_length: int = 512
    batch_size: int = 8
    base: bool = True  # also evaluate the untrained trainee model as a reference row
    precision: str = "auto"  # auto: bf16 where supported (inference is faster in bf16)
    tasks: tuple[str, ...] = ()  # lm-evaluation-harness tasks per arm, e.g. (mmlu_local,)
    task_limit: int | None = None  # questions per task (None: all)


@dataclass
class ExperimentConfig:
    """Everything ``coreselect compare`` runs: pool, held-out sets, models, arms."""

    pool: DataSlice
    eval: list[DataSlice]
    selector: SelectorConfig = field(default_factory=SelectorConfig)
    trainee: TrainConfig = field(default_factory=TrainConfig)
    methods: list[MethodSpec] = field(default_factory=lambda: [MethodSpec("kcenter")])
    budgets: list[float | int] = field(default_factory=lambda: [0.15])
    seeds: list[int] = field(default_factory=lambda: [0])
    baselines: list[str] = field(default_factory=lambda: ["random", "full"])
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    source: str = ""


def _check_keys(where: str, given: dict[str, Any], known: list[str]) -> None:
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _int(where: str, value: Any, *, minimum: int = 0, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _slice(where: str, value: Any, base: Path, default_name: str) -> DataSlice:
    if isinstance(value, str):
        value = {"path": value}
    d = _mapping(where, value)
    _check_keys(where, d, ["path", "offset", "limit", "name"])
    if not isinstance(d.get("path"), str):
        raise ConfigError(f"{where}: 'path' (a data file) is required")
    p = Path(d["path"]).expanduser()
    p = p if p.is_absolute() else (base / p)
    return DataSlice(str(p.resolve()), _int(f"{where}.offset", d.get("offset", 0)),
                     _int(f"{where}.limit", d.get("limit"), minimum=1, allow_none=True),
                     str(d.get("name") or default_name))


def _tasks(where: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str) and t.strip() for t in items):
        raise ConfigError(f"{where}: expected a list of lm-eval task names, got {value!r}")
    return tuple(t.strip() for t in items)


def _dataclass_from(cls: type, where: str, d: dict[str, Any], **convert: Any) -> Any:
    names = [f.name for f in fields(cls)]
    _check_keys(where, d, names)
    kwargs = {k: (convert[k](v) if k in convert else v) for k, v in d.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def parse_config(raw: Any, base: Path, source: str = "") -> ExperimentConfig:
    """Validate a loaded YAML mapping; ``base`` is the folder relative paths start from."""
    d = _mapping(source or "config", raw)
    known = ["pool", "eval", "selector", "trainee", "methods", "budgets", "seeds", "baselines", "evaluation"]
    _check_keys(source or "config", d, known)
    if "pool" not in d:
        raise ConfigError(f"{source}: 'pool' is required")
    pool = _slice("pool", d["pool"], base, "pool")
    evals_raw = d.get("eval")
    if not evals_raw:
        raise ConfigError(f"{source}: 'eval' (one or more held-out data sets) is required")
    evals = [_slice(f"eval[{i}]", e, base, f"eval{i}")
             for i, e in enumerate(evals_raw if isinstance(evals_raw, list) else [evals_raw])]
    if len({e.name for e in evals}) != len(evals):
        raise ConfigError("eval: the held-out sets need distinct names")
    selector = _dataclass_from(SelectorConfig, "selector", _mapping("selector", d.get("selector")),
                               layers=lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,))
    trainee = _dataclass_from(TrainConfig, "trainee", _mapping("trainee", d.get("trainee")),
                              lora_targets=tuple)
    trainee.check()
    methods = []
    for i, m in enumerate(d.get("methods", ["kcenter"]) or []):
        if isinstance(m, str):
            methods.append(MethodSpec(m))
        else:
            m = _mapping(f"methods[{i}]", m)
            _check_keys(f"methods[{i}]", m, ["name", "params"])
            methods.append(MethodSpec(str(m.get("name")), dict(_mapping(f"methods[{i}].params", m.get("params")))))
    budgets = d.get("budgets", [0.15])
    budgets = budgets if isinstance(budgets, list) else [budgets]
    for b in budgets:
        ok = (isinstance(b, float) and 0 < b <= 1) or (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
        if not ok:
            raise ConfigError(f"budgets: {b!r} is neither a ratio in (0, 1] nor a count >= 1")
    seeds = d.get("seeds", [0])
    seeds = [_int("seeds", s) for s in (seeds if isinstance(seeds, list) else [seeds])]
    baselines = d.get("baselines", ["random", "full"]) or []
    for b in baselines:
        if b not in ("random", "full"):
            raise ConfigError(f"baselines: unknown baseline {b!r} (known: random, full)")
    evaluation = _dataclass_from(EvalConfig, "evaluation", _mapping("evaluation", d.get("evaluation")),
                                 tasks=lambda v: _tasks("evaluation.tasks", v),
                                 task_limit=lambda v: _int("evaluation.task_limit", v, minimum=1, allow_none=True))
    from coreselect.selection import available_methods

    known_methods = list(available_methods())
    for m in methods:
        if m.name not in known_methods:
            close = difflib.get_close_matches(m.name, known_methods, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"methods: unknown selection method {m.name!r}{hint}")
    if not methods and not baselines:
        raise ConfigError("nothing to compare: no methods and no baselines")
    return ExperimentConfig(pool, evals, selector, trainee, methods, budgets, seeds, list(baselines),
                            evaluation, source)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a ``coreselect compare`` YAML file."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: invalid YAML ({str(err).splitlines()[0]})") from None
    return parse_config(raw, p.resolve().parent, str(p))


__all__ = ["DataSlice", "EvalConfig", "ExperimentConfig", "MethodSpec", "SelectorConfig", "load_config",
           "parse_config"]
