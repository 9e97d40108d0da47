"""Standard MIDI Files at the byte level: the chunk parser, the merge of tracks into notes, the writer.

:func:`read_smf` parses the header and the MTrk chunks (variable-length quantities, running status,
meta and system events) within the limits of :mod:`qbdi_utils.limits`, keeping only what a piano
roll needs: note on/off (with their velocities), program changes, tempo and time signature events.
:func:`read_notes` merges the tracks into notes, velocities, programs, tempos and time signatures, all in
ticks; :func:`onset_velocities` and :func:`onset_programs` give the notes' velocities and General MIDI
programs at their onset steps. Turning notes into a roll
(steps, the pitch range, meters) is :func:`qbdi_utils.pianoroll.read_midi`'s part; this module knows
nothing of rolls. :func:`smf_bytes` writes notes in ticks, each with its velocity: one part as a
type-0 file (byte for byte what mido writes), several parts as a type-1 file with a conductor track,
for :func:`qbdi_utils.pianoroll.midi_bytes`.

Imports: errors, limits. Used by: pianoroll.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from qbdi_utils import limits
from qbdi_utils.errors import MidiFileError

__all__ = ["NOTE_OFF", "NOTE_ON", "TEMPO", "TIME_SIG", "PROGRAM", "MidiNotes", "MidiPart", "ticks_to_steps",
           "read_smf", "read_notes", "onset_velocities", "onset_programs", "smf_bytes"]


def ticks_to_steps(ticks: int, tpb: int, spq: int) -> int:
    """Nearest step to a tick position (halves round up), exact integer arithmetic."""
    return (2 * ticks * spq + tpb) // (2 * tpb)


# kinds of the events read_smf keeps (everything else is counted and skipped)
NOTE_OFF, NOTE_ON, TEMPO, TIME_SIG, PROGRAM = 0, 1, 2, 3, 4
# data bytes after a status byte of the system common / real-time range (absent: undefined)
_SYSTEM_LENGTHS = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}


class _Corrupt(Exception):
    """The bytes of a track do not parse (turned into MidiFileError by read_smf)."""


def _read_vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A MIDI variable-length quantity (7 bits a byte, high bit = more follow) at ``data[pos:end]``:
    (value, position after it). Raises EOFError when it runs past ``end``."""
    value = 0
    while True:
        if pos >= end:
            raise EOFError
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos


def _read_track(data: bytes, pos: int, end: int, max_ticks: int, budget: list) -> tuple[list, int]:
    """Parse one MTrk chunk's events ``data[pos:end]``.

    Returns (events, end tick); events are (tick, kind, a, b, c): note off/on (channel, note,
    velocity), tempo (microseconds per quarter, 0, 0), time signature (numerator, denominator
    exponent, 0), program change (channel, program, 0). ``budget`` is
    a one-element list of the messages still allowed in the file (decremented per message; the
    caller checks it against the limit). Data bytes above 127 are clipped to 127, as mido's
    ``clip=True`` reading did; a meta event does not set running status, anything else does.
    """
    events = []
    tick = 0
    running = None
    left = budget[0]
    while pos < end:
        delta, pos = _read_vlq(data, pos, end)
        tick += delta
        if tick > max_ticks:
            raise OverflowError
        if pos >= end:
            raise EOFError
        status = data[pos]
        if status < 0x80:
            if running is None:
                raise _Corrupt("running status without a previous status byte")
            status = running
        else:
            pos += 1
            if status != 0xFF:
                running = status
        left -= 1
        if left < 0:
            budget[0] = left
            return events, tick
        if status == 0xFF or status == 0xF0 or status == 0xF7:
            if status == 0xFF:
                if pos >= end:
                    raise EOFError
                mtype = data[pos]
                pos += 1
            length, pos = _read_vlq(data, pos, end)
            if pos + length > end:
                raise EOFError
            if status == 0xFF and mtype == 0x51:
                if length < 3:
                    raise _Corrupt(f"a tempo event of {length} bytes, not 3")
                events.append((tick, TEMPO, (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2], 0, 0))
            elif status == 0xFF and mtype == 0x58:
                if length < 2:
                    raise _Corrupt(f"a time signature of {length} bytes, not 4")
                events.append((tick, TIME_SIG, data[pos], data[pos + 1], 0))
            pos += length
            continue
        hi = status & 0xF0
        if hi < 0xF0:
            n = 1 if hi == 0xC0 or hi == 0xD0 else 2
        else:
            n = _SYSTEM_LENGTHS.get(status)
            if n is None:
                raise _Corrupt(f"undefined status byte 0x{status:02x}")
        if pos + n > end:
            raise EOFError
        if hi == 0x90 or hi == 0x80:
            note, vel = min(data[pos], 127), min(data[pos + 1], 127)
            events.append((tick, NOTE_ON if hi == 0x90 and vel else NOTE_OFF, status & 0x0F, note, vel))
        elif hi == 0xC0:
            events.append((tick, PROGRAM, status & 0x0F, min(data[pos], 127), 0))
        pos += n
    budget[0] = left
    return events, tick


