"""Live query-based improvisation: a MIDI stream in, an answer in the corpus's style one bar later.

The performer's stream (a MIDI input port, or a MIDI file played in real time or, on a simulated
clock, as fast as possible) is cut into bars (:class:`BarSegmenter`, the same rolls as
:func:`qbdi_utils.pianoroll.read_midi` makes of a file). Each completed bar is encoded by the style
VAE, sent through the rate-limited channel at the settings of that moment and decoded exactly as
:func:`qbdi_utils.improvise.improvise` decodes (the model's threshold, binarized across bar lines, so a
note held over a bar line stays one note); the answer to bar k plays during bar k + 1 (one bar of
latency), with velocities taken from the performer's onsets in bar k (:class:`Scheduler`).

A bar is processed half a step (a 32nd note) before its bar line: every onset or release later than
that rounds to the bar line or after it, so nothing of the bar is missed and the answer is ready
before it is due. The settings (:class:`Controls`: bit budget, channel statistics, continuity) can be
changed while playing, through OSC (:class:`OscControl`: ``/qbdi/bits``, ``/qbdi/continuity``,
``/qbdi/stats``) or a MIDI control change mapped onto the explorer's bit scale
(:data:`qbdi_utils.improvise.BITS_SCALE`, :func:`cc_to_bits`); a change applies from the next bar whose
answer is computed after it arrived (the next bar the performer hears), and is logged with that bar
number (bars counted from 1).

Channel statistics live: the whole query is not known in advance, so ``"query"`` means *the bars
heard so far* (their latent means, the current bar included; after one bar the variance is zero and
the bar is sent as it is at every budget); ``"corpus"`` (the default of ``qbdi live``) uses the
statistics stored with the model and is the same from the first bar on; ``"posterior"`` and
``"prior"`` are as in :func:`qbdi_utils.channel.source_stats`. The channel noise of bar k is the k-th
row of ``default_rng(seed).standard_normal((N, L))`` whatever the budgets before it, so a run at a
fixed budget with corpus (or prior) statistics equals ``improvise`` at that budget, shifted by a bar.

``mode="navigate"`` answers with a latent-oracle walk over the bars heard so far
(:func:`qbdi_utils.navigate.query_oracle` rebuilt on them at every bar, its threshold of maximal
information rate searched again when the number of bars heard is a power of two and kept in between;
one :func:`qbdi_utils.navigate.navigate_path` step per bar): with continuity 1 it answers bar k with
bar k, i.e. plays like ``mode="improvise"``.

Clocks: :class:`RealClock` (optionally faster or slower) and :class:`SimulatedClock` (``--speed 0``,
tests). Timelines map the clock to roll steps: :class:`TempoTimeline` (a fixed tempo) or
:class:`MidiClockTimeline` (follow the input's MIDI clock, 24 pulses per quarter).

Used in: ``qbdi live``, benchmarks/bench_live.py, tests/test_live.py.
"""

from __future__ import annotations

import heapq
import io
import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from qbdi_utils import channel, pianoroll
from qbdi_utils.errors import MidiPortError, OptionError
from qbdi_utils.improvise import BITS_SCALE, STATS_MODES, EncodedQuery, parse_bits, query_warnings
from qbdi_utils.navigate import check_continuity, check_min_context, navigate_path, query_oracle
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = [
    "MODES",
    "OSC_ADDRESSES",
    "DEFAULT_OSC_HOST",
    "DEFAULT_OSC_PORT",
    "ANSWER_CHANNEL",
    "SimulatedClock",
    "RealClock",
    "TempoTimeline",
    "MidiClockTimeline",
    "BarSegmenter",
    "Settings",
    "Change",
    "Controls",
    "OscControl",
    "Answerer",
    "Scheduler",
    "Recorder",
    "FileSource",
    "PortSource",
    "PortSink",
    "BarRecord",
    "LiveSession",
    "LiveResult",
    "cc_to_bits",
    "parse_meter",
    "is_midi_file_name",
    "open_input_port",
    "open_output_port",
    "recording_bytes",
]

#: Answer modes: the channel on the bar just heard, or an oracle walk over the bars heard so far.
MODES: tuple = ("improvise", "navigate")

#: OSC addresses that change the settings (the value types each takes are in :meth:`Controls.submit`).
OSC_ADDRESSES: tuple = ("/qbdi/bits", "/qbdi/continuity", "/qbdi/stats")

#: OSC is bound to the loopback interface unless asked otherwise.
DEFAULT_OSC_HOST = "127.0.0.1"

#: Default UDP port of the OSC controls.
DEFAULT_OSC_PORT = 9000

#: MIDI channel (0-based) the answer is played on.
ANSWER_CHANNEL = 0

# the navigation walk's random stream: SeedSequence([seed, _WALK_STREAM]), apart from the channel's
_WALK_STREAM = 0x6C697665


# ----------------------------------------------------------------------------------------------
# small parsers


def cc_to_bits(value: int, scale=BITS_SCALE):
    """A MIDI control-change value 0..127 as a stop of the explorer's bit scale.

    The 128 values are spread evenly over the stops, left to right: 0 is the first stop (0 bits), 127
    the last (full rate, ``None``); stop ``round(value * (len(scale) - 1) / 127)``.

    Args:
        value: control value 0..127.
        scale: bit budgets, increasing, ``None`` last (default :data:`qbdi_utils.improvise.BITS_SCALE`).

    Returns:
        bits per frame (int) or ``None`` (full rate).

    Raises:
        OptionError: value outside 0..127.
    """
    v = int(value)
    if not 0 <= v <= 127:
        raise OptionError(f"control value {value} outside 0..127")
    scale = list(scale)
    return scale[int(round(v * (len(scale) - 1) / 127))]


