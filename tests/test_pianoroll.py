"""MIDI <-> roll <-> frames (qbdi_utils.pianoroll): round trips, reader semantics, frames, binarize.

References are independent of the code under test: expected rolls are built by hand or from note
lists with explicit rounding, and written files are re-read with pretty_midi and music21.
"""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qbdi_utils.pianoroll import (
    Piece, RollSpec, binarize, from_frames, is_valid_roll, make_valid, notes_to_roll,
    piece_from_frames, read_midi, roll_to_notes, to_frames, transpose_roll, write_midi,
)

SPEC = RollSpec()
N = SPEC.n_pitches


def _save(mid: mido.MidiFile, path):
    mid.save(str(path))
    return path


def _midi_from_notes(notes, tpb=480, tracks=1, channel_of=lambda i: 0, vel0_off=False, eot_tick=None):
    """A type-1 MIDI file from (pitch, start_tick, end_tick), notes spread round-robin over tracks."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    per_track = [[] for _ in range(tracks)]
    for i, (p, s, e) in enumerate(notes):
        ch = channel_of(i)
        per_track[i % tracks].append((s, 1, mido.Message("note_on", channel=ch, note=p, velocity=64)))
        off = (mido.Message("note_on", channel=ch, note=p, velocity=0) if vel0_off
               else mido.Message("note_off", channel=ch, note=p, velocity=0))
        per_track[i % tracks].append((e, 0, off))
    for evs in per_track:
        evs.sort(key=lambda x: (x[0], x[1]))
        tr = mido.MidiTrack()
        now = 0
        for t, _, m in evs:
            tr.append(m.copy(time=t - now))
            now = t
        if eot_tick is not None and eot_tick > now:
            tr.append(mido.MetaMessage("end_of_track", time=eot_tick - now))
        mid.tracks.append(tr)
    return mid


def _round_step(tick, tpb, spq=4):
    # independent rounding: nearest step, halves up, via fractions
    from fractions import Fraction
    x = Fraction(tick * spq, tpb)
    return int(np.floor(x + Fraction(1, 2)))


# ---------------------------------------------------------------------------------------------
# strategies

@st.composite
def note_rolls(draw, max_steps=48):
    """Valid rolls built from a note list (shrinks well)."""
    T = draw(st.integers(1, max_steps))
    n = draw(st.integers(0, 12))
    notes = []
    for _ in range(n):
        p = draw(st.integers(SPEC.min_pitch, SPEC.max_pitch))
        s = draw(st.integers(0, T - 1))
        e = draw(st.integers(s + 1, T))
        notes.append((p, s, e))
    return notes_to_roll(notes, T, SPEC)


@st.composite
def dense_rolls(draw):
    """Valid rolls from random 0/1 arrays of random density, made valid (many merged notes)."""
    seed = draw(st.integers(0, 2**32 - 1))
    T = draw(st.integers(1, 40))
    density = draw(st.sampled_from([0.02, 0.2, 0.6]))
    rng = np.random.default_rng(seed)
    return make_valid(rng.random((T, SPEC.n_columns)) < density, SPEC)


# ---------------------------------------------------------------------------------------------
# roll -> MIDI -> roll

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roll=st.one_of(note_rolls(), dense_rolls()))
def test_roll_midi_roll_is_exact(roll, tmp_path):
    assert is_valid_roll(roll, SPEC)
    path = write_midi(roll, tmp_path / "r.mid", force=True)  # hypothesis reuses tmp_path
    back = read_midi(path, allow_empty=True)
    assert back.roll.shape == roll.shape
    np.testing.assert_array_equal(back.roll, roll)
    assert back.dropped == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roll=note_rolls(), tpb=st.sampled_from([4, 96, 100, 480, 10080]))
def test_roll_midi_roll_any_resolution(roll, tpb, tmp_path):
    back = read_midi(write_midi(roll, tmp_path / "r.mid", ticks_per_beat=tpb, force=True), allow_empty=True)
    np.testing.assert_array_equal(back.roll, roll)


def _mido_reference_bytes(roll, tempo_map, tpb, time_signature, program, velocity):
    """The file mido writes for the same events (the writer's independent reference)."""
    tps = tpb // SPEC.steps_per_quarter
    events = [(st * tps, 0, -1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for st, bpm in tempo_map]
    if time_signature is not None:
        events.append((0, 0, -1, mido.MetaMessage("time_signature", numerator=time_signature[0],
                                                  denominator=time_signature[1])))
    events.append((0, 0, -1, mido.Message("program_change", program=program)))
    for p, s, e in roll_to_notes(roll, SPEC):
        events.append((s * tps, 2, p, mido.Message("note_on", note=p, velocity=velocity)))
        events.append((e * tps, 1, p, mido.Message("note_off", note=p, velocity=0)))
    events.sort(key=lambda ev: ev[:3])
    track, now = mido.MidiTrack(), 0
    for tick, _, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(roll.shape[0] * tps - now, 0)))
    mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