def read_smf(path: Path, max_steps: int, spq: int) -> tuple[int, int, list]:
    """Read a Standard MIDI File's header and track chunks, within the limits of qbdi_utils.limits.

    The file must be a regular file of at most ``QBDI_MAX_MIDI_BYTES``; messages are counted while
    parsing against ``QBDI_MAX_MIDI_MESSAGES``. The header's track count is unsigned (up to 65,535);
    chunks of other types (legal, for extensions) are skipped.

    Args:
        path: the .mid file.
        max_steps: longest piece accepted, in steps of 1/``spq`` quarter note.
        spq: steps per quarter note.

    Returns:
        (format, ticks per beat, [(events, end_tick) per MTrk chunk]); events are (tick, kind, a, b, c):
        note off/on (channel, note, velocity), tempo (microseconds per quarter, 0, 0), time signature
        (numerator, denominator exponent, 0), program change (channel, program, 0).

    Raises:
        MidiFileError: missing, empty, not MIDI, truncated, corrupt, too long, type 2 or SMPTE
            timing, a resolution (ticks per quarter) that ``spq`` does not divide, or over a limit
            of :mod:`qbdi_utils.limits`.
        FileSystemError: the file cannot be opened.
    """
    if not path.exists():
        raise MidiFileError("file not found; check the path", path)
    if path.is_dir():
        raise MidiFileError("is a directory, not a MIDI file", path)
    data = limits.read_regular(path, "QBDI_MAX_MIDI_BYTES", MidiFileError, "a .mid file")
    if len(data) == 0:
        raise MidiFileError("file is empty (0 bytes); it is not a MIDI file", path)
    if not data.startswith(b"MThd"):
        raise MidiFileError("not a Standard MIDI File (no 'MThd' header); is it really .mid?", path)
    truncated = MidiFileError("file is truncated or corrupt (data ends in the middle of a chunk or "
                              "message); re-export it", path)
    if len(data) < 14:
        raise truncated
    head_len = int.from_bytes(data[4:8], "big")
    if head_len < 6 or 8 + head_len > len(data):
        raise truncated
    fmt, n_tracks, division = (int.from_bytes(data[i:i + 2], "big") for i in (8, 10, 12))
    if fmt == 2:
        raise MidiFileError("MIDI type 2 (independent sequences) is not supported", path)
    if fmt > 2:
        raise MidiFileError(f"corrupt MIDI data (unknown format {fmt} in the header); re-export it", path)
    if division & 0x8000 or division == 0:
        signed = division - 0x10000 if division & 0x8000 else division
        raise MidiFileError(f"unsupported time division {signed!r} (SMPTE timing); "
                            "re-export with ticks per quarter note", path)
    if division % spq:
        raise MidiFileError(f"its resolution of {division} ticks per quarter note is not a multiple of the grid's "
                            f"{spq} steps per quarter note (notes would fall between steps); use a grid that divides "
                            f"{division}, or re-export the file at 480 or 960 ticks per quarter note", path)
    max_ticks = max_steps * division // spq
    cap = int(limits.limit("QBDI_MAX_MIDI_MESSAGES"))
    budget = [cap]
    tracks = []
    pos = 8 + head_len
    while len(tracks) < n_tracks:
        if pos + 8 > len(data):
            raise truncated
        kind, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        body = pos + 8
        if body + size > len(data):
            raise truncated
        if kind == b"MTrk":
            try:
                tracks.append(_read_track(data, body, body + size, max_ticks, budget))
            except EOFError:
                raise truncated from None
            except OverflowError:
                raise MidiFileError(f"too long: more than {max_steps} steps of 1/{spq} quarter note",
                                    path) from None
            except _Corrupt as exc:
                raise MidiFileError(f"corrupt MIDI data ({exc}); re-export it", path) from None
            if budget[0] < 0:
                limits.check_count(cap + 1, "QBDI_MAX_MIDI_MESSAGES", "MIDI messages", path, MidiFileError)
        pos = body + size
    return fmt, division, tracks