def parse_meter(text: str, spec: RollSpec = RollSpec()) -> tuple[int, int, int]:
    """``"4/4"`` -> (numerator, denominator, bar length in steps); the bar must fit in one frame.

    Args:
        text: "N/D" with D a power of two.
        spec: roll layout.

    Returns:
        (numerator, denominator, steps per bar).

    Raises:
        OptionError: malformed, a bar of a fractional number of steps, or longer than a frame.
    """
    try:
        num, den = (int(x) for x in str(text).strip().split("/"))
    except ValueError:
        raise OptionError(f"--meter {text!r} must look like 4/4") from None
    if num < 1 or den < 1 or den & (den - 1):
        raise OptionError(f"--meter {text!r}: numerator >= 1 and a power-of-two denominator")
    steps = pianoroll.bar_steps(num, den, spec)
    if steps != int(steps) or steps < 1:
        raise OptionError(f"--meter {text}: a bar of {steps:g} steps is not a whole number of "
                          f"1/{spec.steps_per_quarter} quarters")
    if steps > spec.steps_per_frame:
        raise OptionError(f"--meter {text}: a bar of {int(steps)} steps is longer than the model's "
                          f"{spec.steps_per_frame}-step frame; use a meter of at most "
                          f"{spec.quarters_per_frame:g} quarters")
    return num, den, int(steps)


def is_midi_file_name(text: str) -> bool:
    """Whether an --in/--out value names a MIDI file (suffix .mid/.midi) rather than a port."""
    return str(text).lower().endswith((".mid", ".midi"))


# ----------------------------------------------------------------------------------------------
# clocks and timelines


class SimulatedClock:
    """A clock that jumps to whatever time is waited for: a run as fast as possible, deterministic."""

    realtime = False

    def __init__(self):
        self._now = 0.0

    def start(self) -> None:
        """Time 0 is now."""
        self._now = 0.0

    def now(self) -> float:
        """Seconds since the start."""
        return self._now

    def sleep_until(self, t: float) -> None:
        """Advance to ``t`` (never backwards)."""
        if t > self._now and math.isfinite(t):
            self._now = float(t)


class RealClock:
    """Wall-clock seconds since construction (``time.perf_counter``), scaled by ``speed``.

    Args:
        speed: performance seconds per wall second (1 = real time, 2 = twice as fast).
        spin_s: the last part of a wait is spent polling the clock instead of sleeping, for
            sub-millisecond wake-ups.
    """

    realtime = True

    def __init__(self, speed: float = 1.0, spin_s: float = 0.0015):
        if not speed > 0:
            raise OptionError(f"clock speed {speed} must be > 0")
        self.speed = float(speed)
        self.spin_s = float(spin_s)
        self._t0 = time.perf_counter()

    def start(self) -> None:
        """Time 0 is now (a session starts its clock when it starts playing)."""
        self._t0 = time.perf_counter()

    def now(self) -> float:
        """Performance seconds since the start."""
        return (time.perf_counter() - self._t0) * self.speed

    def wall_seconds_until(self, t: float) -> float:
        """Wall seconds from now until performance time ``t`` (negative when past)."""
        return (t - self.now()) / self.speed

    def sleep_until(self, t: float) -> None:
        """Wait until performance time ``t``."""
        if not math.isfinite(t):
            time.sleep(0.05)
            return
        while True:
            left = self.wall_seconds_until(t)
            if left <= 0:
                return
            if left > self.spin_s:
                time.sleep(left - self.spin_s)
            # else: poll until due


class TempoTimeline:
    """Roll steps at a fixed tempo: step 0 at time 0.

    Args:
        bpm: quarter notes per minute.
        spec: roll layout (steps per quarter).
    """

    def __init__(self, bpm: float, spec: RollSpec = RollSpec()):
        if not (math.isfinite(bpm) and bpm > 0):
            raise OptionError(f"--tempo {bpm} must be a positive number of beats per minute")
        self.bpm = float(bpm)
        self.step_s = 60.0 / (self.bpm * spec.steps_per_quarter)

    def time_at(self, step) -> float:
        """Seconds at roll step ``step`` (any real number)."""
        return float(step) * self.step_s

    def step_at(self, t: float) -> float:
        """Roll step (fractional) at ``t`` seconds."""
        return t / self.step_s

    def on_message(self, msg, t: float) -> None:
        """A fixed tempo ignores MIDI clock messages."""


class MidiClockTimeline:
    """Roll steps following an incoming MIDI clock (24 pulses per quarter; ``start`` restarts at 0).

    Step positions between pulses are extrapolated with the mean pulse interval of the last
    quarter note; before the second pulse nothing is scheduled (times are infinite).

    Args:
        spec: roll layout.
        pulses_per_quarter: 24 in the MIDI standard.
    """

    def __init__(self, spec: RollSpec = RollSpec(), pulses_per_quarter: int = 24):
        self.ppq = int(pulses_per_quarter)
        self.pulses_per_step = self.ppq / spec.steps_per_quarter
        self.count = -1  # pulses since start (the first pulse is position 0)
        self.times: list[float] = []

    @property
    def bpm(self) -> float:
        """Current tempo estimate (nan before two pulses)."""
        iv = self._interval()
        return 60.0 / (iv * self.ppq) if iv else float("nan")

    def _interval(self) -> float | None:
        if len(self.times) < 2:
            return None
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)

    def on_message(self, msg, t: float) -> None:
        """Feed a ``clock``/``start`` message received at ``t``."""
        if msg.type == "start":
            self.count, self.times = -1, []
        elif msg.type == "clock":
            self.count += 1
            self.times = (self.times + [t])[-(self.ppq + 1):]

    def time_at(self, step) -> float:
        """Predicted seconds at roll step ``step`` (inf until the tempo is known)."""
        iv = self._interval()
        if iv is None:
            return math.inf
        return self.times[-1] + (float(step) * self.pulses_per_step - self.count) * iv

    def step_at(self, t: float) -> float:
        """Roll step at ``t``: the last pulse's position plus the extrapolation (at most one pulse)."""
        iv = self._interval()
        if iv is None:
            return max(self.count, 0) / self.pulses_per_step
        ahead = min(max(t - self.times[-1], 0.0) / iv, 1.0)
        return (self.count + ahead) / self.pulses_per_step