@settings(max_examples=120, deadline=None)
@given(roll=st.one_of(note_rolls(max_steps=400), dense_rolls()), tpb=st.sampled_from([4, 96, 480, 960, 20000]),
       sig=st.sampled_from([None, (4, 4), (3, 4), (6, 8), (255, 1)]), program=st.integers(0, 127),
       velocity=st.integers(1, 127), tempos=st.lists(st.floats(4.0, 400.0), min_size=1, max_size=3))
def test_midi_bytes_equal_what_mido_writes(roll, tpb, sig, program, velocity, tempos):
    from qbdi_utils.pianoroll import midi_bytes

    tempo_map = [(i * 3, bpm) for i, bpm in enumerate(tempos)]
    ours = midi_bytes(roll, tempo_map, velocity, SPEC, ticks_per_beat=tpb, time_signature=sig, program=program)
    assert ours == _mido_reference_bytes(roll, tempo_map, tpb, sig, program, velocity)


def test_midi_bytes_refuse_what_midi_cannot_write():
    from qbdi_utils.pianoroll import midi_bytes

    roll = np.zeros((16, SPEC.n_columns), dtype=np.uint8)
    with pytest.raises(ValueError, match="power of two"):
        midi_bytes(roll, 120.0, time_signature=(3, 5))
    with pytest.raises(ValueError, match="tempo"):
        midi_bytes(roll, 3.0)  # 20 s per quarter: beyond MIDI's 24-bit tempo


def test_trailing_silence_survives(tmp_path):
    roll = notes_to_roll([(60, 0, 2)], 37)
    back = read_midi(write_midi(roll, tmp_path / "s.mid"))
    assert back.n_steps == 37
    assert mido.MidiFile(tmp_path / "s.mid").length == pytest.approx(37 / 4 * 0.5)


def test_write_midi_is_deterministic(tmp_path):
    roll = make_valid(np.random.default_rng(1).random((64, SPEC.n_columns)) < 0.1)
    a = write_midi(roll, tmp_path / "a.mid").read_bytes()
    b = write_midi(roll.copy(), tmp_path / "b.mid").read_bytes()
    assert a == b


def test_every_note_has_a_note_off(tmp_path):
    roll = notes_to_roll([(60, 0, 4), (60, 4, 8), (64, 2, 16)], 16)
    mid = mido.MidiFile(write_midi(roll, tmp_path / "n.mid"))
    ons = [m for m in mid.tracks[0] if m.type == "note_on" and m.velocity > 0]
    offs = [m for m in mid.tracks[0] if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
    assert len(ons) == len(offs) == 3


def test_written_file_reads_in_pretty_midi_and_music21(tmp_path):
    import pretty_midi
    from music21 import converter

    notes = [(60, 0, 4), (60, 4, 6), (67, 2, 16), (SPEC.min_pitch, 8, 9), (SPEC.max_pitch, 9, 12)]
    path = write_midi(notes_to_roll(notes, 20), tmp_path / "x.mid", tempo_bpm=90)
    pm = pretty_midi.PrettyMIDI(str(path))
    got = sorted((n.pitch, n.start, n.end) for n in pm.instruments[0].notes)
    sec = 60 / 90 / 4
    want = sorted((p, s * sec, e * sec) for p, s, e in notes)
    assert len(got) == len(want)
    for (gp, gs, ge), (wp, ws, we) in zip(got, want):
        assert gp == wp and gs == pytest.approx(ws) and ge == pytest.approx(we)
    score = converter.parse(str(path))
    on_q = set()
    for el in score.flatten().notes:  # music21 may fold simultaneous notes into chords
        for p in el.pitches:
            on_q.add((int(p.midi), float(el.offset)))
    want_q = {(p, s / 4) for p, s, _ in notes}
    assert on_q == want_q


# ---------------------------------------------------------------------------------------------
# MIDI -> roll -> MIDI

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), tpb=st.sampled_from([24, 96, 100, 120, 384, 480, 1000]),
       tracks=st.integers(1, 3), vel0=st.booleans())
