"""Inputs and outputs of ``qbdi live``: the performer's stream, MIDI ports, the recording.

Sources give timed MIDI messages (:class:`InputEvent`): :class:`FileSource` plays a MIDI file on the
session's timeline, :class:`PortSource` listens on a MIDI input port; :class:`PortSink` sends the
answer to an output port and :class:`Recorder` keeps everything sent as a MIDI file
(:func:`recording_bytes`). Ports are opened through mido's backend (:func:`open_input_port`,
:func:`open_output_port`), failures as :class:`~qbdi_utils.errors.MidiPortError`.

Imports: errors, pianoroll. Used in: live, ``qbdi live``, benchmarks/bench_live.py, tests/test_live.py.
"""

from __future__ import annotations

import io
import math
import os
import queue
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from qbdi_utils import pianoroll
from qbdi_utils.errors import MidiPortError
from qbdi_utils.pianoroll import RollSpec

__all__ = ["ANSWER_CHANNEL", "InputEvent", "round_step", "is_midi_file_name", "Recorder", "recording_bytes",
           "FileSource", "PortSource", "PortSink", "open_input_port", "open_output_port"]


#: MIDI channel (0-based) the answer is played on.
ANSWER_CHANNEL = 0

def is_midi_file_name(text: str) -> bool:
    """Whether an --in/--out value names a MIDI file (suffix .mid/.midi) rather than a port."""
    return str(text).lower().endswith((".mid", ".midi"))


def round_step(pos) -> int:
    """Nearest step, halves up (read_midi's rounding): ``floor(pos + 1/2)``."""
    return math.floor(pos + Fraction(1, 2)) if isinstance(pos, Fraction) else math.floor(pos + 0.5)


class Recorder:
    """Every message sent to the output, with the performance time it was sent at.

    Args:
        bpm: tempo written to the file (seconds are converted to ticks at this tempo).
        meter: (numerator, denominator) written to the file.
        ticks_per_beat: MIDI resolution.
    """

    def __init__(self, bpm: float, meter=(4, 4), ticks_per_beat: int = 480):
        self.bpm = float(bpm)
        self.meter = tuple(meter)
        self.ticks_per_beat = int(ticks_per_beat)
        self.events: list = []  # (seconds, mido message)
        self.meter_changes: list = []  # (seconds, numerator, denominator) after the first meter

    def send(self, msg, t: float) -> None:
        """Record ``msg`` sent at ``t`` seconds."""
        self.events.append((float(t), msg))

    def midi_bytes(self, end_s: float | None = None) -> bytes:
        """The recording as a type-0 MIDI file (see :func:`recording_bytes`)."""
        return recording_bytes(self.events, self.bpm, self.meter, self.ticks_per_beat, end_s, self.meter_changes)


def recording_bytes(events, bpm: float, meter=(4, 4), ticks_per_beat: int = 480,
                    end_s: float | None = None, meter_changes=()) -> bytes:
    """Timed messages as the bytes of a type-0 MIDI file (tempo and meter at tick 0).

    Args:
        events: [(seconds, mido message)], in sending order.
        bpm: tempo; a second is ``bpm / 60 * ticks_per_beat`` ticks.
        meter: (numerator, denominator).
        ticks_per_beat: MIDI resolution.
        end_s: where the track ends (default: the last event).
        meter_changes: [(seconds, numerator, denominator)] written as time signatures at those times
            (a file's meter changes under ``--meter file``), before the messages of the same time.

    Returns:
        The file's bytes; :func:`qbdi_utils.pianoroll.read_midi` reads them.
    """
    import mido

    per_s = float(bpm) / 60.0 * ticks_per_beat
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(float(bpm)), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=int(meter[0]), denominator=int(meter[1]), time=0))
    track.append(mido.Message("program_change", channel=ANSWER_CHANNEL, program=0, time=0))
    metas = [(float(t), mido.MetaMessage("time_signature", numerator=int(n), denominator=int(d)))
             for t, n, d in meter_changes]
    if metas:  # merged in time order; the messages keep their sending order
        order = sorted([(t, 0, i) for i, (t, _) in enumerate(metas)] + [(t, 1, i) for i, (t, _) in enumerate(events)])
        events = [metas[i] if kind == 0 else events[i] for _, kind, i in order]
    now = 0
    for t, msg in events:
        tick = max(int(round(t * per_s)), now)
        track.append(msg.copy(time=tick - now))
        now = tick
    end = now if end_s is None else max(now, int(round(end_s * per_s)))
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    mid = mido.MidiFile(type=0, ticks_per_beat=int(ticks_per_beat))
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


