"""Pickers: max-score with seeded rotation on ties, random, weighted random (A-Res)."""

import collections

import pytest

from envd_jupyter.scheduler import Endpoint

from .helpers import cycle, make_plugin

EPS = [Endpoint(n) for n in "abcd"]


@pytest.mark.parametrize(
    "totals, k, chosen_set, ties",
    [
        ([0.1, 0.9, 0.5, 0.2], 1, {1}, [1]),
        ([0.1, 0.9, 0.5, 0.2], 2, {1, 2}, [1]),
        ([0.1, 0.9, 0.5, 0.2], 9, {0, 1, 2, 3}, [1]),
    ],
)
def test_max_score_takes_the_best(totals, k, chosen_set, ties):
    pick = make_plugin("max-score-picker", {"maxNumOfEndpoints": k}).pick(cycle(endpoints=EPS), EPS, totals)
    assert set(pick.chosen) == chosen_set and pick.tie_group == ties and pick.chosen[0] == 1


def test_max_score_rotates_ties_deterministically():
    picker = make_plugin("max-score-picker")
    totals = [1.0, 1.0, 0.2, 1.0]
    c1, c2 = cycle(endpoints=EPS, seed=7), cycle(endpoints=EPS, seed=7)
    run1 = [picker.pick(c1, EPS, totals).chosen[0] for _ in range(60)]
    run2 = [picker.pick(c2, EPS, totals).chosen[0] for _ in range(60)]
    assert run1 == run2
    assert set(run1) == {0, 1, 3}  # spreads over the whole tie group, never the loser


def test_max_score_tolerance_groups_near_ties():
    picker = make_plugin("max-score-picker", {"tieTolerance": 0.05})
    pick = picker.pick(cycle(endpoints=EPS), EPS, [0.97, 1.0, 0.5, 0.2])
    assert pick.tie_group == [0, 1]


def test_random_picker_is_uniform_and_distinct():
    picker = make_plugin("random-picker", {"maxNumOfEndpoints": 2})
    c = cycle(endpoints=EPS, seed=3)
    counts = collections.Counter()
    for _ in range(400):
        chosen = picker.pick(c, EPS, [1.0, 0.0, 0.0, 0.0]).chosen
        assert len(set(chosen)) == 2
        counts.update(chosen)
    assert min(counts.values()) > 120  # each of 4 expected ~200 times


def test_weighted_random_follows_scores():
    picker = make_plugin("weighted-random-picker")
    c = cycle(endpoints=EPS, seed=11)
    counts = collections.Counter(picker.pick(c, EPS, [3.0, 1.0, 0.0, 0.0]).chosen[0] for _ in range(2000))
    assert counts[2] == counts[3] == 0
    assert 0.65 < counts[0] / 2000 < 0.85  # P = 3 / (3 + 1)


def test_weighted_random_all_zero_falls_back_to_uniform():
    picker = make_plugin("weighted-random-picker")
    c = cycle(endpoints=EPS, seed=5)
    seen = {picker.pick(c, EPS, [0.0] * 4).chosen[0] for _ in range(100)}
    assert seen == {0, 1, 2, 3}