def test_midi_roll_midi_keeps_notes_to_nearest_step(data, tpb, tracks, vel0, tmp_path):
    import pretty_midi

    # notes of one pitch are apart by at least one quarter so rounding cannot merge them
    notes = []
    for p in data.draw(st.lists(st.integers(SPEC.min_pitch, SPEC.max_pitch), min_size=1,
                                max_size=6, unique=True)):
        t = data.draw(st.integers(0, 4 * tpb))
        for _ in range(data.draw(st.integers(1, 3))):
            dur = data.draw(st.integers(1, 3 * tpb))
            notes.append((p, t, t + dur))
            t += dur + tpb + data.draw(st.integers(0, tpb))
    src = _save(_midi_from_notes(notes, tpb, tracks, vel0_off=vel0), tmp_path / "in.mid")
    piece = read_midi(src)
    want = []
    for p, s, e in notes:
        s2 = _round_step(s, tpb)
        want.append((p, s2, max(_round_step(e, tpb), s2 + 1)))
    assert roll_to_notes(piece.roll) == sorted(want, key=lambda n: (n[1], n[0], n[2]))
    out = write_midi(piece.roll, tmp_path / "out.mid", tempo_bpm=120, force=True)  # hypothesis reuses tmp_path
    pm = pretty_midi.PrettyMIDI(str(out))
    got = sorted((n.pitch, round(n.start * 8), round(n.end * 8)) for n in pm.instruments[0].notes)
    assert got == sorted(want)  # 120 bpm: one step = 1/8 s


# ---------------------------------------------------------------------------------------------
# reader semantics

def test_reader_merges_tracks_and_skips_drums(tmp_path):
    notes = [(60, 0, 480), (64, 0, 480), (36, 0, 240), (38, 240, 480)]
    chans = {0: 0, 1: 3, 2: 9, 3: 9}
    mid = _midi_from_notes(notes, 480, tracks=4, channel_of=lambda i: chans[i])
    piece = read_midi(_save(mid, tmp_path / "d.mid"))
    assert roll_to_notes(piece.roll) == [(60, 0, 4), (64, 0, 4)]
    assert piece.dropped == {"drum": 2}


def test_repeated_note_on_starts_a_new_note(tmp_path):
    tr = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=64, time=0),
        mido.Message("note_on", note=60, velocity=64, time=480),   # again, no off in between
        mido.Message("note_off", note=60, velocity=0, time=480),
        mido.Message("note_off", note=60, velocity=0, time=0),     # stray off: ignored
    ])
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(tr)
    piece = read_midi(_save(mid, tmp_path / "r.mid"))
    assert roll_to_notes(piece.roll) == [(60, 0, 4), (60, 4, 8)]


def test_unfinished_note_ends_at_end_of_track(tmp_path):
    tr = mido.MidiTrack([mido.Message("note_on", note=60, velocity=64, time=0),
                         mido.MetaMessage("end_of_track", time=960)])
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(tr)
    assert roll_to_notes(read_midi(_save(mid, tmp_path / "u.mid")).roll) == [(60, 0, 8)]


def test_unison_overlaps_are_counted(tmp_path):
    # alto holds C4 for two beats, soprano strikes C4 on beat 2: one roll row, two articulations
    notes = [(60, 0, 960), (60, 480, 1440), (64, 0, 480)]
    piece = read_midi(_save(_midi_from_notes(notes, 480, tracks=2), tmp_path / "u.mid"))
    assert piece.dropped == {"same_pitch_overlap": 1}
    assert roll_to_notes(piece.roll) == [(60, 0, 4), (64, 0, 4), (60, 4, 12)]