# ----------------------------------------------------------------------------------------------
# bars of the incoming stream


def _round_step(pos) -> int:
    """Nearest step, halves up (read_midi's rounding): ``floor(pos + 1/2)``."""
    return math.floor(pos + Fraction(1, 2)) if isinstance(pos, Fraction) else math.floor(pos + 0.5)


class BarSegmenter:
    """Notes of an incoming stream cut into bar rolls with the roll contract of :mod:`qbdi_utils.pianoroll`.

    Onsets and releases are rounded to the nearest step and every note lasts at least one step; a
    repeated note_on of a sounding pitch (same source and channel) ends it and starts a new note; the
    drum channel (index 9) and pitches outside the layout are left out and counted in ``dropped``;
    notes of one pitch from two sources merge. So the bar rolls of a file's messages, joined, equal
    ``to_frames(read_midi(file).roll, offset_steps=...)``.

    Bar ``k`` (0-based) covers steps ``[first + k * bar_len, first + (k + 1) * bar_len)`` with
    ``first = -((-offset_steps) mod bar_len)``: a pickup of ``offset_steps`` steps ends bar 0.

    Args:
        spec: roll layout.
        bar_len: steps per bar (<= spec.steps_per_frame).
        offset_steps: step of the first full bar line (a pickup's length), 0 if none.
    """

    def __init__(self, spec: RollSpec = RollSpec(), bar_len: int | None = None, offset_steps: int = 0):
        self.spec = spec
        self.bar_len = int(spec.steps_per_frame if bar_len is None else bar_len)
        self.first = -((-int(offset_steps)) % self.bar_len)
        self.sounding: dict = {}  # (source, channel, pitch) -> (start step, velocity)
        self.done: list = []  # (pitch, start, end, velocity)
        self.dropped: dict = {}

    def bar_start(self, k: int) -> int:
        """First step of bar ``k`` (0-based)."""
        return self.first + int(k) * self.bar_len

    def bar_of(self, step: int) -> int:
        """Index of the bar holding ``step``."""
        return (int(step) - self.first) // self.bar_len

    def note_on(self, pos, channel: int, pitch: int, velocity: int, source: int = 0) -> None:
        """A note_on (velocity > 0) at step position ``pos`` (fractional)."""
        if channel == 9:
            self.dropped["drum"] = self.dropped.get("drum", 0) + 1
            return
        key = (source, channel, pitch)
        if key in self.sounding:
            self.note_off(pos, channel, pitch, source)
        self.sounding[key] = (_round_step(pos), int(velocity))

    def note_off(self, pos, channel: int, pitch: int, source: int = 0) -> None:
        """A note_off (or note_on with velocity 0) at step position ``pos``."""
        if channel == 9:
            return
        start = self.sounding.pop((source, channel, pitch), None)
        if start is None:
            return
        s, vel = start
        e = max(_round_step(pos), s + 1)
        if self.spec.min_pitch <= pitch <= self.spec.max_pitch:
            self.done.append((pitch, s, e, vel))
        else:
            self.dropped["out_of_range"] = self.dropped.get("out_of_range", 0) + 1

    def message(self, msg, pos, source: int = 0) -> None:
        """Feed a mido message (only note messages matter here)."""
        if msg.type == "note_on" and msg.velocity > 0:
            self.note_on(pos, msg.channel, msg.note, msg.velocity, source)
        elif msg.type in ("note_on", "note_off"):
            self.note_off(pos, msg.channel, msg.note, source)

    def end_all(self, pos) -> None:
        """End every sounding note at ``pos`` (the end of a stream)."""
        for source, ch, p in list(self.sounding):
            self.note_off(pos, ch, p, source)

    def take_bar(self, k: int) -> tuple[np.ndarray, list]:
        """The roll of bar ``k`` and its onsets; forgets notes that ended before the bar's end.

        Valid once the stream has passed ``bar_start(k + 1) - 1/2`` (later events round to the next
        bar line or after it). Notes still sounding are taken to sound to the bar's end.

        Returns:
            (rows (bar_len, spec.n_columns) uint8 valid-roll rows, onsets [(step in bar, velocity)]).
        """
        out = self.peek_bar(k)
        b = self.bar_start(k) + self.bar_len
        self.done = [note for note in self.done if note[2] > b]
        return out

    def peek_bar(self, k: int) -> tuple[np.ndarray, list]:
        """What :meth:`take_bar` would return now, forgetting nothing (for an early guess)."""
        a = self.bar_start(k)
        b = a + self.bar_len
        n = self.spec.n_pitches
        rows = np.zeros((self.bar_len, self.spec.n_columns), np.uint8)
        onsets = []
        notes = [(p, s, e, v) for p, s, e, v in self.done if e > a and s < b]
        notes += [(p, s, b, v) for (_, _, p), (s, v) in self.sounding.items()
                  if s < b and self.spec.min_pitch <= p <= self.spec.max_pitch]
        for p, s, e, v in notes:
            k_col = p - self.spec.min_pitch
            rows[max(s, a) - a:min(e, b) - a, k_col] = 1
            if s >= a:
                rows[s - a, n + k_col] = 1
                onsets.append((s - a, v))
        onsets.sort()
        return rows, onsets


