"""Reading a Standard MIDI File into a :class:`~qbdi_utils.pianoroll.roll.Piece` (:func:`read_midi`).

The notes in ticks come from :mod:`qbdi_utils.midifile` (the chunk parser and the merge of tracks);
this module rounds them to steps, builds the roll, the tempo and time-signature maps, finds a
marked pickup and checks a required meter. See :mod:`qbdi_utils.pianoroll`.

Imports: :mod:`qbdi_utils.midifile`, :mod:`qbdi_utils.errors`, :mod:`~qbdi_utils.pianoroll.roll`
(the roll, notes -> roll, MAX_STEPS), :mod:`~qbdi_utils.pianoroll.bars` (:func:`bar_steps`, for the pickup).
Used in: :mod:`qbdi_utils.pianoroll` (re-exported); through it corpus, the CLI, notebooks/01_data_prep.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbdi_utils import midifile
from qbdi_utils.errors import MeterError, NoNotesError, OptionError
from qbdi_utils.pianoroll.bars import bar_steps
from qbdi_utils.pianoroll.roll import MAX_STEPS, Piece, RollSpec, notes_to_roll

__all__ = ["read_midi"]


def read_midi(path, spec: RollSpec = RollSpec(), *, meter: str | None = None,
              allow_empty: bool = False) -> Piece:
    """Read a Standard MIDI File into a :class:`Piece`.

    All tracks and channels are merged, except the drum channel (channel 10, index 9), whose notes
    are counted in ``dropped["drum"]``; each note's General MIDI program (the last program change on
    its channel at its onset, 0 without one) is kept in ``Piece.programs``. A note_on with velocity 0 ends a note. A repeated note_on of a
    pitch already sounding (same track and channel) ends the sounding note and starts a new one; a
    note never ended is ended at the end of its track. Onsets and offsets are rounded to the
    nearest step (any ticks per beat) and every note lasts at least one step. Notes outside
    ``spec``'s pitch range are counted in ``dropped["out_of_range"]``; notes that start while
    another note of the same pitch sounds (two voices in unison) merge in the roll and are counted
    in ``dropped["same_pitch_overlap"]``. Positions are metrical
    (beats), so tempo changes do not move notes; they are kept in ``tempo_map``, clamped to
    :data:`qbdi_utils.limits.MIN_TEMPO_BPM` ... :data:`~qbdi_utils.limits.MAX_TEMPO_BPM`. Trailing
    silence up to the end of the longest track is kept. Chunks other than ``MThd``/``MTrk`` are
    skipped; the header's track count is read unsigned (up to 65,535 tracks).

    Limits (:mod:`qbdi_utils.limits`): only a regular file is opened (never a FIFO or a device), of at
    most ``QBDI_MAX_MIDI_BYTES``; messages are counted while parsing against
    ``QBDI_MAX_MIDI_MESSAGES``; at most :data:`MAX_STEPS` steps; time signatures must be meters
    (numerator >= 1, denominator a power of two up to 64).

    Args:
        path: a .mid/.midi file.
        spec: roll layout.
        meter: None to accept any meter, or "4/4" to require 4/4 throughout (a leading pickup
            signature shorter than one bar is allowed).

    Returns:
        Piece with roll (T, spec.n_columns) uint8.

    Raises:
        MidiFileError: missing, empty, not MIDI, truncated or corrupt file, too long, not a regular
            file, over a limit of :mod:`qbdi_utils.limits`, or a time signature that is no meter.
        FileSystemError: the file cannot be opened (permission, I/O error).
        NoNotesError: no notes at all, only drum notes, or no notes in the pitch range.
        MeterError: ``meter`` was given and the file uses another meter.

    Used in: notebooks/01_data_prep.ipynb
    """
    path = Path(path)
    spq = spec.steps_per_quarter
    content = midifile.read_notes(path, MAX_STEPS, spq)
    tpb = content.ticks_per_beat
    dropped: dict[str, int] = {}
    if content.n_drum:
        dropped["drum"] = content.n_drum
    if not content.notes and not allow_empty:
        if content.n_drum:
            raise NoNotesError(f"only drum notes (channel 10, {content.n_drum} notes); nothing to put in a "
                               "piano roll", path)
        raise NoNotesError("no notes in the file", path)

    in_range, n_out = _notes_in_steps(content.notes, tpb, spec)
    if n_out:
        dropped["out_of_range"] = n_out
    n_overlap = _count_same_pitch_overlaps(in_range)
    if n_overlap:
        dropped["same_pitch_overlap"] = n_overlap
    if not in_range and not allow_empty:
        raise NoNotesError(f"all {n_out} notes lie outside the pitch range "
                           f"{spec.min_pitch}..{spec.max_pitch}", path)

    n_steps = max(max((e for _, _, e in in_range), default=0),
                  midifile.ticks_to_steps(content.end_tick, tpb, spq))
    roll = notes_to_roll(in_range, n_steps, spec)
    tempo_map = _tempo_map(content.tempos, tpb, spq)
    time_signatures = _signature_map(content.signatures, tpb, spq)
    bar_offset = _pickup_steps(time_signatures, spec)
    if meter is not None:
        _check_meter(time_signatures, meter, bar_offset, path)

    velocities = np.array(midifile.onset_velocities(content, spq, spec.min_pitch, spec.max_pitch),
                          dtype=np.int64).reshape(-1, 3)
    programs = np.array(midifile.onset_programs(content, spq, spec.min_pitch, spec.max_pitch),
                        dtype=np.int64).reshape(-1, 3)
    return Piece(roll=roll, spec=spec, name=path.stem, tempo_map=tempo_map,
                 time_signatures=time_signatures, ticks_per_beat=tpb,
                 bar_offset_steps=bar_offset, dropped=dropped, velocities=velocities, programs=programs)


def _notes_in_steps(notes, tpb: int, spec: RollSpec) -> tuple[list, int]:
    """The notes (pitch, start_tick, end_tick) inside ``spec``'s pitch range as (pitch, start, end)
    in steps (rounded to the nearest step, at least one step long), and the count left out."""
    spq = spec.steps_per_quarter
    in_range = []
    n_out = 0
    for p, s, e in notes:
        if spec.min_pitch <= p <= spec.max_pitch:
            s_st = midifile.ticks_to_steps(s, tpb, spq)
            e_st = max(midifile.ticks_to_steps(e, tpb, spq), s_st + 1)
            in_range.append((p, s_st, e_st))
        else:
            n_out += 1
    return in_range, n_out


def _tempo_map(tempos, tpb: int, spq: int) -> list:
    """[(step, bpm)] from (tick, bpm) events: sorted, the last of a step kept, (0, 120.0) first if
    the file sets no tempo at its start."""
    tempo_map = []
    for tick, bpm in sorted(tempos, key=lambda x: x[0]):
        st = midifile.ticks_to_steps(tick, tpb, spq)
        if tempo_map and tempo_map[-1][0] == st:
            tempo_map[-1] = (st, bpm)
        else:
            tempo_map.append((st, round(bpm, 6)))
    if not tempo_map or tempo_map[0][0] != 0:
        tempo_map.insert(0, (0, 120.0))
    return tempo_map


def _signature_map(sigs, tpb: int, spq: int) -> list:
    """[(step, numerator, denominator)] from (tick, num, den) events: sorted, the last of a step
    kept, repeats of the current signature dropped."""
    time_signatures = []
    for tick, num, den in sorted(sigs, key=lambda x: x[0]):
        st = midifile.ticks_to_steps(tick, tpb, spq)
        if time_signatures and time_signatures[-1][0] == st:
            time_signatures[-1] = (st, num, den)
        elif not time_signatures or time_signatures[-1][1:] != (num, den):
            time_signatures.append((st, num, den))
    return time_signatures


def _count_same_pitch_overlaps(notes) -> int:
    """Notes that start while another note of the same pitch still sounds (unisons of two voices).

    A roll has one cell per pitch and step, so such notes merge: the later onset is kept as an
    articulation and the earlier note is cut there (or continues past its end).
    """
    n = 0
    last_end: dict[int, int] = {}
    for p, s, e in sorted(notes, key=lambda x: (x[0], x[1], x[2])):
        if last_end.get(p, -1) > s:
            n += 1
        last_end[p] = max(last_end.get(p, -1), e)
    return n


def _pickup_steps(time_signatures, spec: RollSpec) -> int:
    """Pickup length when the file marks it the usual way: a first signature shorter than one bar."""
    if len(time_signatures) >= 2 and time_signatures[0][0] == 0:
        nxt_step, num, den = time_signatures[1]
        if 0 < nxt_step < bar_steps(num, den, spec):
            return int(nxt_step)
    return 0


def _check_meter(time_signatures, meter: str, bar_offset: int, path: Path) -> None:
    try:
        num, den = (int(x) for x in meter.split("/"))
    except ValueError:
        raise OptionError(f"meter must look like '4/4', got {meter!r}") from None
    for st, n, d in time_signatures:
        if (n, d) != (num, den) and not (st == 0 and bar_offset > 0):
            raise MeterError(f"meter {n}/{d} at step {st}; only {meter} is accepted here "
                             "(pass meter=None to accept any meter)", path)
