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
before it is due. The settings in force (bit budget, channel statistics, continuity) are those of
:class:`qbdi_utils.live_controls.Controls` for the bar; the clocks and timelines are in
:mod:`qbdi_utils.live_time`, the sources, ports and the recording in :mod:`qbdi_utils.live_io`.

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

Imports: channel, improvise, navigate, pianoroll, live_time, live_controls, live_io.
Used in: ``qbdi live``, benchmarks/bench_live.py, tests/test_live.py.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from qbdi_utils import channel, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import EncodedQuery
from qbdi_utils.query_checks import query_warnings
from qbdi_utils.live_controls import Controls, Settings, cc_to_bits
from qbdi_utils.live_io import ANSWER_CHANNEL, InputEvent, Recorder, round_step
from qbdi_utils.live_time import FILE_METER, FrameGrid, MidiClockTimeline, TempoTimeline
from qbdi_utils.navigate import check_min_context, navigate_path, query_oracle
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = ["MODES", "BarSegmenter", "Answerer", "Scheduler", "BarRecord", "LiveResult", "LiveSession"]

#: Answer modes: the channel on the bar just heard, or an oracle walk over the bars heard so far.
MODES: tuple = ("improvise", "navigate")

# the navigation walk's random stream: SeedSequence([seed, _WALK_STREAM]), apart from the channel's
_WALK_STREAM = 0x6C697665




# ----------------------------------------------------------------------------------------------
# bars of the incoming stream


class BarSegmenter:
    """Notes of an incoming stream cut into bar rolls with the roll contract of :mod:`qbdi_utils.pianoroll`.

    Onsets and releases are rounded to the nearest step and every note lasts at least one step; a
    repeated note_on of a sounding pitch (same source and channel) ends it and starts a new note; the
    drum channel (index 9) and pitches outside the layout are left out and counted in ``dropped``;
    notes of one pitch from two sources merge. So the bar rolls of a file's messages, joined, equal
    ``to_frames(read_midi(file).roll, offset_steps=...)``.

    Bar ``k`` (0-based) covers steps ``[first + k * bar_len, first + (k + 1) * bar_len)`` with
    ``first = -((-offset_steps) mod bar_len)``: a pickup of ``offset_steps`` steps ends bar 0. Given
    a :class:`qbdi_utils.live_time.FrameGrid` instead, the "bars" are its frames, in any meter (a 3/4
    bar is one frame of 12 steps, a 5/4 bar two of 12 and 8, a file's meter changes are followed).

    Args:
        spec: roll layout.
        bar_len: steps per bar (<= spec.steps_per_frame).
        offset_steps: step of the first full bar line (a pickup's length), 0 if none.
        grid: a FrameGrid (then ``bar_len`` and ``offset_steps`` are not used).
    """

    def __init__(self, spec: RollSpec = RollSpec(), bar_len: int | None = None, offset_steps: int = 0,
                 grid: FrameGrid | None = None):
        self.spec = spec
        self.grid = grid
        self.bar_len = int(spec.steps_per_frame if bar_len is None else bar_len)
        self.first = -((-int(offset_steps)) % self.bar_len) if grid is None else grid.start(0)
        self.sounding: dict = {}  # (source, channel, pitch) -> (start step, velocity)
        self.done: list = []  # (pitch, start, end, velocity)
        self.dropped: dict = {}

    def bar_start(self, k: int) -> int:
        """First step of bar ``k`` (0-based)."""
        if self.grid is not None:
            return self.grid.start(k)
        return self.first + int(k) * self.bar_len

    def bar_length(self, k: int) -> int:
        """Steps of bar ``k``."""
        return self.bar_len if self.grid is None else self.grid.length(k)

    def bar_of(self, step: int) -> int:
        """Index of the bar holding ``step``."""
        if self.grid is not None:
            return self.grid.frame_of(step)
        return (int(step) - self.first) // self.bar_len

    def note_on(self, pos, channel: int, pitch: int, velocity: int, source: int = 0) -> None:
        """A note_on (velocity > 0) at step position ``pos`` (fractional)."""
        if channel == 9:
            self.dropped["drum"] = self.dropped.get("drum", 0) + 1
            return
        key = (source, channel, pitch)
        if key in self.sounding:
            self.note_off(pos, channel, pitch, source)
        self.sounding[key] = (round_step(pos), int(velocity))

    def note_off(self, pos, channel: int, pitch: int, source: int = 0) -> None:
        """A note_off (or note_on with velocity 0) at step position ``pos``."""
        if channel == 9:
            return
        start = self.sounding.pop((source, channel, pitch), None)
        if start is None:
            return
        s, vel = start
        e = max(round_step(pos), s + 1)
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
        b = self.bar_start(k) + self.bar_length(k)
        self.done = [note for note in self.done if note[2] > b]
        return out

    def peek_bar(self, k: int) -> tuple[np.ndarray, list]:
        """What :meth:`take_bar` would return now, forgetting nothing (for an early guess)."""
        a = self.bar_start(k)
        b = a + self.bar_length(k)
        n = self.spec.n_pitches
        rows = np.zeros((b - a, self.spec.n_columns), np.uint8)
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

    def answer(self, rows: np.ndarray, settings: Settings, n_out: int | None = None) -> tuple[np.ndarray, int]:
        """The answer to one heard bar.

        Args:
            rows: (n, spec.n_columns) uint8 rows of the heard bar, n <= spec.steps_per_frame (a bar
                shorter than a frame is padded with silence and its answer cut back to n rows).
            settings: the settings of this bar.
            n_out: rows of the answer (the length of the bar it plays in; default the heard bar's):
                in a meter change, the answer to a 3/4 bar played in a 2/4 bar is its first 8 rows.

        Returns:
            (answer rows (n, spec.n_columns) uint8, valid continuing the previous answer;
            the heard bar (0-based) the answer was made from).
        """
        spec = self.spec
        frame = np.zeros((spec.steps_per_frame, spec.n_columns), np.uint8)
        n_rows = int(np.asarray(rows).shape[0])
        frame[:n_rows] = rows
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
        probs = self.model.decode(z_d).reshape(spec.steps_per_frame, spec.n_columns)[:n_rows if n_out is None
                                                                                    else int(n_out)]
        both = pianoroll.binarize(np.vstack([self._prev_row[None].astype(np.float32), probs]),
                                  self.threshold, spec=spec)
        out = both[1:]
        self._prev_row = out[-1].copy()
        return out, src