# ----------------------------------------------------------------------------------------------
# controls


@dataclass(frozen=True)
class Settings:
    """What shapes one bar's answer: bit budget (None = full rate), channel statistics, continuity."""

    bits: int | None = None
    stats: str = "corpus"
    continuity: float = 1.0


@dataclass(frozen=True)
class Change:
    """One applied change: from which bar (1-based, the bar it is heard in), what, from where."""

    bar: int
    name: str
    old: object
    new: object
    source: str

    def text(self) -> str:
        """``"bar 5: bits 64 -> 16 (osc)"``."""
        def show(v):
            return "full" if (self.name == "bits" and v is None) else (f"{v:g}" if isinstance(v, float) else str(v))
        return f"bar {self.bar}: {self.name} {show(self.old)} -> {show(self.new)} ({self.source})"


class Controls:
    """The settings while playing; changes arrive from any thread and apply from the next bar.

    :meth:`submit` checks a value at once (a bad one is logged and dropped, never raised) and queues
    it; :meth:`settings_for` applies everything queued before it is called and logs each change with
    the bar it is heard from.

    Args:
        settings: the initial :class:`Settings`.
        log: callable taking one line of text (default: print to stderr).
        navigate: whether continuity steers anything (``mode="navigate"``); otherwise a continuity
            change is logged and ignored.
    """

    def __init__(self, settings: Settings, log=None, navigate: bool = False):
        self._settings = settings
        self.navigate = bool(navigate)
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self.log = log or (lambda line: print(f"qbdi live: {line}", file=sys.stderr, flush=True))
        self.changes: list[Change] = []
        self.rejected: list[str] = []
        self.received = 0  # messages submitted (accepted or not), for tests waiting on a sender
        self._lock = threading.Lock()

    @property
    def current(self) -> Settings:
        """The settings the last bar was answered with (queued changes not applied yet)."""
        return self._settings

    def _reject(self, line: str) -> None:
        self.rejected.append(line)
        self.log(line)

    def submit(self, name: str, value, source: str = "osc") -> bool:
        """Queue a change of ``name`` ("bits", "stats" or "continuity") to ``value``.

        bits: "full" or a number >= 0 (a float is rounded to whole bits); stats: one of
        :data:`qbdi_utils.improvise.STATS_MODES`; continuity: a number in [0, 1].

        Returns:
            whether the value was accepted (a rejected one is logged).
        """
        with self._lock:
            self.received += 1
        try:
            if name == "bits":
                if isinstance(value, float) and math.isfinite(value) and value >= 0:
                    value = int(round(value))  # a fader sends floats
                v = parse_bits(value)
            elif name == "stats":
                v = str(value)
                if v not in STATS_MODES:
                    raise OptionError(f"stats {value!r} is not one of {', '.join(STATS_MODES)}")
            elif name == "continuity":
                if not self.navigate:
                    raise OptionError("continuity steers --mode navigate only")
                if isinstance(value, (bool, np.bool_)) or (isinstance(value, str) and not value.strip()):
                    raise OptionError("continuity is empty")
                v = check_continuity(value)
            else:
                raise OptionError(f"unknown setting {name!r}")
        except OptionError as exc:
            self._reject(f"ignored ({source}): {exc}")
            return False
        self._pending.put((name, v, source))
        return True

    def unknown(self, what: str) -> None:
        """Log a message that addresses nothing known (counted as received)."""
        with self._lock:
            self.received += 1
        self._reject(what)

    def settings_for(self, bar: int) -> Settings:
        """Apply the queued changes and return the settings of the answer heard in ``bar`` (1-based)."""
        s = self._settings
        while True:
            try:
                name, v, source = self._pending.get_nowait()
            except queue.Empty:
                break
            old = getattr(s, name)
            if old == v:
                continue
            s = replace(s, **{name: v})
            change = Change(bar, name, old, v, source)
            self.changes.append(change)
            self.log(change.text())
        self._settings = s
        return s


