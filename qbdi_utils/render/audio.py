"""Audio of a piano roll: fluidsynth with a General MIDI soundfont when installed, else a built-in
additive synthesizer; WAV files and IPython players.

Every function takes a roll ``(T, spec.n_columns)``, frames ``(N, spec.frame_size)`` or a
:class:`~qbdi_utils.pianoroll.Piece` (whose spec and first tempo are then used). Notes are read by
:func:`qbdi_utils.render.roll_notes`: every articulation is a new attack.

scipy, IPython and pyfluidsynth are imported inside the functions that need them.

Used in: notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb, ``qbdi improvise --wav``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbdi_utils import files, limits, soundfont
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import DEFAULT_VELOCITY, TRACK_LAYOUTS, Piece, RollSpec, note_velocities, top_voice
from qbdi_utils.render._common import unpack_roll, check_suffix, roll_notes

__all__ = [
    "find_soundfont",
    "synthesize",
    "synthesize_stereo",
    "write_wav",
    "wav_bytes",
    "WAV_SUFFIXES",
    "audio",
    "synthesis_engine",
    "DEFAULT_SAMPLE_RATE",
    "WAV_FORMATS",
    "TRACK_PANS",
    "SOUNDFONT_PATHS",
    "BUILTIN_HARMONICS",
    "BUILTIN_ATTACK_S",
    "BUILTIN_DECAY_S",
    "BUILTIN_SUSTAIN",
    "BUILTIN_RELEASE_S",
    "BUILTIN_GAP_S",
]

#: Samples per second of :func:`synthesize` unless given.
DEFAULT_SAMPLE_RATE = 22050

# One home for locating a General MIDI SoundFont: qbdi_utils.soundfont (also used by fluidsynth here).
SOUNDFONT_PATHS = soundfont.SOUNDFONT_PATHS
find_soundfont = soundfont.find_soundfont


def _fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth, optional)
    except Exception:  # ImportError, or OSError when libfluidsynth is missing
        return False
    return hasattr(fluidsynth, "Synth") and find_soundfont() is not None


#: Built-in synthesizer: relative amplitudes of harmonics 1, 2, 3, 4 (fundamental strongest).
BUILTIN_HARMONICS = (1.0, 0.45, 0.22, 0.1)
#: Built-in synthesizer envelope, seconds: attack, decay, release; sustain level (of the peak).
BUILTIN_ATTACK_S, BUILTIN_DECAY_S, BUILTIN_SUSTAIN, BUILTIN_RELEASE_S = 0.006, 0.12, 0.55, 0.08
#: The key is released this long before a note's nominal end (at most a third of the note), so
#: repeated notes of the same pitch are heard as separate attacks; a re-struck key cuts the
#: previous note's release short so that it has faded out by the new attack.
BUILTIN_GAP_S = 0.02


def _builtin_synth(notes, n_samples, sr, sec_per_step, gains=None):
    out = np.zeros(n_samples, dtype=np.float64)
    a_n = max(1, int(round(BUILTIN_ATTACK_S * sr)))
    d_n = max(1, int(round(BUILTIN_DECAY_S * sr)))
    r_n = max(1, int(round(BUILTIN_RELEASE_S * sr)))
    # the next onset of the same pitch (a re-struck key cuts the previous note's release short)
    next_same = {}
    following = np.full(len(notes), -1, dtype=np.int64)
    for i in range(len(notes) - 1, -1, -1):
        p = int(notes[i][0])
        following[i] = next_same.get(p, -1)
        next_same[p] = int(notes[i][1])
    for i, (p, s, e) in enumerate(notes):
        f0 = 440.0 * 2.0 ** ((p - 69) / 12.0)
        dur = (e - s) * sec_per_step
        gate = dur - min(BUILTIN_GAP_S, dur / 3.0)
        g_n = max(2, int(round(gate * sr)))
        start = int(round(s * sec_per_step * sr))
        r_i = r_n
        if following[i] >= 0:
            r_i = max(1, min(r_n, int(round(following[i] * sec_per_step * sr)) - start - g_n))
        length = g_n + r_i
        t = np.arange(length) / sr
        # ADSR: linear attack to 1, exponential-ish (linear here) decay to sustain, linear release to 0
        env = np.full(length, BUILTIN_SUSTAIN)
        k = np.arange(length)
        env[k < a_n] = k[k < a_n] / a_n
        dec = (k >= a_n) & (k < a_n + d_n)
        env[dec] = 1.0 - (1.0 - BUILTIN_SUSTAIN) * (k[dec] - a_n) / d_n
        level_at_release = env[min(g_n, length - 1)] if g_n < length else BUILTIN_SUSTAIN
        rel = k >= g_n
        env[rel] = level_at_release * (1.0 - (k[rel] - g_n + 1) / r_i)
        env = np.clip(env, 0.0, None)
        wave = np.zeros(length)
        for h, amp in enumerate(BUILTIN_HARMONICS, start=1):
            if h * f0 < sr / 2:
                wave += amp * np.sin(2 * np.pi * h * f0 * t)
        # quieter high notes, a little louder low ones (rough equal loudness)
        wave *= env * (440.0 / f0) ** 0.15
        if gains is not None and gains[i] != 1.0:
            wave *= gains[i]
        stop = min(n_samples, start + length)
        if stop > start:
            out[start:stop] += wave[: stop - start]
    return out


def _fluidsynth_synth(notes, n_samples, sr, sec_per_step, soundfont, *, program=0, velocity=80):
    vels = np.broadcast_to(np.asarray(velocity, dtype=np.int64), (len(notes),))
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(sr))
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid == -1:
            raise RuntimeError(f"fluidsynth could not load the soundfont {soundfont}")
        synth.program_select(0, sfid, 0, int(program))
        events = []
        for (p, s, e), vel in zip(notes, vels):
            events.append((int(round(s * sec_per_step * sr)), 1, int(p), int(vel)))
            events.append((int(round(e * sec_per_step * sr)), 0, int(p), 0))
        events.sort(key=lambda ev: (ev[0], ev[1]))  # note-offs before note-ons at the same sample
        chunks, pos = [], 0
        for when, on, p, vel in events + [(n_samples, -1, 0, 0)]:
            when = min(when, n_samples)
            if when > pos:
                chunks.append(np.asarray(synth.get_samples(when - pos), dtype=np.float64))
                pos = when
            if on == 1:
                synth.noteon(0, p, vel)
            elif on == 0:
                synth.noteoff(0, p)
        stereo = np.concatenate(chunks) if chunks else np.zeros(0)
    finally:
        synth.delete()
    stereo = stereo.reshape(-1, 2)
    mono = stereo.mean(axis=1) / 32768.0
    out = np.zeros(n_samples)
    out[: min(n_samples, mono.size)] = mono[:n_samples]
    return out


ENGINES = ("auto", "soundfont", "fluidsynth", "builtin")

#: ``wav_format`` choices: name -> (samples per second, channels). "mono22" is the default.
WAV_FORMATS = {"mono22": (22050, 1), "stereo44": (44100, 2)}

#: Pan of the melody and the accompaniment track in a stereo WAV (-1 left .. +1 right; equal power).
TRACK_PANS = (-0.35, 0.35)


def _velocities(roll, notes, velocity) -> np.ndarray:
    """One velocity per note: ``velocity`` (a number or (n, 3) onsets), else a Piece's own, else 80."""
    if velocity is None:
        velocity = roll.velocities if isinstance(roll, Piece) and roll.velocities is not None else DEFAULT_VELOCITY
    return np.asarray(note_velocities([tuple(n) for n in notes], velocity), dtype=np.int64)


