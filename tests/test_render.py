"""Tests of qbdi_utils.render: notation round trips, MusicXML, SVG, plots and audio.

Every roll here is hand-made (no MIDI reader involved), so the expected notes are known exactly.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from qbdi_utils import harmony, render
from qbdi_utils.errors import OutputExistsError
from qbdi_utils.pianoroll import RollSpec

SPEC = RollSpec()
N = SPEC.n_pitches


def make_roll(notes, n_steps):
    """Roll from [(midi_pitch, start_step, end_step)], every note articulated at its start."""
    roll = np.zeros((n_steps, SPEC.n_columns), np.uint8)
    for p, s, e in notes:
        k = p - SPEC.min_pitch
        roll[s:e, k] = 1
        roll[s, N + k] = 1
    return roll


# Two 4/4 bars. Expected noteheads when engraved (ties split notes into several heads):
KNOWN_NOTES = [
    (72, 0, 4), (76, 0, 4), (79, 0, 4),  # C major chord, quarter note: 3 heads
    (69, 12, 20),  # A4 across the bar line: quarter tied to quarter: 2 heads
    (48, 0, 8), (43, 8, 16),  # bass half notes: 1 + 1 heads
    (62, 4, 6), (62, 6, 8),  # D4 repeated (two articulations, play held): 2 heads
    (67, 17, 22),  # G4 off the beat: dotted 16th.. = dotted eighth tied to eighth: 2 heads
]
KNOWN_HEADS = 11


@pytest.fixture(scope="module")
def known_roll():
    return make_roll(KNOWN_NOTES, 32)


def notes_in_quarters(notes, spec=SPEC):
    q = spec.steps_per_quarter
    return sorted((int(p), s / q, (e - s) / q) for p, s, e in notes)


def stream_notes(score):
    """(pitch, offset_quarters, duration_quarters) of a music21 score, tied pieces joined.

    Independent of render: walks the parts' flattened notes and follows the tie types.
    """
    out = []
    for part in score.parts:
        open_notes = {}
        elems = sorted(part.flatten().notes, key=lambda el: el.offset)
        for el in elems:
            pitches = [el] if not el.isChord else list(el.notes)
            for n in pitches:
                midi = n.pitch.midi
                ql = float(el.duration.quarterLength)
                t = n.tie.type if n.tie is not None else None
                off = float(el.offset)
                if t in ("stop", "continue"):
                    rec = open_notes[midi]
                    assert abs(rec[1] + rec[2] - off) < 1e-9, "tie continues a note that already ended"
                    rec[2] += ql
                    if t == "stop":
                        out.append(tuple(open_notes.pop(midi)))
                else:
                    rec = [midi, off, ql]
                    if t == "start":
                        open_notes[midi] = rec
                    else:
                        out.append(tuple(rec))
        assert not open_notes, f"unterminated ties: {open_notes}"
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# roll -> notes


def test_roll_notes_reads_articulations_and_unarticulated_onsets():
    roll = make_roll([(60, 0, 4), (60, 4, 6)], 8)
    roll[6:8, 64 - SPEC.min_pitch] = 1  # E4 playing with no articulation: still a note
    got = render.roll_notes(roll, SPEC).tolist()
    assert got == [[60, 0, 4], [60, 4, 6], [64, 6, 8]]


def test_roll_notes_empty_roll():
    assert render.roll_notes(np.zeros((16, SPEC.n_columns), np.uint8), SPEC).shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# music21 stream


def test_stream_round_trips_notes_ties_and_chords(known_roll):
    score = render.roll_to_stream(known_roll, SPEC, tempo_bpm=100, name="known")
    assert stream_notes(score) == notes_in_quarters(KNOWN_NOTES)
    # the chord is one music21 Chord with three pitches
    chords = [c for c in score.recurse().getElementsByClass("Chord")]
    assert [sorted(p.midi for p in c.pitches) for c in chords] == [[72, 76, 79]]
    assert chords[0].duration.quarterLength == 1.0
    # the A4 is tied across the bar line: tie start in measure 1, stop in measure 2
    a4 = [n for n in score.recurse().getElementsByClass("Note") if n.pitch.midi == 69]
    assert [(n.getContextByClass("Measure").number, n.tie.type) for n in a4] == [(1, "start"), (2, "stop")]
    # two staves (treble above middle C, bass below), 4/4, tempo mark
    assert len(score.parts) == 2
    clefs = [p.recurse().getElementsByClass("Clef").first().sign for p in score.parts]
    assert clefs == ["G", "F"]
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    assert ts.ratioString == "4/4"
    mm = score.recurse().getElementsByClass("MetronomeMark").first()
    assert mm.number == 100
    # every measure is full: 4 quarters of notes + rests in each voice
    for part in score.parts:
        for m in part.getElementsByClass("Measure"):
            voices = list(m.voices) or [m]
            for v in voices:
                assert sum(el.duration.quarterLength for el in v.notesAndRests) == 4.0


def test_stream_single_staff_when_notes_fit():
    high = render.roll_to_stream(make_roll([(72, 0, 4), (67, 4, 8)], 16), SPEC, 120)
    assert len(high.parts) == 1
    assert high.parts[0].recurse().getElementsByClass("Clef").first().sign == "G"
    low = render.roll_to_stream(make_roll([(40, 0, 4), (36, 4, 8)], 16), SPEC, 120)
    assert len(low.parts) == 1
    assert low.parts[0].recurse().getElementsByClass("Clef").first().sign == "F"


def test_stream_bar_window_numbers_measures_and_cuts_notes(known_roll):
    score = render.roll_to_stream(known_roll, SPEC, 120, bars=(2, 2))
    numbers = {m.number for p in score.parts for m in p.getElementsByClass("Measure")}
    assert numbers == {2}
    # bar 2 holds the second half of A4 (cut at the window's edge) and G4 at 1/4 quarter
    assert stream_notes(score) == [(67, 0.25, 1.25), (69, 0.0, 1.0)]


def test_overlapping_notes_go_to_separate_voices():
    # C5 whole note under a moving line: both must survive with their own durations
    notes = [(72, 0, 16), (76, 0, 4), (79, 4, 8), (77, 8, 16)]
    score = render.roll_to_stream(make_roll(notes, 16), SPEC, 120)
    assert stream_notes(score) == notes_in_quarters(notes)
    assert len(score.parts[0].getElementsByClass("Measure").first().voices) == 2


# ---------------------------------------------------------------------------------------------
# MusicXML


def test_musicxml_parses_back(known_roll, tmp_path):
    from music21 import converter

    path = render.write_musicxml(known_roll, tmp_path / "known.musicxml", SPEC, tempo_bpm=90)
    parsed = converter.parse(str(path))
    assert stream_notes(parsed) == notes_in_quarters(KNOWN_NOTES)
    mm = parsed.recurse().getElementsByClass("MetronomeMark").first()
    assert mm.number == 90


def test_write_musicxml_refuses_to_overwrite(known_roll, tmp_path):
    path = tmp_path / "x.musicxml"
    path.write_text("keep me")
    with pytest.raises(OutputExistsError, match="force"):
        render.write_musicxml(known_roll, path, SPEC)
    assert path.read_text() == "keep me"
    render.write_musicxml(known_roll, path, SPEC, force=True)
    assert path.read_text() != "keep me"


# ---------------------------------------------------------------------------------------------
# SVG (verovio)


def _count_class(svg, cls):
    root = ET.fromstring(svg.encode("utf-8"))
    return sum(1 for el in root.iter() if cls in (el.get("class") or "").split())


def test_comparison_svg_is_xml_with_expected_noteheads(known_roll):
    lower = make_roll([(60, 0, 16), (65, 16, 20), (69, 16, 20)], 32)  # whole note; quarter chord
    svg = render.comparison_svg(known_roll, lower, SPEC, bars=(1, 2), labels=("Upper", "Lower"))
    assert svg.lstrip().startswith("<")
    assert _count_class(svg, "note") == KNOWN_HEADS + 3
    assert "Upper" in svg and "Lower" in svg
    # upper has two staves (treble + bass), lower one (all its notes fit the treble): 3 per measure
    assert _count_class(svg, "measure") == 2
    assert _count_class(svg, "staff") == 3 * 2


def test_comparison_svg_window_selects_bars():
    upper = make_roll([(72, s, s + 4) for s in range(0, 128, 4)], 128)  # quarter notes, 8 bars
    lower = make_roll([(60, s, s + 16) for s in range(0, 128, 16)], 128)  # whole notes
    svg = render.comparison_svg(upper, lower, SPEC, bars=(4, 8))
    assert _count_class(svg, "measure") == 5
    assert _count_class(svg, "note") == 5 * 4 + 5


def test_save_svg_refuses_to_overwrite(tmp_path):
    path = tmp_path / "fig.svg"
    svg = render.stream_to_svg(render.roll_to_stream(make_roll([(60, 0, 4)], 16), SPEC, 120))
    assert render.save_svg(svg, path) == [path]
    ET.parse(path)
    with pytest.raises(OutputExistsError):
        render.save_svg(svg, path)
    render.save_svg(svg, path, force=True)


# ---------------------------------------------------------------------------------------------
# plots


def test_plot_overlay_colours(known_roll):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    query = make_roll([(60, 0, 8), (64, 0, 8)], 16)
    output = make_roll([(60, 0, 8), (67, 8, 16)], 16)
    ax = render.plot_overlay(query, output, SPEC)
    img = np.asarray(ax.images[0].get_array())
    k = lambda p: p - SPEC.min_pitch  # noqa: E731  (row of the image = pitch index, origin lower)
    assert np.allclose(img[k(60), 3], to_rgb(render.OVERLAY_COLORS["both"]))
    assert np.allclose(img[k(64), 3], to_rgb(render.OVERLAY_COLORS["query only"]))
    assert np.allclose(img[k(67), 12], to_rgb(render.OVERLAY_COLORS["output only"]))
    assert np.allclose(img[k(67), 3], 1.0)  # silent: white
    assert len(ax.get_legend().get_texts()) == 3
    ax2 = render.plot_roll(known_roll, SPEC, title="known")
    assert ax2.get_title() == "known"
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# audio (built-in synthesizer, so results do not depend on what is installed)

SR = 22050


def expected_length(n_steps, tempo_bpm, sr=SR):
    seconds = n_steps * 60.0 / tempo_bpm / SPEC.steps_per_quarter
    return int(round(seconds * sr)) + int(round(render.BUILTIN_RELEASE_S * sr))


def test_synth_a4_peaks_at_440_hz():
    roll = make_roll([(69, 0, 16)], 16)  # one A4 lasting a 4/4 bar: 2 s at 120 bpm
    wave = render.synthesize(roll, SPEC, tempo_bpm=120, sample_rate=SR, engine="builtin")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size == expected_length(16, 120)
    assert 0.5 < np.abs(wave).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    freqs = np.fft.rfftfreq(wave.size, 1.0 / SR)
    bin_hz = freqs[1]
    assert abs(freqs[np.argmax(spectrum)] - 440.0) <= bin_hz
    # no click: the waveform starts and ends at zero
    assert abs(wave[0]) < 1e-3 and abs(wave[-1]) < 1e-3


def test_synth_silence_is_silent():
    wave = render.synthesize(np.zeros((24, SPEC.n_columns), np.uint8), SPEC, 90, SR, engine="builtin")
    assert wave.size == expected_length(24, 90)
    assert not np.any(wave)


def _onsets(wave, sr=SR, win_s=0.005):
    """Attacks in a waveform: rises of the RMS envelope above 80% of its maximum, each after the
    envelope fell below 40% (hysteresis, so the ripple of a held note is not counted)."""
    w = int(win_s * sr)
    env = np.sqrt(np.mean(wave[: wave.size // w * w].reshape(-1, w).astype(float) ** 2, axis=1))
    env = env / env.max()
    count, armed = 0, True
    for x in env:
        if armed and x > 0.8:
            count, armed = count + 1, False
        elif x < 0.4:
            armed = True
    return count


def test_repeated_articulations_are_separate_onsets():
    held = make_roll([(69, 0, 16)], 16)
    repeated = make_roll([(69, 0, 4), (69, 4, 8), (69, 8, 12), (69, 12, 16)], 16)
    assert (held[:, :N] == repeated[:, :N]).all()  # same play plane: only articulation differs
    assert _onsets(render.synthesize(held, SPEC, 120, SR, engine="builtin")) == 1
    assert _onsets(render.synthesize(repeated, SPEC, 120, SR, engine="builtin")) == 4


def test_write_wav_round_trip_and_refusal(tmp_path):
    from scipy.io import wavfile

    roll = make_roll([(60, 0, 8), (64, 0, 8), (67, 8, 16)], 16)
    path = render.write_wav(roll, tmp_path / "a.wav", SPEC, tempo_bpm=120, sample_rate=SR, engine="builtin")
    rate, data = wavfile.read(path)
    assert rate == SR and data.dtype == np.int16 and data.ndim == 1
    assert data.size == expected_length(16, 120)
    wave = render.synthesize(roll, SPEC, 120, SR, engine="builtin")
    assert np.max(np.abs(data / 32767.0 - wave)) < 1e-4
    with pytest.raises(OutputExistsError):
        render.write_wav(roll, path, SPEC, engine="builtin")
    render.write_wav(roll, path, SPEC, force=True, engine="builtin")


def test_audio_player_and_auto_engine():
    roll = make_roll([(60, 0, 4)], 16)
    player = render.audio(roll, SPEC, tempo_bpm=120, sample_rate=SR)
    assert type(player).__name__ == "Audio"
    assert render.synthesis_engine() in ("soundfont", "builtin", "fluidsynth")
    wave = render.synthesize(roll, SPEC, 120, SR)  # auto: whichever engine this machine has
    assert wave.dtype == np.float32 and np.any(wave)


def test_piece_is_accepted_with_its_tempo():
    from qbdi_utils.pianoroll import Piece

    piece = Piece(roll=make_roll([(69, 0, 16)], 16), spec=SPEC, tempo_map=[(0, 60.0)])
    wave = render.synthesize(piece, sample_rate=SR, engine="builtin")
    assert wave.size == expected_length(16, 60)
    score = render.roll_to_stream(piece)
    assert score.recurse().getElementsByClass("MetronomeMark").first().number == 60


def test_key_estimate_and_spelling():
    d_major = [(62, 0, 4), (64, 4, 8), (66, 8, 12), (67, 12, 16), (69, 16, 24), (71, 24, 28),
               (73, 28, 32), (74, 32, 40), (62, 32, 40), (66, 32, 40)]
    key = harmony.estimate_key(make_roll(d_major, 40), SPEC)  # the estimator render uses
    assert (key.tonic, key.mode, key.sharps) == (2, "major", 2)
    score = render.roll_to_stream(make_roll(d_major, 40), SPEC, 120)
    assert score.recurse().getElementsByClass("KeySignature").first().sharps == 2
    names = {p.name for p in score.pitches}
    assert {"F#", "C#"} <= names and not any("-" in n for n in names)  # sharps, no flats
    b_flat = [(p + 8, s, e) for p, s, e in d_major]  # Bb major: two flats, black keys as flats
    assert harmony.estimate_key(make_roll(b_flat, 40), SPEC).sharps == -2
    score = render.roll_to_stream(make_roll(b_flat, 40), SPEC, 120)
    names = {p.name for p in score.pitches}
    assert {"B-", "E-"} <= names and not any("#" in n for n in names)
    none = render.roll_to_stream(make_roll(b_flat, 40), SPEC, 120, key_sharps=None)
    assert none.recurse().getElementsByClass("KeySignature").first() is None


def test_fluidsynth_engine_when_installed():
    """Runs only where pyfluidsynth and a GM soundfont exist; elsewhere 'fluidsynth' must refuse."""
    from qbdi_utils.errors import OptionError

    roll = make_roll([(69, 0, 16)], 16)
    import sys

    if not sys.modules["qbdi_utils.render.audio"]._fluidsynth_available():
        with pytest.raises(OptionError, match="builtin"):
            render.synthesize(roll, SPEC, 120, SR, engine="fluidsynth")
        return
    wave = render.synthesize(roll, SPEC, 120, SR, engine="fluidsynth")
    assert wave.dtype == np.float32 and np.abs(wave).max() > 0.5
    assert wave.size == int(round(2.0 * SR)) + SR  # 2 s of note + 1 s tail
    silent = render.synthesize(np.zeros_like(roll), SPEC, 120, SR, engine="fluidsynth")
    assert not np.any(silent)


def test_frames_are_accepted_as_rolls(known_roll):
    frames = known_roll.reshape(-1, SPEC.frame_size)  # (2, 2496)
    assert render.roll_notes(frames, SPEC).tolist() == render.roll_notes(known_roll, SPEC).tolist()


def test_user_errors_are_qbdi_errors(known_roll):
    from qbdi_utils.errors import OptionError

    with pytest.raises(OptionError, match="only 2 bars"):
        render.roll_to_stream(known_roll, SPEC, 120, bars=(3, 4))
    with pytest.raises(OptionError, match="tempo"):
        render.synthesize(known_roll, SPEC, tempo_bpm=0)



def test_wrong_shape_is_a_callers_value_error():
    # a wrong array shape is the caller's mistake (ValueError), the same in every module
    bad = np.zeros((16, 100), np.uint8)
    for call in (lambda: render.roll_to_stream(bad, SPEC), lambda: render.roll_notes(bad, SPEC),
                 lambda: render.synthesize(bad, SPEC, engine="builtin"), lambda: render.plot_roll(bad, SPEC)):
        with pytest.raises(ValueError, match="shape"):
            call()


def test_comparison_svg_is_byte_identical_across_calls(known_roll):
    # verovio draws random element ids unless seeded; figures must not churn on every re-run.
    first = render.comparison_svg(known_roll, known_roll, SPEC, bars=(1, 2))
    second = render.comparison_svg(known_roll, known_roll, SPEC, bars=(1, 2))
    assert first == second


def test_musicxml_is_byte_identical_between_runs(known_roll, tmp_path):
    # music21 draws a random id per part and stamps today's date; the files must not churn
    first = render.write_musicxml(known_roll, tmp_path / "a.musicxml", SPEC, tempo_bpm=90)
    second = render.write_musicxml(known_roll, tmp_path / "b.musicxml", SPEC, tempo_bpm=90, name="a")
    assert first.read_bytes() == second.read_bytes()
    root = ET.parse(first).getroot()
    assert root.find(".//encoding-date") is None
    listed = [el.get("id") for el in root.iter("score-part")]
    used = [el.get("id") for el in root.iter("part")]
    assert listed == used == [f"P{i + 1}" for i in range(len(listed))] and listed


def test_musicxml_of_two_rolls_numbers_every_part(known_roll):
    # a comparison score has the staves of both rolls: every part keeps its own, distinct id
    from music21 import stream

    score = stream.Score()
    for r in (known_roll, make_roll([(72, 0, 16)], 32)):
        for part in render.roll_to_stream(r, SPEC, 120).parts:
            score.insert(0, part)
    root = ET.fromstring(render.to_musicxml(score))
    ids = [el.get("id") for el in root.iter("part")]
    assert ids == [f"P{i + 1}" for i in range(len(ids))] and len(ids) >= 2


# ---------------------------------------------------------------------------------------------
# Fig. 1 and the package surface


def test_system_diagram_has_the_labelled_boxes_and_arrows():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = render.plot_system_diagram()
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(boxes) == 6 and len(arrows) == 6
    titles = {t.get_text(): t for t in ax.texts if t.get_fontweight() == "bold"}
    assert set(titles) == {"query bar", "Encoder", "Noisy channel", "Decoder", "output bar", "Bit allocation"}
    # each title sits inside its own box; the chain reads left to right, bit allocation above the channel
    box_of = {}
    for name, t in titles.items():
        x, y = t.get_position()
        inside = [b for b in boxes if b.get_x() <= x <= b.get_x() + b.get_width()
                  and b.get_y() <= y <= b.get_y() + b.get_height()]
        assert len(inside) == 1, name
        box_of[name] = inside[0]
    chain = ["query bar", "Encoder", "Noisy channel", "Decoder", "output bar"]
    lefts = [box_of[n].get_x() for n in chain]
    assert lefts == sorted(lefts)
    assert box_of["Bit allocation"].get_y() > box_of["Noisy channel"].get_y() + box_of["Noisy channel"].get_height()
    labels = {t.get_text() for t in ax.texts}
    assert {"$z_e$", "$z_d$", "$R_j$ bits"} <= labels
    # the inset's dashed line is the water level: sum of 1/2 log2(var / theta) over var > theta = budget
    (inset,) = ax.child_axes
    theta = [ln.get_ydata()[0] for ln in inset.get_lines() if ln.get_linestyle() == "--"][0]
    var = np.asarray(render.DIAGRAM_VARIANCES)
    bits = np.sum(0.5 * np.log2(np.maximum(var / theta, 1.0)))
    assert bits == pytest.approx(render.DIAGRAM_BITS, abs=1e-9)
    # drawn into a given Axes, the diagram returns that Axes' figure
    fig2, ax2 = plt.subplots()
    assert render.plot_system_diagram(ax2) is fig2 and len(ax2.patches) == 12
    plt.close("all")


def test_every_public_name_is_reexported():
    from qbdi_utils.render import _common, notation, plots

    audio_module = __import__("sys").modules["qbdi_utils.render.audio"]
    for module in (notation, plots, audio_module, _common):
        for name in module.__all__:
            assert name in render.__all__, name
            assert getattr(render, name) is getattr(module, name), name


# ---------------------------------------------------------------------------------------------
# writers: names say what they hold; atomic (qbdi_utils.files), no temporaries left behind


@pytest.mark.parametrize("name, writer", [
    ("x.mp3", "wav"), ("x.WAVE", "wav"), ("x.mxl", "musicxml"), ("x.mid", "musicxml"), ("x.png", "svg"),
])
def test_writers_refuse_a_name_for_another_format(tmp_path, name, writer):
    from qbdi_utils.errors import OptionError

    roll = make_roll([(60, 0, 4)], 16)
    call = {
        "wav": lambda p: render.write_wav(roll, p, SPEC, engine="builtin"),
        "musicxml": lambda p: render.write_musicxml(roll, p, SPEC),
        "svg": lambda p: render.save_svg("<svg/>", p),
    }[writer]
    with pytest.raises(OptionError, match=r"only; give the file a \."):
        call(tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_writers_accept_suffixes_in_any_case(tmp_path):
    roll = make_roll([(60, 0, 4)], 16)
    assert render.write_wav(roll, tmp_path / "A.WAV", SPEC, engine="builtin").read_bytes()[:4] == b"RIFF"
    assert b"score-partwise" in render.write_musicxml(roll, tmp_path / "B.XML", SPEC).read_bytes()


def test_writers_fail_in_one_line_and_leave_nothing(tmp_path):
    from qbdi_utils.errors import FileSystemError

    roll = make_roll([(60, 0, 4)], 16)
    blocker = tmp_path / "f"
    blocker.write_text("keep")
    for call in (lambda d: render.write_wav(roll, d / "a.wav", SPEC, engine="builtin"),
                 lambda d: render.write_musicxml(roll, d / "a.musicxml", SPEC),
                 lambda d: render.save_svg("<svg/>", d / "a.svg")):
        with pytest.raises(FileSystemError, match=f"{blocker} is a file, not a folder"):
            call(blocker / "sub")
    assert os.listdir(tmp_path) == ["f"] and blocker.read_text() == "keep"


def test_writers_leave_only_their_file_and_equal_bytes_to_the_in_memory_form(tmp_path):
    """What lands on disk is exactly the bytes function's output (no .part or hidden temporaries)."""
    roll = make_roll([(60, 0, 8), (64, 4, 12)], 16)
    wav = render.write_wav(roll, tmp_path / "a.wav", SPEC, tempo_bpm=100, sample_rate=SR, engine="builtin")
    xml = render.write_musicxml(roll, tmp_path / "a.musicxml", SPEC, tempo_bpm=100, name="a")
    svg = render.save_svg("<svg/>\n", tmp_path / "a.svg")
    assert sorted(os.listdir(tmp_path)) == ["a.musicxml", "a.svg", "a.wav"]
    assert wav.read_bytes() == render.wav_bytes(roll, SPEC, 100, SR, engine="builtin")
    assert xml.read_bytes() == render.musicxml_bytes(roll, SPEC, 100, name="a")
    assert svg == [tmp_path / "a.svg"] and (tmp_path / "a.svg").read_text() == "<svg/>\n"



