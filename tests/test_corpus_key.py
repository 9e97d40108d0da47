"""Tests of qbdi_utils.corpus_key: a query moved to its model's corpus's key, an output moved back."""

from __future__ import annotations

import types

import numpy as np
import pytest

from qbdi_utils import corpus_key, pianoroll
from qbdi_utils.errors import ModelError
from qbdi_utils.harmony import estimate_key
from qbdi_utils.improvise import Improvisation
from qbdi_utils.pianoroll import Piece, RollSpec

SPEC = RollSpec()

# I IV V I in C (bass, then the triad), one 4/4 bar each
PROGRESSION = [(48, 60, 64, 67), (53, 60, 65, 69), (43, 59, 62, 67), (48, 60, 64, 67)]


def chords_piece(semitones: int = 0, repeats: int = 2) -> Piece:
    """The progression moved by ``semitones`` as a Piece, with one velocity per note (by pitch)."""
    roll = np.zeros((16 * len(PROGRESSION) * repeats, SPEC.n_columns), np.uint8)
    vel = []
    for b, chord in enumerate(PROGRESSION * repeats):
        for p in chord:
            k = p + semitones - SPEC.min_pitch
            roll[16 * b:16 * b + 16, k] = 1
            roll[16 * b, SPEC.n_pitches + k] = 1
            vel.append((16 * b, p + semitones, 40 + p % 50))
    vel = np.array(vel, np.int64)
    programs = np.column_stack([vel[:, :2], np.where(vel[:, 1] < 55, 32, 0)])  # bass on program 32
    return Piece(roll=roll, spec=SPEC, name="chords", velocities=vel, programs=programs)


def model_recording(transpose="tonic", recorded=True):
    """A stand-in for a StyleVAE: only ``info`` is read."""
    info = {"corpus": {"source": "chorales", "options": {"transpose": transpose}}} if recorded else {}
    return types.SimpleNamespace(info=info)


def test_fold_pitches_brute_force():
    got = corpus_key.fold_pitches(np.arange(-30, 160), SPEC)
    for p, q in zip(range(-30, 160), got):
        inside = [c for c in range(SPEC.min_pitch, SPEC.max_pitch + 1) if (c - p) % 12 == 0]
        nearest = min(inside, key=lambda c: abs(c - p))  # the fold is the closest octave inside
        assert q == (p if SPEC.min_pitch <= p <= SPEC.max_pitch else nearest), p


def test_shift_matches_transpose_roll_inside_the_range_and_round_trips():
    piece = chords_piece()
    for s in range(-6, 6):
        moved, folded = corpus_key.shift_piece(piece, s)
        want, lost = pianoroll.transpose_roll(piece.roll, s, SPEC)
        assert folded == lost == 0
        np.testing.assert_array_equal(moved.roll, want)
        np.testing.assert_array_equal(moved.velocities[:, 1], piece.velocities[:, 1] + s)
        np.testing.assert_array_equal(moved.velocities[:, [0, 2]], piece.velocities[:, [0, 2]])
        np.testing.assert_array_equal(moved.programs[:, 1], piece.programs[:, 1] + s)
        np.testing.assert_array_equal(moved.programs[:, [0, 2]], piece.programs[:, [0, 2]])
        back, _ = corpus_key.shift_piece(moved, -s)
        np.testing.assert_array_equal(back.roll, piece.roll)
        np.testing.assert_array_equal(back.velocities, piece.velocities)
        np.testing.assert_array_equal(back.programs, piece.programs)
    assert piece.velocities[0, 1] == 48  # the original is untouched


