"""Time for ``qbdi live``: clocks, timelines from clock time to roll steps, the meter option.

Clocks: :class:`RealClock` (optionally faster or slower) and :class:`SimulatedClock` (``--speed 0``,
tests: time advances only when slept on). Timelines map the clock to roll steps:
:class:`TempoTimeline` (a fixed tempo) or :class:`MidiClockTimeline` (follow the input's MIDI clock,
24 pulses per quarter). :func:`parse_meter` reads ``--meter``; :class:`FrameGrid` lays the frames of
the stream in that meter (or in an input file's own time signatures, ``--meter file``).

Imports: errors, limits, pianoroll. Used in: live, ``qbdi live``, benchmarks/bench_live.py, tests/test_live.py.
"""

from __future__ import annotations

import bisect
import math
import time

from qbdi_utils import limits, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import RollSpec

__all__ = ["SimulatedClock", "RealClock", "TempoTimeline", "MidiClockTimeline", "FILE_METER", "parse_meter",
           "FrameGrid"]

#: ``--meter file``: the input file's own time signatures (meter changes and a pickup included).
FILE_METER = "file"


def parse_meter(text: str, spec: RollSpec = RollSpec()):
    """``"4/4"`` -> (numerator, denominator, bar length in steps); ``"file"`` -> :data:`FILE_METER`.

    Any meter is accepted (issue 25): a bar longer than a frame (5/4, 6/4, 12/8, 3/2) is answered
    frame by frame, split at its beats as :func:`qbdi_utils.pianoroll.bar_layout` splits it. The
    steps are those of ``spec`` (the session lays the frames again on the model's own RollSpec,
    :class:`FrameGrid`).

    Args:
        text: "N/D" with D a power of two, or "file".
        spec: roll layout.

    Returns:
        (numerator, denominator, steps per bar), or the string :data:`FILE_METER`.

    Raises:
        OptionError: malformed, or a bar of a fractional number of steps.
    """
    if str(text).strip().lower() == FILE_METER:
        return FILE_METER
    try:
        num, den = (int(x) for x in str(text).strip().split("/"))
    except ValueError:
        raise OptionError(f"--meter {text!r} must look like 4/4 (or be 'file': the input file's own)") from None
    if not limits.valid_time_signature(num, den):
        raise OptionError(f"--meter {text!r}: numerator 1..{limits.MAX_NUMERATOR} and a power-of-two "
                          f"denominator up to {limits.MAX_DENOMINATOR}")
    steps = pianoroll.bar_steps(num, den, spec)
    if steps != int(steps) or steps < 1:
        raise OptionError(f"--meter {text}: a bar of {steps:g} steps is not a whole number of "
                          f"1/{spec.steps_per_quarter} quarters")
    return num, den, int(steps)


class FrameGrid:
    """Where the frames of a live stream lie: frame ``k`` starts at :meth:`start` (k), in any meter.

    Frames are :func:`qbdi_utils.pianoroll.bar_layout`'s: a bar of at most ``spec.steps_per_frame``
    steps is one frame, a longer one is split at its beats. The bars follow ``time_signatures`` (a
    file's, with its changes and pickup) over the first ``known_steps`` steps, then the last meter
    for ever (a port's stream has no end); without signatures, bars of ``meter`` from the first full
    bar line at ``offset_steps``, a pickup ending frame 0. 4/4 gives the old grid: 16 steps a frame,
    frame 0 starting at ``-((-offset_steps) mod 16)``.

    Args:
        spec: roll layout (the model's).
        meter: (numerator, denominator) when there are no signatures.
        offset_steps: step of the first full bar line (a pickup's length).
        time_signatures: [(step, numerator, denominator), ...] of an input file, or None.
        known_steps: how far the signatures are known (the file's length).

    Used in: :class:`qbdi_utils.live.BarSegmenter`, :class:`qbdi_utils.live.LiveSession`.
    """

    def __init__(self, spec: RollSpec = RollSpec(), meter=(4, 4), offset_steps: int = 0, time_signatures=None,
                 known_steps: int = 0):
        self.spec = spec
        self.starts: list[int] = []
        self.meters: list[tuple[int, int]] = []  # the meter of each frame's bar
        self.signatures: list[tuple[int, int, int]] = []  # (step, n, d) where the meter changes
        off = int(offset_steps)
        if time_signatures:
            T = max(int(known_steps), 1)
            starts, _, bar_starts, bar_frames = pianoroll.bar_layout(T, list(time_signatures), off, spec)
            meters = pianoroll.bar_meters(T, list(time_signatures), off, spec)
            for b, m in enumerate(meters[:-1]):
                nd = tuple(int(x) for x in m.split("/"))
                end = int(bar_frames[b + 1])
                self.starts += [int(x) for x in starts[int(bar_frames[b]):end]]
                self.meters += [nd] * (end - int(bar_frames[b]))
            self._tail = int(bar_starts[-1])
            self._meter = tuple(int(x) for x in meters[-1].split("/"))
        else:
            self._meter = (int(meter[0]), int(meter[1]))
            length = int(round(pianoroll.bar_steps(*self._meter, spec)))
            self._tail = off - length * (-(-off // length)) if off > 0 else 0
        self._length = int(round(pianoroll.bar_steps(*self._meter, spec)))
        self._pattern = [int(x) for x in pianoroll.bar_layout(self._length, [(0, *self._meter)], 0, spec)[1]]
        for st, nd in zip(self.starts, self.meters):
            if not self.signatures or self.signatures[-1][1:] != nd:
                self.signatures.append((max(st, 0), *nd))
        if not self.signatures or self.signatures[-1][1:] != self._meter:
            self.signatures.append((max(self._tail, 0), *self._meter))

    def _extend(self, k: int | None = None, step: int | None = None) -> None:
        while (k is not None and len(self.starts) <= k) or (step is not None and (not self.starts
                                                                                 or self.starts[-1] <= step)):
            s = self._tail
            for n in self._pattern:
                self.starts.append(s)
                self.meters.append(self._meter)
                s += n
            self._tail = s

    def start(self, k: int) -> int:
        """First step of frame ``k`` (0-based; frame 0 may start before step 0: a pickup)."""
        self._extend(k=int(k))
        return self.starts[int(k)]

    def length(self, k: int) -> int:
        """Steps of frame ``k`` (1 .. ``spec.steps_per_frame``)."""
        return self.start(int(k) + 1) - self.start(int(k))

    def frame_of(self, step: int) -> int:
        """Index of the frame holding ``step``."""
        self._extend(step=int(step))
        return max(0, bisect.bisect_right(self.starts, int(step)) - 1)

    def meter_signatures(self, n_frames: int) -> list[tuple[int, int, int]]:
        """(step, numerator, denominator) of every meter change among the first ``n_frames`` frames
        (the first at step 0 or the first bar line)."""
        end = self.start(int(n_frames))
        return [sig for sig in self.signatures if sig[0] < max(end, 1)] or self.signatures[:1]


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