# --- the SoundFont engine behind render.synthesize (issue 14) -------------------------------------
import sys  # noqa: E402
import warnings  # noqa: E402

from qbdi_utils import soundfont  # noqa: E402
from qbdi_utils.errors import OptionError  # noqa: E402


def _sf_roll(notes, n_steps):
    roll = np.zeros((n_steps, SPEC.n_columns), np.uint8)
    for p, s, e in notes:
        roll[s:e, p - SPEC.min_pitch] = 1
        roll[s, SPEC.n_pitches + p - SPEC.min_pitch] = 1
    return roll


@pytest.mark.skipif(not soundfont.available(), reason=str(soundfont.unavailable_reason()))
def test_auto_uses_the_soundfont_a4_peaks_at_440_hz():
    assert render.synthesis_engine() == "soundfont"
    wave = render.synthesize(_sf_roll([(69, 0, 16)], 16), SPEC, 120, SR, program=0)  # 2 s of A4
    assert wave.size == 2 * SR + SR and np.abs(wave).max() == pytest.approx(0.9, abs=1e-3)
    seg = wave[int(0.1 * SR):int(1.9 * SR)].astype(np.float64)
    mag = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    assert abs(np.fft.rfftfreq(seg.size, 1 / SR)[mag.argmax()] - 440.0) < 2.0
    again = render.synthesize(_sf_roll([(69, 0, 16)], 16), SPEC, 120, SR, program=0)
    assert again.tobytes() == wave.tobytes()