@dataclass
class InputEvent:
    """One timed MIDI message of a source: performance time, roll-step position, message, source index."""

    time: float
    pos: object  # step position (Fraction for files, float for ports)
    msg: object
    source: int = 0


class FileSource:
    """A MIDI file played as a performer's stream at a fixed tempo (its beats, at ``bpm``).

    Args:
        path: the .mid file.
        spec: roll layout.
        max_steps: play only the first ``max_steps`` steps (an excerpt; notes sounding there end there).

    Attributes:
        piece: :func:`qbdi_utils.pianoroll.read_midi` of the file (pickup, tempo, warnings).
        end_step: the stream's end in steps (rounded like read_midi's roll length).
    """

    def __init__(self, path, spec: RollSpec = RollSpec(), max_steps: int | None = None):
        import mido

        self.path = Path(path)
        self.piece = pianoroll.read_midi(self.path, spec=spec)
        mid = mido.MidiFile(self.path, clip=True)
        tpb = mid.ticks_per_beat
        spq = spec.steps_per_quarter
        evs = []
        end_tick = 0
        for ti, track in enumerate(mid.tracks):
            tick = 0
            for i, msg in enumerate(track):
                tick += msg.time
                if not msg.is_meta and msg.type in ("note_on", "note_off", "control_change"):
                    evs.append((tick, ti, i, msg))
            end_tick = max(end_tick, tick)
        evs.sort(key=lambda e: (e[0], e[1], e[2]))
        self.events = [(Fraction(tick * spq, tpb), msg, ti) for tick, ti, _, msg in evs]
        self.end_step = max(self.piece.n_steps, round_step(Fraction(end_tick * spq, tpb)))
        if max_steps is not None:
            self.end_step = min(self.end_step, int(max_steps))
            self.events = [e for e in self.events if round_step(e[0]) < self.end_step]
        self._i = 0
        self.timeline = None

    def bind(self, timeline) -> None:
        """Set the timeline that turns step positions into times."""
        self.timeline = timeline

    def next_time(self) -> float:
        """Time of the next event (inf at the end)."""
        if self._i >= len(self.events):
            return math.inf
        return self.timeline.time_at(self.events[self._i][0])

    def wait(self, clock, deadline: float) -> None:
        """Sleep until ``deadline`` (the session includes :meth:`next_time` in it)."""
        clock.sleep_until(deadline)

    def take_due(self, now: float) -> list:
        """Events due at ``now``: [InputEvent]."""
        out = []
        while self._i < len(self.events):
            pos, msg, ti = self.events[self._i]
            t = self.timeline.time_at(pos)
            if t > now:
                break
            out.append(InputEvent(t, pos, msg, ti))
            self._i += 1
        return out

    @property
    def finished(self) -> bool:
        """All events delivered."""
        return self._i >= len(self.events)

    def close(self) -> None:
        """Nothing to release."""