class OscControl:
    """An OSC server (UDP, python-osc) feeding :class:`Controls`: ``/qbdi/bits 64``, ``/qbdi/bits full``,
    ``/qbdi/continuity 0.7``, ``/qbdi/stats corpus``. Unknown addresses and bad values are logged.

    Args:
        controls: the :class:`Controls` to feed.
        host: interface to bind (default loopback).
        port: UDP port (0: any free port; see :attr:`address`).

    Raises:
        OptionError: the port cannot be bound (in use, or no permission).
    """

    def __init__(self, controls: Controls, host: str = DEFAULT_OSC_HOST, port: int = DEFAULT_OSC_PORT):
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import BlockingOSCUDPServer

        self.controls = controls
        d = Dispatcher()
        for address in OSC_ADDRESSES:
            d.map(address, self._handle)
        d.set_default_handler(self._unknown)
        try:
            self.server = BlockingOSCUDPServer((host, int(port)), d)
        except OSError as exc:
            raise OptionError(f"cannot listen for OSC on {host}:{port} ({exc.strerror or exc}); "
                              "pick another --osc-port, or --osc-port off") from None
        self.address = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="qbdi-osc", daemon=True)
        self._thread.start()

    def _handle(self, address: str, *args) -> None:
        name = address.rsplit("/", 1)[-1]
        if len(args) != 1:
            self.controls.unknown(f"ignored (osc): {address} takes one value, got {len(args)}")
            return
        self.controls.submit(name, args[0], "osc")

    def _unknown(self, address: str, *args) -> None:
        self.controls.unknown(f"ignored (osc): unknown address {address} (known: {', '.join(OSC_ADDRESSES)})")

    def close(self) -> None:
        """Stop the server and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)


# ----------------------------------------------------------------------------------------------
# answering a bar


class Answerer:
    """Encode a heard bar, send it (or an oracle walk's choice) through the channel, decode it.

    Decoding is :func:`qbdi_utils.improvise.improvise`'s: ``model.decode`` of the channel output, the
    model's threshold, :func:`qbdi_utils.pianoroll.binarize` continued from the previous answer's last
    row (so the answers, joined, equal ``binarize`` of all frames at once).

    Args:
        model: a StyleVAE.
        seed: seed of the channel noise (and of the walk).
        mode: "improvise" or "navigate".
        min_context: shortest shared context (bars) of a walk's jump.
        bar_len: steps per bar (a shorter bar is padded with silence to a frame; its answer cut back).
    """

    def __init__(self, model, seed: int = 0, mode: str = "improvise", min_context: int = 1,
                 bar_len: int | None = None):
        if mode not in MODES:
            raise OptionError(f"--mode {mode!r} is not one of {', '.join(MODES)}")
        self.model = model
        self.spec = model.spec
        self.bar_len = int(self.spec.steps_per_frame if bar_len is None else bar_len)
        self.mode = mode
        self.min_context = check_min_context(min_context)
        self.threshold = float(model.threshold)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.walk_rng = np.random.default_rng(np.random.SeedSequence([self.seed, _WALK_STREAM]))
        self.frames: list[np.ndarray] = []
        self.means: list[np.ndarray] = []
        self.logvars: list[np.ndarray] = []
        self.state = -1  # the walk's current bar (0-based)
        self._prev_row = np.zeros(self.spec.n_columns, np.uint8)
        self._alloc_cache: dict = {}
        self._oracle_threshold = None

    def snapshot(self) -> tuple:
        """The answerer's state (heard bars, walk, random streams, last row), for :meth:`restore`."""
        return (list(self.frames), list(self.means), list(self.logvars), self.state,
                self.rng.bit_generator.state, self.walk_rng.bit_generator.state, self._prev_row.copy(),
                self._oracle_threshold)

    def restore(self, snap: tuple) -> None:
        """Go back (or forward) to a :meth:`snapshot`."""
        frames, means, logvars, self.state, rng, walk, prev, self._oracle_threshold = snap
        self.frames, self.means, self.logvars = list(frames), list(means), list(logvars)
        self.rng.bit_generator.state = rng
        self.walk_rng.bit_generator.state = walk
        self._prev_row = prev.copy()

    def _allocation(self, settings: Settings, mean: np.ndarray, logvar: np.ndarray):
        key = (settings.bits, settings.stats)
        fixed = settings.stats in ("corpus", "prior")
        if fixed and key in self._alloc_cache:
            return self._alloc_cache[key]
        alloc = channel.allocate(mean, logvar, int(settings.bits), mode=settings.stats,
                                 corpus_stats=getattr(self.model, "corpus_stats", None))
        if fixed:
            self._alloc_cache[key] = alloc
        return alloc

    def _walk(self, continuity: float) -> int:
        n = len(self.means)
        if self.state < 0 or n == 1:
            self.state = 0 if self.state < 0 else self.state
            return self.state
        mean = np.stack(self.means)
        enc = EncodedQuery(query=Piece(roll=np.zeros((0, self.spec.n_columns), np.uint8), spec=self.spec,
                                       name="heard"),
                           frames=np.stack(self.frames), mean=mean, logvar=np.stack(self.logvars),
                           pad_steps=0, warnings=[])
        if n & (n - 1) == 0 or self._oracle_threshold is None:  # re-chosen at 2, 4, 8, 16, ... bars
            _, lo = query_oracle(self.model, enc)
            self._oracle_threshold = lo.threshold
        else:
            _, lo = query_oracle(self.model, enc, self._oracle_threshold)
        path, _ = navigate_path(lo.oracle, 2, continuity, self.min_context, self.walk_rng, start=self.state)
        self.state = int(path[1])
        return self.state

    def answer(self, rows: np.ndarray, settings: Settings) -> tuple[np.ndarray, int]:
        """The answer to one heard bar.

        Args:
            rows: (bar_len, spec.n_columns) uint8 rows of the heard bar.
            settings: the settings of this bar.

        Returns:
            (answer rows (bar_len, spec.n_columns) uint8, valid continuing the previous answer;
            the heard bar (0-based) the answer was made from).
        """
        spec = self.spec
        frame = np.zeros((spec.steps_per_frame, spec.n_columns), np.uint8)
        frame[:self.bar_len] = rows
        frame = frame.reshape(1, spec.frame_size)
        mean, logvar = self.model.encode(frame)
        self.frames.append(frame[0])
        self.means.append(np.asarray(mean[0], np.float32))
        self.logvars.append(np.asarray(logvar[0], np.float32))
        k = len(self.means) - 1
        src = self._walk(settings.continuity) if self.mode == "navigate" else k
        z_e = self.means[src][None]
        if settings.bits is None:
            self.rng.standard_normal((1, self.model.latent_dim))  # bar k's noise is drawn whatever the budget
            z_d = np.array(z_e, np.float32)
        else:
            heard_mean = np.stack(self.means)
            heard_logvar = np.stack(self.logvars)
            if self.mode == "navigate" and settings.stats == "posterior":
                heard_mean, heard_logvar = heard_mean[[src]], heard_logvar[[src]]
            alloc = self._allocation(settings, heard_mean, heard_logvar)
            mu = alloc.mu[-1] if np.ndim(alloc.mu) == 2 else alloc.mu
            z_d = np.asarray(channel.berger_channel(z_e, mu, alloc.var, alloc.bits, self.rng), np.float32)
        probs = self.model.decode(z_d).reshape(spec.steps_per_frame, spec.n_columns)[:self.bar_len]
        both = pianoroll.binarize(np.vstack([self._prev_row[None].astype(np.float32), probs]),
                                  self.threshold, spec=spec)
        out = both[1:]
        self._prev_row = out[-1].copy()
        return out, src


# ----------------------------------------------------------------------------------------------
# scheduling and recording


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

    def send(self, msg, t: float) -> None:
        """Record ``msg`` sent at ``t`` seconds."""
        self.events.append((float(t), msg))

    def midi_bytes(self, end_s: float | None = None) -> bytes:
        """The recording as a type-0 MIDI file (see :func:`recording_bytes`)."""
        return recording_bytes(self.events, self.bpm, self.meter, self.ticks_per_beat, end_s)


def recording_bytes(events, bpm: float, meter=(4, 4), ticks_per_beat: int = 480,
                    end_s: float | None = None) -> bytes:
    """Timed messages as the bytes of a type-0 MIDI file (tempo and meter at tick 0).

    Args:
        events: [(seconds, mido message)], in sending order.
        bpm: tempo; a second is ``bpm / 60 * ticks_per_beat`` ticks.
        meter: (numerator, denominator).
        ticks_per_beat: MIDI resolution.
        end_s: where the track ends (default: the last event).

    Returns:
        The file's bytes; :func:`qbdi_utils.pianoroll.read_midi` reads them.
    """
    import mido

    per_s = float(bpm) / 60.0 * ticks_per_beat
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(float(bpm)), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=int(meter[0]), denominator=int(meter[1]), time=0))
    track.append(mido.Message("program_change", channel=ANSWER_CHANNEL, program=0, time=0))
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