def test_fallback_to_builtin_is_used_and_reported(monkeypatch):
    monkeypatch.setattr(soundfont, "find_soundfont", lambda: None)  # no SF2 file anywhere
    monkeypatch.setattr(sys.modules["qbdi_utils.render.audio"], "_fluidsynth_available", lambda: False)
    assert render.synthesis_engine() == "builtin"
    roll = _sf_roll([(69, 0, 16)], 16)
    with pytest.warns(UserWarning, match="SoundFont"):
        wave = render.synthesize(roll, SPEC, 120, SR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builtin = render.synthesize(roll, SPEC, 120, SR, engine="builtin")
    assert wave.tobytes() == builtin.tobytes()
    with pytest.raises(OptionError, match="SoundFont"):
        render.synthesize(roll, SPEC, 120, SR, engine="soundfont")


def test_save_figure_writes_what_savefig_writes_and_leaves_the_old_file_on_failure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qbdi_utils.errors import FileSystemError

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    direct = tmp_path / "direct.png"
    fig.savefig(direct, dpi=50)
    out = render.save_figure(fig, tmp_path / "sub" / "fig.png", dpi=50)
    assert out.read_bytes() == direct.read_bytes()
    render.save_figure(fig, out, dpi=60)  # figures are regenerated: replaced without asking
    assert out.read_bytes() != direct.read_bytes()
    before = out.read_bytes()

    class Broken:
        def savefig(self, path, **kw):
            with open(path, "wb") as f:
                f.write(b"\x89PNG half")
            raise OSError(28, "No space left on device")

    with pytest.raises((FileSystemError, OSError)):
        render.save_figure(Broken(), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["fig.png"]
    plt.close(fig)


def test_musicxml_of_a_piece_keeps_its_meters_and_pickup():
    """A Piece in 3/4 with a one-beat pickup and a change to 4/4 is notated in its own bars: the
    time signatures where the meters change, a short first measure, and every other measure as long
    as its meter (checked by reading the MusicXML back with music21)."""
    from music21 import converter, meter as m21meter

    from qbdi_utils.pianoroll import Piece, notes_to_roll

    spec = RollSpec()
    # pickup of 4 steps (one quarter), then 4 bars of 3/4 (12 steps) and 2 bars of 4/4 (16 steps)
    T = 4 + 4 * 12 + 2 * 16
    notes = [(60 + (s // 4) % 12, s, s + 4) for s in range(0, T, 4)]  # a quarter note on every beat
    roll = notes_to_roll(notes, T, spec)
    sigs = [(0, 1, 4), (4, 3, 4), (52, 4, 4)]  # the pickup marked the usual way: a short first signature
    piece = Piece(roll=roll, spec=spec, name="meters", time_signatures=sigs, bar_offset_steps=4)
    score = converter.parse(render.musicxml_bytes(piece), format="musicxml")
    measures = list(score.parts[0].getElementsByClass("Measure"))
    assert len(measures) == 7  # pickup + 4 + 2
    lengths = [float(mm.duration.quarterLength) for mm in measures]
    assert lengths == [1.0, 3.0, 3.0, 3.0, 3.0, 4.0, 4.0]
    ts = [(i, t.ratioString) for i, mm in enumerate(measures) for t in mm.getElementsByClass(m21meter.TimeSignature)]
    assert ts[-1] == (5, "4/4") and ("3/4" in dict(ts).values())
    assert sum(len(mm.recurse().notes) for mm in measures) == len(notes)


def test_musicxml_of_a_four_four_piece_is_unchanged_by_meters():
    """4/4 from step 0 takes the paper's frames: the same bytes as the bare roll."""
    from qbdi_utils.pianoroll import Piece, notes_to_roll

    spec = RollSpec()
    roll = notes_to_roll([(60, 0, 8), (64, 8, 16), (67, 16, 40)], 48, spec)
    piece = Piece(roll=roll, spec=spec, name="x", time_signatures=[(0, 4, 4)])
    assert render.musicxml_bytes(piece) == render.musicxml_bytes(roll, spec)


# ---------------------------------------------------------------------------------------------
# Triplets on a grid of 12 steps per quarter (16ths and triplets)

SPEC12 = RollSpec(steps_per_quarter=12, steps_per_frame=48)


def parsed_elements(data: bytes):
    """(measure number, offset, quarterLength, (actual, normal) of the tuplet or None, midi pitches, tie)
    of every note and rest of a MusicXML file read back by music21, in order."""
    from fractions import Fraction

    from music21 import converter

    score = converter.parse(data, format="musicxml")
    out = []
    for el in score.parts[0].recurse().notesAndRests:
        tup = el.duration.tuplets
        out.append((el.getContextByClass("Measure").number, Fraction(el.offset), Fraction(el.quarterLength),
                    (tup[0].numberNotesActual, tup[0].numberNotesNormal) if tup else None,
                    tuple(p.midi for p in el.pitches), el.tie.type if el.tie is not None else None))
    return score, out


def test_musicxml_writes_triplets_on_a_twelve_step_grid():
    """Triplet eighths (4 steps) and quarter-note triplets (8 steps) come back from the MusicXML as
    single notes of 1/3 and 2/3 of a quarter under a 3:2 tuplet, at their onsets, untied; 16ths in
    the same bar stay plain 16ths; every measure holds four quarters."""
    from fractions import Fraction as F

    from qbdi_utils.pianoroll import notes_to_roll

    notes = [(72, 0, 4), (74, 4, 8), (76, 8, 12),  # beat 1: triplet eighths
             (72, 12, 15), (74, 15, 18), (76, 18, 21), (77, 21, 24),  # beat 2: 16ths
             (79, 24, 32), (77, 32, 40), (76, 40, 48),  # beats 3-4: quarter-note triplets
             (72, 48, 52), (76, 56, 60), (74, 60, 72),  # bar 2: triplet eighth, triplet rest, eighth, quarter
             (72, 72, 96)]
    roll = notes_to_roll(notes, 96, SPEC12)
    score, els = parsed_elements(render.musicxml_bytes(roll, SPEC12, 120, key_sharps=None))
    sounding = [e for e in els if e[4]]
    assert [(m, off, ql) for m, off, ql, *_ in sounding] == [
        (1 + s // 48, F(s % 48, 12), F(e - s, 12)) for _, s, e in notes]
    assert [e[4] for e in sounding] == [(p,) for p, _, _ in notes]
    assert all(e[5] is None for e in sounding)  # no note is cut into tied fragments
    third, two_thirds = F(1, 3), F(2, 3)
    for m, off, ql, tup, pitches, _ in els:
        if ql in (third, two_thirds):
            assert tup == (3, 2), (m, off, ql)
        else:
            assert tup is None, (m, off, ql)
    assert [ql for m, _, ql, _, p, _ in els if m == 2 and not p] == [third]  # the rest inside the triplet
    assert stream_notes(score) == notes_in_quarters(notes, SPEC12)
    for mm in score.parts[0].getElementsByClass("Measure"):
        assert sum(F(el.duration.quarterLength) for el in mm.notesAndRests) == 4


def test_musicxml_of_twelve_steps_keeps_dotted_and_16th_rhythms():
    """A dotted eighth + 16th, 16ths and eighths (all on the duple grid) are written without tuplets,
    and the file is the very file of the same rhythm on the 16th-note grid (4 steps per quarter)."""
    from qbdi_utils.pianoroll import notes_to_roll

    notes4 = [(72, 0, 3), (74, 3, 4), (76, 4, 5), (77, 5, 6), (79, 6, 8), (77, 8, 14), (76, 14, 16),
              (74, 16, 17), (72, 17, 20), (71, 20, 32)]
    notes12 = [(p, 3 * s, 3 * e) for p, s, e in notes4]
    data12 = render.musicxml_bytes(notes_to_roll(notes12, 96, SPEC12), SPEC12, 120, key_sharps=None)
    data4 = render.musicxml_bytes(notes_to_roll(notes4, 32, SPEC), SPEC, 120, key_sharps=None)
    assert data12 == data4
    _, els = parsed_elements(data12)
    assert all(tup is None for *_, tup, _, _ in els)
    assert [float(ql) for _, _, ql, _, p, _ in els if p][:6] == [0.75, 0.25, 0.25, 0.25, 0.5, 1.5]


def test_musicxml_triplets_in_three_four_and_six_eight_fill_their_measures():
    """A Piece in 3/4 and one in 6/8 on the 12-step grid, with triplets, are notated in bars of their
    meter: each measure lasts three quarters, holds the time signature's number of beats (3 and 2),
    and the triplets come back as 3:2 notes at their onsets."""
    from fractions import Fraction as F

    from qbdi_utils.pianoroll import Piece, notes_to_roll

    notes = [(72, 0, 4), (74, 4, 8), (76, 8, 12), (77, 12, 20), (76, 20, 28), (74, 28, 36),  # 3/4: 8th + quarter triplets
             (72, 36, 42), (74, 42, 44), (76, 44, 46), (77, 46, 48), (79, 48, 72)]  # eighth + triplet 16ths, half
    for num, den, beats in ((3, 4, 3), (6, 8, 2)):
        roll = notes_to_roll(notes, 72, SPEC12)
        piece = Piece(roll=roll, spec=SPEC12, name="t", time_signatures=[(0, num, den)])
        score, els = parsed_elements(render.musicxml_bytes(piece, key_sharps=None))
        measures = list(score.parts[0].getElementsByClass("Measure"))
        assert len(measures) == 2
        ts = measures[0].timeSignature
        assert ts.ratioString == f"{num}/{den}" and measures[1].timeSignature is None
        for mm in measures:
            assert sum(F(el.duration.quarterLength) for el in mm.notesAndRests) == 3
            assert mm.duration.quarterLength / ts.beatDuration.quarterLength == beats == ts.beatCount
        sounding = [e for e in els if e[4]][:10]  # the half note at the end may be two tied quarters
        assert [(m, off, ql) for m, off, ql, *_ in sounding] == [
            (1 + s // 36, F(s % 36, 12), F(e - s, 12)) for _, s, e in notes[:10]]
        assert [e[3] for e in sounding] == [(3, 2)] * 6 + [None] + [(3, 2)] * 3
        assert stream_notes(score) == notes_in_quarters(notes, SPEC12)


def test_musicxml_twelve_steps_half_note_triplets_sextuplets_and_ornaments():
    """Half-note triplets fill a 4/4 bar as three 4/3-quarter notes in one 3:2 bracket; a beat of six
    2-step notes is two brackets of three triplet 16ths; an eighth then three triplet 16ths keep the
    eighth plain and bracket the 16ths; a dotted eighth then 2 + 1 steps (an ornament off the grid)
    keeps the dotted eighth plain. Brackets counted in the MusicXML (<tuplet type="start">) per measure."""
    import re
    from fractions import Fraction as F

    from qbdi_utils.pianoroll import notes_to_roll

    notes = [(72, 0, 16), (74, 16, 32), (76, 32, 48),  # bar 1: half-note triplets
             *[(72 + i, 48 + 2 * i, 50 + 2 * i) for i in range(6)],  # bar 2 beat 1: sextuplet
             (72, 60, 66), (74, 66, 68), (76, 68, 70), (77, 70, 72),  # beat 2: eighth + triplet 16ths
             (79, 72, 81), (77, 81, 83), (79, 83, 84),  # beat 3: dotted eighth + 2 + 1 steps
             (72, 84, 96)]  # beat 4: quarter
    data = render.musicxml_bytes(notes_to_roll(notes, 96, SPEC12), SPEC12, 120, key_sharps=None)
    score, els = parsed_elements(data)
    sounding = [e for e in els if e[4]]
    assert [(m, off, ql) for m, off, ql, *_ in sounding] == [
        (1 + s // 48, F(s % 48, 12), F(e - s, 12)) for _, s, e in notes]
    assert all(e[5] is None for e in sounding)
    assert [e[3] is not None for e in sounding] == [True] * 3 + [True] * 6 + [False] + [True] * 3 + [False] \
        + [True] * 2 + [False]
    measures = re.split(rb"<measure ", data)[1:]
    assert [len(re.findall(rb"<tuplet [^>]*type=\"start\"", m)) for m in measures] == [1, 4]
    assert stream_notes(score) == notes_in_quarters(notes, SPEC12)
