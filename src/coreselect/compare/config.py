"""The YAML configuration of ``coreselect compare``: parsed into dataclasses, checked up front.

Relative paths are relative to the YAML file's folder. Unknown keys are errors that name the
closest known key, so a typo never silently becomes a default. The ``selector:``, ``trainee:``
and ``evaluation:`` sections are parsed into the option sets ``coreselect select``, ``train``
and ``evaluate`` are generated from (:class:`~coreselect.job.SelectJob`,
:class:`~coreselect.finetune.config.TrainConfig`, :class:`~coreselect.finetune.config.EvalConfig`):
the same keys (the flag names with underscores), the same defaults, the same checks.

Example (``examples/cpu_small.yaml`` is a complete one)::

    pool: {path: ../../shared/data/alpaca_cleaned.jsonl.gz, offset: 0, limit: 1000}
    eval:
      - {name: heldout, path: ../../shared/data/alpaca_cleaned.jsonl.gz, offset: 1000, limit: 200}
    selector: {model: smollm2-135m-instruct, layers: [15], max_length: 256}
    trainee: {model: gemma3-270m, lora: true, epochs: 1, lr: 2.0e-4, max_length: 256}
    methods: [kcenter]          # default: [facility-location], as for coreselect select
    budgets: [0.15]
    seeds: [0]
    baselines: [random, full]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coreselect.errors import ConfigError
from coreselect.finetune.config import EvalConfig, TrainConfig
from coreselect.job import DEFAULT_METHOD, SelectJob
from coreselect.options import as_mapping, check_keys, from_mapping

#: The ``selector:`` keys: the selector model, the feature options and the normalisation, as
#: ``coreselect select`` has them (``--model``, ``--features``, ``--layers``, ..., ``--normalize``).
SELECTOR_FIELDS = ("model", "features", "normalize")


@dataclass(frozen=True)
class DataSlice:
    """Records ``[offset, offset + limit)`` of a data file (``limit: null`` = to the end)."""

    path: str
    offset: int = 0
    limit: int | None = None
    name: str = ""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    """Everything ``coreselect compare`` runs: pool, held-out sets, models, arms.

    ``selector`` is the select job every arm starts from (its method, budget and seed are the
    arm's), so a ``compare`` arm and ``coreselect select`` share every default.
    """

    pool: DataSlice
    eval: list[DataSlice]
    selector: SelectJob = field(default_factory=SelectJob)
    trainee: TrainConfig = field(default_factory=TrainConfig)
    methods: list[MethodSpec] = field(default_factory=lambda: [MethodSpec(DEFAULT_METHOD)])
    budgets: list[float | int] = field(default_factory=lambda: [0.15])
    seeds: list[int] = field(default_factory=lambda: [0])
    baselines: list[str] = field(default_factory=lambda: ["random", "full"])
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    source: str = ""


def selector_json(job: SelectJob) -> dict[str, Any]:
    """The ``selector:`` options of ``job`` as ``compare`` records and hashes them (select-stage keys).

    The keys of the first version, so that the select stages of existing runs stay cached;
    options added since appear only when set.

    >>> selector_json(SelectJob())["layers"], "with_hidden" in selector_json(SelectJob())
    ([15], False)
    """
    f = job.features
    d: dict[str, Any] = {"model": job.model, "features": f.kind, "layers": list(f.layers), "pooling": f.pooling,
                         "span": f.span, "max_length": f.max_length, "normalize": job.normalize}
    if f.with_hidden:
        d["with_hidden"] = True
    if f.drop_default_system:
        d["drop_default_system"] = True
    return d


def _int(where: str, value: Any, *, minimum: int = 0, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _slice(where: str, value: Any, base: Path, default_name: str) -> DataSlice:
    if isinstance(value, str):
        value = {"path": value}
    d = as_mapping(where, value)
    check_keys(where, d, ["path", "offset", "limit", "name"])
    if not isinstance(d.get("path"), str):
        raise ConfigError(f"{where}: 'path' (a data file) is required")
    p = Path(d["path"]).expanduser()
    p = p if p.is_absolute() else (base / p)
    return DataSlice(str(p.resolve()), _int(f"{where}.offset", d.get("offset", 0)),
                     _int(f"{where}.limit", d.get("limit"), minimum=1, allow_none=True),
                     str(d.get("name") or default_name))


def _methods(value: Any) -> list[MethodSpec]:
    from coreselect.selection import available_methods

    known = list(available_methods())
    methods = []
    for i, m in enumerate(value or []):
        if isinstance(m, str):
            m = {"name": m}
        m = as_mapping(f"methods[{i}]", m)
        check_keys(f"methods[{i}]", m, ["name", "params"])
        name = str(m.get("name"))
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"methods: unknown selection method {name!r}{hint}")
        methods.append(MethodSpec(name, dict(as_mapping(f"methods[{i}].params", m.get("params")))))
    return methods


def parse_config(raw: Any, base: Path, source: str = "") -> ExperimentConfig:
    """Validate a loaded YAML mapping; ``base`` is the folder relative paths start from."""
    d = as_mapping(source or "config", raw)
    known = ["pool", "eval", "selector", "trainee", "methods", "budgets", "seeds", "baselines", "evaluation"]
    check_keys(source or "config", d, known)
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
    selector = from_mapping(SelectJob, d.get("selector"), "selector", only=SELECTOR_FIELDS)
    trainee = from_mapping(TrainConfig, d.get("trainee"), "trainee")
    methods = _methods(d.get("methods", [DEFAULT_METHOD]))
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
    evaluation = from_mapping(EvalConfig, d.get("evaluation"), "evaluation")
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


__all__ = ["SELECTOR_FIELDS", "DataSlice", "ExperimentConfig", "MethodSpec", "load_config", "parse_config",
           "selector_json"]
