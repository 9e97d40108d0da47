"""Writing a roll as MIDI: velocities, track layouts (one track, or melody + accompaniment), bytes, files.

:func:`midi_bytes` turns a roll's notes into the parts :func:`qbdi_utils.midifile.smf_bytes` writes;
:func:`write_midi` writes them atomically through :mod:`qbdi_utils.files`. See :mod:`qbdi_utils.pianoroll`.

Imports: :mod:`qbdi_utils.files`, :mod:`qbdi_utils.midifile`, :mod:`qbdi_utils.errors`,
:mod:`~qbdi_utils.pianoroll.roll` (RollSpec, roll -> notes).
Used in: :mod:`qbdi_utils.pianoroll` (re-exported); through it improvise, render, the CLI, notebooks 01, 02, 04.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbdi_utils import files, midifile
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll.roll import RollSpec, roll_to_notes

__all__ = ["DEFAULT_VELOCITY", "TRACK_LAYOUTS", "top_voice", "note_velocities", "midi_bytes", "write_midi"]


#: Velocity of every note written when no per-onset velocities are given (the writers' old fixed one).
DEFAULT_VELOCITY = 80

#: Track layouts of the writer: every note in one track, or the top voice in a track of its own.
TRACK_LAYOUTS = ("one", "melody+accompaniment")


def top_voice(notes) -> np.ndarray:
    """Which notes form the top voice: a note is in it when, at its onset, no higher pitch sounds.

    At every onset step the highest pitch sounding there (a note starting or one held over) is the
    top voice's; when that pitch is a note starting at this step, the note is the top voice's note.
    A lower note starting under a held higher one is accompaniment.

    Args:
        notes: (pitch, start, end) per note (e.g. :func:`roll_to_notes`), end exclusive.

    Returns:
        (n,) bool, True for the top voice's notes.

    Used in: :func:`midi_bytes` (``tracks="melody+accompaniment"``).
    """
    arr = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    if not len(arr):
        return np.zeros(0, dtype=bool)
    highest = np.full(int(arr[:, 2].max()) + 1, -1, dtype=np.int64)  # highest pitch sounding per step
    for p, s, e in arr:
        np.maximum(highest[s:max(e, s + 1)], p, out=highest[s:max(e, s + 1)])
    return arr[:, 0] >= highest[arr[:, 1]]


def note_velocities(notes, velocity) -> list:
    """A velocity per note: ``velocity`` for all, or looked up by (onset step, pitch) in an (n, 3)
    array of (step, pitch, velocity); a note not listed gets :data:`DEFAULT_VELOCITY`.

    Args:
        notes: (pitch, start, end) per note, in steps.
        velocity: 1..127, or an (n, 3) int array (``Piece.velocities``).

    Returns:
        list of ints 1..127, one per note.

    Raises:
        OptionError: a velocity outside 1..127.

    Used in: :func:`midi_bytes`, :func:`qbdi_utils.render.synthesize`.
    """
    if np.isscalar(velocity):
        if not 1 <= int(velocity) <= 127:
            raise OptionError(f"velocity must be 1..127, got {velocity}")
        return [int(velocity)] * len(notes)
    table = np.asarray(velocity, dtype=np.int64).reshape(-1, 3)
    if len(table) and not ((table[:, 2] >= 1) & (table[:, 2] <= 127)).all():
        raise OptionError("velocities must be 1..127")
    at = {(int(s), int(p)): int(v) for s, p, v in table}
    return [at.get((int(s), int(p)), DEFAULT_VELOCITY) for p, s, _ in notes]


def _check_programs(programs, n: int) -> list:
    progs = [int(p) for p in programs]
    if len(progs) != n:
        raise OptionError(f"{n} track(s) need {n} General MIDI program(s), got {len(progs)}")
    for p in progs:
        if not 0 <= p <= 127:
            raise OptionError(f"General MIDI program must be 0..127, got {p}")
    return progs


def midi_bytes(roll: np.ndarray, tempo_bpm: float = 120.0, velocity=DEFAULT_VELOCITY,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0,
               time_signatures: list | None = None, tracks: str = "one", programs=None) -> bytes:
    """A roll as the bytes of a MIDI file (type 0 for one track, type 1 for several); deterministic.

    Every note gets a note_off (at the same tick, note_offs come before note_ons, so a repeated
    note stays two notes). The end_of_track event sits at the roll's length, so trailing silence
    survives. ``read_midi`` of these bytes gives ``roll`` back for every valid roll, in every track
    layout (the reader merges tracks).

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: note_on velocity 1..127 of every note, or an (n, 3) int array of (step, pitch,
            velocity) per onset (``Piece.velocities``; :func:`qbdi_utils.performance.perform` fills
            it), a note whose onset is not listed getting :data:`DEFAULT_VELOCITY`.
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at step 0, or None; used when
            ``time_signatures`` is None.
        program: General MIDI program (0 = acoustic grand piano) of every track when ``programs``
            is None.
        time_signatures: [(step, numerator, denominator), ...] written at their steps (e.g.
            ``Piece.time_signatures``); None: ``time_signature`` at step 0.
        tracks: one of :data:`TRACK_LAYOUTS`: "one" (a type-0 file, as before) or
            "melody+accompaniment" (:func:`top_voice` on channel 1, the rest on channel 2, each
            in its own track of a type-1 file after a conductor track of tempos and meters).
        programs: one General MIDI program per track (e.g. (0, 48)), or None.

    Returns:
        The file's bytes (what :func:`write_midi` writes).

    Raises:
        OptionError: ticks_per_beat is not a multiple of steps_per_quarter, a velocity is not
            1..127, an unknown track layout, or programs of the wrong number or outside 0..127.
        ValueError: a tempo or time signature MIDI cannot write.

    Used in: ``qbdi improvise`` / ``qbdi sweep`` (staged in one output set), through :func:`write_midi`
    in notebooks/01_data_prep.ipynb and notebooks/04_query_generation.ipynb.
    """
    roll = np.asarray(roll)
    if ticks_per_beat % spec.steps_per_quarter:
        raise OptionError(f"ticks_per_beat {ticks_per_beat} is not a multiple of "
                          f"steps_per_quarter {spec.steps_per_quarter}")
    if tracks not in TRACK_LAYOUTS:
        raise OptionError(f"tracks must be one of {', '.join(TRACK_LAYOUTS)}, got {tracks!r}")
    n_tracks = 1 if tracks == "one" else 2
    progs = _check_programs([program] * n_tracks if programs is None else programs, n_tracks)
    tps = ticks_per_beat // spec.steps_per_quarter
    tempo_map = [(0, float(tempo_bpm))] if np.isscalar(tempo_bpm) else list(tempo_bpm)
    if time_signatures is None:
        time_signatures = [] if time_signature is None else [(0, *time_signature)]
    notes = roll_to_notes(roll, spec)
    timed = [(p, s * tps, e * tps, v) for (p, s, e), v in zip(notes, note_velocities(notes, velocity))]
    if n_tracks == 1:
        parts = [midifile.MidiPart(timed, progs[0], 0)]
    else:
        top = top_voice(notes)
        parts = [midifile.MidiPart([n for n, t in zip(timed, top) if t], progs[0], 0, "melody"),
                 midifile.MidiPart([n for n, t in zip(timed, top) if not t], progs[1], 1, "accompaniment")]
    return midifile.smf_bytes(parts, [(int(st) * tps, bpm) for st, bpm in tempo_map], roll.shape[0] * tps,
                              ticks_per_beat=ticks_per_beat,
                              time_signatures=[(int(st) * tps, n, d) for st, n, d in time_signatures])


def write_midi(roll: np.ndarray, path, tempo_bpm: float = 120.0, velocity=DEFAULT_VELOCITY,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0,
               time_signatures: list | None = None, tracks: str = "one", programs=None,
               force: bool = False) -> Path:
    """Write a roll as a MIDI file (:func:`midi_bytes`), atomically; never overwrites without force.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`: hidden temporary,
    fsync, rename); without ``force`` the creation is exclusive, also against a concurrent writer.
    ``read_midi(write_midi(roll)).roll == roll`` for every valid roll.

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        path: output file (parent folders are created).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: 1..127 for every note, or (n, 3) (step, pitch, velocity) per onset (see :func:`midi_bytes`).
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at step 0, or None.
        program: General MIDI program (0 = acoustic grand piano).
        time_signatures: [(step, numerator, denominator), ...] instead of ``time_signature``.
        tracks: one of :data:`TRACK_LAYOUTS`.
        programs: one General MIDI program per track, or None.
        force: replace an existing file.
        time_signatures: [(step, numerator, denominator), ...] written instead of ``time_signature``.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: see :func:`midi_bytes`.

    Used in: notebooks/01_data_prep.ipynb, notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb
    """
    data = midi_bytes(roll, tempo_bpm, velocity, spec, ticks_per_beat=ticks_per_beat,
                      time_signature=time_signature, program=program, time_signatures=time_signatures,
                      tracks=tracks, programs=programs)
    return files.write_bytes(path, data, force=force)