@dataclass(frozen=True)
class MidiNotes:
    """What :func:`read_notes` keeps of a MIDI file, positions in ticks.

    Attributes:
        ticks_per_beat: the header's division (ticks per quarter note).
        notes: (pitch, start_tick, end_tick) per note, all tracks and channels but the drum channel.
        tempos: (tick, bpm) per tempo event (bpm clamped to the limits), in file order.
        signatures: (tick, numerator, denominator) per time signature event, in file order.
        end_tick: the end of the longest track.
        n_drum: note_ons on the drum channel (channel 10, index 9), left out of ``notes``.
        velocities: the note_on velocity (1..127) of each entry of ``notes``, in the same order.
        programs: the General MIDI program (0..127) of each entry of ``notes``: the last program change
            on the note's channel (in any track) at or before its onset, 0 when there is none.
    """

    ticks_per_beat: int
    notes: list
    tempos: list
    signatures: list
    end_tick: int
    n_drum: int
    velocities: list = field(default_factory=list)
    programs: list = field(default_factory=list)


def read_notes(path: Path, max_steps: int, spq: int) -> MidiNotes:
    """Read a MIDI file (:func:`read_smf`) and merge its tracks into notes, tempos and signatures.

    A note_on with velocity 0 ends a note; a repeated note_on of a pitch already sounding (same
    track and channel) ends the sounding note and starts a new one; a note never ended is ended at
    the end of its track. A note's program is the last program change on its channel, in any track
    (MIDI channels are shared by the tracks of a file), at or before its onset; 0 without one.

    Args:
        path: the .mid file.
        max_steps: longest piece accepted, in steps of 1/``spq`` quarter note.
        spq: steps per quarter note (to convert ``max_steps`` into ticks).

    Returns:
        :class:`MidiNotes`.

    Raises:
        MidiFileError: as :func:`read_smf`, or a time signature that is no meter.
        FileSystemError: the file cannot be opened.
    """
    _, tpb, tracks = read_smf(path, max_steps, spq)
    notes = []  # (pitch, start_tick, end_tick)
    velocities = []  # note_on velocity of each entry of notes
    channels = []  # channel of each entry of notes
    changes: dict[int, list] = {}  # channel -> [(tick, program)] from every track
    tempos = []  # (tick, bpm)
    sigs = []  # (tick, num, den)
    end_tick = 0
    n_drum = 0
    for events, track_end in tracks:
        sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (start, velocity)
        for tick, kind, a, b, c in events:
            if kind <= NOTE_ON:
                if a == 9:
                    if kind == NOTE_ON:
                        n_drum += 1
                    continue
                key = (a, b)
                if key in sounding:
                    start, vel = sounding.pop(key)
                    notes.append((b, start, tick))
                    velocities.append(vel)
                    channels.append(a)
                if kind == NOTE_ON:
                    sounding[key] = (tick, c)
            elif kind == TEMPO:
                if a > 0:
                    tempos.append((tick, limits.clamp_tempo(60_000_000 / a)))
            elif kind == TIME_SIG:
                sigs.append((tick, a, _signature_denominator(a, b, tick, path)))
            else:
                changes.setdefault(a, []).append((tick, b))
        for (ch, pitch), (start, vel) in sounding.items():
            notes.append((pitch, start, max(track_end, start)))
            velocities.append(vel)
            channels.append(ch)
        end_tick = max(end_tick, track_end)
    timelines = {ch: _timeline(seq) for ch, seq in changes.items()}  # channel -> (ticks, programs), sorted
    programs = [_program_at(*timelines.get(ch, ([], [])), start) for (_, start, _), ch in zip(notes, channels)]
    return MidiNotes(tpb, notes, tempos, sigs, end_tick, n_drum, velocities=velocities, programs=programs)