def _velocity_at(step: int, onsets: list, fallback: int) -> int:
    """Velocity of the heard onset nearest to ``step`` (ties: the earlier), else ``fallback``."""
    if not onsets:
        return fallback
    return min(onsets, key=lambda o: (abs(o[0] - step), o[0]))[1]


class Scheduler:
    """The answers' note events in step time, notes held over a bar line carried across answers.

    Args:
        spec: roll layout.
    """

    def __init__(self, spec: RollSpec = RollSpec()):
        self.spec = spec
        self.heap: list = []  # (step, order, seq, message); note_offs (1) before note_ons (2) at a step
        self._seq = 0
        self.pending_off: dict = {}  # pitch -> seq of the note_off at the end of the last answer
        self.cancelled: set = set()
        self.sounding: set = set()  # pitches sounding on the output
        self.velocity = 80
        self.built: dict = {}  # seq -> mido message made ahead of time (see :meth:`prepare`)

    def _push(self, step: int, order: int, event: tuple) -> int:
        self._seq += 1
        heapq.heappush(self.heap, (int(step), order, self._seq, event))
        return self._seq

    @staticmethod
    def _message(event: tuple):
        import mido

        kind, note, velocity = event
        return mido.Message(kind, channel=ANSWER_CHANNEL, note=note, velocity=velocity)

    def prepare(self, budget_s: float) -> None:
        """Make the mido messages of scheduled events ahead of time, for at most ``budget_s`` seconds
        (a message costs tens of microseconds to make, so a chord made at its due time would spread)."""
        if budget_s <= 0 or len(self.built) >= len(self.heap):
            return
        t_end = time.perf_counter() + budget_s
        for st, _, seq, event in sorted(self.heap)[:256]:
            if seq not in self.built and seq not in self.cancelled:
                self.built[seq] = self._message(event)
                if time.perf_counter() > t_end:
                    return

    def add(self, rows: np.ndarray, start: int, onsets: list) -> int:
        """Schedule answer ``rows`` (a valid continuation of the previous answer) from step ``start``.

        A pitch whose note reached the end of the previous answer and sounds, not articulated, on
        the first row here continues: its note_off at ``start`` is cancelled and no note_on is sent
        (unless that note_off was already sent, when the note starts again). Velocities: the heard
        onset nearest in the bar, else the heard bar's mean velocity, else the last one used.

        Args:
            rows: (T, spec.n_columns) uint8 answer rows.
            start: step of the first row.
            onsets: [(step in bar, velocity)] of the heard bar.

        Returns:
            the number of notes started.
        """
        spec = self.spec
        n = spec.n_pitches
        play, art = rows[:, :n] != 0, rows[:, n:] != 0
        if onsets:
            self.velocity = int(round(np.mean([v for _, v in onsets])))
        held, self.pending_off = self.pending_off, {}
        T = rows.shape[0]
        n_started = 0
        for k in np.flatnonzero(play.any(axis=0)):
            pitch = int(spec.min_pitch + k)
            col = play[:, k]
            continuing = pitch in held and col[0] and not art[0, k]
            if continuing:
                self.cancelled.add(held[pitch])
            s = 0
            while s < T:
                if not col[s]:
                    s += 1
                    continue
                e = s + 1
                while e < T and col[e] and not art[e, k]:
                    e += 1
                if not (s == 0 and continuing):
                    vel = max(1, min(127, int(_velocity_at(s, onsets, self.velocity))))
                    self._push(start + s, 2, ("note_on", pitch, vel))
                    n_started += 1
                off = self._push(start + e, 1, ("note_off", pitch, 0))
                if e == T:
                    self.pending_off[pitch] = off
                s = e
        return n_started

    def next_step(self) -> float:
        """Step of the next event due (inf when none)."""
        while self.heap and self.heap[0][2] in self.cancelled:
            self.cancelled.discard(heapq.heappop(self.heap)[2])
        return self.heap[0][0] if self.heap else math.inf

    def pop(self) -> tuple[int, object]:
        """The next event: (step, message); call after :meth:`next_step` says one is there."""
        st, _, seq, event = heapq.heappop(self.heap)
        msg = self.built.pop(seq, None) or self._message(event)
        if msg.type == "note_on":
            self.sounding.add(msg.note)
        else:
            self.sounding.discard(msg.note)
            if self.pending_off.get(msg.note) == seq:
                del self.pending_off[msg.note]  # sent: a continuation must start the note again
        return st, msg

    def all_notes_off(self) -> list:
        """Messages silencing the output: a note_off per sounding note, then CC 123 (all notes off);
        everything still scheduled is dropped."""
        import mido

        out = [mido.Message("note_off", channel=ANSWER_CHANNEL, note=p, velocity=0) for p in sorted(self.sounding)]
        out.append(mido.Message("control_change", channel=ANSWER_CHANNEL, control=123, value=0))
        self.sounding.clear()
        self.heap.clear()
        self.pending_off.clear()
        self.cancelled.clear()
        self.built.clear()
        return out


