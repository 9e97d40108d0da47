"""Dynamics, tracks and WAV formats of outputs (qbdi_utils.performance, the MIDI and WAV writers, the CLI).

Queries are written with mido (velocities chosen here), expected velocities are computed by hand from
the module's rule (bar mean + accent), and written files are parsed back with mido / the wave module.
"""

from __future__ import annotations

import io
import wave

import mido
import numpy as np
import pytest
from scipy.stats import spearmanr

from qbdi_utils import performance, pianoroll
from qbdi_utils.cli import main
from qbdi_utils.pianoroll import Piece, RollSpec, notes_to_roll, read_midi
from qbdi_utils import render

SPEC = RollSpec()
N_BARS = 8
BASE = [30 + 10 * b for b in range(N_BARS)]  # a crescendo: 30, 40, ..., 100
ACCENT = 20  # extra velocity of every downbeat


def _write_mido(path, notes, tpb=480, signature=(4, 4)):
    """notes: (pitch, start_step, end_step, velocity) -> a type-0 file written by mido."""
    tps = tpb // SPEC.steps_per_quarter
    events = []
    for p, s, e, v in notes:
        events.append((s * tps, 1, mido.Message("note_on", note=p, velocity=v)))
        events.append((e * tps, 0, mido.Message("note_off", note=p, velocity=0)))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=signature[0], denominator=signature[1])])
    now = 0
    for t, _, m in events:
        track.append(m.copy(time=t - now))
        now = t
    mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
    mid.tracks.append(track)
    mid.save(str(path))
    return path


def _crescendo_query(tmp_path, accent=ACCENT):
    """8 bars of quarter-note C major triads; bar b at BASE[b], its downbeat ``accent`` louder."""
    notes = []
    for b in range(N_BARS):
        for q in range(4):
            s = 16 * b + 4 * q
            v = BASE[b] + (accent if q == 0 else 0)
            notes += [(p, s, s + 4, v) for p in (60, 64, 67)]
    return read_midi(_write_mido(tmp_path / "crescendo.mid", notes))


def _eighths_output():
    """An output on the same 8 bars: one pitch on every eighth note (on and off the beats)."""
    roll = notes_to_roll([(72, s, s + 2) for s in range(0, 16 * N_BARS, 2)], 16 * N_BARS)
    return Piece(roll=roll, time_signatures=[(0, 4, 4)])


