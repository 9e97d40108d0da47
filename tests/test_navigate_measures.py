"""Tests of qbdi_utils.navigate_measures: baselines with known expectations, measures against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from qbdi_utils import dynamics, harmony, vmo_features
from qbdi_utils import navigate_measures as nm
from qbdi_utils.pianoroll import RollSpec


def random_oracle(seed, n=12, dim=2):
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(3, dim))
    x = protos[rng.integers(0, 3, size=n)] + 0.05 * rng.normal(size=(n, dim))
    return dynamics.build_oracle(x, float(rng.uniform(0.01, 0.3)), "cosine"), x


# ---------------------------------------------------------------------------------------------- baselines

@pytest.mark.parametrize("p", [0.9, 0.5, 0.1])
def test_random_jump_share_is_one_minus_continuity_and_targets_are_uniform(p):
    n, T = 50, 20000
    path, jumps = nm.random_jump_path(n, T, p, nm.random_rng(0))
    forced = np.sum(path[:-1][~jumps[1:]] == n - 1)  # never: a continuation cannot leave the last frame
    assert forced == 0
    # share of jumps: 1 - p, plus the last frame's forced jumps (about p / n of the steps)
    expect = (1 - p) + p * np.mean(path[:-1] == n - 1)
    sd = np.sqrt(p * (1 - p) / T)
    assert abs(jumps[1:].mean() - expect) < 5 * sd + 1e-3
    t = np.flatnonzero(jumps)
    assert np.all(path[t] != path[t - 1] + 1)  # a jump never lands on the next bar
    counts = np.bincount(path[t], minlength=n)
    # uniform targets: chi-square with n - 1 degrees of freedom, far below its 1e-6 tail
    e = len(t) / n
    assert ((counts - e) ** 2 / e).sum() < n - 1 + 8 * np.sqrt(2 * (n - 1))
    again = nm.random_jump_path(n, T, p, nm.random_rng(0))
    np.testing.assert_array_equal(again[0], path)


def test_random_targets_keep_the_jump_times():
    rng = np.random.default_rng(4)
    want = rng.random(200) < 0.3
    want[0] = False
    path, jumps = nm.random_targets_path(want, 1000, nm.random_rng(1))
    np.testing.assert_array_equal(jumps, want)  # 1000 frames: no forced jump in 200 steps from 0
    cont = np.flatnonzero(~want[1:]) + 1
    np.testing.assert_array_equal(path[cont], path[cont - 1] + 1)
    t = np.flatnonzero(want)
    assert np.all(path[t] != path[t - 1] + 1)
    with pytest.raises(ValueError):
        nm.random_targets_path(want, 1, nm.random_rng(1))


# ---------------------------------------------------------------------------------------------- measures

def test_self_repetition_by_hand_and_its_iid_expectation():
    f = np.array([[0, 1], [1, 1], [0, 1], [0, 0], [1, 1]])
    assert nm.self_repetition(f) == pytest.approx(2 / 5)
    m, T, K = 6, 25, 3000
    rng = np.random.default_rng(0)
    alphabet = np.eye(m, dtype=np.uint8)
    got = np.mean([nm.self_repetition(alphabet[rng.integers(0, m, size=T)]) for _ in range(K)])
    expect = np.mean([1 - (1 - 1 / m) ** t for t in range(T)])
    assert got == pytest.approx(expect, abs=0.01)


def test_ngram_novelty_by_hand():
    a, b, c, d = ([k] for k in range(4))
    ref = np.array([a, b, c, d])
    assert nm.ngram_novelty(ref, ref, 2) == 0.0
    out = np.array([a, b, d, a])  # bigrams ab (in ref), bd (new), da (new)
    assert nm.ngram_novelty(out, ref, 2) == pytest.approx(2 / 3)
    assert nm.ngram_novelty(out, ref, 1) == 0.0
    assert nm.ngram_novelty(out, ref, 3) == 1.0
    assert np.isnan(nm.ngram_novelty(out[:2], ref, 3))
    with pytest.raises(ValueError):
        nm.ngram_novelty(out, ref, 0)


def test_bar_line_tonnetz_against_harte_projection():
    rng = np.random.default_rng(2)
    c = rng.integers(0, 2, size=(9, 12)).astype(float)
    c[3] = 0.0  # a silent bar sits at the origin
    at = rng.random(9) < 0.5
    phi = harmony.TONNETZ_MATRIX

    def proj(v):
        return phi @ (v / v.sum()) if v.sum() else np.zeros(6)

    want = [np.linalg.norm(proj(c[t - 1]) - proj(c[t])) for t in range(1, 9) if at[t]]
    np.testing.assert_allclose(nm.bar_line_tonnetz(c, at), want, atol=1e-12)
    assert len(nm.bar_line_tonnetz(c)) == 8


def test_follow_distances_against_scipy():
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(10, 4))
    path = np.array([0, 1, 7, 8, 9, 2, 3, 5])
    jumps = np.array([False, False, True, False, False, True, False, True])
    # jump at t=2 (from 1: next would be 2), t=5 (from 9, the last frame: left out), t=7 (from 3: next 4)
    want = [cdist(mean[[7]], mean[[2]], "cosine")[0, 0], cdist(mean[[5]], mean[[4]], "cosine")[0, 0]]
    np.testing.assert_allclose(nm.follow_distances(mean, path, jumps), want, atol=1e-12)


def test_decoded_agreement_compares_with_the_bar_decoded():
    rng = np.random.default_rng(5)
    src = rng.integers(0, 2, size=(6, 12)).astype(float)
    path = np.array([4, 5, 0, 2])
    got = nm.decoded_agreement(src, src[path], path)
    np.testing.assert_array_equal(got, np.ones(4))
    other = rng.integers(0, 2, size=(4, 12)).astype(float)
    want = harmony.frame_comparison(src[path], other)["triad_agreement"]
    np.testing.assert_allclose(nm.decoded_agreement(src, other, path), want)


def test_link_context_written_out_from_the_oracle_fields():
    for seed in range(4):
        o, x = random_oracle(seed, n=15)
        d = cdist(x, x, "cosine")
        n = o.n_frames
        for row in nm.link_context(o, x, (1, 2)):
            k = row["min_context"]
            dist = []
            for p in range(1, n + 1):
                links = ([(o.sfx[p], o.lrs[p])] if o.sfx[p] else []) + [(r, o.lrs[r]) for r in o.rsfx[p]]
                dist += [d[p - 1, s - 1] for s, ctx in links if ctx >= k and 1 <= s < n]
            assert row["n_links"] == len(dist)
            if dist:
                assert row["median_link_distance"] == pytest.approx(np.median(dist), abs=1e-12)
            assert row["median_pair_distance"] == pytest.approx(np.median(d[np.triu_indices(n, 1)]), abs=1e-12)


def test_nearest_paths_against_brute_force():
    rng = np.random.default_rng(6)
    qm, cm = rng.normal(size=(5, 3)), rng.normal(size=(20, 3))
    qc, cc = rng.random((5, 12)), rng.random((20, 12))
    got = nm.nearest_paths(qm, cm, qc, cc)
    np.testing.assert_array_equal(got["latent"], cdist(qm, cm, "cosine").argmin(axis=1))
    np.testing.assert_array_equal(got["chroma"], cdist(qc, cc, "cosine").argmin(axis=1))


def test_frontier_jumps_fall_and_cost_rises_with_the_jump_cost():
    for seed in range(4):
        o, x = random_oracle(10 + seed, n=25)
        rng = np.random.default_rng(seed)
        cost = rng.uniform(size=(8, o.n_frames))
        pi = np.sort(rng.integers(0, 3, size=o.n_frames))
        rows = nm.jump_cost_frontier(o, cost, pi, (0.0, 0.05, 0.2, 1.0, 10.0))
        shares = [r["jump_share"] for r in rows]
        costs = [r["mean_cost"] for r in rows]
        # an exact optimum at a higher price per jump never jumps more, nor plays closer bars
        assert all(a >= b - 1e-12 for a, b in zip(shares, shares[1:]))
        assert all(a <= b + 1e-12 for a, b in zip(costs, costs[1:]))
        assert rows[0]["mean_cost"] >= cost.min(axis=1).mean() - 1e-12  # moves constrain the path


def test_ir_at_threshold_is_the_oracle_ir_of_the_features():
    spec = RollSpec()
    rng = np.random.default_rng(7)
    roll = (rng.random((spec.steps_per_frame * 4, spec.n_columns)) < 0.03).astype(np.uint8)
    f = vmo_features.chroma_features(roll, spec, "beat")
    for t in (0.1, 0.5):
        o = dynamics.build_oracle(f, t)
        assert nm.ir_at_threshold(roll, spec, t) == pytest.approx(dynamics.ir_per_frame(o).sum())
