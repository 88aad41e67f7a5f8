"""The YAML configuration of ``coreselect compare``: parsed into dataclasses, checked up front.

Relative paths are relative to the YAML file's folder; a data source may also be a Hugging Face
dataset id or a list of alternatives (:mod:`coreselect.compare.sources`). Unknown keys are errors that name the
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

from coreselect.compare.primary import PrimarySpec, check_primary_arms, parse_primary
from coreselect.errors import ConfigError
from coreselect.finetune.config import EvalConfig, TrainConfig
from coreselect.job import DEFAULT_METHOD, SelectJob
from coreselect.options import as_mapping, check_keys, from_mapping

#: ``pool``/``eval`` paths that name a file of the ``build:`` section
BUILD_PREFIX = "build:"
#: the files each pool builder writes (``<name>.jsonl``)
BUILT_FILES = {"task-mixture": ("pool", "eval-seen", "eval-unseen"), "noisy-alpaca": ("pool", "eval-clean")}

#: The ``selector:`` keys: the selector model, the feature options and the normalisation, as
#: ``coreselect select`` has them (``--model``, ``--features``, ``--layers``, ..., ``--normalize``).
SELECTOR_FIELDS = ("model", "features", "normalize", "dedup", "budget_tokens")


@dataclass(frozen=True)
class DataSlice:
    """Records ``[offset, offset + limit)`` of a data file (``limit: null`` = to the end)."""

    path: str
    offset: int = 0
    limit: int | None = None
    name: str = ""


@dataclass(frozen=True)
class MethodSpec:
    """One selection method of the comparison; ``selector`` overrides the shared ``selector:``
    options for this method alone (e.g. other pooling), ``label`` names its arms."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    selector: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class BuildSpec:
    """A pool to build first with :mod:`coreselect.compare.pools` (``coreselect pool``); the
    ``pool``/``eval`` paths ``build:<name>`` then name its files (``build:pool``, ``build:eval-seen``)."""

    kind: str
    source: str
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
    build: BuildSpec | None = None
    #: label columns each pick is scored on before any training (coverage; the share of flagged
    #: records for a column like ``corruption``); never given to a selector
    labels: list[str] = field(default_factory=list)
    #: extra random arms at these budgets (a learning curve): each method then gets the random
    #: pick size that matches its loss ("random-equivalent size")
    random_curve: list[float | int] = field(default_factory=list)
    #: arm labels every other arm is paired against in the verdicts (e.g. the default method, to
    #: ask whether another should replace it); a label that did not run is skipped
    references: list[str] = field(default_factory=lambda: ["random", "longest"])
    #: each data source's YAML key -> (the source read, the candidates it was chosen from)
    sources: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: token-matched arms: every pick is its method's own pick order cut at random's expected
    #: training tokens (budget x the pool's tokens, counted by the trainee's tokenizer)
    match_tokens: bool = False
    #: the comparison the preset is run to decide (its verdict heads the report); None: every pair
    #: is reported alike
    primary: PrimarySpec | None = None
    #: a positive control: a pair whose first arm is known to be better (e.g. an oracle that reads
    #: the labels against random); until it is shown to win, the preset's verdicts judge nothing
    control: PrimarySpec | None = None

    def selector_for(self, method: MethodSpec) -> SelectJob:
        """The select job of ``method``'s arms: the shared ``selector:`` with its overrides."""
        if not method.selector:
            return self.selector
        merged = {**selector_mapping(self.selector), **method.selector}
        return from_mapping(SelectJob, merged, f"methods[{method.label or method.name}].selector",
                            only=SELECTOR_FIELDS)


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
    for later in ("dedup", "budget_tokens"):
        if getattr(job, later) is not None:
            d[later] = getattr(job, later)
    if (precision := f.to_json().get("precision")) is not None:  # as in the store key: only when not bf16
        d["precision"] = precision
    return d


#: trainee options added after the first version: hashed only when set, so earlier runs stay cached
_LATER_TRAINEE_OPTIONS = {"val_share": 0.0, "early_stopping": 0, "average_tail": 0.0}