def _prepare(roll, spec, tempo_bpm, sample_rate, engine):
    """Checks shared by the synthesizers: (roll, spec, sr, sec_per_step, chosen engine, body samples)."""
    import warnings

    roll, spec, tempo_bpm = unpack_roll(roll, spec, tempo_bpm)
    sr = int(sample_rate)
    if sr <= 0:
        raise OptionError(f"sample_rate must be positive, got {sample_rate}")
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "soundfont" and not soundfont.available():
        raise OptionError(f"SoundFont synthesis is unavailable: {soundfont.unavailable_reason()}; "
                          "use engine='builtin'")
    if engine == "fluidsynth" and not _fluidsynth_available():
        raise OptionError("fluidsynth needs `pip install pyfluidsynth`, libfluidsynth and a GM soundfont "
                          "(set QBDI_SOUNDFONT=/path/to/file.sf2); or use engine='builtin'")
    chosen = synthesis_engine() if engine == "auto" else engine
    if engine == "auto" and chosen == "builtin":
        warnings.warn(f"SoundFont synthesis unavailable ({soundfont.unavailable_reason()}); "
                      "using the built-in synthesizer", stacklevel=3)
    sec_per_step = 60.0 / tempo_bpm / spec.steps_per_quarter
    limits.check_audio_seconds(roll.shape[0] * sec_per_step)  # before anything is allocated
    body = int(round(roll.shape[0] * sec_per_step * sr))
    return roll, spec, sr, sec_per_step, chosen, body


