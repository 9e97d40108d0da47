"""`qbdi live` in any meter (issue 25): files and a simulated clock; bars of the meter given with
--meter, or of the input file's own time signatures (--meter file), on the model's grid."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from qbdi_utils import improvise, live, live_controls, live_io, live_run, live_time, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import RollSpec
from mido_files import save_events

SPEC = RollSpec()
TPB = 480
CHORDS = [[48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50], [50, 53, 57]]


def _midi(path, sigs, n_quarters, bpm=100):
    """Quarter-note chords (a new one every quarter) with time signatures [(quarter, n, d)], by mido."""
    events = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))]
    events += [(q * TPB, 0, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for q, n, d in sigs]
    for q in range(n_quarters):
        for p in CHORDS[q % len(CHORDS)]:
            events.append((q * TPB, 2, mido.Message("note_on", note=p, velocity=70 + q % 3 * 10)))
            events.append(((q + 1) * TPB, 1, mido.Message("note_off", note=p, velocity=0)))
    return save_events(path, events, TPB)


def _session(model, path, meter, bits=None, on_bar=None):
    controls = live_controls.Controls(live_controls.Settings(bits, "corpus", 1.0), log=lambda _l: None)
    source = live_io.FileSource(path, model.spec)
    return live.LiveSession(model, source, controls, live_time.SimulatedClock(),
                            live_time.TempoTimeline(source.piece.tempo_bpm, model.spec), meter=meter,
                            on_bar=on_bar)


def _recorded(result, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(result.recording)
    sigs, t = [], 0
    mf = mido.MidiFile(path)
    for msg in mido.merge_tracks(mf.tracks):
        t += msg.time
        if msg.type == "time_signature":
            sigs.append((t * SPEC.steps_per_quarter // mf.ticks_per_beat, msg.numerator, msg.denominator))
    return pianoroll.read_midi(path, SPEC), sigs


def test_frame_grid_by_hand():
    g = live_time.FrameGrid(SPEC, (4, 4), 4)  # the old grid: 16 steps, a quarter pickup ends frame 0
    assert [g.start(k) for k in range(4)] == [-12, 4, 20, 36] and g.frame_of(3) == 0 and g.frame_of(4) == 1
    g = live_time.FrameGrid(SPEC, (5, 4))  # 5/4: 12 + 8 steps, split at the third beat
    assert [g.start(k) for k in range(5)] == [0, 12, 20, 32, 40] and g.length(1) == 8
    g = live_time.FrameGrid(SPEC, (6, 8))
    assert [g.start(k) for k in range(3)] == [0, 12, 24]
    g = live_time.FrameGrid(SPEC, offset_steps=4, time_signatures=[(0, 1, 4), (4, 3, 4), (28, 6, 8)],
                            known_steps=60)
    assert [g.start(k) for k in range(8)] == [-8, 4, 16, 28, 40, 52, 64, 76]  # then 6/8 for ever
    assert g.signatures == [(0, 3, 4), (28, 6, 8)]
    g12 = live_time.FrameGrid(RollSpec(steps_per_quarter=12, steps_per_frame=48), (3, 4))  # the model's grid, not 4 a quarter
    assert [g12.start(k) for k in range(3)] == [0, 36, 72]


def test_segmenter_on_a_grid_equals_the_files_frames(tmp_path):
    path = _midi(tmp_path / "m.mid", [(0, 3, 4), (6, 2, 4), (10, 6, 8)], 19)
    piece = pianoroll.read_midi(path, SPEC)
    bars = pianoroll.piece_bars(piece)
    grid = live_time.FrameGrid(SPEC, time_signatures=piece.time_signatures, known_steps=piece.n_steps)
    seg = live.BarSegmenter(SPEC, grid=grid)
    mf = mido.MidiFile(path)
    t = 0
    for msg in mido.merge_tracks(mf.tracks):
        t += msg.time
        seg.message(msg, t * SPEC.steps_per_quarter / TPB)
    seg.end_all(piece.n_steps)
    for k in range(len(bars.frames)):
        assert seg.bar_start(k) == bars.starts[k] and seg.bar_length(k) == bars.lengths[k]
        rows, _ = seg.take_bar(k)
        want = bars.frames[k].reshape(SPEC.steps_per_frame, SPEC.n_columns)[:bars.lengths[k]]
        np.testing.assert_array_equal(rows, want)


def test_3_4_live_is_the_full_rate_decoding_shifted_by_one_3_4_bar(tiny_model, tmp_path):
    path = _midi(tmp_path / "waltz.mid", [(0, 3, 4)], 18)  # six 3/4 bars
    result = _session(tiny_model, path, live_time.parse_meter("3/4")).run()
    back, sigs = _recorded(result, tmp_path, "rec.mid")
    assert sigs == [(0, 3, 4)] and len(result.bars) == 6
    # independently: the query's 3/4 frames encoded, their means decoded, each cut to its 12 rows,
    # joined and thresholded as one roll (a note held over a bar line stays one note)
    piece = pianoroll.read_midi(path, SPEC)
    bars = pianoroll.piece_bars(piece)
    assert bars.lengths.tolist() == [12] * 6
    mean, _ = tiny_model.encode(bars.frames)
    probs = pianoroll.join_bars(tiny_model.decode(mean), bars.lengths, bars.starts, piece.n_steps, SPEC)
    want = pianoroll.binarize(probs, tiny_model.threshold, spec=SPEC)
    expected = [(p, s + 12, e + 12) for p, s, e in pianoroll.roll_to_notes(want)]
    assert len(expected) > 10
    assert [tuple(n) for n in pianoroll.roll_to_notes(back.roll)] == expected
    assert back.n_steps == 18 * 4 + 12  # the last answer plays out its whole 3/4 bar
    # the same notes as qbdi improvise's but where improvise judges a note held over a 3/4 bar line
    # through the frame's padding rows (issue reported, improvise.py is not changed here)
    imp = improvise.improvise(tiny_model, piece, None, mode="corpus")
    np.testing.assert_array_equal(imp.roll[:, :SPEC.n_pitches], want[:, :SPEC.n_pitches])
    diff = np.argwhere(imp.roll != want)
    assert all(t % 12 == 0 for t, _ in diff)  # articulations on bar lines only
    # the file's own meter gives the same bars
    same = _session(tiny_model, path, live_time.FILE_METER).run()
    assert same.recording == result.recording


def test_4_4_default_is_unchanged(tiny_model, chord_query_mid):
    path = chord_query_mid(4)
    old_style = _session(tiny_model, path, (4, 4, 16)).run()
    file_meter = _session(tiny_model, path, live_time.parse_meter("4/4")).run()
    assert old_style.recording == file_meter.recording and len(old_style.bars) == 4


def test_mixed_meter_file_answers_each_bar_in_the_next_ones_length(tiny_model, tmp_path):
    # 3/4 (two bars), 2/4 (two bars), 6/8 (one bar) then 5/4 (one bar: frames of 12 + 8 steps)
    path = _midi(tmp_path / "mixed.mid", [(0, 3, 4), (6, 2, 4), (10, 6, 8), (13, 5, 4)], 18)
    piece = pianoroll.read_midi(path, SPEC)
    starts = pianoroll.piece_bars(piece).starts.tolist()
    assert starts == [0, 12, 24, 32, 40, 52, 64]
    recs = []
    result = _session(tiny_model, path, "file", on_bar=recs.append).run()
    back, sigs = _recorded(result, tmp_path, "mixed_rec.mid")
    assert sigs == [(0, 3, 4), (24, 2, 4), (40, 6, 8), (52, 5, 4)]  # the meter changes where the file's are
    assert len(result.bars) == len(starts)
    ends = starts[1:] + [starts[-1] + 8, starts[-1] + 8 + 12]  # the 5/4 continues past the file's end
    onsets = [s for _, s, _ in pianoroll.roll_to_notes(back.roll)]
    for k, rec in enumerate(recs):  # the answer to frame k starts its notes inside frame k + 1 only
        a, b = ends[k], ends[k + 1]
        assert rec.n_notes == sum(a <= s < b for s in onsets)
    assert sum(r.n_notes for r in recs) == len(onsets) > 0


def test_meter_file_needs_a_file_with_time_signatures(tiny_model, tmp_path):
    with pytest.raises(OptionError, match="--meter file"):
        live_run.LiveOptions(inp="SomePort", out="x.mid", meter=live_time.FILE_METER).check()
    bare = tmp_path / "bare.mid"
    mf = mido.MidiFile(ticks_per_beat=TPB)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=TPB))
    mf.save(bare)
    with pytest.raises(OptionError, match="--meter file"):
        _session(tiny_model, bare, live_time.FILE_METER)


def test_meter_file_recording_keeps_a_pickup_and_the_files_bar_lines(tiny_model, tmp_path):
    # an eighth-note pickup (1/8), then 2/4 bars of 8 steps
    path = tmp_path / "pickup.mid"
    mf = mido.MidiFile(ticks_per_beat=TPB)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.MetaMessage("time_signature", numerator=1, denominator=8, time=0))
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=TPB // 2))
    tr.append(mido.MetaMessage("time_signature", numerator=2, denominator=4, time=0))
    for q in range(8):
        tr.append(mido.Message("note_on", note=CHORDS[q % 5][0], velocity=80, time=0))
        tr.append(mido.Message("note_off", note=CHORDS[q % 5][0], velocity=0, time=TPB))
    mf.save(path)
    piece = pianoroll.read_midi(path, SPEC)
    assert piece.bar_offset_steps == 2
    result = _session(tiny_model, path, live_time.FILE_METER).run()
    back, sigs = _recorded(result, tmp_path, "pickup_rec.mid")
    assert sigs == [(0, 1, 8), (2, 2, 4)] and back.bar_offset_steps == 2
    assert len(result.bars) == 5  # the pickup's bar and four 2/4 bars
