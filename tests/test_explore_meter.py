"""The explorer on a query in 3/4 with a pickup and a crescendo (issue 25): bar ranges, bar numbers and
every file it writes follow the query's bars, and its outputs carry the query's dynamics."""

from __future__ import annotations

import numpy as np
import pytest

from qbdi_utils import explore, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.explore.content import bar_excerpt, bar_starts, excerpt_steps, excerpt_velocities
from qbdi_utils.pianoroll import Piece, RollSpec
from mido_files import save_events

SPEC = RollSpec()
TPB = 480
# a quarter pickup, then six 3/4 bars; one chord per beat
CHORDS = [[55, 59, 62], [48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50]]
PICKUP_VELOCITY = 40
BAR_VELOCITIES = [50, 60, 70, 80, 90, 100]  # a crescendo, bar by bar
N_BEATS = 1 + 3 * len(BAR_VELOCITIES)
QUERY_BAR_STARTS = [0, 4, 16, 28, 40, 52, 64]  # steps: the pickup, then 12 steps a bar


def _waltz_mid(path):
    """The query written with mido (not with the code under test): 1/4 for the pickup, then 3/4."""
    import mido

    header = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
              mido.MetaMessage("time_signature", numerator=1, denominator=4, time=0)]
    events = []  # (tick, order, message)
    for beat in range(N_BEATS):
        vel = PICKUP_VELOCITY if beat == 0 else BAR_VELOCITIES[(beat - 1) // 3]
        for p in CHORDS[beat % len(CHORDS)]:
            events.append((beat * TPB, 1, mido.Message("note_on", note=p, velocity=vel)))
            events.append(((beat + 1) * TPB, 0, mido.Message("note_off", note=p, velocity=0)))
    events.append((TPB, 0, mido.MetaMessage("time_signature", numerator=3, denominator=4)))
    return save_events(path, events, TPB, header)


@pytest.fixture(scope="module")
def waltz(tmp_path_factory):
    return _waltz_mid(tmp_path_factory.mktemp("waltz") / "waltz.mid")


@pytest.fixture(scope="module")
def ex(tiny_model, waltz):
    e = explore.Explorer(tiny_model, str(waltz), bits=None, sample_rate=8000, dpi=40, overlay_bars=(1, 7),
                         audio_bars=(2, 3))
    yield e
    e.close()


def _bar_of(steps, starts):
    return np.searchsorted(np.asarray(starts), np.asarray(steps), side="right") - 1


def test_the_query_is_read_as_3_4_with_a_pickup(ex):
    q = ex._view[0]
    assert q.bar_offset_steps == 4 and bar_starts(q).tolist() == QUERY_BAR_STARTS
    assert ex.plot_range.max == 7 and ex.overlay_bars == (1, 7)  # the pickup is bar 1, then six bars


def test_bar_ranges_cut_at_the_querys_bar_lines(ex):
    out = ex.improvisation
    assert excerpt_steps((2, 3), QUERY_BAR_STARTS, out.n_steps) == (4, 28)
    np.testing.assert_array_equal(bar_excerpt(out.roll, (2, 3), out.spec, QUERY_BAR_STARTS),
                                  pianoroll.make_valid(out.roll[4:28], out.spec))
    assert excerpt_steps((7, 7), QUERY_BAR_STARTS, out.n_steps) == (64, out.n_steps)
    v = np.array([[3, 60, 40], [4, 60, 50], [27, 62, 60], [28, 64, 70]])
    assert excerpt_velocities(v, 4, 28).tolist() == [[0, 60, 50], [23, 62, 60]]
    assert "bars 2-3" in "".join(o["data"].get("text/html", "") for o in ex.audio.outputs)


def test_midi_download_is_3_4_with_the_querys_bar_lines_and_its_crescendo(ex, tmp_path):
    import mido

    out = ex.improvisation
    name, _, data = ex.file_bytes("midi")
    path = tmp_path / name
    path.write_bytes(data)
    mf = mido.MidiFile(path)
    sigs, t = [], 0
    for msg in mido.merge_tracks(mf.tracks):
        t += msg.time
        if msg.type == "time_signature":
            sigs.append((t, msg.numerator, msg.denominator))
    step = mf.ticks_per_beat // SPEC.steps_per_quarter
    assert sigs == [(0, 1, 4), (4 * step, 3, 4)]  # the pickup marked, then 3/4 at the first bar line
    back = pianoroll.read_midi(path, SPEC)
    assert back.bar_offset_steps == 4
    _, _, starts, _ = pianoroll.bar_layout(back.n_steps, back.time_signatures, back.bar_offset_steps, SPEC)
    assert np.maximum(starts, 0).tolist()[:7] == QUERY_BAR_STARTS
    np.testing.assert_array_equal(back.roll[:out.n_steps], out.roll)
    # every note at its bar's velocity in the query: the query has no accents inside a bar
    v = back.velocities
    assert len(v) > 0
    want = np.array([PICKUP_VELOCITY] + BAR_VELOCITIES)[_bar_of(v[:, 0], QUERY_BAR_STARTS)]
    np.testing.assert_array_equal(v[:, 2], want)
    bars = _bar_of(v[:, 0], QUERY_BAR_STARTS)
    means = [v[bars == b, 2].mean() for b in range(1, 7) if (bars == b).any()]
    assert len(means) >= 4 and all(a < b for a, b in zip(means, means[1:]))  # rising, bar by bar


def test_musicxml_download_is_written_in_3_4_bars(tiny_model, waltz):
    # three bars of the query (the pickup and two 3/4 bars): the tiny model's dense output is slow to notate
    from music21 import converter, meter, stream

    q = pianoroll.read_midi(waltz, SPEC)
    short = Piece(roll=q.roll[:28], spec=SPEC, name="waltz3", tempo_map=q.tempo_map[:1],
                  time_signatures=q.time_signatures, bar_offset_steps=q.bar_offset_steps,
                  velocities=q.velocities[q.velocities[:, 0] < 28])
    e = explore.Explorer(tiny_model, short, bits=None, sample_rate=8000, dpi=40)
    try:
        _, _, data = e.file_bytes("musicxml")
    finally:
        e.close()
    score = converter.parseData(data.decode("utf-8"), format="musicxml")
    part = score.parts[0]
    measures = list(part.getElementsByClass(stream.Measure))
    assert [float(m.duration.quarterLength) for m in measures] == [1.0, 3.0, 3.0]
    sigs = [ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)]
    assert "3/4" in sigs
    # each note's dynamics: its bar's velocity in the query (music21 reads MusicXML's dynamics="v / 90 * 100")
    heard = {}
    for m_i, m in enumerate(score.parts[0].getElementsByClass(stream.Measure)):
        for el in m.recurse().notes:
            for n in (el.notes if el.isChord else [el]):
                if n.tie is None or n.tie.type == "start":  # a chord read back carries one velocity
                    v = n.volume.velocity if n.volume.velocity is not None else el.volume.velocity
                    heard.setdefault(m_i, set()).add(round(v))
    assert heard and all(v == {[PICKUP_VELOCITY, *BAR_VELOCITIES][m_i]} for m_i, v in heard.items())