def _tail(chosen: str, sr: int) -> int:
    return int(round((BUILTIN_RELEASE_S if chosen == "builtin" else 1.0) * sr))


def _render(notes, vels, gains, *, sr, sec_per_step, chosen, engine, program, body) -> np.ndarray:
    """Notes through the chosen engine (falling back to the built-in one when ``engine`` is auto),
    not normalised: (n_samples,) float64, n_samples = body + the engine's tail."""
    import warnings

    n_samples = body + _tail(chosen, sr)
    if len(notes) == 0:
        return np.zeros(n_samples)
    wave = None
    try:
        if chosen == "soundfont":
            timed = np.column_stack([notes[:, 0], notes[:, 1] * sec_per_step, notes[:, 2] * sec_per_step])
            wave = soundfont.render_notes(timed, sample_rate=sr, program=program, velocity=vels,
                                          n_samples=n_samples)
        elif chosen == "fluidsynth":
            wave = _fluidsynth_synth(notes, n_samples, sr, sec_per_step, find_soundfont(), program=program,
                                     velocity=vels)
    except Exception as exc:  # a broken synthesizer or SoundFont must not take audio away
        if engine != "auto":
            raise
        warnings.warn(f"{chosen} synthesis failed ({exc}); using the built-in synthesizer", stacklevel=3)
        n_samples = body + _tail("builtin", sr)
        wave = None
    if wave is None:
        wave = _builtin_synth(notes, n_samples, sr, sec_per_step, gains)
    return np.asarray(wave, dtype=np.float64)


def _gains(vels: np.ndarray) -> np.ndarray:
    """Built-in synthesizer amplitude per note: (velocity / loudest velocity) ** 2 (the square law
    of General MIDI synthesizers, about 8 dB from velocity 80 to 127); exactly 1 for equal velocities."""
    if not len(vels):
        return np.ones(0)
    return (vels / float(vels.max())) ** 2


