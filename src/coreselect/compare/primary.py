"""The comparisons a ``compare`` YAML declares before it runs: ``primary:`` (the one the preset
is run to decide) and ``control:`` (a positive control), and the arm labels they may name."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coreselect.errors import ConfigError
from coreselect.options import as_mapping, check_keys


@dataclass(frozen=True)
class PrimarySpec:
    """The one comparison a preset is run to decide, declared before it runs: arm ``arms[0]``
    against ``arms[1]`` (arm labels) on held-out set ``eval`` by ``metric`` (``macro``: macro loss
    over groups; ``loss``: per-example loss; ``token``: loss per token, the examples weighted by
    their response tokens; ``acc``: rank accuracy)."""

    arms: tuple[str, str]
    eval: str
    metric: str


def parse_primary(value: Any, evals: Sequence[Any], evaluation: Any, where: str = "primary"
             ) -> PrimarySpec | None:
    from coreselect.compare.summary import PRIMARY_METRICS

    if value is None:
        return None
    d = dict(as_mapping(where, {"arms": value} if isinstance(value, list) else value))
    check_keys(where, d, ["arms", "eval", "metric"])
    arms = d.get("arms")
    if not (isinstance(arms, list) and len(arms) == 2 and all(isinstance(a, str) and a for a in arms)
            and arms[0] != arms[1]):
        raise ConfigError(f"{where}.arms: expected two distinct arm labels (e.g. [facility-location, random]), "
                          f"got {arms!r}")
    names = [e.name for e in evals]
    name = d.get("eval", names[0])
    if name not in names:
        raise ConfigError(f"{where}.eval: {name!r} is not a held-out set of 'eval' ({', '.join(names)})")
    metric = d.get("metric", "macro" if evaluation.group_by else "loss")
    if metric not in PRIMARY_METRICS:
        raise ConfigError(f"{where}.metric: expected one of {', '.join(PRIMARY_METRICS)}, got {metric!r}")
    if metric == "macro" and not evaluation.group_by:
        raise ConfigError(f"{where}.metric: 'macro' needs evaluation.group_by (the label column of the groups)")
    if metric == "acc" and not evaluation.rank_choices:
        raise ConfigError(f"{where}.metric: 'acc' needs evaluation.rank_choices")
    return PrimarySpec((arms[0], arms[1]), name, metric)


def oracle_label(baseline: str) -> str:
    """The arm label of an oracle baseline: ``balanced:group`` -> ``balanced-group (oracle)``."""
    kind, col = baseline.split(":", 1)
    return f"{kind}-{col} (oracle)"


def check_primary_arms(primary: PrimarySpec | None, methods: Sequence[Any], baselines: list[str],
                        where: str = "primary") -> None:
    if primary is None:
        return
    labels = {m.label or m.name for m in methods} | {b for b in baselines if ":" not in b}
    labels |= {oracle_label(b) for b in baselines if ":" in b}
    for a in primary.arms:
        if a not in labels:
            close = difflib.get_close_matches(a, sorted(labels), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}.arms: {a!r} is no arm label of this config{hint}")


__all__ = ["PrimarySpec", "check_primary_arms", "oracle_label", "parse_primary"]