# ----------------------------------------------------------------------------------------------
# inputs and outputs


@dataclass
class _Event:
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
        self.end_step = max(self.piece.n_steps, _round_step(Fraction(end_tick * spq, tpb)))
        if max_steps is not None:
            self.end_step = min(self.end_step, int(max_steps))
            self.events = [e for e in self.events if _round_step(e[0]) < self.end_step]
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
        """Events due at ``now``: [_Event]."""
        out = []
        while self._i < len(self.events):
            pos, msg, ti = self.events[self._i]
            t = self.timeline.time_at(pos)
            if t > now:
                break
            out.append(_Event(t, pos, msg, ti))
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
            out.append(_Event(t, self.timeline.step_at(t), msg, 0))

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


# ----------------------------------------------------------------------------------------------
# the session


@dataclass
class BarRecord:
    """How one heard bar was answered.

    Attributes:
        heard: the heard bar (1-based).
        plays_in: the bar the answer is heard in (heard + 1).
        settings: the :class:`Settings` of the answer.
        source_bar: the heard bar (1-based) the answer was made from (navigate mode: the walk's state).
        n_notes: notes started by the answer (continuations of held notes not counted).
        process_s: seconds from closing the bar to its answer scheduled (cutting the bar, then encoding,
            transmitting and decoding it unless the early guess stood, and scheduling the notes).
        compute_s: seconds of encoding, transmitting and decoding (early when the guess stood).
    """

    heard: int
    plays_in: int
    settings: Settings
    source_bar: int
    n_notes: int
    process_s: float
    compute_s: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"heard_bar": self.heard, "plays_in_bar": self.plays_in,
                "bits": "full" if self.settings.bits is None else self.settings.bits,
                "stats": self.settings.stats, "continuity": self.settings.continuity,
                "source_bar": self.source_bar, "n_notes": self.n_notes,
                "process_ms": round(self.process_s * 1000, 3), "compute_ms": round(self.compute_s * 1000, 3)}


@dataclass
class LiveResult:
    """What a session did.

    Attributes:
        bars: one :class:`BarRecord` per heard bar.
        changes: the applied :class:`Change` s, in order.
        rejected: the logged lines of ignored control messages.
        timing_errors_s: per sent message, sending time minus scheduled time (seconds).
        recording: the recording's MIDI bytes.
        interrupted: the session ended on Ctrl-C.
        bpm: the tempo (estimated, when following a MIDI clock).
        warnings: what about the input the model cannot take as it is.
        n_guessed: bars whose early guess (a step before closing) stood.
    """

    bars: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    timing_errors_s: list = field(default_factory=list)
    recording: bytes = b""
    interrupted: bool = False
    bpm: float = 120.0
    warnings: list = field(default_factory=list)
    n_guessed: int = 0

    def log_dict(self) -> dict:
        """The session as a JSON-ready dict (what ``qbdi live --log`` writes)."""
        return {"bpm": self.bpm, "interrupted": self.interrupted,
                "changes": [{"bar": c.bar, "setting": c.name,
                             "old": "full" if c.name == "bits" and c.old is None else c.old,
                             "new": "full" if c.name == "bits" and c.new is None else c.new,
                             "source": c.source} for c in self.changes],
                "ignored": list(self.rejected), "warnings": list(self.warnings),
                "bars": [b.to_dict() for b in self.bars]}


