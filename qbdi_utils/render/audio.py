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
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.render._common import unpack_roll, check_suffix, roll_notes

__all__ = [
    "find_soundfont",
    "synthesize",
    "write_wav",
    "wav_bytes",
    "WAV_SUFFIXES",
    "audio",
    "synthesis_engine",
    "DEFAULT_SAMPLE_RATE",
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


def _builtin_synth(notes, n_samples, sr, sec_per_step):
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
        stop = min(n_samples, start + length)
        if stop > start:
            out[start:stop] += wave[: stop - start]
    return out


def _fluidsynth_synth(notes, n_samples, sr, sec_per_step, soundfont, *, program=0, velocity=80):
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(sr))
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid == -1:
            raise RuntimeError(f"fluidsynth could not load the soundfont {soundfont}")
        synth.program_select(0, sfid, 0, int(program))
        events = []
        for p, s, e in notes:
            events.append((int(round(s * sec_per_step * sr)), 1, int(p)))
            events.append((int(round(e * sec_per_step * sr)), 0, int(p)))
        events.sort(key=lambda ev: (ev[0], ev[1]))  # note-offs before note-ons at the same sample
        chunks, pos = [], 0
        for when, on, p in events + [(n_samples, -1, 0)]:
            when = min(when, n_samples)
            if when > pos:
                chunks.append(np.asarray(synth.get_samples(when - pos), dtype=np.float64))
                pos = when
            if on == 1:
                synth.noteon(0, p, int(velocity))
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


def synthesize(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
               sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto", program: int = 0) -> np.ndarray:
    """Render a roll as a mono waveform: a General MIDI instrument from a SoundFont, else built in.

    ``engine="auto"`` uses, in order: the SoundFont engine (:mod:`qbdi_utils.soundfont`: pip-installed
    ``midirenderer`` playing pretty_midi's bundled General MIDI SoundFont TimGM6mb, or
    ``$QBDI_SOUNDFONT``), fluidsynth when ``pyfluidsynth`` and libfluidsynth are present, and the
    built-in additive synthesizer (a few harmonics :data:`BUILTIN_HARMONICS` under an ADSR envelope,
    every articulation a new attack, the key released :data:`BUILTIN_GAP_S` early). Falling back to
    the built-in synthesizer is reported as a warning. The result is peak-normalised to 0.9.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: one of :data:`ENGINES`; a named engine that is unavailable raises OptionError.
        program: General MIDI program (0 = acoustic grand piano) for the SoundFont engines.

    Returns:
        (n_samples,) float32 in [-1, 1], n_samples = round(T * seconds_per_step * sample_rate) +
        round(tail_seconds * sample_rate), where seconds_per_step = 60 / tempo_bpm /
        spec.steps_per_quarter and the tail is :data:`BUILTIN_RELEASE_S` (builtin) or 1 s
        (SoundFont engines). All zeros for a silent roll.

    Raises:
        OptionError: a non-positive tempo or sample rate, an unknown engine, a named engine that
            is not available here, or audio longer than ``QBDI_MAX_AUDIO_SECONDS``
            (:func:`qbdi_utils.limits.check_audio_seconds`, checked before synthesis).
        ValueError: ``roll`` is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks 02, 04 and 07, the explorer, ``qbdi improvise --wav``.
    """
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
                      "using the built-in synthesizer", stacklevel=2)
    sec_per_step = 60.0 / tempo_bpm / spec.steps_per_quarter
    limits.check_audio_seconds(roll.shape[0] * sec_per_step)  # before anything is allocated
    body = int(round(roll.shape[0] * sec_per_step * sr))
    n_samples = body + int(round((BUILTIN_RELEASE_S if chosen == "builtin" else 1.0) * sr))
    notes = roll_notes(roll, spec)
    if len(notes) == 0:
        return np.zeros(n_samples, dtype=np.float32)
    wave = None
    try:
        if chosen == "soundfont":
            timed = np.column_stack([notes[:, 0], notes[:, 1] * sec_per_step, notes[:, 2] * sec_per_step])
            wave = soundfont.render_notes(timed, sample_rate=sr, program=program, n_samples=n_samples)
        elif chosen == "fluidsynth":
            wave = _fluidsynth_synth(notes, n_samples, sr, sec_per_step, find_soundfont(), program=program)
    except Exception as exc:  # a broken synthesizer or SoundFont must not take audio away
        if engine != "auto":
            raise
        warnings.warn(f"{chosen} synthesis failed ({exc}); using the built-in synthesizer", stacklevel=2)
        n_samples = body + int(round(BUILTIN_RELEASE_S * sr))
        wave = None
    if wave is None:
        wave = _builtin_synth(notes, n_samples, sr, sec_per_step)
    wave = np.asarray(wave, dtype=np.float64)
    peak = float(np.max(np.abs(wave)))
    if peak > 0:
        wave = wave * (0.9 / peak)
    return wave.astype(np.float32)


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
              sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto") -> bytes:
    """Synthesize a roll (:func:`synthesize`) as the bytes of a 16-bit mono WAV file.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: see :func:`synthesize`.

    Returns:
        The WAV file's bytes (what :func:`write_wav` writes).

    Raises:
        OptionError: see :func:`synthesize`.

    Used in: ``qbdi improvise --wav`` (staged in one output set with the MIDI).
    """
    import io

    from scipy.io import wavfile

    wave = synthesize(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine)
    pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    wavfile.write(buf, int(sample_rate), pcm)
    return buf.getvalue()


def write_wav(roll, path, spec: RollSpec | None = None, *, tempo_bpm: float | None = None,
              sample_rate: int = DEFAULT_SAMPLE_RATE, force: bool = False, engine: str = "auto") -> Path:
    """Synthesize a roll (:func:`synthesize`) and write it as a 16-bit mono WAV file, atomically.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`); without ``force``
    the creation is exclusive. Checked before synthesis: the name ends in ``.wav``, the file does
    not exist (unless ``force``).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        path: output ``.wav`` file (parent folders are created).
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        force: overwrite an existing file.
        engine: see :func:`synthesize`.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: ``path`` does not end in .wav; or see :func:`synthesize`.

    Used in: notebooks/04_query_generation.ipynb.
    """
    path = check_suffix(path, WAV_SUFFIXES, "WAV audio")
    files.check_outputs([path], force=force)
    return files.write_bytes(path, wav_bytes(roll, spec, tempo_bpm, sample_rate, engine), force=force)


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
