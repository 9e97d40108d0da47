"""Bars as frames for any meter (issue 25): pianoroll.bar_layout / cut_bars / join_bars / piece_bars.

The MIDI files are written here with mido (not with the package's writer); the expected rolls and
bar lines are worked out by hand from the meters (a quarter is 4 steps, an eighth 2), not by the
code under test.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from qbdi_utils.pianoroll import (
    RollSpec, bar_layout, beat_steps, cut_bars, join_bars, notes_to_roll, piece_bars, read_midi, to_frames,
)

SPEC = RollSpec()
TPB = 480
STEP = TPB // 4  # ticks per 16th step


def _write(path, signatures, notes, end_step):
    """A type-1 MIDI file: a conductor track with the signatures [(step, num, den)], one note track
    with notes [(pitch, start_step, end_step)]; the tracks end at ``end_step``."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    cond = mido.MidiTrack()
    now = 0
    for st, n, d in signatures:
        cond.append(mido.MetaMessage("time_signature", numerator=n, denominator=d, time=st * STEP - now))
        now = st * STEP
    cond.append(mido.MetaMessage("end_of_track", time=end_step * STEP - now))
    tr = mido.MidiTrack()
    evs = sorted([(s * STEP, 1, p) for p, s, _ in notes] + [(e * STEP, 0, p) for p, _, e in notes])
    now = 0
    for t, on, p in evs:
        kind = "note_on" if on else "note_off"
        tr.append(mido.Message(kind, note=p, velocity=64 if on else 0, time=t - now))
        now = t
    tr.append(mido.MetaMessage("end_of_track", time=end_step * STEP - now))
    mid.tracks += [cond, tr]
    mid.save(str(path))
    return path


def _notes_on_every_beat(end_step, beat, first=0):
    """One note per beat (pitch rising) from ``first`` to ``end_step``, each a step short of the beat."""
    return [(60 + (i % 12), s, s + beat - 1) for i, s in enumerate(range(first, end_step, beat))]


# (signatures, pickup steps, roll steps, expected bar lines, expected (start, length) of every frame)
CASES = {
    "3/4": ([(0, 3, 4)], 0, 36, [0, 12, 24], [(0, 12), (12, 12), (24, 12)]),
    "6/8": ([(0, 6, 8)], 0, 36, [0, 12, 24], [(0, 12), (12, 12), (24, 12)]),
    # 5/4 = 20 steps: split at quarter beats into 3 + 2 beats
    "5/4": ([(0, 5, 4)], 0, 40, [0, 20], [(0, 12), (12, 8), (20, 12), (32, 8)]),
    # 12/8 = 24 steps: split at dotted-quarter beats (6 steps) into 2 + 2 beats
    "12/8": ([(0, 12, 8)], 0, 48, [0, 24], [(0, 12), (12, 12), (24, 12), (36, 12)]),
    # 3/2 = 24 steps: half-note beats, 2 + 1
    "3/2": ([(0, 3, 2)], 0, 48, [0, 24], [(0, 16), (16, 8), (24, 16), (40, 8)]),
    # a quarter pickup marked by a 1/4 signature, two bars of 4/4, two of 3/4, one of 6/8
    "mixed+pickup": ([(0, 1, 4), (4, 4, 4), (36, 3, 4), (60, 6, 8)], 4, 72,
                     [-12, 4, 20, 36, 48, 60], [(-12, 16), (4, 16), (20, 16), (36, 12), (48, 12), (60, 12)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_midi_in_any_meter_round_trips_with_its_bar_lines(tmp_path, name):
    sigs, pickup, T, bar_lines, frames_expected = CASES[name]
    notes = _notes_on_every_beat(T, 2)
    piece = read_midi(_write(tmp_path / "m.mid", sigs, notes, T), SPEC)
    assert piece.bar_offset_steps == pickup
    assert piece.n_steps == T
    expected_roll = notes_to_roll(notes, T, SPEC)
    assert np.array_equal(piece.roll, expected_roll)
    bars = piece_bars(piece)
    assert bars.bar_starts.tolist() == bar_lines
    assert list(zip(bars.starts.tolist(), bars.lengths.tolist())) == frames_expected
    assert bars.frames.shape == (len(frames_expected), SPEC.frame_size)
    # every frame holds its steps in its first rows and silence after its length
    rows = bars.frames.reshape(len(bars.frames), SPEC.steps_per_frame, SPEC.n_columns)
    padded = np.zeros((T + 64, SPEC.n_columns), np.uint8)
    padded[32:32 + T] = expected_roll
    for (s, n), r in zip(frames_expected, rows):
        assert np.array_equal(r[:n], padded[32 + s:32 + s + n])
        assert not r[n:].any()
    # the inverse gives the roll back exactly
    assert np.array_equal(join_bars(bars.frames, bars.lengths, bars.starts, T, SPEC), piece.roll)


def test_a_4_4_piece_is_cut_as_before_into_16_step_frames():
    rng = np.random.default_rng(3)
    for T, off in [(40, 0), (40, 3), (33, 16)]:
        roll = (rng.random((T, SPEC.n_columns)) < 0.05).astype(np.uint8)
        front = (-off) % 16
        n = -(-(T + front) // 16)
        grid = np.zeros((n * 16, SPEC.n_columns), np.uint8)
        grid[front:front + T] = roll
        for sigs in (None, [], [(0, 4, 4)]):
            assert np.array_equal(cut_bars(roll, SPEC, sigs, off).frames, grid.reshape(n, SPEC.frame_size))
        assert np.array_equal(to_frames(roll, SPEC, off), grid.reshape(n, SPEC.frame_size))


def test_beats_are_dotted_in_compound_meters():
    assert [beat_steps(n, d) for n, d in [(4, 4), (3, 4), (3, 2), (6, 8), (12, 8), (6, 4), (9, 8)]] == \
        [4, 4, 8, 6, 6, 12, 6]


def test_a_signature_inside_a_bar_starts_a_new_bar():
    # 4/4 from 0, 3/4 from step 24 (half-way through bar 2): bar 2 is cut to 8 steps
    starts, lengths, bar_starts, _ = bar_layout(48, [(0, 4, 4), (24, 3, 4)], 0, SPEC)
    assert bar_starts.tolist() == [0, 16, 24, 36]
    assert lengths.tolist() == [16, 8, 12, 12]