def test_short_notes_are_kept_one_step(tmp_path):
    # a 1-tick grace note (the original reader dropped notes shorter than a step)
    mid = _midi_from_notes([(70, 10, 11), (72, 120, 130)], 480)
    assert roll_to_notes(read_midi(_save(mid, tmp_path / "g.mid")).roll) == [(70, 0, 1), (72, 1, 2)]


def test_out_of_range_pitches_are_counted(tmp_path):
    mid = _midi_from_notes([(10, 0, 480), (60, 0, 480), (120, 0, 480), (127, 0, 10)], 480)
    piece = read_midi(_save(mid, tmp_path / "o.mid"))
    assert piece.dropped == {"out_of_range": 3}
    assert roll_to_notes(piece.roll) == [(60, 0, 4)]


def test_tempo_map_and_time_signatures(tmp_path):
    mid = _midi_from_notes([(60, 0, 480 * 8)], 480)
    mid.tracks[0][0:0] = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
                          mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0)]
    mid.tracks[0].insert(3, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=0))
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150), time=960),
                                mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                                 time=480)])
    mid.tracks.append(conductor)
    piece = read_midi(_save(mid, tmp_path / "t.mid"))
    assert piece.tempo_map == [(0, pytest.approx(60.0)), (8, pytest.approx(150.0))]
    assert piece.time_signatures == [(0, 3, 4), (12, 4, 4)]
    assert piece.tempo_bpm == pytest.approx(60.0)
    assert piece.ticks_per_beat == 480
    # notes sit in metrical time: the tempo change does not move them
    assert roll_to_notes(piece.roll) == [(60, 0, 32)]


def test_pickup_signature_gives_bar_offset(tmp_path):
    # a one-beat pickup marked the usual way: 1/4 for the pickup, then 4/4
    tr = mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=1, denominator=4, time=0),
        mido.Message("note_on", note=60, velocity=64, time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=480),
        mido.Message("note_off", note=60, velocity=0, time=0),
        mido.Message("note_on", note=62, velocity=64, time=0),
        mido.Message("note_off", note=62, velocity=0, time=480),
    ])
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(tr)
    piece = read_midi(_save(mid, tmp_path / "p.mid"), meter="4/4")
    assert piece.bar_offset_steps == 4
    frames = to_frames(piece.roll, SPEC, piece.bar_offset_steps)
    rows = from_frames(frames)
    # pickup note ends the first frame; the first full bar starts frame 1
    assert rows[12, 60 - SPEC.min_pitch] == 1 and rows[16, 62 - SPEC.min_pitch] == 1


# ---------------------------------------------------------------------------------------------
# frames, binarize, helpers

@settings(max_examples=50, deadline=None)
@given(roll=note_rolls(max_steps=70), offset=st.integers(0, 40))
def test_frames_round_trip(roll, offset):
    fr = to_frames(roll, SPEC, offset)
    spf = SPEC.steps_per_frame
    front = (-offset) % spf
    assert fr.shape == (-(-(roll.shape[0] + front) // spf), SPEC.frame_size)
    assert fr.dtype == np.uint8
    back = from_frames(fr)
    np.testing.assert_array_equal(back[front:front + roll.shape[0]], roll)
    assert back[:front].sum() == 0 and back[front + roll.shape[0]:].sum() == 0


def test_frame_layout_is_row_major():
    roll = np.zeros((16, SPEC.n_columns), np.uint8)
    roll[3, 5] = 1
    fr = to_frames(roll)
    assert fr.shape == (1, 2496) and fr[0, 3 * 156 + 5] == 1 and fr.sum() == 1


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), thr=st.floats(0.05, 0.95))
def test_binarize_yields_valid_roll(seed, n, thr):
    p = np.random.default_rng(seed).random((n, SPEC.frame_size)).astype(np.float32)
    b = binarize(p, thr)
    assert b.shape == p.shape and b.dtype == np.uint8
    assert is_valid_roll(from_frames(b))
    play, art = from_frames(b)[:, :N], from_frames(b)[:, N:]
    # play plane is the plain threshold; articulations only where thresholded articulate or onset
    np.testing.assert_array_equal(play, (from_frames(p)[:, :N] >= thr).astype(np.uint8))
    assert np.all(art <= play)
    np.testing.assert_array_equal(binarize(from_frames(p), thr), from_frames(b))