# ----------------------------------------------------------------------------------------------
# scheduling


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
        meter: (numerator, denominator, steps per bar) (:func:`parse_meter`; the steps are laid again
            on the model's RollSpec, so any meter and grid work), or ``"file"`` (a file source's own
            time signatures, meter changes and pickup; :class:`qbdi_utils.live_time.FrameGrid`).
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
        self.meter = FILE_METER if meter == FILE_METER else tuple(meter)
        self.cc_bits = cc_bits
        self.guess = bool(clock.realtime if guess is None else guess)
        self.on_bar = on_bar
        self.log = log or controls.log
        piece = source.piece
        offset = piece.bar_offset_steps if piece is not None else 0
        if meter == FILE_METER:
            if piece is None or not piece.time_signatures:
                raise OptionError("--meter file follows the input file's time signatures; the input has none "
                                  "(give --meter N/D)")
            self.grid = FrameGrid(self.spec, offset_steps=offset, time_signatures=piece.time_signatures,
                                  known_steps=piece.n_steps)
        else:
            self.grid = FrameGrid(self.spec, self.meter[:2], offset)
        self.segmenter = BarSegmenter(self.spec, grid=self.grid)
        self.answerer = Answerer(model, seed, mode, min_context)
        self.scheduler = Scheduler(self.spec)
        self.recorder = Recorder(getattr(timeline, "bpm", 120.0) if isinstance(timeline, TempoTimeline) else 120.0,
                                 self.grid.signatures[0][1:])
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

    def _input(self, ev: InputEvent) -> None:
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
        answer, src = self.answerer.answer(rows, settings, self.segmenter.bar_length(k + 1))
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
            answer, src = self.answerer.answer(rows, settings, self.segmenter.bar_length(k + 1))
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
            # meter changes of the answered frames (the first meter is written at tick 0)
            sigs = self.grid.meter_signatures(k + 1)
            if self.meter == FILE_METER:  # a pickup marked as a short first bar, as the file has it
                sigs = pianoroll.marked_signatures(sigs, self.source.piece.bar_offset_steps, self.spec)
            self.recorder.meter = tuple(sigs[0][1:])
            self.recorder.meter_changes = [(tl.time_at(st), n, d) for st, n, d in sigs[1:]]
            self.result.recording = self.recorder.midi_bytes(end_s)
        return self.result