def _timeline(changes) -> tuple[list, list]:
    """(ticks, programs) of program changes [(tick, program)] sorted by tick, file order kept among
    equal ticks (the later one then wins)."""
    ordered = sorted(changes, key=lambda c: c[0])
    return [t for t, _ in ordered], [p for _, p in ordered]


def _program_at(ticks: list, programs: list, tick: int) -> int:
    """The program of the last change at or before ``tick`` (``ticks`` sorted), 0 when none is."""
    i = bisect.bisect_right(ticks, tick)
    return programs[i - 1] if i else 0


def onset_velocities(content: MidiNotes, spq: int, min_pitch: int = 0, max_pitch: int = 127) -> list:
    """The velocity of every note of ``content`` at its onset step, for the notes of a pitch range.

    Onsets are rounded to the nearest step as the roll's notes are (:func:`ticks_to_steps`).

    Args:
        content: what :func:`read_notes` read.
        spq: steps per quarter note.
        min_pitch: lowest pitch kept.
        max_pitch: highest pitch kept (inclusive).

    Returns:
        sorted list of (step, pitch, velocity) per note.

    Used in: :func:`qbdi_utils.pianoroll.read_midi` (``Piece.velocities``).
    """
    return _at_onsets(content, content.velocities, spq, min_pitch, max_pitch)


def onset_programs(content: MidiNotes, spq: int, min_pitch: int = 0, max_pitch: int = 127) -> list:
    """The General MIDI program of every note of ``content`` at its onset step, for the notes of a
    pitch range (as :func:`onset_velocities`).

    Returns:
        sorted list of (step, pitch, program) per note.

    Used in: :func:`qbdi_utils.pianoroll.read_midi` (``Piece.programs``).
    """
    return _at_onsets(content, content.programs, spq, min_pitch, max_pitch)


def _at_onsets(content: MidiNotes, values, spq: int, min_pitch: int, max_pitch: int) -> list:
    """Sorted (onset step, pitch, value) of the notes of a pitch range, ``values`` one per note."""
    tpb = content.ticks_per_beat
    return sorted((ticks_to_steps(s, tpb, spq), p, v) for (p, s, _), v in zip(content.notes, values)
                  if min_pitch <= p <= max_pitch)


def _signature_denominator(numerator: int, exponent: int, tick: int, path: Path) -> int:
    """The denominator 2**exponent of a time signature event, checked to be a meter."""
    den = 2 ** exponent if exponent <= 16 else 0
    if not limits.valid_time_signature(numerator, den):
        shown = f"{numerator}/{den}" if den else f"{numerator}/2**{exponent}"
        raise MidiFileError(
            f"time signature {shown} at tick {tick} is not a meter (the numerator must be "
            f"1..{limits.MAX_NUMERATOR}, the denominator a power of two 1..{limits.MAX_DENOMINATOR}); "
            "re-export the file", path)
    return den


def _vlq(value: int) -> bytes:
    """A non-negative integer as a MIDI variable-length quantity (7 bits a byte, high bit = more)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _tempo_us(bpm: float) -> int:
    """Microseconds per quarter note for ``bpm``, rounded as mido's bpm2tempo rounds (4/4)."""
    us = int(round(60 * 1e6 / bpm * 4 / 4.0))
    if not 0 <= us <= 0xFFFFFF:
        raise ValueError(f"tempo {bpm} bpm is {us} us per quarter, outside a MIDI tempo's 0..16777215")
    return us


def _meta_events(tempos, time_signatures) -> list[tuple[int, int, int, bytes]]:
    """The set_tempo and time_signature events at their ticks, each as its event bytes."""
    events = []
    for tick, bpm in tempos:
        us = _tempo_us(bpm)
        events.append((int(tick), 0, -1, bytes([0xFF, 0x51, 3, us >> 16, (us >> 8) & 0xFF, us & 0xFF])))
    for tick, num, den in time_signatures:
        num, den = int(num), int(den)
        if not 0 <= num <= 255 or den < 1 or den & (den - 1) or den > 2**255:
            raise ValueError(f"time signature {num}/{den}: the numerator must be 0..255 and the "
                             f"denominator a power of two")
        events.append((int(tick), 0, -1, bytes([0xFF, 0x58, 4, num, den.bit_length() - 1, 24, 8])))
    return events


