"""The one Pareto front (harness/store/pareto.py), used by the dashboard and the alignment
frontier: known points, and agreement with the definition on many random small sets."""

import math

import numpy as np

from harness.store.pareto import pareto_mask


def test_known_points_in_both_directions():
    cost = [1, 2, 3, 4, 2, math.nan]
    quality = [0.5, 0.7, 0.6, 0.9, 0.7, 0.99]
    # (3, 0.6) is dominated by (2, 0.7); the two (2, 0.7) points tie and both stay; NaN never counts.
    assert pareto_mask(cost, quality, True).tolist() == [True, True, False, True, True, False]
    # Lower-is-better quality (perplexity): (1, 0.5) dominates everything costlier.
    assert pareto_mask(cost, quality, False).tolist() == [True, False, False, False, False, False]
    assert pareto_mask([], [], True).tolist() == []


def test_the_alignment_frontier_points():
    kl = [0.0, 1.0, 2.0, 3.0, 1.0, math.nan, 0.5]
    score = [0.0, 0.5, 0.4, 0.9, 0.5, 9.9, 0.0]
    # (2, 0.4) is dominated by (1, 0.5); (0.5, 0) by (0, 0); the (1, 0.5) twins both stay.
    assert pareto_mask(kl, score).tolist() == [True, True, False, True, True, False, False]


def _by_definition(cost, quality):
    c, q = np.asarray(cost, float), np.asarray(quality, float)
    ok = np.isfinite(c) & np.isfinite(q)
    out = np.zeros(len(c), bool)
    for i in np.flatnonzero(ok):
        better = ok & (c <= c[i]) & (q >= q[i]) & ((c < c[i]) | (q > q[i]))
        out[i] = not better.any()
    return out


def test_it_agrees_with_the_definition_on_random_sets_with_ties_and_gaps():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(0, 12))
        cost = rng.integers(0, 4, n).astype(float)  # few values: many ties
        quality = rng.integers(0, 4, n).astype(float)
        if n and rng.random() < 0.3:
            cost[rng.integers(0, n)] = math.nan
        assert pareto_mask(cost, quality).tolist() == _by_definition(cost, quality).tolist()
        assert pareto_mask(cost, quality, False).tolist() == _by_definition(cost, -quality).tolist()
