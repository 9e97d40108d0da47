"""One run of ``qbdi live`` from its options: the options checked together, the ports opened, the session.

:class:`LiveOptions` holds the choices of a run (what ``qbdi live`` parses); :meth:`LiveOptions.check`
refuses the combinations that make no sense before anything is opened or loaded. :func:`run_session`
opens the output ports and the input, loads the model, plays the session (:class:`qbdi_utils.live.LiveSession`),
always closes what it opened, and hands the result to a writer while Ctrl-C is still ignored, so the
recording is written whole.

Imports: errors, files, improvise, navigate, live, live_controls, live_io, live_time.
Used in: ``qbdi live`` (qbdi_utils/cli/live.py), tests/test_live.py through the command.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qbdi_utils import files
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import rate_label
from qbdi_utils.live import MODES, LiveResult, LiveSession
from qbdi_utils.live_controls import DEFAULT_OSC_HOST, DEFAULT_OSC_PORT, Controls, OscControl, Settings
from qbdi_utils.live_io import FileSource, PortSink, PortSource, is_midi_file_name
from qbdi_utils.live_time import FILE_METER, MidiClockTimeline, RealClock, SimulatedClock, TempoTimeline
from qbdi_utils.navigate import DEFAULT_CONTINUITY

__all__ = ["LiveOptions", "run_session", "write_results"]


@dataclass(frozen=True)
class LiveOptions:
    """The choices of one live run (the options of ``qbdi live``, each already parsed on its own).

    Attributes:
        inp: a MIDI input port name (or its start), or a .mid file to play.
        out: a MIDI output port name, or a .mid file recording the answers.
        bits: bits per frame at the start, None for full rate.
        stats: channel statistics mode.
        seed: seed of the channel noise and the walk.
        tempo: quarter notes per minute, None for a file's own tempo (else 120).
        clock: "tempo" or "midi" (follow the input port's MIDI clock).
        meter: (numerator, denominator, steps per bar), as :func:`qbdi_utils.live_time.parse_meter`, or
            "file" (the input file's own time signatures).
        speed: file input: 1 real time, 2 twice as fast, 0 as fast as possible on a simulated clock.
        mode: one of :data:`qbdi_utils.live.MODES`.
        continuity: navigate: probability of continuing to the next heard bar; None for the default.
        min_context: navigate: shortest context (bars) a jump's target must share.
        osc_port: UDP port of the OSC controls (0 any free port), None for no OSC.
        osc_host: interface the OSC port listens on.
        cc_bits: MIDI controller number whose value sets the bit budget, or None.
    """

    inp: str
    out: str
    bits: int | None = None
    stats: str = "corpus"
    seed: int = 0
    tempo: float | None = None
    clock: str = "tempo"
    meter: tuple = (4, 4, 16)
    speed: float = 1.0
    mode: str = "improvise"
    continuity: float | None = None
    min_context: int = 1
    osc_port: int | None = DEFAULT_OSC_PORT
    osc_host: str = DEFAULT_OSC_HOST
    cc_bits: int | None = None

    @property
    def navigate(self) -> bool:
        """Whether the answers are a latent-oracle walk."""
        return self.mode == "navigate"

    @property
    def file_in(self) -> bool:
        """Whether the input is a MIDI file (a .mid name or an existing file), not a port."""
        return is_midi_file_name(self.inp) or os.path.isfile(self.inp)

    @property
    def file_out(self) -> bool:
        """Whether the answers are recorded into a file rather than sent to a port."""
        return is_midi_file_name(self.out)

    @property
    def simulated(self) -> bool:
        """Whether the run uses a simulated clock (a file played at speed 0)."""
        return self.file_in and self.speed == 0

    @property
    def resolved_continuity(self) -> float:
        """The continuity in force: the navigate default when not given, 1 for improvise."""
        if not self.navigate:
            return 1.0
        return DEFAULT_CONTINUITY if self.continuity is None else self.continuity

    def check(self) -> None:
        """Refuse option combinations that make no sense, before anything is opened.

        Raises:
            OptionError: an unknown mode or clock, --continuity without navigate, --speed with a
                port, --clock midi with a file or with --tempo, --meter file with a port.
        """
        if self.meter == FILE_METER and not self.file_in:
            raise OptionError("--meter file follows the time signatures of a file given to --in; a port "
                              "carries none, give --meter N/D")
        if self.mode not in MODES:
            raise OptionError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not self.navigate and self.continuity is not None:
            raise OptionError("--continuity steers --mode navigate only")
        if self.clock not in ("tempo", "midi"):
            raise OptionError(f"--clock {self.clock!r} is not 'tempo' or 'midi'")
        if not self.file_in and self.speed != 1:
            raise OptionError("--speed applies to a file given to --in; a port plays in real time")
        if self.clock == "midi":
            if self.file_in:
                raise OptionError("--clock midi follows an input port's MIDI clock; a MIDI file carries "
                                  "none, give --tempo instead")
            if self.tempo is not None:
                raise OptionError("--tempo and --clock midi exclude each other")


def _first_interrupt(_signum, _frame):
    """Ctrl-C once stops the session; more Ctrl-C are ignored until the recording is written."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    """Whether this runs in the main thread (only there can a SIGINT handler be installed)."""
    return threading.current_thread() is threading.main_thread()


def _start_line(opts: LiveOptions, osc: OscControl | None, bpm: float) -> str:
    """The line announcing the run: mode, input, pace, budget, statistics, controls."""
    where = f"; OSC on {osc.address[0]}:{osc.address[1]}" if osc else ""
    cc = f"; CC {opts.cc_bits} sets the bits" if opts.cc_bits is not None else ""
    pace = "as fast as possible" if opts.simulated else (
        "following the MIDI clock" if opts.clock == "midi" else f"at {bpm:g} bpm")
    return (f"{opts.mode} {opts.inp} {pace}, {rate_label(opts.bits)}, {opts.stats} statistics{where}{cc}; "
            "each bar is answered during the next (one bar of latency); Ctrl-C stops")


def run_session(opts: LiveOptions, load_model: Callable[[], object], announce: Callable[[str], None],
                write: Callable[[LiveResult], None]) -> LiveResult:
    """Play one live run: open the ports and the input, load the model, run the session, write.

    The output port is opened, and an input port, before the model is loaded (a wrong name fails
    fast). In the main thread the first Ctrl-C stops the session; further ones are ignored until
    ``write`` has returned, then the previous handler is back.

    Args:
        opts: the run's options (:meth:`LiveOptions.check` already called).
        load_model: returns the style VAE (called once, after the ports are open).
        announce: gets the warnings (prefixed "warning: ") and the start line.
        write: gets the result (e.g. to write the recording and the log).

    Returns:
        The session's :class:`qbdi_utils.live.LiveResult`.

    Raises:
        MidiPortError: a port cannot be opened.
        MidiFileError, ModelError, OptionError: from the input file, the model or the session.
    """
    clock = SimulatedClock() if opts.simulated else RealClock(opts.speed if opts.file_in else 1.0)
    sinks, source, osc, previous = [], None, None, None
    try:
        if not opts.file_out:
            sinks.append(PortSink(opts.out))
        if not opts.file_in:
            source = PortSource(opts.inp, clock)
        model = load_model()
        if opts.file_in:
            source = FileSource(opts.inp, spec=model.spec)
            bpm = opts.tempo if opts.tempo is not None else source.piece.tempo_bpm
        else:
            bpm = opts.tempo if opts.tempo is not None else 120.0
        timeline = MidiClockTimeline(model.spec) if opts.clock == "midi" else TempoTimeline(bpm, model.spec)
        controls = Controls(Settings(opts.bits, opts.stats, opts.resolved_continuity), navigate=opts.navigate)
        if opts.osc_port is not None:
            osc = OscControl(controls, opts.osc_host, opts.osc_port)
        session = LiveSession(model, source, controls, clock, timeline, sinks=sinks, meter=opts.meter,
                              seed=opts.seed, mode=opts.mode, min_context=opts.min_context,
                              cc_bits=opts.cc_bits)
        for w in session.result.warnings:
            announce(f"warning: {w}")
        announce(_start_line(opts, osc, bpm))
        previous = signal.signal(signal.SIGINT, _first_interrupt) if _in_main_thread() else None
        try:
            result = session.run()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the recording is written whole
    finally:
        if osc is not None:
            osc.close()
        for s in sinks:
            s.close()
        if source is not None:
            source.close()
    write(result)
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    return result


def write_results(result: LiveResult, paths: list[Path], log_path: Path | None, *, force: bool) -> None:
    """Write a run's recording (to every path of ``paths`` but ``log_path``) and its log (JSON, to
    ``log_path``) as one output set: all appear or none does.

    Args:
        result: the run's LiveResult (``recording`` bytes, ``log_dict()``).
        paths: the output files, the log's among them.
        log_path: the log file, or None.
        force: overwrite existing files.

    Raises:
        OutputExistsError, FileSystemError: as :class:`qbdi_utils.files.OutputSet`.

    Used in: ``qbdi live`` (the writer given to :func:`run_session`).
    """
    with files.OutputSet(force=force) as out_set:
        for path in paths:
            if path == log_path:
                out_set.add_text(path, json.dumps(result.log_dict(), indent=1) + "\n")
            else:
                out_set.add_bytes(path, result.recording)
