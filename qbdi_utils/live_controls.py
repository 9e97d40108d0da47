"""The settings of ``qbdi live`` and how they change while playing: OSC and MIDI control change.

The settings (:class:`Settings`: bit budget, channel statistics, continuity) live in
:class:`Controls`; they can be changed while playing, through OSC (:class:`OscControl`:
``/qbdi/bits``, ``/qbdi/continuity``, ``/qbdi/stats``) or a MIDI control change mapped onto the
explorer's bit scale (:data:`qbdi_utils.improvise.BITS_SCALE`, :func:`cc_to_bits`); a change applies
from the next bar whose answer is computed after it arrived (the next bar the performer hears), and
is logged with that bar number (bars counted from 1) as a :class:`Change`.

Imports: errors, improvise, navigate. Used in: live, ``qbdi live``, benchmarks/bench_live.py,
tests/test_live.py.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from dataclasses import dataclass, replace

import numpy as np

from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import BITS_SCALE, STATS_MODES, parse_bits
from qbdi_utils.navigate import check_continuity

__all__ = ["OSC_ADDRESSES", "DEFAULT_OSC_HOST", "DEFAULT_OSC_PORT", "cc_to_bits", "Settings", "Change",
           "Controls", "OscControl"]


#: OSC addresses that change the settings (the value types each takes are in :meth:`Controls.submit`).
OSC_ADDRESSES: tuple = ("/qbdi/bits", "/qbdi/continuity", "/qbdi/stats")

#: OSC is bound to the loopback interface unless asked otherwise.
DEFAULT_OSC_HOST = "127.0.0.1"

#: Default UDP port of the OSC controls.
DEFAULT_OSC_PORT = 9000

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
