"""A real instrument sound: notes rendered through a General MIDI SoundFont, with pip packages only.

The synthesizer is ``midirenderer`` (a Rust SoundFont 2 synthesizer, MIT licence, with wheels for
Linux x86_64, macOS and Windows that need no system library); the SoundFont is the first of
``$QBDI_SOUNDFONT``, a system General MIDI ``.sf2`` (:data:`SOUNDFONT_PATHS`), and the small GM
SoundFont TimGM6mb.sf2 that the ``pretty_midi`` wheel carries (:func:`bundled_soundfont`).

Notes (MIDI pitch, start and end in seconds) are written as a one-channel MIDI file in memory (with a
``program_change`` selecting the GM instrument, a note_off before a note_on at the same instant so
a repeated note is struck again), rendered at the synthesizer's own rate (48 kHz stereo, 16 bit),
mixed to mono and resampled (polyphase, :func:`scipy.signal.resample_poly`) to the rate asked for.
The same notes give the same bytes on every call.

Only ``.sf2`` files are used (compressed ``.sf3`` SoundFonts are not read by the synthesizer).
When the synthesizer or a SoundFont is missing, :func:`unavailable_reason` says which, and callers
(``render.synthesize``) fall back to their built-in synthesizer.

Used in: notebooks/04_query_generation.ipynb and notebooks/explorer.ipynb (through
``render.synthesize``), ``qbdi info``.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import wave
from math import gcd
from pathlib import Path

import numpy as np

from qbdi_utils.errors import OptionError

__all__ = [
    "SOUNDFONT_PATHS",
    "BUNDLED_SOUNDFONT_NAME",
    "TICKS_PER_SECOND",
    "bundled_soundfont",
    "find_soundfont",
    "unavailable_reason",
    "available",
    "notes_to_midi",
    "render_notes",
    "engine_version",
]

#: System General MIDI SoundFonts tried after ``$QBDI_SOUNDFONT`` (first existing one wins); a
#: larger system SoundFont (FluidR3) sounds better than the small bundled one.
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)

#: The GM SoundFont inside the pretty_midi package (about 6 MB, by Tim Brechbill).
BUNDLED_SOUNDFONT_NAME = "TimGM6mb.sf2"

#: Time resolution of the in-memory MIDI file: 1000 ticks per second (one tick = 1 ms).
TICKS_PER_SECOND = 1000


def bundled_soundfont() -> Path | None:
    """The GM SoundFont shipped inside the installed ``pretty_midi`` package, or None.

    Returns:
        Path of ``pretty_midi/TimGM6mb.sf2`` when pretty_midi is installed and the file is there.

    Used in: ``qbdi info`` (through :func:`find_soundfont`).
    """
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / BUNDLED_SOUNDFONT_NAME
        if p.is_file():
            return p
    return None


def find_soundfont() -> Path | None:
    """The General MIDI ``.sf2`` SoundFont to use, or None when there is none.

    Order: ``$QBDI_SOUNDFONT`` (when it names an existing ``.sf2`` file), the first existing file of
    :data:`SOUNDFONT_PATHS`, then :func:`bundled_soundfont`.

    Returns:
        A path, or None.

    Used in: ``qbdi info``; notebooks through ``render.synthesize``.
    """
    env = os.environ.get("QBDI_SOUNDFONT")
    for cand in ([env] if env else []) + list(SOUNDFONT_PATHS):
        p = Path(cand)
        if p.suffix.lower() == ".sf2" and p.is_file():
            return p
    return bundled_soundfont()


def _synth_module():
    try:
        import midirenderer
    except Exception:  # ImportError, or a broken binary wheel
        return None
    return midirenderer if hasattr(midirenderer, "render_wave_from") else None


def engine_version() -> str | None:
    """Version of the installed ``midirenderer`` synthesizer, or None when it does not import."""
    from importlib import metadata

    if _synth_module() is None:
        return None
    try:
        return metadata.version("midirenderer")
    except metadata.PackageNotFoundError:
        return "unknown"


def unavailable_reason(soundfont=None) -> str | None:
    """Why SoundFont rendering cannot run here, or None when it can.

    Args:
        soundfont: a ``.sf2`` path to check instead of :func:`find_soundfont`'s choice.

    Returns:
        None, or one sentence naming what is missing and how to get it.

    Used in: ``qbdi info``; ``render.synthesize`` (to report its fallback).
    """
    if _synth_module() is None:
        return ("the SoundFont synthesizer midirenderer does not import "
                "(pip install midirenderer; wheels exist for Linux x86_64, macOS and Windows)")
    sf = Path(soundfont) if soundfont is not None else find_soundfont()
    if sf is None:
        return ("no General MIDI .sf2 SoundFont found (pip install pretty_midi ships one, "
                "or set QBDI_SOUNDFONT=/path/to/file.sf2)")
    if not sf.is_file():
        return f"the SoundFont {sf} does not exist"
    return None


def available(soundfont=None) -> bool:
    """True when :func:`render_notes` can run here (synthesizer imports, SoundFont found)."""
    return unavailable_reason(soundfont) is None


@functools.lru_cache(maxsize=4)
def _soundfont_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    return Path(path).read_bytes()


def _read_soundfont(path: Path) -> bytes:
    st = path.stat()
    return _soundfont_bytes(str(path), st.st_mtime_ns, st.st_size)


def _check_notes(notes) -> np.ndarray:
    arr = np.asarray(notes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 3))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"notes must have shape (n, 3) = (pitch, start_s, end_s), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("notes contain a non-finite value")
    return arr


def _velocities(velocity, n: int) -> np.ndarray:
    """One velocity 1..127 per note from a number or a sequence of n; OptionError otherwise."""
    v = np.asarray(velocity, dtype=np.int64)
    if v.ndim == 0:
        if not 1 <= int(v) <= 127:
            raise OptionError(f"velocity must be 1..127, got {int(v)}")
        return np.full(n, int(v))
    if v.shape != (n,):
        raise OptionError(f"need one velocity per note ({n}), got shape {v.shape}")
    if n and not ((v >= 1) & (v <= 127)).all():
        raise OptionError(f"velocity must be 1..127, got {int(v.min())}..{int(v.max())}")
    return v


def notes_to_midi(notes, program: int = 0, velocity=80, end_s: float | None = None) -> bytes:
    """A type-0 MIDI file (bytes) playing ``notes`` on channel 1 with one GM instrument.

    Times are rounded to whole milliseconds (:data:`TICKS_PER_SECOND`). At equal times note_offs come
    before note_ons, so back-to-back notes of one pitch are two attacks.

    Args:
        notes: (n, 3) array of (MIDI pitch 0-127, start seconds, end seconds), end > start.
        program: General MIDI program 0-127 (0 = acoustic grand piano, 19 = church organ).
        velocity: note_on velocity 1-127 of every note, or (n,) one per note.
        end_s: time of the end_of_track event, seconds (default: the last note end); a synthesizer
            renders up to it, so a later end leaves room for the release.

    Returns:
        The bytes of a standard MIDI file; equal arguments give equal bytes.

    Raises:
        OptionError: program or velocity out of range.

    Used in: :func:`render_notes`.
    """
    import mido

    if not 0 <= int(program) <= 127:
        raise OptionError(f"General MIDI program must be 0..127, got {program}")
    arr = _check_notes(notes)
    vels = _velocities(velocity, len(arr))
    tick = lambda s: max(0, int(round(float(s) * TICKS_PER_SECOND)))  # noqa: E731
    events = [(0, 0, 0, mido.Message("program_change", channel=0, program=int(program)))]
    for (p, s, e), vel in zip(arr, vels):
        p = int(p)
        if not 0 <= p <= 127:
            raise ValueError(f"MIDI pitch {p} is outside 0..127")
        a, b = tick(s), tick(e)
        if b <= a:
            b = a + 1
        events.append((a, 2, p, mido.Message("note_on", channel=0, note=p, velocity=int(vel))))
        events.append((b, 1, p, mido.Message("note_off", channel=0, note=p, velocity=0)))
    events.sort(key=lambda ev: ev[:3])
    track = mido.MidiTrack()
    # 1 beat = 1 s at 1000 ticks per beat: one tick is one millisecond
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    now = 0
    for t, _, _, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    last = now if end_s is None else max(now, tick(end_s))
    track.append(mido.MetaMessage("end_of_track", time=last - now))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_SECOND)
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _wav_to_mono(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        ch, width, sr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    else:
        raise RuntimeError(f"unexpected {8 * width}-bit WAV from the synthesizer")
    return x.reshape(-1, ch).mean(axis=1), sr


def render_notes(notes, sample_rate: int = 22050, *, program: int = 0, velocity=80,
                 soundfont=None, tail_s: float = 1.0, n_samples: int | None = None) -> np.ndarray:
    """Render notes with a General MIDI SoundFont as a mono waveform.

    Args:
        notes: (n, 3) array of (MIDI pitch, start seconds, end seconds).
        sample_rate: output samples per second.
        program: General MIDI program 0-127 (0 = acoustic grand piano).
        velocity: note_on velocity 1-127 of every note, or (n,) one per note.
        soundfont: a ``.sf2`` file (default :func:`find_soundfont`).
        tail_s: seconds rendered after the last note end, for the release.
        n_samples: output length; default ``round((last end + tail_s) * sample_rate)``. Longer is
            padded with zeros, shorter is cut.

    Returns:
        (n_samples,) float32, the synthesizer's mono mix in [-1, 1] (not normalised; a piano note at
        velocity 80 peaks near 0.05 with TimGM6mb). All zeros when there are no notes.

    Raises:
        OptionError: the synthesizer or a SoundFont is unavailable (see :func:`unavailable_reason`),
            or program/velocity/sample_rate is out of range.

    Used in: notebooks through ``render.synthesize``.
    """
    from scipy.signal import resample_poly

    sr = int(sample_rate)
    if sr <= 0:
        raise OptionError(f"sample_rate must be positive, got {sample_rate}")
    if tail_s < 0:
        raise OptionError(f"tail_s must be >= 0, got {tail_s}")
    arr = _check_notes(notes)
    end = float(arr[:, 2].max()) if len(arr) else 0.0
    total = int(round((end + tail_s) * sr)) if n_samples is None else int(n_samples)
    if total < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if len(arr) == 0:
        notes_to_midi(arr, program, velocity)  # validates program and velocity
        return np.zeros(total, dtype=np.float32)
    why = unavailable_reason(soundfont)
    if why is not None:
        raise OptionError(why)
    sf = Path(soundfont) if soundfont is not None else find_soundfont()
    midi = notes_to_midi(arr, program, velocity, end_s=max(end + tail_s, total / sr))
    mono, native = _wav_to_mono(_synth_module().render_wave_from(_read_soundfont(sf), midi))
    if native != sr:
        g = gcd(native, sr)
        mono = resample_poly(mono, sr // g, native // g)
    out = np.zeros(total, dtype=np.float64)
    k = min(total, mono.size)
    out[:k] = mono[:k]
    return np.clip(out, -1.0, 1.0).astype(np.float32)