def trainee_json(tc: TrainConfig) -> dict[str, Any]:
    """The ``trainee:`` options as ``compare`` records and hashes them (train-stage keys).

    >>> "val_share" in trainee_json(TrainConfig()), trainee_json(TrainConfig(val_share=0.1))["val_share"]
    (False, 0.1)
    """
    from dataclasses import asdict

    d = {**asdict(tc), "progress": None, "lora_targets": list(tc.lora_targets)}
    for k, default in _LATER_TRAINEE_OPTIONS.items():
        if d.get(k) == default:
            d.pop(k, None)
    return d


def selector_mapping(job: SelectJob) -> dict[str, Any]:
    """The ``selector:`` keys of ``job`` (every feature option), for merging per-method overrides."""
    f = job.features
    return {"model": job.model, "features": f.kind, "layers": list(f.layers), "pooling": f.pooling, "span": f.span,
            "max_length": f.max_length, "with_hidden": f.with_hidden, "drop_default_system": f.drop_default_system,
            "scores": list(f.scores), "normalize": job.normalize, "dedup": job.dedup, "budget_tokens": job.budget_tokens,
            "precision": f.precision, "device": f.device}


def _int(where: str, value: Any, *, minimum: int = 0, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _path(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str((p if p.is_absolute() else (base / p)).resolve())


def _source(key: str, value: Any, base: Path, sources: dict[str, tuple[str, list[str]]]) -> str:
    """The data source to read for ``value`` (see :mod:`coreselect.compare.sources`), recorded in ``sources``."""
    from coreselect.compare.sources import candidates, choose

    cands = candidates(key, value, base)
    chosen = choose(cands)
    sources[key] = (chosen, cands)
    return chosen


def _slice(where: str, value: Any, base: Path, default_name: str, built: tuple[str, ...] = (),
           sources: dict[str, tuple[str, list[str]]] | None = None) -> DataSlice:
    if isinstance(value, (str, list)):
        value = {"path": value}
    d = as_mapping(where, value)
    check_keys(where, d, ["path", "offset", "limit", "name"])
    if not isinstance(d.get("path"), (str, list)):
        raise ConfigError(f"{where}: 'path' (a data file, a Hugging Face dataset id or a list of them) is required")
    path = d["path"]
    if isinstance(path, str) and path.startswith(BUILD_PREFIX):
        if path[len(BUILD_PREFIX):] not in built:
            raise ConfigError(f"{where}.path: {path!r} names no file of the 'build:' section "
                              f"(it writes {', '.join(BUILD_PREFIX + b for b in built) or 'nothing: add one'})")
    else:
        path = _source(f"{where}.path", path, base, {} if sources is None else sources)
    return DataSlice(path, _int(f"{where}.offset", d.get("offset", 0)),
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
        check_keys(f"methods[{i}]", m, ["name", "params", "selector", "label"])
        name = str(m.get("name"))
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"methods: unknown selection method {name!r}{hint}")
        overrides = dict(as_mapping(f"methods[{i}].selector", m.get("selector")))
        check_keys(f"methods[{i}].selector", overrides, [k for k in selector_mapping(SelectJob())])
        label = str(m.get("label") or "")
        if overrides and not label:
            raise ConfigError(f"methods[{i}]: a method with its own 'selector' options needs a 'label' for its arms")
        methods.append(MethodSpec(name, dict(as_mapping(f"methods[{i}].params", m.get("params"))), overrides, label))
    labels = [m.label or m.name + str(sorted(m.params.items())) for m in methods]
    if len(set(labels)) != len(labels):
        raise ConfigError("methods: two entries would make the same arms (give each a distinct 'label')")
    return methods


def _build(value: Any, base: Path, sources: dict[str, tuple[str, list[str]]]) -> BuildSpec | None:
    from coreselect.compare.pools import BUILDERS

    if value is None:
        return None
    d = dict(as_mapping("build", value))
    kind, source = d.pop("kind", None), d.pop("source", None)
    if kind not in BUILDERS:
        raise ConfigError(f"build.kind: expected one of {', '.join(BUILDERS)}, got {kind!r}")
    if not isinstance(source, (str, list)):
        raise ConfigError("build.source: the file the pool is built from is required (a data file, a Hugging Face "
                          "dataset id or a list of them, tried in order)")
    from coreselect.compare.pool_options import POOL_OPTIONS, as_kwargs

    options = from_mapping(POOL_OPTIONS[kind], d, "build")  # the keys and defaults of `coreselect pool`
    return BuildSpec(kind, _source("build.source", source, base, sources), as_kwargs(options))


def _budgets(where: str, value: Any) -> list[float | int]:
    budgets = value if isinstance(value, list) else [value]
    for b in budgets:
        ok = (isinstance(b, float) and 0 < b <= 1) or (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
        if not ok:
            raise ConfigError(f"{where}: {b!r} is neither a ratio in (0, 1] nor a count >= 1")
    return list(budgets)


def _baselines(value: Any) -> list[str]:
    out = []
    for b in value or []:
        if b in ("random", "full") or (isinstance(b, str) and b.startswith(("balanced:", "clean:"))
                                       and len(b.split(":", 1)[1]) > 0):
            out.append(b)
        else:
            raise ConfigError(f"baselines: unknown baseline {b!r} (known: random, full, balanced:<label column>, "
                              f"clean:<label column>)")
    return out


def parse_config(raw: Any, base: Path, source: str = "") -> ExperimentConfig:
    """Validate a loaded YAML mapping; ``base`` is the folder relative paths start from."""
    d = as_mapping(source or "config", raw)
    known = ["pool", "eval", "selector", "trainee", "methods", "budgets", "seeds", "baselines", "evaluation",
             "build", "labels", "random_curve", "references", "primary", "control", "match_tokens"]
    check_keys(source or "config", d, known)
    if "pool" not in d:
        raise ConfigError(f"{source}: 'pool' is required")
    sources: dict[str, tuple[str, list[str]]] = {}
    build = _build(d.get("build"), base, sources)
    built = BUILT_FILES[build.kind] if build else ()
    pool = _slice("pool", d["pool"], base, "pool", built, sources)
    evals_raw = d.get("eval")
    if not evals_raw:
        raise ConfigError(f"{source}: 'eval' (one or more held-out data sets) is required")
    evals = [_slice(f"eval[{i}]", e, base, f"eval{i}", built, sources)
             for i, e in enumerate(evals_raw if isinstance(evals_raw, list) else [evals_raw])]
    if len({e.name for e in evals}) != len(evals):
        raise ConfigError("eval: the held-out sets need distinct names")
    selector = from_mapping(SelectJob, d.get("selector"), "selector", only=SELECTOR_FIELDS)
    trainee = from_mapping(TrainConfig, d.get("trainee"), "trainee")
    methods = _methods(d.get("methods", [DEFAULT_METHOD]))
    budgets = _budgets("budgets", d.get("budgets", [0.15]))
    curve = _budgets("random_curve", d.get("random_curve", []))
    seeds = d.get("seeds", [0])
    seeds = [_int("seeds", s) for s in (seeds if isinstance(seeds, list) else [seeds])]
    baselines = _baselines(d.get("baselines", ["random", "full"]))
    labels = d.get("labels", []) or []
    labels = labels if isinstance(labels, list) else [labels]
    if not all(isinstance(c, str) and c for c in labels):
        raise ConfigError(f"labels: expected a list of label column names, got {d.get('labels')!r}")
    evaluation = from_mapping(EvalConfig, d.get("evaluation"), "evaluation")
    references = d.get("references", ["random", "longest"])
    references = references if isinstance(references, list) else [references]
    if not references or not all(isinstance(c, str) and c for c in references):
        raise ConfigError(f"references: expected a list of arm labels (random, longest, a method's name or label), "
                          f"got {d.get('references')!r}")
    if not methods and not baselines:
        raise ConfigError("nothing to compare: no methods and no baselines")
    primary = parse_primary(d.get("primary"), evals, evaluation)
    check_primary_arms(primary, methods, baselines)
    control = parse_primary(d.get("control"), evals, evaluation, "control")
    check_primary_arms(control, methods, baselines, "control")
    return ExperimentConfig(pool, evals, selector, trainee, methods, budgets, seeds, list(baselines),
                            evaluation, source, build, list(labels), curve, list(references), sources,
                            _bool("match_tokens", d.get("match_tokens", False)), primary, control)


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


__all__ = ["BUILD_PREFIX", "BUILT_FILES", "SELECTOR_FIELDS", "BuildSpec", "DataSlice", "ExperimentConfig", "MethodSpec",
           "PrimarySpec", "load_config", "parse_config",
           "selector_json", "trainee_json"]