def test_a_fixed_velocity_keeps_every_note_at_it(tiny_model, waltz, tmp_path):
    e = explore.Explorer(tiny_model, str(waltz), bits=None, sample_rate=8000, dpi=40, velocity=80)
    try:
        name, _, data = e.file_bytes("midi")
    finally:
        e.close()
    (tmp_path / name).write_bytes(data)
    v = pianoroll.read_midi(tmp_path / name, SPEC).velocities
    assert len(v) > 0 and set(v[:, 2].tolist()) == {80}
    with pytest.raises(OptionError, match="velocity"):
        explore.Explorer(tiny_model, str(waltz), velocity="loud", refresh=False)


def test_a_4_4_query_keeps_16_step_bars(tiny_model, chord_query_mid):
    e = explore.Explorer(tiny_model, str(chord_query_mid(5)), bits=8, sample_rate=8000, dpi=40)
    try:
        assert bar_starts(e._view[0]).tolist() == [0, 16, 32, 48, 64] and e.plot_range.max == 5
    finally:
        e.close()


def test_the_overlay_draws_bar_lines_and_numbers_at_the_querys_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qbdi_utils import render

    roll = np.zeros((64 + 8, SPEC.n_columns), np.uint8)
    roll[:, 60 - SPEC.min_pitch] = 1
    fig, ax = plt.subplots()
    try:
        render.plot_overlay(roll, roll, SPEC, ax=ax, bar_starts=QUERY_BAR_STARTS, first_bar=1)
        lines = sorted(round(line.get_xdata()[0] + 0.5) for line in ax.get_lines())
        assert lines == QUERY_BAR_STARTS + [72]
        assert [round(t + 0.5) for t in ax.get_xticks()] == QUERY_BAR_STARTS
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in range(1, 8)]
    finally:
        plt.close(fig)
