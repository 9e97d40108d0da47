"""Tests of qbdi_utils.navigate: oracle navigation and query-guided resynthesis in latent space."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qbdi_utils import dynamics, improvise, navigate as nv, pianoroll
from qbdi_utils import navigate_guided as nv_guided
from qbdi_utils import navigate_output as nv_output
from qbdi_utils import navigate_sweep as nv_sweep
from qbdi_utils.corpus import Corpus
from qbdi_utils.errors import CorpusError, OptionError


# ---------------------------------------------------------------------------------------------- helpers

def random_oracle(seed, n=None, dim=2):
    """An oracle on a random, repetitive sequence (a few prototypes plus small noise), cosine metric."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 8)) if n is None else n
    protos = rng.normal(size=(3, dim))
    x = protos[rng.integers(0, 3, size=n)] + 0.05 * rng.normal(size=(n, dim))
    t = float(rng.uniform(0.01, 0.3))
    return dynamics.build_oracle(x, t, "cosine"), x


def allowed_moves(o, piece_index=None):
    """The move set of guided paths, written out from the oracle's fields (independent of guided_moves)."""
    n = o.n_frames
    moves = set()
    for a in range(1, n + 1):
        linked = [o.sfx[a]] + list(o.rsfx[a])
        targets = set(o.trn[a])
        for s in linked:
            if s:  # the root shares no context
                targets |= set(o.trn[s])
        for b in targets:
            if b == 0:
                continue
            if piece_index is not None and b == a + 1 and piece_index[b - 1] != piece_index[a - 1]:
                continue
            moves.add((a - 1, b - 1))
    return moves


def brute_force(o, cost, piece_index=None, jump_cost=0.0):
    n = o.n_frames
    moves = allowed_moves(o, piece_index)
    pi = np.zeros(n, int) if piece_index is None else np.asarray(piece_index)
    best = np.inf
    for path in itertools.product(range(n), repeat=cost.shape[0]):
        if all((a, b) in moves for a, b in zip(path, path[1:])):
            jumps = sum(1 for a, b in zip(path, path[1:]) if not (b == a + 1 and pi[a] == pi[b]))
            best = min(best, sum(cost[t, p] for t, p in enumerate(path)) + jump_cost * jumps)
    return best


# ---------------------------------------------------------------------------------------------- navigation

def test_continuity_one_replays_every_frame():
    o, _ = random_oracle(0, n=12)
    path, jumps = nv.navigate_path(o, 12, 1.0, rng=np.random.default_rng(5))
    assert path.tolist() == list(range(12))
    assert not jumps.any()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_every_jump_follows_a_link_sharing_enough_context(seed, k):
    o, _ = random_oracle(seed, n=40)
    path, jumps = nv.navigate_path(o, 200, 0.4, k, np.random.default_rng(seed))
    for t in range(1, len(path)):
        prev, now = path[t - 1] + 1, path[t]  # oracle state before the step, linked state (frame now = state now + 1 - 1)
        if not jumps[t]:
            assert path[t] == path[t - 1] + 1
            continue
        s = now  # the jump went to state s and continued from its successor, state s + 1 = frame s
        via_sfx = o.sfx[prev] == s and o.lrs[prev] >= k
        via_rsfx = o.sfx[s] == prev and o.lrs[s] >= k
        at_end_restart = prev == o.n_frames and s == (o.sfx[prev] or 0)
        assert via_sfx or via_rsfx or at_end_restart, (t, prev, s)


def test_jump_rate_is_one_minus_continuity_when_links_exist():
    # a periodic sequence: after the first period every state has a suffix link with a long context
    x = np.tile(np.eye(3), (1500, 1)) + 0.0  # long enough that the walk never reaches the end
    o = dynamics.build_oracle(x, 0.1, "cosine")
    for p in (0.9, 0.6, 0.2):
        path, jumps = nv.navigate_path(o, 3000, p, 1, np.random.default_rng(1), start=30)
        assert path.max() < o.n_frames - 1
        assert abs(jumps[1:].mean() - (1 - p)) < 0.03