def test_pitches_leaving_the_range_are_folded_by_an_octave_and_counted():
    n = SPEC.n_pitches
    roll = np.zeros((8, SPEC.n_columns), np.uint8)
    top, low = n - 1, 0  # F7 and C1
    roll[0:4, top] = roll[0, n + top] = 1  # F7, steps 0-3: up 2 -> G7, out: folded to G6
    roll[2:8, top - 12] = roll[2, n + top - 12] = 1  # F6, steps 2-7: up 2 -> G6, where the fold lands
    roll[4:6, low] = roll[4, n + low] = 1  # C1: down 1 stays, up 2 stays; checked with -3 below
    vel = np.array([(0, SPEC.max_pitch, 90), (2, SPEC.max_pitch - 12, 50), (4, SPEC.min_pitch, 70)])
    piece = Piece(roll=roll, spec=SPEC, velocities=vel)
    up, folded = corpus_key.shift_piece(piece, 2)
    assert folded == 1
    assert pianoroll.is_valid_roll(up.roll, SPEC)
    g6 = top - 10  # F7 + 2 - 12 = G6 = F6 + 2
    np.testing.assert_array_equal(up.roll[:, g6], [1] * 8)  # union of steps 0-3 and 2-7
    np.testing.assert_array_equal(up.roll[:, n + g6], [1, 0, 1, 0, 0, 0, 0, 0])  # both onsets kept
    assert up.roll[4, n + low + 2] == 1
    assert sorted(map(tuple, up.velocities.tolist())) == [(0, SPEC.max_pitch - 10, 90),
                                                        (2, SPEC.max_pitch - 10, 50), (4, SPEC.min_pitch + 2, 70)]
    down, folded = corpus_key.shift_piece(piece, -3)
    assert folded == 1  # C1 - 3 = A0, folded to A1
    assert down.roll[4, n + 9] == 1 and down.roll[:, :n].sum() == piece.roll[:, :n].sum()
    assert (4, SPEC.min_pitch + 9, 70) in map(tuple, down.velocities.tolist())


def test_to_corpus_key_moves_the_query_as_the_corpus_was_moved():
    query = chords_piece(1)  # C# major
    assert estimate_key(query.roll, SPEC)[:2] == (1, "major")
    moved, shift = corpus_key.to_corpus_key(model_recording("tonic"), query)
    assert shift.semitones == -1 and shift.transpose == "tonic"
    assert (shift.query_key, shift.corpus_key, shift.folded) == ("C# major", "C major", 0)
    np.testing.assert_array_equal(moved.roll, chords_piece(0).roll)
    np.testing.assert_array_equal(moved.velocities, chords_piece(0).velocities)
    np.testing.assert_array_equal(moved.programs, chords_piece(0).programs)
    assert corpus_key.shift_message(shift) == ("query moved -1 semitones (C# major) to the corpus's key "
                                               "(C major); outputs written back in C# major")
    # up to a tritone, ties down: F# major goes down 6, G major down 7 is not the smallest: up 5
    assert corpus_key.to_corpus_key(model_recording(), chords_piece(6))[1].semitones == -6
    assert corpus_key.to_corpus_key(model_recording(), chords_piece(7))[1].semitones == 5


def test_relative_none_and_unrecorded_corpora():
    query = chords_piece(2)
    assert corpus_key.to_corpus_key(model_recording("relative"), query)[1].semitones == -2
    for model in (model_recording(None), model_recording(recorded=False)):
        same, shift = corpus_key.to_corpus_key(model, query)
        assert same is query and shift.semitones == 0
        assert corpus_key.shift_message(shift) is None
        assert corpus_key.to_query_key(query, shift) == (query, 0)
    with pytest.raises(ModelError, match="--key query"):
        corpus_key.to_corpus_key(model_recording("sideways"), query)


def test_to_query_key_is_the_inverse_and_keeps_the_output_class():
    query = chords_piece(1)
    moved, shift = corpus_key.to_corpus_key(model_recording(), query)
    out = Improvisation(roll=moved.roll, spec=SPEC, name="chords @ full", bits=None, warnings=["w"],
                        tempo_map=[(0, 90.0)])
    back, folded = corpus_key.to_query_key(out, shift)
    assert isinstance(back, Improvisation) and folded == 0
    np.testing.assert_array_equal(back.roll, query.roll)
    assert estimate_key(back.roll, SPEC)[:2] == (1, "major")
    assert back.tempo_map == [(0, 90.0)] and back.name == out.name
    back.warnings.append("only mine")
    assert out.warnings == ["w"]
    np.testing.assert_array_equal(out.roll, moved.roll)  # the output in the corpus's key is untouched
