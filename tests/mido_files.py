"""MIDI files for the tests, written with mido (never with the code under test)."""

from __future__ import annotations

import mido

__all__ = ["save_events"]


def save_events(path, events, ticks_per_beat: int, header=()):
    """Write one track: ``header`` meta messages at tick 0, then ``events`` [(tick, order, message)] in
    (tick, order) order as delta times (``order`` puts note-offs before note-ons at one tick).

    Returns:
        ``path``.
    """
    mf = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    tr = mido.MidiTrack(list(header))
    mf.tracks.append(tr)
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        tr.append(msg.copy(time=tick - now))
        now = tick
    mf.save(path)
    return path