def test_same_seed_same_path_and_bad_options():
    o, _ = random_oracle(3, n=30)
    a = nv.navigate_path(o, 50, 0.5, 1, np.random.default_rng(7))
    b = nv.navigate_path(o, 50, 0.5, 1, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(OptionError):
            nv.navigate_path(o, 5, bad, 1, np.random.default_rng(0))
    with pytest.raises(OptionError):
        nv.navigate_path(o, 5, 0.5, -1, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------- guided path

@pytest.mark.parametrize("case", range(12))
def test_guided_path_cost_equals_brute_force(case):
    rng = np.random.default_rng(100 + case)
    o, x = random_oracle(100 + case)
    n = o.n_frames
    T = int(rng.integers(2, 5))
    cost = rng.uniform(size=(T, n))
    piece_index = np.sort(rng.integers(0, 2, size=n)) if case % 2 else None
    jump_cost = 0.0 if case % 3 else 0.3
    path, total = nv_guided.guided_path(o, cost, piece_index, jump_cost=jump_cost)
    expected = brute_force(o, cost, piece_index, jump_cost)
    assert total == pytest.approx(expected, abs=1e-12)
    if np.isfinite(expected):
        moves = allowed_moves(o, piece_index)
        assert all((a, b) in moves for a, b in zip(path[:-1], path[1:]))
        pi = np.zeros(n, int) if piece_index is None else piece_index
        n_jumps = sum(1 for a, b in zip(path[:-1], path[1:]) if not (b == a + 1 and pi[a] == pi[b]))
        assert nv_guided.path_cost(cost, path) + jump_cost * n_jumps == pytest.approx(total, abs=1e-12)


def test_guided_moves_match_the_written_out_definition():
    for seed in range(5):
        o, _ = random_oracle(seed, n=30)
        src, dst = nv_guided.guided_moves(o)
        assert set(zip(src.tolist(), dst.tolist())) == allowed_moves(o)
        assert len(src) == len(set(zip(src.tolist(), dst.tolist())))


def test_corpus_style_oracle_equals_build_oracle():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 5))[rng.integers(0, 8, size=120)] + 0.2 * rng.normal(size=(120, 5))
    for t in (0.05, 0.2, 0.5):
        a = dynamics.build_oracle(x, t, "cosine")
        b = nv._oracle_on(nv._cosine_matrix(x), t)
        assert (a.sfx, a.lrs, a.trn, a.rsfx, a.data) == (b.sfx, b.lrs, b.trn, b.rsfx, b.data)


# ---------------------------------------------------------------------------------------------- measures

def test_novelty_and_run_lengths_by_hand():
    ref = np.zeros((4, 6), np.uint8)
    out = ref.copy()
    out[1, 2] = 1
    out[3, 0] = 1
    assert nv_sweep.novelty(out, ref) == 0.5
    assert nv_sweep.run_lengths([False, False, True, False, True, True]).tolist() == [2, 2, 1, 1]
    assert nv_sweep.run_lengths([False] * 5).tolist() == [5]


def test_jump_steps_and_measures_by_hand():
    spec = pianoroll.RollSpec()
    nav = nv.Navigation(roll=np.zeros((16 * 5 - 4, spec.n_columns), np.uint8), spec=spec, pad_steps=4,
                        jumps=np.array([False, True, False, True, True]))
    # frames start at steps -4, 12, 28, 44, 60; jumps at frames 1, 3, 4
    assert nv_sweep.jump_steps(nav).tolist() == [12, 44, 60]
    assert nv_sweep.jump_measures(nav) == [1, 3, 4]
    assert nv_sweep.jump_measures(nav, first=2, last=3) == [3]


# ---------------------------------------------------------------------------------------------- with a model

@pytest.fixture(scope="module")
def chord_query():
    from qbdi_utils.model import synthetic_frames

    spec = pianoroll.RollSpec()
    roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(12, seed=9), spec), spec)
    return pianoroll.Piece(roll=roll, spec=spec, name="chords", tempo_map=[(0, 90.0)],
                           time_signatures=[(0, 4, 4)])


@pytest.mark.parametrize("bits", [None, 64, 0])
@pytest.mark.parametrize("mode", ["query", "corpus", "posterior"])
def test_continuity_one_equals_improvise_note_for_note(tiny_model, chord_query, bits, mode):
    for seed in (0, 5):
        nav = nv.navigate(tiny_model, chord_query, "query", 1.0, 2, bits=bits, mode=mode, seed=seed)
        ref = improvise.improvise(tiny_model, chord_query, bits, mode, seed)
        assert np.array_equal(nav.roll, ref.roll)
        assert nav.path.tolist() == list(range(len(nav.path))) and not nav.jumps.any()