def _note_ons(mid: mido.MidiFile, tpb_step: int):
    """(step, pitch, velocity, track index) of every note_on of a parsed file."""
    out = []
    for k, track in enumerate(mid.tracks):
        now = 0
        for m in track:
            now += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.append((now // tpb_step, m.note, m.velocity, k))
    return out


def test_read_midi_keeps_each_onsets_velocity(tmp_path):
    query = _crescendo_query(tmp_path)
    v = query.velocities
    assert v.shape == (N_BARS * 4 * 3, 3)
    assert set(v[v[:, 0] == 0, 2]) == {BASE[0] + ACCENT}
    assert set(v[v[:, 0] == 16 * 5 + 8, 2]) == {BASE[5]}
    assert Piece(roll=query.roll).velocities is None  # other constructors: unknown


def test_output_follows_the_crescendo_and_the_downbeat_accents(tmp_path):
    query = _crescendo_query(tmp_path)
    vel = performance.output_velocities(_eighths_output(), query, "query")
    step, v = vel[:, 0], vel[:, 2]
    bar, pos = step // 16, step % 16
    # by hand: the query's bar mean is BASE + ACCENT/4 (one loud onset of four); where the query
    # plays (every quarter) its own velocity comes back, off the beat (never played) the bar mean
    for b in range(N_BARS):
        mean = BASE[b] + ACCENT / 4
        assert v[(bar == b) & (pos == 0)] == pytest.approx([BASE[b] + ACCENT])
        assert set(v[(bar == b) & (pos % 4 == 0) & (pos > 0)]) == {BASE[b]}
        assert set(v[(bar == b) & (pos % 4 == 2)]) == {round(mean)}
    means = [v[bar == b].mean() for b in range(N_BARS)]
    assert spearmanr(range(N_BARS), means).statistic > 0.9
    assert (v[pos == 0] - np.array(BASE)).min() == ACCENT  # every downbeat accented


def test_a_query_bar_without_notes_takes_its_neighbours_mean(tmp_path):
    query = _crescendo_query(tmp_path, accent=0)
    query.velocities = query.velocities[query.velocities[:, 0] // 16 != 3]  # bar 4 silent
    v = performance.output_velocities(_eighths_output(), query, "query")
    assert set(v[v[:, 0] // 16 == 3, 2]) == {(BASE[2] + BASE[4]) // 2}


def test_fixed_and_flat_queries(tmp_path):
    out = _eighths_output()
    query = _crescendo_query(tmp_path)
    assert set(performance.output_velocities(out, query, 80)[:, 2]) == {80}
    flat = read_midi(_write_mido(tmp_path / "flat.mid", [(60, 4 * k, 4 * k + 4, 64) for k in range(32)]))
    assert performance.perform(out, flat, "query", corpus=performance.corpus_profile("chorales")) == []
    assert set(out.velocities[:, 2]) == {64}  # its level; the chorales add no accents
    notes = performance.perform(out, flat, "corpus", corpus=performance.corpus_profile("chorales"), corpus_name="chorales")
    assert set(out.velocities[:, 2]) == {performance.MUSIC21_VELOCITY}
    assert notes == ["--velocity corpus: the corpus chorales has no dynamics (every note at 90), so every note "
                     "is at velocity 90"]


def test_a_folder_corpus_lends_its_accents_to_a_flat_query(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(3):  # downbeats at 100, other quarters at 60: bar mean 70, accent +30 / -10
        _write_mido(folder / f"c{i}.mid", [(60 + i, 4 * k, 4 * k + 4, 100 if k % 4 == 0 else 60) for k in range(16)])
    prof = performance.corpus_profile(folder)
    assert prof.mean == pytest.approx(70.0)
    assert prof.accents == pytest.approx((30.0, -10.0, 0.0))
    assert not prof.flat
    flat = read_midi(_write_mido(tmp_path / "flat.mid", [(60, 4 * k, 4 * k + 4, 64) for k in range(32)]))
    v = performance.output_velocities(_eighths_output(), flat, "query", prof)
    pos = v[:, 0] % 16
    assert set(v[pos == 0, 2]) == {94} and set(v[pos == 4, 2]) == {54} and set(v[pos == 2, 2]) == {64}


def test_bar_grid_meters_pickups_and_changes():
    starts, beats = performance.bar_grid(36, [(0, 3, 4), (24, 6, 8)], 0, SPEC)
    assert starts.tolist() == [0, 12, 24] and beats.tolist() == [4, 4, 6]
    starts, _ = performance.bar_grid(36, [(0, 4, 4)], 4, SPEC)  # a one-beat pickup
    assert starts.tolist() == [0, 4, 20]
    _, _, level = performance.metrical_positions([0, 4, 6, 16, 30], *performance.bar_grid(32, [], 0, SPEC))
    assert level.tolist() == [0, 1, 2, 0, 2]


def test_midi_carries_the_velocities(tmp_path):
    query = _crescendo_query(tmp_path)
    out = _eighths_output()
    performance.perform(out, query, "query")
    mid = mido.MidiFile(file=io.BytesIO(pianoroll.midi_bytes(out.roll, velocity=out.velocities)))
    got = sorted((s, p, v) for s, p, v, _ in _note_ons(mid, 480 // 4))
    assert got == sorted(map(tuple, out.velocities.tolist()))
    assert (read_midi(_save(tmp_path / "o.mid", mid)).roll == out.roll).all()
    with pytest.raises(Exception, match="1..127"):
        pianoroll.midi_bytes(out.roll, velocity=np.array([[0, 72, 0]]))


def _save(path, mid):
    mid.save(str(path))
    return path


def _bar_rms(wave_: np.ndarray, sr: int, bpm: float = 120.0) -> np.ndarray:
    n = int(round(4 * 60.0 / bpm * sr))
    return np.array([np.sqrt(np.mean(wave_[b * n:(b + 1) * n] ** 2)) for b in range(N_BARS)])


@pytest.mark.parametrize("engine", ["builtin", "soundfont"])
def test_wav_rms_rises_with_velocity(tmp_path, engine):
    if engine == "soundfont" and render.synthesis_engine() != "soundfont":
        pytest.skip("no SoundFont synthesizer here")
    query = _crescendo_query(tmp_path, accent=0)
    out = Piece(roll=query.roll.copy(), time_signatures=[(0, 4, 4)])
    performance.perform(out, query, "query")
    loud = _bar_rms(render.synthesize(out, engine=engine, sample_rate=8000), 8000)
    assert spearmanr(range(N_BARS), loud).statistic == pytest.approx(1.0)
    assert loud[-1] / loud[0] > 2.0  # velocity 100 vs 30
    fixed = _bar_rms(render.synthesize(out, engine=engine, sample_rate=8000, velocity=80), 8000)
    assert fixed.max() / fixed.min() < 1.05


# ----------------------------------------------------------------------------------------------
# the command line (a tiny model from conftest)

@pytest.fixture(autouse=True)
def only_our_commands(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["improvise", "navigate", "sweep"])


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def crescendo_chords(tmp_path_factory):
    """The tiny model's kind of query (synthetic chord bars), bar b at velocity 20 + 12 b, no accents."""
    from qbdi_utils.model import synthetic_frames

    roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(N_BARS, seed=4), SPEC), SPEC)
    notes = [(p, s, e, 20 + 12 * (s // 16)) for p, s, e in pianoroll.roll_to_notes(roll, SPEC)]
    return _write_mido(tmp_path_factory.mktemp("q") / "cresc.mid", notes)


def _assert_rises_bar_by_bar(path):
    """The written file's mean velocity per 4/4 bar rises with the crescendo query (in 5 bars or more)."""
    ons = _note_ons(mido.MidiFile(path), 480 // 4)
    bars = np.array([s // 16 for s, _, _, _ in ons])
    vel = np.array([v for _, _, v, _ in ons])
    have = sorted(set(bars.tolist()))
    assert len(have) >= 5
    assert spearmanr(have, [vel[bars == b].mean() for b in have]).statistic > 0.9


def test_cli_velocities_follow_a_crescendo_and_fixed_gives_80(capsys, tmp_path, tiny_model, crescendo_chords):
    model = tiny_model.info["model_dir"]
    out = tmp_path / "o.mid"
    code, _, err = _run(capsys, "improvise", "--model", model, "--query", crescendo_chords, "--bits", "full",
                        "--out", out, "--wav", tmp_path / "o.wav")
    assert code == 0, err
    _assert_rises_bar_by_bar(out)
    code, _, err = _run(capsys, "improvise", "--model", model, "--query", crescendo_chords, "--bits", "full",
                        "--out", tmp_path / "f.mid", "--velocity", "80")
    assert code == 0, err
    assert {v for _, _, v, _ in _note_ons(mido.MidiFile(tmp_path / "f.mid"), 120)} == {80}


@pytest.mark.parametrize("argv, words", [
    (["--tracks", "foo"], "--tracks 'foo'"),
    (["--programs", "200"], "--programs '200'"),
    (["--tracks", "one", "--programs", "0,48"], "--tracks one writes 1 track"),
    (["--velocity", "loud"], "--velocity 'loud'"),
    (["--velocity", "128"], "--velocity '128'"),
    (["--wav-format", "mp3"], "--wav-format 'mp3'"),
])
def test_cli_bad_performance_options_are_one_line_exit_2(capsys, tmp_path, tiny_model, crescendo_chords, argv, words):
    for command in ("improvise", "navigate"):
        extra = ["--bits", "full"] if command == "improvise" else ["--source", "query"]
        code, _, err = _run(capsys, command, "--model", tiny_model.info["model_dir"], "--query", crescendo_chords,
                            *extra, "--out", tmp_path / "x.mid", *argv)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"qbdi {command}: error: ") and words in lines[0], err
        assert not (tmp_path / "x.mid").exists()


# ----------------------------------------------------------------------------------------------
# tracks, programs, time signatures, WAV formats

def _melody_over_chords():
    """A melody (72, 74, 76, 77 on the beats, 79 held over two) above held and repeated chords,
    plus a low note starting under the held 79 (accompaniment: a higher pitch sounds)."""
    melody = [(72, 0, 4), (74, 4, 8), (76, 8, 12), (77, 12, 16), (79, 16, 24)]
    chords = [(p, s, s + 8) for s in (0, 8, 16) for p in (60, 64, 67)] + [(48, 20, 24)]
    return melody, chords, notes_to_roll(melody + chords, 24)


def test_melody_and_accompaniment_tracks(tmp_path):
    melody, chords, roll = _melody_over_chords()
    data = pianoroll.midi_bytes(roll, 100.0, 70, tracks="melody+accompaniment", programs=(0, 48),
                                time_signatures=[(0, 4, 4), (16, 2, 4)])
    mid = mido.MidiFile(file=io.BytesIO(data))
    assert mid.type == 1 and len(mid.tracks) == 3
    conductor = [m for m in mid.tracks[0] if m.is_meta and m.type != "end_of_track"]
    assert [m.type for m in conductor] == ["set_tempo", "time_signature", "time_signature"]
    assert not [m for m in mid.tracks[0] if not m.is_meta]

    def notes_of(track):
        now, on, out = 0, {}, []
        for m in track:
            now += m.time
            if m.type == "note_on" and m.velocity:
                on[m.note] = now
            elif m.type in ("note_off", "note_on"):
                out.append((m.note, on.pop(m.note) // 120, now // 120))
        return sorted(out)

    assert notes_of(mid.tracks[1]) == sorted(melody)
    assert notes_of(mid.tracks[2]) == sorted(chords)
    assert [m.program for m in mid.tracks[1] if m.type == "program_change"] == [0]
    assert [m.program for m in mid.tracks[2] if m.type == "program_change"] == [48]
    assert {m.channel for m in mid.tracks[1] if not m.is_meta} == {0}
    assert {m.channel for m in mid.tracks[2] if not m.is_meta} == {1}
    assert [t.name for t in mid.tracks[1:]] == ["melody", "accompaniment"]
    path = tmp_path / "two.mid"
    path.write_bytes(data)
    back = read_midi(path)
    assert (back.roll == roll).all()  # the reader merges the tracks back
    assert back.time_signatures == [(0, 4, 4), (16, 2, 4)]
    # one track stays the type-0 file of before
    assert mido.MidiFile(file=io.BytesIO(pianoroll.midi_bytes(roll))).type == 0


def test_top_voice_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        roll = pianoroll.make_valid(rng.random((32, SPEC.n_columns)) < 0.03, SPEC)
        notes = pianoroll.roll_to_notes(roll, SPEC)
        play = roll[:, :SPEC.n_pitches].astype(bool)
        want = [bool(p - SPEC.min_pitch >= np.flatnonzero(play[s]).max()) for p, s, _ in notes]
        assert pianoroll.top_voice(notes).tolist() == want


def test_wav_formats_headers_and_panning():
    melody, chords, roll = _melody_over_chords()

    def header(data):
        with wave.open(io.BytesIO(data)) as w:
            return w.getnchannels(), w.getframerate(), w.getsampwidth(), w.readframes(w.getnframes())

    mono = render.wav_bytes(roll, SPEC, 120, engine="builtin")
    assert header(mono)[:3] == (1, 22050, 2)
    assert render.wav_bytes(roll, SPEC, 120, engine="builtin", wav_format="mono22") == mono
    ch, sr, width, raw = header(render.wav_bytes(roll, SPEC, 120, engine="builtin", wav_format="stereo44",
                                                 tracks="melody+accompaniment"))
    assert (ch, sr, width) == (2, 44100, 2)
    x = np.frombuffer(raw, "<i2").reshape(-1, 2).astype(np.float64)
    only_melody = pianoroll.notes_to_roll(melody, 24)
    ch, _, _, raw = header(render.wav_bytes(only_melody, SPEC, 120, engine="builtin", wav_format="stereo44",
                                            tracks="melody+accompaniment"))
    m = np.frombuffer(raw, "<i2").reshape(-1, 2).astype(np.float64)
    pan = (render.TRACK_PANS[0] + 1) * np.pi / 4
    assert np.sqrt((m[:, 1] ** 2).sum() / (m[:, 0] ** 2).sum()) == pytest.approx(np.tan(pan), rel=1e-3)
    assert np.abs(x[:, 0] - x[:, 1]).max() > 0  # two tracks: the channels differ
    ch, _, _, raw = header(render.wav_bytes(roll, SPEC, 120, engine="builtin", wav_format="stereo44"))
    one = np.frombuffer(raw, "<i2").reshape(-1, 2)
    assert (one[:, 0] == one[:, 1]).all()  # one track: centred


def test_cli_two_tracks_and_stereo(capsys, tmp_path, tiny_model, crescendo_chords):
    out, wav = tmp_path / "t.mid", tmp_path / "t.wav"
    code, _, err = _run(capsys, "navigate", "--model", tiny_model.info["model_dir"], "--query", crescendo_chords,
                        "--source", "query", "--tracks", "melody+accompaniment", "--programs", "0,48",
                        "--wav-format", "stereo44", "--out", out, "--wav", wav)
    assert code == 0, err
    mid = mido.MidiFile(out)
    assert mid.type == 1 and [t.name for t in mid.tracks[1:]] == ["melody", "accompaniment"]
    assert [m.program for t in mid.tracks for m in t if m.type == "program_change"] == [0, 48]
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 44100)


def test_cli_sweep_files_carry_the_dynamics_tracks_and_programs(capsys, tmp_path, tiny_model, crescendo_chords):
    model = tiny_model.info["model_dir"]
    code, _, err = _run(capsys, "sweep", "--model", model, "--query", crescendo_chords, "--seeds", "1",
                        "--out", tmp_path / "s")
    assert code == 0, err
    _assert_rises_bar_by_bar(next((tmp_path / "s").glob("*_full.mid")))
    code, _, err = _run(capsys, "sweep", "--model", model, "--query", crescendo_chords, "--seeds", "1",
                        "--out", tmp_path / "f", "--velocity", "80", "--tracks", "melody+accompaniment",
                        "--programs", "0,48")
    assert code == 0, err
    mid = mido.MidiFile(next((tmp_path / "f").glob("*_full.mid")))
    assert {v for _, _, v, _ in _note_ons(mid, 120)} == {80}
    assert mid.type == 1 and [t.name for t in mid.tracks[1:]] == ["melody", "accompaniment"]
    assert [m.program for t in mid.tracks for m in t if m.type == "program_change"] == [0, 48]
    with pytest.raises(SystemExit) as exc:  # the sweep writes no WAV: argparse refuses the option
        main([str(a) for a in ("sweep", "--model", model, "--query", crescendo_chords, "--out", tmp_path / "w",
                               "--wav-format", "stereo44")])
    assert exc.value.code == 2 and "--wav-format" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# --programs query: the query's instruments

PIANO, MARIMBA, STRINGS = 0, 12, 48


def _two_track_query(path, programs=(PIANO, MARIMBA), change=None, tpb=480):
    """A type-1 file written by mido: a conductor track, a melody track on channel 0 (program
    ``programs[0]``: quarter notes 72..79 over two 4/4 bars) and an accompaniment track on channel 1
    (``programs[1]``: a held three-note chord per bar, 24 quarters of sound against the melody's 8).
    ``programs`` None writes no program change at all; ``change`` (step, program) changes channel 1's
    program there. Returns (path, melody notes, accompaniment notes) in steps of SPEC."""
    tps = tpb // SPEC.steps_per_quarter
    melody = [(72 + [0, 2, 4, 5, 7, 5, 4, 2][i], 4 * i, 4 * i + 4) for i in range(8)]
    chords = [(p, s, s + 16) for s in (0, 16) for p in (48, 52, 55)]
    conductor = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4),
                                mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))])
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(conductor)
    for ch, notes in ((0, melody), (1, chords)):
        events = []
        if programs is not None:
            events.append((0, 0, mido.Message("program_change", channel=ch, program=programs[ch])))
        if change is not None and ch == 1:
            events.append((change[0] * tps, 0, mido.Message("program_change", channel=ch, program=change[1])))
        for p, s, e in notes:
            events.append((s * tps, 2, mido.Message("note_on", channel=ch, note=p, velocity=80)))
            events.append((e * tps, 1, mido.Message("note_off", channel=ch, note=p, velocity=0)))
        events.sort(key=lambda ev: (ev[0], ev[1]))
        track, now = mido.MidiTrack(), 0
        for t, _, m in events:
            track.append(m.copy(time=t - now))
            now = t
        mid.tracks.append(track)
    mid.save(str(path))
    return path, melody, chords


def test_read_midi_keeps_each_notes_program(tmp_path):
    """Every note read carries the program of its channel at its onset: 0 for the melody, 12 for the
    chords, and after a program change at step 16 the second bar's chords carry the new one; a file
    without program changes gives 0 everywhere."""
    path, melody, chords = _two_track_query(tmp_path / "duo.mid")
    got = sorted(map(tuple, read_midi(path, SPEC).programs.tolist()))
    assert got == sorted([(s, p, PIANO) for p, s, _ in melody] + [(s, p, MARIMBA) for p, s, _ in chords])
    path, melody, chords = _two_track_query(tmp_path / "change.mid", change=(16, STRINGS))
    got = sorted(map(tuple, read_midi(path, SPEC).programs.tolist()))
    assert got == sorted([(s, p, PIANO) for p, s, _ in melody]
                         + [(s, p, MARIMBA if s < 16 else STRINGS) for p, s, _ in chords])
    path, _, _ = _two_track_query(tmp_path / "none.mid", programs=None)
    assert set(read_midi(path, SPEC).programs[:, 2].tolist()) == {0}


def test_query_programs_most_sounding_and_top_voice(tmp_path):
    """One track: the marimba (24 quarters of chords against the piano's 8 quarters of melody). Melody +
    accompaniment: the piano holds the whole top voice, the marimba the rest. Without program changes:
    piano (0) for every track."""
    query = read_midi(_two_track_query(tmp_path / "duo.mid")[0], SPEC)
    assert performance.query_programs(query, "one") == (MARIMBA,)
    assert performance.query_programs(query, "melody+accompaniment") == (PIANO, MARIMBA)
    swapped = read_midi(_two_track_query(tmp_path / "swap.mid", programs=(STRINGS, PIANO))[0], SPEC)
    assert performance.query_programs(swapped, "melody+accompaniment") == (STRINGS, PIANO)
    none = read_midi(_two_track_query(tmp_path / "none.mid", programs=None)[0], SPEC)
    assert performance.query_programs(none, "one") == (0,)
    assert performance.query_programs(none, "melody+accompaniment") == (0, 0)
    melody_only = Piece(roll=notes_to_roll([(72, 0, 4), (74, 4, 8)], 16), spec=SPEC,
                        programs=np.array([[0, 72, 73], [4, 74, 73]]))
    assert performance.query_programs(melody_only, "melody+accompaniment") == (73, 73)  # nothing under it


def test_programs_option_takes_query():
    from qbdi_utils.cli import performance_values
    from qbdi_utils.errors import OptionError

    assert performance_values.programs_option("query") == "query" == performance_values.programs_option(" Query ")
    assert performance_values.programs_option("0,48") == (0, 48)
    with pytest.raises(OptionError, match="'query'"):
        performance_values.programs_option("queries")


def test_cli_programs_query_gives_the_query_instruments(capsys, tmp_path, tiny_model):
    """``--programs query``: a navigation of the two-track query written as one track takes the
    marimba, as two tracks the piano for the melody and the marimba for the accompaniment; a query
    without program changes gives program 0."""
    query, _, _ = _two_track_query(tmp_path / "duo.mid")
    none, _, _ = _two_track_query(tmp_path / "none.mid", programs=None)
    model = tiny_model.info["model_dir"]
    cases = [(query, "one", [MARIMBA]), (query, "melody+accompaniment", [PIANO, MARIMBA]),
             (none, "one", [0]), (none, "melody+accompaniment", [0, 0])]
    for i, (q, tracks, want) in enumerate(cases):
        out = tmp_path / f"o{i}.mid"
        code, _, err = _run(capsys, "navigate", "--model", model, "--query", q, "--source", "query",
                            "--tracks", tracks, "--programs", "query", "--out", out)
        assert code == 0, err
        mid = mido.MidiFile(out)
        assert [m.program for t in mid.tracks for m in t if m.type == "program_change"] == want
