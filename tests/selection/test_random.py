from __future__ import annotations

import numpy as np

from coreselect.selection import RandomSelection, random_selection


def test_same_seed_same_pick_and_different_seeds_differ():
    assert (
        random_selection(1000, 20, random_state=5).tolist()
        == random_selection(1000, 20, random_state=5).tolist()
    )
    picks = {tuple(random_selection(1000, 20, random_state=s).tolist()) for s in range(5)}
    assert len(picks) == 5


def test_smaller_budget_is_a_prefix():
    big = random_selection(300, 100, random_state=1)
    assert random_selection(300, 10, random_state=1).tolist() == big[:10].tolist()


def test_roughly_uniform():
    counts = np.bincount(
        np.concatenate([random_selection(10, 3, random_state=s) for s in range(1000)]), minlength=10
    )
    # each index is expected 300 times (binomial sd ~14.5): 6 sd either side
    assert counts.min() > 210 and counts.max() < 390


def test_ignores_features():
    assert RandomSelection.needs_features is False
    a = RandomSelection(n_select=5).fit(np.zeros((40, 2), dtype=np.float32)).indices_
    b = RandomSelection(n_select=5).fit(np.ones((40, 2), dtype=np.float32)).indices_
    assert a.tolist() == b.tolist()