def _port_backend(kind: str, name: str):
    """mido with the python-rtmidi backend, or MidiPortError (one line) when there is no MIDI system."""
    hint = f"pass a .mid file to --{kind} instead"
    if sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"):
        # checked before rtmidi is touched: ALSA would print its own lines on stderr
        raise MidiPortError(f"cannot open MIDI {kind}put port {name!r}: this system has no MIDI ports "
                            f"(no ALSA sequencer, /dev/snd/seq is missing; `sudo modprobe snd-seq`); {hint}")
    try:
        import rtmidi  # noqa: F401  (python-rtmidi, mido's port backend)
        import mido
    except ImportError:
        raise MidiPortError(f"cannot open MIDI {kind}put port {name!r}: python-rtmidi is not installed "
                            f"(pip install python-rtmidi); {hint}") from None
    backend = mido.Backend("mido.backends.rtmidi", load=True)
    return mido, backend


def _open_port(kind: str, name: str, **kw):
    mido, backend = _port_backend(kind, name)
    try:
        names = backend.get_input_names() if kind == "in" else backend.get_output_names()
    except Exception as exc:  # rtmidi raises its own SystemError subclasses when the MIDI system fails
        raise MidiPortError(f"cannot open MIDI {kind}put port {name!r}: the MIDI system failed "
                            f"({' '.join(str(exc).split())[:160]}); pass a .mid file to --{kind}") from None
    match = [n for n in names if n == name] or [n for n in names if n.startswith(name)]
    if not match:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise MidiPortError(f"no MIDI {kind}put port named {name!r} (available: {listed}); "
                            f"pass a port name from that list or a .mid file to --{kind}")
    try:
        return (backend.open_input if kind == "in" else backend.open_output)(match[0], **kw)
    except Exception as exc:
        raise MidiPortError(f"cannot open MIDI {kind}put port {match[0]!r}: {' '.join(str(exc).split())[:160]}") from None


def open_input_port(name: str, callback=None):
    """Open a MIDI input port by (the start of) its name through python-rtmidi.

    Raises:
        MidiPortError: no MIDI system, python-rtmidi missing, or no such port (one line).
    """
    return _open_port("in", name, callback=callback)


def open_output_port(name: str):
    """Open a MIDI output port by (the start of) its name through python-rtmidi.

    Raises:
        MidiPortError: no MIDI system, python-rtmidi missing, or no such port (one line).
    """
    return _open_port("out", name)


class PortSource:
    """A MIDI input port: messages timestamped on arrival (performance seconds of ``clock``).

    Args:
        name: the port's name (or its start).
        clock: the session's :class:`RealClock`.
    """

    def __init__(self, name: str, clock):
        self.clock = clock
        self.queue: queue.Queue = queue.Queue()
        self.port = open_input_port(name, callback=lambda m: self.queue.put((self.clock.now(), m)))
        self.end_step = None
        self.piece = None
        self.timeline = None
        self.finished = False

    def bind(self, timeline) -> None:
        """Set the timeline that turns times into step positions."""
        self.timeline = timeline

    def next_time(self) -> float:
        """Unknown in advance."""
        return math.inf

    def wait(self, clock, deadline: float) -> None:
        """Wait until ``deadline`` or until a message arrives."""
        left = min(clock.wall_seconds_until(deadline), 0.05)
        if left > clock.spin_s and self.queue.empty():
            try:
                item = self.queue.get(timeout=left - clock.spin_s)
                self.queue.put(item)
            except queue.Empty:
                pass
        elif left > 0:
            clock.sleep_until(min(deadline, clock.now() + left * clock.speed))

    def take_due(self, now: float) -> list:
        """Messages received so far."""
        out = []
        while True:
            try:
                t, msg = self.queue.get_nowait()
            except queue.Empty:
                return out
            self.timeline.on_message(msg, t)
            out.append(InputEvent(t, self.timeline.step_at(t), msg, 0))

    def close(self) -> None:
        """Close the port."""
        self.port.close()


class PortSink:
    """A MIDI output port (messages sent at once)."""

    def __init__(self, name: str):
        self.port = open_output_port(name)

    def send(self, msg, t: float) -> None:
        """Send ``msg`` now."""
        self.port.send(msg)

    def close(self) -> None:
        """Close the port."""
        self.port.close()
