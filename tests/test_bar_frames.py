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


def _mido_bars(path):
    """(time signatures [(tick, num, den)], note-on ticks) of a MIDI file, read with mido."""
    mid = mido.MidiFile(str(path))
    sigs, ons = [], []
    for track in mid.tracks:
        tick = 0
        for m in track:
            tick += m.time
            if m.type == "time_signature":
                sigs.append((tick, m.numerator, m.denominator))
            elif m.type == "note_on" and m.velocity > 0:
                ons.append(tick)
    return sigs, ons


def test_a_3_4_query_gives_a_3_4_output_with_the_query_s_bar_lines(tmp_path, tiny_model):
    import warnings as _w

    from qbdi_utils.improvise import encode_query, improvise
    from qbdi_utils.pianoroll import midi_bytes

    # a 3/4 query with a one-quarter pickup: a chord on every beat
    T = 4 + 8 * 12
    notes = [(p, s, s + 3) for s in range(0, T, 4) for p in (60, 64, 67)]
    q = read_midi(_write(tmp_path / "q.mid", [(0, 1, 4), (4, 3, 4)], notes, T), SPEC)
    enc = encode_query(tiny_model, q)
    assert enc.lengths.tolist() == [12] * 9 and enc.starts.tolist() == [-8 + 12 * i for i in range(9)]
    with _w.catch_warnings():
        _w.simplefilter("error")
        out = improvise(tiny_model, q, bits=None)
    assert out.n_steps == T and out.time_signatures == [(0, 1, 4), (4, 3, 4)]
    assert out.bar_offset_steps == 4
    # the synthetic model records no meters: taken as 4/4, and the warning says what happens
    meter_warnings = [w for w in out.warnings if "3/4" in w]
    assert len(meter_warnings) == 1
    assert "trained on 4/4" in meter_warnings[0] and "first 3 quarters" in meter_warnings[0]
    path = tmp_path / "out.mid"
    path.write_bytes(midi_bytes(out.roll, [tuple(t) for t in out.tempo_map], spec=SPEC,
                                time_signatures=out.time_signatures))
    sigs, ons = _mido_bars(path)
    tpb = mido.MidiFile(str(path)).ticks_per_beat
    assert sigs == [(0, 1, 4), (4 * tpb // 4, 3, 4)]
    # bar lines of the output, from mido's events alone: the pickup, then every 3 quarters
    bar_ticks = [0] + list(range(tpb, T * tpb // 4, 3 * tpb))
    assert len(ons) > 0
    # the output read back has the query's bar lines
    back = read_midi(path, SPEC)
    assert back.bar_offset_steps == q.bar_offset_steps
    assert piece_bars(back).bar_starts.tolist() == piece_bars(q).bar_starts.tolist()
    assert [t * 4 // tpb for t in bar_ticks[1:]] == [b for b in piece_bars(q).bar_starts.tolist() if b >= 0]
    # each output bar is the decoded frame of the query's bar, trimmed to 3 quarters
    probs = tiny_model.decode(enc.mean)
    on = (probs >= tiny_model.threshold).reshape(len(probs), 16, SPEC.n_columns)[:, :, :SPEC.n_pitches]
    for i, s in enumerate(enc.starts.tolist()):
        a = max(s, 0)
        assert np.array_equal(out.roll[a:s + 12, :SPEC.n_pitches], on[i, a - s:12].astype(np.uint8))


def test_a_model_trained_on_3_4_does_not_warn_about_3_4(tmp_path, tiny_model):
    from qbdi_utils.query_checks import query_warnings

    q = read_midi(_write(tmp_path / "q.mid", [(0, 3, 4)], [(60, 0, 4), (62, 12, 16)], 24), SPEC)

    class Trained:
        spec, config = tiny_model.spec, {}
        info = {"corpus": {"source": "x", "options": {"meter": None}, "meters": {"3/4": 10, "4/4": 5}}}

    assert not [w for w in query_warnings(Trained(), q) if "meter" in w or "trained on" in w]
    Trained.info = {"corpus": {"source": "x", "options": {"meter": "4/4"}}}
    assert any("trained on 4/4 bars only" in w for w in query_warnings(Trained(), q))


def test_a_pickup_known_only_from_the_offset_is_marked_and_survives_the_midi(tmp_path, tiny_model):
    from qbdi_utils.improvise import improvise
    from qbdi_utils.pianoroll import Piece, marked_signatures, midi_bytes

    # music21's pickups: bar_offset_steps set, the file's only signature the meter itself
    assert marked_signatures([(0, 3, 4)], 4) == [(0, 1, 4), (4, 3, 4)]
    assert marked_signatures([(0, 3, 4)], 2) == [(0, 1, 8), (2, 3, 4)]  # an eighth pickup
    assert marked_signatures([], 8) == [(0, 2, 4), (8, 4, 4)]
    assert marked_signatures([(0, 1, 4), (4, 3, 4)], 4) == [(0, 1, 4), (4, 3, 4)]  # marked already
    assert marked_signatures([(0, 3, 4)], 0) == [(0, 3, 4)]
    T = 4 + 6 * 12
    roll = notes_to_roll([(60 + i % 5, s, s + 2) for i, s in enumerate(range(0, T, 4))], T, SPEC)
    q = Piece(roll=roll, spec=SPEC, name="w", time_signatures=[(0, 3, 4)], bar_offset_steps=4)
    out = improvise(tiny_model, q, bits=None)
    path = tmp_path / "w.mid"
    path.write_bytes(midi_bytes(out.roll, spec=SPEC, time_signatures=out.time_signatures))
    back = read_midi(path, SPEC)
    assert back.bar_offset_steps == 4
    assert piece_bars(back).bar_starts.tolist() == piece_bars(q).bar_starts.tolist() == [-8 + 12 * i for i in range(7)]