@dataclass(frozen=True)
class MidiPart:
    """One instrument of a file :func:`smf_bytes` writes.

    Attributes:
        notes: (pitch, start_tick, end_tick, velocity 1..127) per note.
        program: General MIDI program 0..127 at tick 0.
        channel: MIDI channel index 0..15 (9 is the drum channel).
        name: the track's name (a track_name event; not written in a type-0 file).
    """

    notes: list
    program: int = 0
    channel: int = 0
    name: str = ""


def _track_chunk(events, end_tick: int) -> bytes:
    """Sorted (tick, order, pitch, bytes) events as an MTrk chunk ending at ``end_tick``; channel
    events use running status and a meta event resets it, as mido writes."""
    events = sorted(events, key=lambda ev: ev[:3])
    data = bytearray()
    now, running = 0, None
    for tick, _, _, ev in events:
        data += _vlq(tick - now)
        now = tick
        if ev[0] == 0xFF:
            data += ev
            running = None
        else:
            data += ev[1:] if ev[0] == running else ev
            running = ev[0]
    data += _vlq(max(int(end_tick) - now, 0)) + bytes([0xFF, 0x2F, 0])
    return b"MTrk" + len(data).to_bytes(4, "big") + bytes(data)


def _part_events(part: MidiPart, with_name: bool) -> list:
    """A part's track name, program change, note_ons and note_offs as (tick, order, pitch, bytes)."""
    ch = int(part.channel)
    if not 0 <= ch <= 15 or not 0 <= int(part.program) <= 127:
        raise ValueError(f"channel {ch} / program {part.program}: a channel is 0..15, a program 0..127")
    events = []
    if with_name and part.name:
        name = part.name.encode("latin-1", "replace")
        events.append((0, 0, -1, bytes([0xFF, 0x03]) + _vlq(len(name)) + name))
    events.append((0, 0, -1, bytes([0xC0 | ch, int(part.program)])))
    for pitch, s, e, vel in part.notes:
        vel = int(vel)
        if not 1 <= vel <= 127:
            raise ValueError(f"velocity {vel} of pitch {pitch} at tick {s} is not 1..127")
        events.append((int(s), 2, int(pitch), bytes([0x90 | ch, int(pitch), vel])))
        events.append((int(e), 1, int(pitch), bytes([0x80 | ch, int(pitch), 0])))
    return events


def smf_bytes(parts, tempos, end_tick: int, *, ticks_per_beat: int, time_signatures=()) -> bytes:
    """Notes in ticks as the bytes of a MIDI file: one part as type 0, several as type 1; deterministic.

    One part: a single track (tempo and time signature events, the program change, the notes),
    byte for byte what mido writes for the same messages (tests/test_pianoroll.py holds mido as the
    reference). Several parts: a type-1 file whose first track (the conductor) holds the tempo and
    time signature events, then one track per part (its name, program change and notes on its
    channel). At equal ticks meta events come first, then note_offs, then note_ons (so a repeated
    note stays two notes; among equals, by pitch); every track ends at ``end_tick``, so trailing
    silence survives. Written here because building ~10,000 validated mido messages took half a
    second of every ``qbdi improvise``.

    Args:
        parts: :class:`MidiPart` per instrument (at least one).
        tempos: (tick, bpm) per tempo change.
        end_tick: where the tracks end (>= the last event to keep trailing silence).
        ticks_per_beat: the file's division.
        time_signatures: (tick, numerator, denominator) per time signature event.

    Returns:
        The file's bytes.

    Raises:
        ValueError: no part, a tempo outside MIDI's range, a time signature MIDI cannot write, or a
            velocity, program or channel out of range.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("a MIDI file needs at least one part")
    meta = _meta_events(tempos, time_signatures)
    if len(parts) == 1:
        chunks = [_track_chunk(meta + _part_events(parts[0], with_name=False), end_tick)]
    else:
        chunks = [_track_chunk(meta, end_tick)]
        chunks += [_track_chunk(_part_events(p, with_name=True), end_tick) for p in parts]
    fmt = 0 if len(chunks) == 1 else 1
    header = b"MThd" + (6).to_bytes(4, "big") + fmt.to_bytes(2, "big") + len(chunks).to_bytes(2, "big")
    header += int(ticks_per_beat).to_bytes(2, "big")
    return header + b"".join(chunks)