def _normalise(wave: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > 0:
        wave = wave * (0.9 / peak)
    return wave.astype(np.float32)


def synthesize(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
               sample_rate: int = DEFAULT_SAMPLE_RATE, *, engine: str = "auto", program: int = 0,
               velocity=None) -> np.ndarray:
    """Render a roll as a mono waveform: a General MIDI instrument from a SoundFont, else built in.

    ``engine="auto"`` uses, in order: the SoundFont engine (:mod:`qbdi_utils.soundfont`: pip-installed
    ``midirenderer`` playing pretty_midi's bundled General MIDI SoundFont TimGM6mb, or
    ``$QBDI_SOUNDFONT``), fluidsynth when ``pyfluidsynth`` and libfluidsynth are present, and the
    built-in additive synthesizer (a few harmonics :data:`BUILTIN_HARMONICS` under an ADSR envelope,
    every articulation a new attack, the key released :data:`BUILTIN_GAP_S` early, the amplitude
    growing with the square of the velocity). Falling back to the built-in synthesizer is reported
    as a warning. The result is peak-normalised to 0.9 (so only the velocities' ratios are heard).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: one of :data:`ENGINES`; a named engine that is unavailable raises OptionError.
        program: General MIDI program (0 = acoustic grand piano) for the SoundFont engines.
        velocity: 1..127 for every note, or (n, 3) (step, pitch, velocity) per onset; None: a
            Piece's ``velocities``, else :data:`qbdi_utils.pianoroll.DEFAULT_VELOCITY`.

    Returns:
        (n_samples,) float32 in [-1, 1], n_samples = round(T * seconds_per_step * sample_rate) +
        round(tail_seconds * sample_rate), where seconds_per_step = 60 / tempo_bpm /
        spec.steps_per_quarter and the tail is :data:`BUILTIN_RELEASE_S` (builtin) or 1 s
        (SoundFont engines). All zeros for a silent roll.

    Raises:
        OptionError: a non-positive tempo or sample rate, an unknown engine, a named engine that
            is not available here, a velocity outside 1..127, or audio longer than
            ``QBDI_MAX_AUDIO_SECONDS`` (:func:`qbdi_utils.limits.check_audio_seconds`, checked
            before synthesis).
        ValueError: ``roll`` is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks 02, 04 and 07, the explorer, ``qbdi improvise --wav``.
    """
    r, spec, sr, sec_per_step, chosen, body = _prepare(roll, spec, tempo_bpm, sample_rate, engine)
    notes = roll_notes(r, spec)
    vels = _velocities(roll, notes, velocity)
    return _normalise(_render(notes, vels, _gains(vels), sr=sr, sec_per_step=sec_per_step, chosen=chosen,
                              engine=engine, program=program, body=body))


def synthesize_stereo(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
                      sample_rate: int = 44100, engine: str = "auto", *, tracks: str = "one",
                      programs=None, velocity=None) -> np.ndarray:
    """Render a roll as a stereo waveform; with two tracks, the melody and the accompaniment panned apart.

    ``tracks="one"``: the mono rendering (:func:`synthesize`, program ``programs[0]``) in both
    channels. ``"melody+accompaniment"``: the top voice (:func:`qbdi_utils.pianoroll.top_voice`) and
    the other notes rendered separately with their programs and panned to :data:`TRACK_PANS` with
    equal-power gains (cos, sin of (pan + 1) * pi / 4). Peak-normalised to 0.9 over both channels.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: see :func:`synthesize`.
        tracks: one of :data:`qbdi_utils.pianoroll.TRACK_LAYOUTS`.
        programs: a General MIDI program per track (default all 0).
        velocity: see :func:`synthesize`.

    Returns:
        (n_samples, 2) float32 in [-1, 1] (n_samples as :func:`synthesize`).

    Raises:
        OptionError: as :func:`synthesize`, an unknown track layout, or programs of the wrong number.
    """
    if tracks not in TRACK_LAYOUTS:
        raise OptionError(f"tracks must be one of {', '.join(TRACK_LAYOUTS)}, got {tracks!r}")
    n_tracks = 1 if tracks == "one" else 2
    progs = [0] * n_tracks if programs is None else [int(p) for p in programs]
    if len(progs) != n_tracks:
        raise OptionError(f"{n_tracks} track(s) need {n_tracks} General MIDI program(s), got {len(progs)}")
    r, spec, sr, sec_per_step, chosen, body = _prepare(roll, spec, tempo_bpm, sample_rate, engine)
    notes = roll_notes(r, spec)
    vels = _velocities(roll, notes, velocity)
    gains = _gains(vels)
    if n_tracks == 1:
        mono = _render(notes, vels, gains, sr=sr, sec_per_step=sec_per_step, chosen=chosen, engine=engine,
                       program=progs[0], body=body)
        return _normalise(np.column_stack([mono, mono]))
    top = top_voice(notes)
    waves = [_render(notes[m], vels[m], gains[m], sr=sr, sec_per_step=sec_per_step, chosen=chosen,
                     engine=engine, program=prog, body=body)
             for m, prog in ((top, progs[0]), (~top, progs[1]))]
    n = max(w.size for w in waves)
    out = np.zeros((n, 2))
    for w, pan in zip(waves, TRACK_PANS):
        angle = (pan + 1.0) * np.pi / 4.0
        out[:w.size, 0] += np.cos(angle) * w
        out[:w.size, 1] += np.sin(angle) * w
    return _normalise(out)


def synthesis_engine() -> str:
    """Which engine ``synthesize(engine="auto")`` uses here: "soundfont", "fluidsynth" or "builtin".

    Used in: ``qbdi info``, notebooks/04_query_generation.ipynb.
    """
    if soundfont.available():
        return "soundfont"
    return "fluidsynth" if _fluidsynth_available() else "builtin"


WAV_SUFFIXES = (".wav",)
"""Names :func:`write_wav` accepts (it writes RIFF/WAV data, nothing else)."""


def wav_bytes(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
              sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto", *, wav_format: str | None = None,
              tracks: str = "one", programs=None, velocity=None) -> bytes:
    """Synthesize a roll as the bytes of a 16-bit WAV file: mono (:func:`synthesize`) or stereo
    (:func:`synthesize_stereo`).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second of a mono file (when ``wav_format`` is None).
        engine: see :func:`synthesize`.
        wav_format: None (mono at ``sample_rate``) or a key of :data:`WAV_FORMATS`: "mono22"
            (22,050 Hz mono, the default of ``qbdi improvise --wav``) or "stereo44" (44,100 Hz stereo).
        tracks: track layout (:data:`qbdi_utils.pianoroll.TRACK_LAYOUTS`); two tracks are panned
            apart in stereo and mixed in mono.
        programs: a General MIDI program per track (default 0).
        velocity: see :func:`synthesize`.

    Returns:
        The WAV file's bytes (what :func:`write_wav` writes).

    Raises:
        OptionError: an unknown ``wav_format``; or see :func:`synthesize_stereo`.

    Used in: ``qbdi improvise --wav`` (staged in one output set with the MIDI).
    """
    import io

    from scipy.io import wavfile

    channels = 1
    if wav_format is not None:
        if wav_format not in WAV_FORMATS:
            raise OptionError(f"WAV format must be one of {', '.join(WAV_FORMATS)}, got {wav_format!r}")
        sample_rate, channels = WAV_FORMATS[wav_format]
    if channels == 1 and tracks == "one":
        wave = synthesize(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine,
                          program=0 if programs is None else int(list(programs)[0]), velocity=velocity)
    else:
        wave = synthesize_stereo(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine, tracks=tracks,
                                 programs=programs, velocity=velocity)
        if channels == 1:
            wave = _normalise(wave.astype(np.float64).sum(axis=1))
    pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    wavfile.write(buf, int(sample_rate), pcm)
    return buf.getvalue()


def write_wav(roll, path, spec: RollSpec | None = None, *, tempo_bpm: float | None = None,
              sample_rate: int = DEFAULT_SAMPLE_RATE, force: bool = False, engine: str = "auto",
              wav_format: str | None = None, tracks: str = "one", programs=None, velocity=None) -> Path:
    """Synthesize a roll (:func:`wav_bytes`) and write it as a 16-bit WAV file, atomically.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`); without ``force``
    the creation is exclusive. Checked before synthesis: the name ends in ``.wav``, the file does
    not exist (unless ``force``).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        path: output ``.wav`` file (parent folders are created).
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second (mono, when ``wav_format`` is None).
        force: overwrite an existing file.
        engine: see :func:`synthesize`.
        wav_format, tracks, programs, velocity: see :func:`wav_bytes`.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: ``path`` does not end in .wav; or see :func:`wav_bytes`.

    Used in: notebooks/04_query_generation.ipynb.
    """
    path = check_suffix(path, WAV_SUFFIXES, "WAV audio")
    files.check_outputs([path], force=force)
    data = wav_bytes(roll, spec, tempo_bpm, sample_rate, engine, wav_format=wav_format, tracks=tracks,
                     programs=programs, velocity=velocity)
    return files.write_bytes(path, data, force=force)


def audio(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
          sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto"):
    """An IPython audio player for a roll (synthesized with :func:`synthesize`).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: see :func:`synthesize`.

    Returns:
        IPython.display.Audio (the waveform is already normalised, so it is not rescaled).

    Raises:
        OptionError: see :func:`synthesize`.

    Used in: notebooks/04_query_generation.ipynb.
    """
    from IPython.display import Audio

    wave = synthesize(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine)
    return Audio(wave, rate=int(sample_rate), normalize=False)