class LiveSession:
    """One live run: a source, the model's answers one bar late, outputs and a recording.

    Args:
        model: a StyleVAE.
        source: a :class:`FileSource` or :class:`PortSource`.
        controls: the :class:`Controls`.
        clock: a :class:`SimulatedClock` (file sources only) or :class:`RealClock`.
        timeline: a :class:`TempoTimeline` or :class:`MidiClockTimeline`.
        sinks: objects with ``send(msg, t)`` (output ports) besides the recorder.
        meter: (numerator, denominator, steps per bar) (:func:`parse_meter`).
        seed, mode, min_context: see :class:`Answerer`.
        cc_bits: controller number whose changes set the bit budget (None: none).
        guess: answer each bar a step before it closes and keep that answer when nothing changed in
            the last step (the same notes, the work off the critical path; default on a real clock).
        on_bar: called with each :class:`BarRecord` after its answer is scheduled (tests, progress).
        log: one-line logger (default stderr).
    """

    def __init__(self, model, source, controls: Controls, clock, timeline, *, sinks=(), meter=(4, 4, 16),
                 seed: int = 0, mode: str = "improvise", min_context: int = 1, cc_bits: int | None = None,
                 guess: bool | None = None, on_bar=None, log=None):
        self.model = model
        self.spec = model.spec
        self.source = source
        self.controls = controls
        self.clock = clock
        self.timeline = timeline
        self.sinks = list(sinks)
        self.meter = tuple(meter)
        self.cc_bits = cc_bits
        self.guess = bool(clock.realtime if guess is None else guess)
        self.on_bar = on_bar
        self.log = log or controls.log
        offset = source.piece.bar_offset_steps if source.piece is not None else 0
        self.segmenter = BarSegmenter(self.spec, self.meter[2], offset)
        self.answerer = Answerer(model, seed, mode, min_context, self.meter[2])
        self.scheduler = Scheduler(self.spec)
        self.recorder = Recorder(getattr(timeline, "bpm", 120.0) if isinstance(timeline, TempoTimeline) else 120.0,
                                 self.meter[:2])
        self.result = LiveResult()
        self._guessed = None
        if source.piece is not None:
            self.result.warnings = query_warnings(model, source.piece)
        source.bind(timeline)

    def _send(self, msg, t_sched: float) -> None:
        now = self.clock.now()
        for s in self.sinks:
            s.send(msg, now)
        self.recorder.send(msg, now)
        if math.isfinite(t_sched):
            self.result.timing_errors_s.append(now - t_sched)

    def _input(self, ev: _Event) -> None:
        msg = ev.msg
        if msg.type in ("clock", "start", "stop", "continue"):
            return
        if msg.type == "control_change":
            if self.cc_bits is not None and msg.control == self.cc_bits:
                self.controls.submit("bits", cc_to_bits(msg.value), f"cc {msg.control}")
            return
        self.segmenter.message(msg, ev.pos, ev.source)

    def _guess(self, k: int) -> None:
        """Answer bar ``k`` a step before it can be closed, keeping the answer and the state it leads to.

        :meth:`_process` uses the guess only when the bar's rows and the settings are still the same,
        so the answer is exactly what answering at the closing time gives; the work is done early.
        """
        t0 = time.perf_counter()
        rows, _ = self.segmenter.peek_bar(k)
        settings = self.controls.settings_for(k + 2)
        before = self.answerer.snapshot()
        answer, src = self.answerer.answer(rows, settings)
        self._guessed = (k, rows, settings, answer, src, self.answerer.snapshot(), time.perf_counter() - t0)
        self.answerer.restore(before)

    def _process(self, k: int) -> None:
        t0 = time.perf_counter()
        rows, onsets = self.segmenter.take_bar(k)
        settings = self.controls.settings_for(k + 2)
        g, self._guessed = self._guessed, None
        if g is not None and g[0] == k and g[2] == settings and np.array_equal(g[1], rows):
            answer, src, compute_s = g[3], g[4], g[6]
            self.answerer.restore(g[5])
            self.result.n_guessed += 1
        else:
            t1 = time.perf_counter()
            answer, src = self.answerer.answer(rows, settings)
            compute_s = time.perf_counter() - t1
        n = self.scheduler.add(answer, self.segmenter.bar_start(k + 1), onsets)
        done = time.perf_counter()
        rec = BarRecord(k + 1, k + 2, settings, src + 1, n, done - t0, compute_s)
        self.result.bars.append(rec)
        if self.on_bar is not None:
            self.on_bar(rec)

    def run(self) -> LiveResult:
        """Play until the source ends (a file: after the last answer) or Ctrl-C; always silence the output.

        Returns:
            the :class:`LiveResult`; ``recording`` holds the MIDI bytes of everything sent.
        """
        half = Fraction(1, 2)
        seg, sched, tl = self.segmenter, self.scheduler, self.timeline
        k = 0  # next bar to process
        last_bar = None  # set when a file's stream has ended
        self.clock.start()
        try:
            while True:
                if last_bar is None and self.source.finished:
                    end = int(self.source.end_step)
                    seg.end_all(end)
                    last_bar = seg.bar_of(max(end, 1) - 1)
                bars_left = last_bar is None or k <= last_bar
                t_bar = tl.time_at(seg.bar_start(k + 1) - half) if bars_left else math.inf
                guess_due = self.guess and bars_left and (self._guessed is None or self._guessed[0] != k)
                t_guess = tl.time_at(seg.bar_start(k + 1) - 1) if guess_due else math.inf
                t_out = tl.time_at(sched.next_step())
                if not bars_left and not math.isfinite(t_out):
                    break
                deadline = min(t_bar, t_guess, t_out, self.source.next_time())
                if self.clock.realtime:
                    sched.prepare(min(0.005, (deadline - self.clock.now()) / self.clock.speed - 0.002))
                self.source.wait(self.clock, deadline)
                now = self.clock.now()
                while tl.time_at(sched.next_step()) <= now:
                    st, msg = sched.pop()
                    self._send(msg, tl.time_at(st))
                for ev in self.source.take_due(now):
                    self._input(ev)
                if last_bar is None and self.source.finished:
                    continue  # settle where the stream ends before answering its last bar
                if bars_left and now >= tl.time_at(seg.bar_start(k + 1) - half):
                    self._process(k)
                    k += 1
                elif guess_due and now >= t_guess:
                    self._guess(k)
        except KeyboardInterrupt:
            self.result.interrupted = True
        finally:
            for msg in sched.all_notes_off():
                self._send(msg, math.inf)
            self.result.changes = list(self.controls.changes)
            self.result.rejected = list(self.controls.rejected)
            bpm = float(getattr(tl, "bpm", float("nan")))
            self.result.bpm = bpm
            if isinstance(tl, MidiClockTimeline) and math.isfinite(bpm):
                self.recorder.bpm = bpm
            end_s = None
            if not self.result.interrupted and last_bar is not None:
                end_s = tl.time_at(seg.bar_start(last_bar + 2))
            self.result.recording = self.recorder.midi_bytes(end_s)
        return self.result