def test_navigation_decodes_the_path_latents(tiny_model, chord_query):
    nav = nv.navigate(tiny_model, chord_query, "query", 0.3, 1, bits=None, seed=2)
    enc = improvise.encode_query(tiny_model, chord_query)
    assert np.array_equal(nav.latents, enc.mean[nav.path])
    assert nav.n_steps == chord_query.n_steps
    again = nv.navigate(tiny_model, chord_query, "query", 0.3, 1, bits=None, seed=2)
    assert np.array_equal(again.path, nav.path) and np.array_equal(again.roll, nav.roll)


def tiny_corpus(frames, n_pieces=4):
    idx = np.repeat(np.arange(n_pieces), -(-len(frames) // n_pieces))[: len(frames)]
    return Corpus(frames=frames, piece_index=idx, piece_names=[f"p{i}" for i in range(n_pieces)],
                  skipped=[], fingerprint="test")


def test_corpus_source_path_is_the_closest_and_is_decoded(tiny_model, chord_query):
    from qbdi_utils.model import synthetic_frames

    c = tiny_corpus(synthetic_frames(400, seed=0))  # the tiny model's training frames
    co = nv.corpus_oracle(tiny_model, c)
    assert co.n_frames == 400 and co.piece_bar[100] == 0 and co.piece_bar[99] == 99
    enc = improvise.encode_query(tiny_model, chord_query)
    nav = nv.navigate(tiny_model, enc, "corpus", bits=None, oracle=co)
    assert np.array_equal(nav.latents, co.mean[nav.path])
    cost = 1 - (enc.mean / np.linalg.norm(enc.mean, axis=1, keepdims=True)) @ \
        (co.mean / np.linalg.norm(co.mean, axis=1, keepdims=True)).T
    assert nv_guided.path_cost(cost, nav.path) == pytest.approx(nav.path_cost, abs=1e-4)
    # no path can beat the free choice of the closest corpus bar at every step
    assert nav.path_cost >= cost.min(axis=1).sum() - 1e-6
    cont = (nav.path[1:] == nav.path[:-1] + 1) & (c.piece_index[nav.path[1:]] == c.piece_index[nav.path[:-1]])
    assert nav.jumps[1:].tolist() == (~cont).tolist()
    rec = nv_output.path_record(nav)
    assert rec["n_bars"] == len(nav.path) and rec["bars"][0]["piece"] == f"p{c.piece_index[nav.path[0]]}"
    # through the channel too, in every statistics mode
    for mode in improvise.STATS_MODES:
        low = nv.navigate(tiny_model, enc, "corpus", bits=32, mode=mode, seed=1, oracle=co)
        assert np.array_equal(low.path, nav.path) and not np.array_equal(low.latents, nav.latents)


def test_corpus_unavailable_is_a_corpus_error(tiny_model, tmp_path):
    from qbdi_utils.model import synthetic_frames

    with pytest.raises(CorpusError, match="does not record"):
        nv.model_corpus(tiny_model)
    with pytest.raises(CorpusError, match="fingerprint"):
        nv.model_corpus(tiny_model, tiny_corpus(synthetic_frames(400, seed=1)))
    gone = tmp_path / "gone"
    tiny_model.info["corpus"] = {"source": str(gone), "options": {}}
    try:
        with pytest.raises(CorpusError, match="no longer exists"):
            nv.model_corpus(tiny_model)
    finally:
        del tiny_model.info["corpus"]


def test_sweep_rows_reference_behaviour(tiny_model, chord_query):
    from qbdi_utils.model import synthetic_frames

    co = nv.corpus_oracle(tiny_model, tiny_corpus(synthetic_frames(400, seed=0)))
    rows = nv_sweep.navigation_sweep(tiny_model, chord_query, (1.0, 0.3), 2, (None, 16), corpus=co,
                               jump_costs=(0.0, 30.0), n_thresholds=10, n_shuffles=3)
    assert len(rows) == 1 + 4 * 2
    # a jump costs more than a whole path can differ in distance (12 bars x cosine <= 2): never jumps
    never = next(r for r in rows if r["source"] == "corpus" and r["jump_cost"] == 30.0)
    assert never["jump_share_mean"] == 0.0 and never["mean_run_bars"] == 12
    assert rows[0]["triad_agreement_mean"] == 1.0
    full1 = next(r for r in rows if r["source"] == "query" and r["continuity"] == 1.0 and r["bits"] == "")
    assert full1["novelty_mean"] == 0.0 and full1["jump_share_mean"] == 0.0
    assert full1["mean_run_bars"] == 12  # the 12 bars of the query, one run