def test_binarize_keeps_held_note_across_frames():
    p = np.zeros((2, SPEC.frame_size), np.float32)
    rows = p.reshape(32, SPEC.n_columns)
    rows[:, 10] = 0.9       # sounding through both frames
    rows[0, N + 10] = 0.9   # articulated once
    b = from_frames(binarize(p, 0.5))
    assert roll_to_notes(b) == [(SPEC.min_pitch + 10, 0, 32)]


def test_binarize_rejects_wrong_shape():
    with pytest.raises(ValueError):
        binarize(np.zeros((3, 100)), 0.5)


def test_valid_roll_checks():
    r = np.zeros((4, SPEC.n_columns), np.uint8)
    r[1, 0] = 1  # sounds without articulation
    assert not is_valid_roll(r)
    assert is_valid_roll(make_valid(r))
    r2 = np.zeros_like(r)
    r2[0, N] = 1  # articulation without play
    assert not is_valid_roll(r2)
    assert make_valid(r2).sum() == 0


def test_transpose_roll_drops_notes_pushed_out():
    roll = notes_to_roll([(SPEC.max_pitch - 1, 0, 2), (60, 0, 2)], 4)
    up, lost = transpose_roll(roll, 3)
    assert lost == 1 and roll_to_notes(up) == [(63, 0, 2)]
    down, lost = transpose_roll(up, -3)
    assert lost == 0 and roll_to_notes(down) == [(60, 0, 2)]


def test_piece_from_frames():
    roll = notes_to_roll([(60, 0, 20)], 32)
    piece = piece_from_frames(to_frames(roll), name="x", tempo_bpm=100)
    assert isinstance(piece, Piece) and piece.n_steps == 32 and piece.tempo_bpm == 100
    np.testing.assert_array_equal(piece.roll, roll)


def test_spec_dict_round_trip():
    s = RollSpec(min_pitch=30, max_pitch=90)
    assert RollSpec.from_dict(s.to_dict()) == s


# --- the roll contract: as_roll / as_frames / Note ------------------------------------------

def test_as_roll_accepts_rolls_frames_and_pieces_and_nothing_else():
    from qbdi_utils.pianoroll import Note, Piece, as_frames, as_roll

    roll = np.zeros((32, SPEC.n_columns), np.uint8)
    roll[3:9, 5] = 1
    frames = roll.reshape(2, SPEC.frame_size)
    assert as_roll(roll, SPEC) is roll or np.shares_memory(as_roll(roll, SPEC), roll)
    np.testing.assert_array_equal(as_roll(frames, SPEC), roll)
    np.testing.assert_array_equal(as_roll(frames[0], SPEC), roll[:16])
    np.testing.assert_array_equal(as_roll(Piece(roll=roll), SPEC), roll)
    np.testing.assert_array_equal(as_frames(frames[1], SPEC), frames[1:])
    for bad in (np.zeros((4, 100)), np.zeros((2, 3, SPEC.n_columns)), np.zeros(SPEC.n_columns)):
        with pytest.raises(ValueError):
            as_roll(bad, SPEC)
    with pytest.raises(ValueError, match="to_frames"):
        as_frames(roll, SPEC)
    with pytest.raises(ValueError):
        as_roll(Piece(roll=np.zeros((4, 24), np.uint8), spec=RollSpec(min_pitch=60, max_pitch=71)), SPEC)
    # one note reader: strict by default, lenient takes frames and pieces too
    notes = roll_to_notes(roll, SPEC)
    assert notes == [Note(SPEC.min_pitch + 5, 3, 9)] and notes[0].pitch == SPEC.min_pitch + 5
    assert roll_to_notes(frames, SPEC, lenient=True) == notes
    assert roll_to_notes(Piece(roll=roll), SPEC, lenient=True) == notes
    with pytest.raises(ValueError):
        roll_to_notes(frames, SPEC)
