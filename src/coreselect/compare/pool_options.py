"""The options of the seeded pool builders, one definition each: ``coreselect pool <kind>`` flags,
a ``compare`` YAML's ``build:`` keys and the library defaults of
:mod:`coreselect.compare.pools` come from these dataclasses (:mod:`coreselect.options`).

Examples
--------
>>> TaskMixtureOptions().eval_per_group, NoisyAlpacaOptions().swap_share
(3, 0.2)
>>> TaskMixtureOptions(unseen_share=1.5)
Traceback (most recent call last):
...
coreselect.options.OptionError: --unseen-share must be in [0, 1), got 1.5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from coreselect.options import OptionError, check, coerce_fields, option


@dataclass(frozen=True)
class TaskMixtureOptions:
    """A template-skewed pool, a balanced held-out set and an unseen-templates set."""

    seed: int = option(0, help="random seed: template ranks, the unseen templates and the records drawn")
    head: int = option(200, minimum=1, help="records of the largest template (rank 1)")
    alpha: float = option(1.0, above=0, help="Zipf exponent: the template at rank r keeps head / r**alpha records")
    floor: int = option(2, minimum=1, help="records of the smallest templates")
    eval_per_group: int = option(3, minimum=1, help="held-out records per template (seen and unseen sets alike)")
    unseen_share: float = option(0.1, minimum=0, help="share of templates kept out of the pool, in [0, 1)")
    max_choices: int = option(10, minimum=1, help="templates with at most this many distinct answers get choices "
                                                  "(rank-classification accuracy)")
    max_chars: int | None = option(None, above=0, metavar="N",
                                   help="drop records whose instruction + input + answer are longer (default: keep "
                                        "all)")
    leak_threshold: float | None = option(
        0.5, above=0, help="a held-out record sharing this share of its prompt word 8-grams with one pool record of "
                           "its dataset is replaced by a spare record of its template, or dropped")

    def __post_init__(self) -> None:
        coerce_fields(self)
        if not self.unseen_share < 1:
            raise OptionError("unseen_share", "--unseen-share", f"must be in [0, 1), got {self.unseen_share}")
        check(self)


@dataclass(frozen=True)
class NoisyAlpacaOptions:
    """A pool with swapped responses and near-duplicates, and a clean held-out set."""

    seed: int = option(0, help="random seed: which records are swapped and duplicated")
    offset: int = option(0, minimum=0, help="first source record of the pool")
    pool_size: int = option(1000, minimum=2, help="records in the pool")
    swap_share: float = option(0.2, minimum=0, help="share of the pool given another record's response, in [0, 1)")
    duplicate_share: float = option(0.1, minimum=0, help="share of the pool that are near-duplicates of other "
                                                         "records, in [0, 1)")
    eval_size: int = option(300, minimum=1, help="clean held-out records (the ones after the pool's)")

    def __post_init__(self) -> None:
        coerce_fields(self)
        for key, v in (("swap_share", self.swap_share), ("duplicate_share", self.duplicate_share)):
            if not v < 1:
                raise OptionError(key, "--" + key.replace("_", "-"), f"must be in [0, 1), got {v}")
        if self.swap_share + self.duplicate_share >= 1:
            raise OptionError("swap_share", "--swap-share", "+ --duplicate-share must stay below 1")
        check(self)


#: builder name -> its options
POOL_OPTIONS: dict[str, type] = {"task-mixture": TaskMixtureOptions, "noisy-alpaca": NoisyAlpacaOptions}


def as_kwargs(options: Any) -> dict[str, Any]:
    """The options as the builder's keyword arguments."""
    return asdict(options)


__all__ = ["POOL_OPTIONS", "NoisyAlpacaOptions", "TaskMixtureOptions", "as_kwargs"]
