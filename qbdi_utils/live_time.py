"""Time for ``qbdi live``: clocks, timelines from clock time to roll steps, the meter option.

Clocks: :class:`RealClock` (optionally faster or slower) and :class:`SimulatedClock` (``--speed 0``,
tests: time advances only when slept on). Timelines map the clock to roll steps:
:class:`TempoTimeline` (a fixed tempo) or :class:`MidiClockTimeline` (follow the input's MIDI clock,
24 pulses per quarter). :func:`parse_meter` reads ``--meter``.

Imports: errors, pianoroll. Used in: live, ``qbdi live``, benchmarks/bench_live.py, tests/test_live.py.
"""

from __future__ import annotations

import math
import time

from qbdi_utils import pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import RollSpec

__all__ = ["SimulatedClock", "RealClock", "TempoTimeline", "MidiClockTimeline", "parse_meter"]


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
