"""SoundFont rendering: pitches land where equal temperament puts them, bytes repeat, fallbacks report."""

from __future__ import annotations

import io
import platform

import numpy as np
import pytest

from qbdi_utils import soundfont
from qbdi_utils.errors import OptionError

# pyproject.toml installs midirenderer on these machines (its wheels); there it must render, elsewhere the
# built-in synthesizer is the documented fallback
WHEEL_MACHINES = ("x86_64", "AMD64", "arm64")
needs_engine = pytest.mark.skipif(platform.machine() not in WHEEL_MACHINES,
                                  reason=f"no midirenderer wheel for {platform.machine()}")

SR = 22050


def _hz(midi_pitch: int) -> float:
    return 440.0 * 2.0 ** ((midi_pitch - 69) / 12.0)


def _spectrum(x, sr, t0=0.1, t1=0.9):
    seg = np.asarray(x[int(t0 * sr):int(t1 * sr)], np.float64)
    mag = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    return np.fft.rfftfreq(len(seg), 1.0 / sr), mag


def _peak_near(freqs, mag, f, tol_hz=4.0):
    band = (freqs > f - tol_hz) & (freqs < f + tol_hz)
    return float(mag[band].max())


@needs_engine
def test_a4_piano_has_its_strongest_peak_at_440_hz():
    x = soundfont.render_notes([[69, 0.0, 1.0]], sample_rate=SR, program=0)
    assert x.dtype == np.float32 and x.shape == (int(round(2.0 * SR)),)  # 1 s note + 1 s tail
    freqs, mag = _spectrum(x, SR)
    assert abs(freqs[np.argmax(mag)] - 440.0) < 2.5
    assert 0.0 < np.abs(x).max() <= 1.0


@needs_engine
def test_c_major_triad_shows_its_three_fundamentals_and_not_their_neighbours():
    x = soundfont.render_notes([[60, 0.0, 1.0], [64, 0.0, 1.0], [67, 0.0, 1.0]], sample_rate=SR)
    freqs, mag = _spectrum(x, SR)
    top = mag.max()
    for p in (60, 64, 67):  # C4, E4, G4 fundamentals: each a strong peak
        assert _peak_near(freqs, mag, _hz(p)) > 0.2 * top, p
    for p in (61, 63, 66):  # C#4, D#4, F#4: not played, no harmonic of C/E/G lands there
        assert _peak_near(freqs, mag, _hz(p), 3.0) < 0.1 * top, p


@needs_engine
def test_same_notes_give_same_bytes_and_the_program_changes_the_sound():
    notes = [[60, 0.0, 0.5], [64, 0.5, 1.0], [67, 1.0, 1.5], [67, 1.5, 2.0]]
    a = soundfont.render_notes(notes, sample_rate=SR, program=0)
    b = soundfont.render_notes(notes, sample_rate=SR, program=0)
    organ = soundfont.render_notes(notes, sample_rate=SR, program=19)
    assert a.tobytes() == b.tobytes()
    assert organ.shape == a.shape and not np.allclose(organ, a, atol=1e-3)


@needs_engine
def test_a_note_sounds_when_it_is_played_and_fades_after_its_release():
    x = soundfont.render_notes([[69, 1.0, 1.5]], sample_rate=SR, tail_s=0.5, n_samples=3 * SR)
    assert x.shape == (3 * SR,)
    rms = lambda a, b: float(np.sqrt(np.mean(x[int(a * SR):int(b * SR)] ** 2)))  # noqa: E731
    assert rms(0.0, 0.95) < 1e-4          # silent before the onset
    assert rms(1.05, 1.45) > 100 * max(rms(0.0, 0.95), 1e-7)
    assert rms(2.5, 3.0) < 0.05 * rms(1.05, 1.45)  # released at 1.5 s, faded a second later


def test_pyproject_installs_the_synthesizer_exactly_where_it_has_wheels():
    import tomllib

    from packaging.requirements import Requirement

    from qbdi_utils import paths

    deps = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if d.startswith("midirenderer"))
    for machine in WHEEL_MACHINES:
        assert req.marker.evaluate({"platform_machine": machine})
    for machine in ("aarch64", "armv7l", "ppc64le", "i686"):
        assert not req.marker.evaluate({"platform_machine": machine})
    assert any(d.startswith("pretty_midi") for d in deps)  # the bundled SoundFont is a runtime need


def test_midi_bytes_carry_the_program_and_millisecond_times():
    import mido

    data = soundfont.notes_to_midi([[60, 0.0, 0.25], [60, 0.25, 0.5], [72, 0.1, 0.3]], program=19,
                                   velocity=90, end_s=2.0)
    mid = mido.MidiFile(file=io.BytesIO(data))
    now, seen = 0, []
    for msg in mid.tracks[0]:
        now += msg.time
        if msg.type in ("note_on", "note_off", "program_change"):
            seen.append((now, msg.type, getattr(msg, "note", None), getattr(msg, "program", None)))
    assert seen[0] == (0, "program_change", None, 19)
    # 60 re-struck at 250 ms: its note_off comes before the new note_on
    assert seen[1:] == [(0, "note_on", 60, None), (100, "note_on", 72, None), (250, "note_off", 60, None),
                        (250, "note_on", 60, None), (300, "note_off", 72, None), (500, "note_off", 60, None)]
    assert now == 2000  # end_of_track at 2 s
    assert mid.length == pytest.approx(2.0)


def test_bad_program_and_velocity_are_option_errors():
    with pytest.raises(OptionError):
        soundfont.notes_to_midi([[60, 0, 1]], program=128)
    with pytest.raises(OptionError):
        soundfont.render_notes([], velocity=0)
    with pytest.raises(ValueError):
        soundfont.render_notes(np.zeros((2, 2)))


def test_no_notes_is_silence_of_the_asked_length_even_without_an_engine(monkeypatch):
    monkeypatch.setattr(soundfont, "_synth_module", lambda: None)
    x = soundfont.render_notes(np.zeros((0, 3)), sample_rate=SR, n_samples=1234)
    assert x.shape == (1234,) and not x.any()


def test_missing_synthesizer_is_reported_and_refused(monkeypatch):
    monkeypatch.setattr(soundfont, "_synth_module", lambda: None)
    assert not soundfont.available()
    assert "midirenderer" in soundfont.unavailable_reason()
    assert soundfont.engine_version() is None
    with pytest.raises(OptionError, match="midirenderer"):
        soundfont.render_notes([[69, 0, 1]])


def test_missing_soundfont_is_reported_and_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(soundfont, "_synth_module", lambda: object())
    monkeypatch.setattr(soundfont, "find_soundfont", lambda: None)
    assert "SoundFont" in soundfont.unavailable_reason()
    assert "does not exist" in soundfont.unavailable_reason(tmp_path / "nope.sf2")
    with pytest.raises(OptionError, match="SoundFont"):
        soundfont.render_notes([[69, 0, 1]])


def test_find_soundfont_prefers_the_environment_variable_and_ignores_sf3(monkeypatch, tmp_path):
    sf2 = tmp_path / "mine.sf2"
    sf2.write_bytes(b"RIFF")
    monkeypatch.setenv("QBDI_SOUNDFONT", str(sf2))
    assert soundfont.find_soundfont() == sf2
    sf3 = tmp_path / "mine.sf3"
    sf3.write_bytes(b"RIFF")
    monkeypatch.setenv("QBDI_SOUNDFONT", str(sf3))
    monkeypatch.setattr(soundfont, "SOUNDFONT_PATHS", ())
    assert soundfont.find_soundfont() == soundfont.bundled_soundfont()
