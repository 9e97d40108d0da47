"""MIDI <-> piano roll <-> frames: the paper's representation (PAPER.md section 2). Notebook 01.

Layout of a roll, fixed by :class:`RollSpec`: one row per 16th-note step, ``spec.n_columns`` = 156
uint8 columns. Columns ``[0, 78)`` are the *play* plane (pitch sounding on this step), columns
``[78, 156)`` the *articulate* plane (pitch starts on this step); column ``k`` of a plane is MIDI
pitch ``spec.min_pitch + k``. A *valid* roll is 0/1, has articulate <= play everywhere, and
articulates every note's first step (a pitch that starts sounding is marked in the articulate plane);
exactly the valid rolls survive roll -> MIDI -> roll unchanged (:func:`is_valid_roll`,
:func:`make_valid`, :func:`binarize`).

A frame is ``spec.steps_per_frame`` = 16 consecutive rows flattened row-major, so
``frame.reshape(16, 156)`` gives the rows back.

MIDI files at the byte level (the chunk parser, the merge of tracks into notes in ticks, the type-0
writer) are :mod:`qbdi_utils.midifile`; :func:`read_midi` and :func:`midi_bytes` turn those notes
into rolls and back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from qbdi_utils import files, midifile
from qbdi_utils.errors import MeterError, NoNotesError, OptionError

__all__ = [
    "RollSpec", "Piece", "Note", "MAX_STEPS",
    "as_roll", "as_frames", "split_planes", "is_valid_roll", "make_valid", "binarize",
    "roll_to_notes", "notes_to_roll", "read_midi", "write_midi", "midi_bytes", "bar_steps",
    "to_frames", "from_frames", "piece_to_frames", "piece_from_frames", "transpose_roll",
    "pitch_class_histogram", "frames_digest",
]


@dataclass(frozen=True)
class RollSpec:
    """Layout of a piano roll and of its frames; travels with every saved model.

    Attributes:
        min_pitch: lowest MIDI pitch represented (24, C1).
        max_pitch: highest MIDI pitch represented, inclusive (101, F7).
        steps_per_quarter: time steps per quarter note (4: 16th notes).
        steps_per_frame: steps in one frame (16: one 4/4 bar).
        planes: names of the planes, in column order.
    """

    min_pitch: int = 24
    max_pitch: int = 101
    steps_per_quarter: int = 4
    steps_per_frame: int = 16
    planes: tuple[str, ...] = ("play", "articulate")

    def __post_init__(self):
        if not (0 <= self.min_pitch <= self.max_pitch <= 127):
            raise ValueError(f"pitch range {self.min_pitch}..{self.max_pitch} is not within 0..127")
        if self.steps_per_quarter < 1 or self.steps_per_frame < 1:
            raise ValueError("steps_per_quarter and steps_per_frame must be positive")
        if tuple(self.planes) != ("play", "articulate"):
            raise ValueError(f"planes must be ('play', 'articulate'), got {self.planes!r}")
        object.__setattr__(self, "planes", tuple(self.planes))

    @property
    def n_pitches(self) -> int:
        """Pitches per plane (78)."""
        return self.max_pitch - self.min_pitch + 1

    @property
    def n_columns(self) -> int:
        """Columns of a roll row (156)."""
        return self.n_pitches * len(self.planes)

    @property
    def frame_size(self) -> int:
        """Values in one flattened frame (2496)."""
        return self.n_columns * self.steps_per_frame

    @property
    def quarters_per_frame(self) -> float:
        """Quarter notes spanned by one frame (4.0)."""
        return self.steps_per_frame / self.steps_per_quarter

    def to_dict(self) -> dict:
        """JSON-ready dict; inverse of :meth:`from_dict`."""
        d = asdict(self)
        d["planes"] = list(self.planes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RollSpec":
        """Build a spec from :meth:`to_dict` output."""
        d = dict(d)
        d["planes"] = tuple(d.get("planes", ("play", "articulate")))
        return cls(**d)


@dataclass
class Piece:
    """A piece of music as a roll plus what the roll cannot say by itself.

    Attributes:
        roll: (T, spec.n_columns) uint8, a valid roll.
        spec: the layout of ``roll``.
        name: a human-readable name (usually the file stem).
        tempo_map: list of (step, bpm), sorted, first entry at step 0.
        time_signatures: list of (step, numerator, denominator), sorted; empty if the source had none.
        ticks_per_beat: resolution of the source MIDI file (480 when not read from MIDI).
        bar_offset_steps: step at which the first full bar starts (a pickup's length), 0 if none.
        dropped: counts of what could not be represented, by reason
            (e.g. ``{"out_of_range": 3, "drum": 120}``); empty when nothing was lost.
    """

    roll: np.ndarray
    spec: RollSpec = field(default_factory=RollSpec)
    name: str = ""
    tempo_map: list = field(default_factory=lambda: [(0, 120.0)])
    time_signatures: list = field(default_factory=list)
    ticks_per_beat: int = 480
    bar_offset_steps: int = 0
    dropped: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of roll rows."""
        return int(self.roll.shape[0])

    @property
    def tempo_bpm(self) -> float:
        """The first (initial) tempo in quarter notes per minute."""
        return float(self.tempo_map[0][1]) if self.tempo_map else 120.0


class Note(NamedTuple):
    """One note of a roll: MIDI pitch, first step and end step (exclusive), in roll steps."""

    pitch: int
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# The roll contract: every roll or frames array entering the package passes through here
# --------------------------------------------------------------------------------------------

def as_roll(x, spec: RollSpec = RollSpec()) -> np.ndarray:
    """A roll ``(T, spec.n_columns)`` from a roll, from frames ``(N, spec.frame_size)``, or from a Piece.

    The one place that decides "is this a roll or frames?". Frames are reshaped row-major (a view,
    no copy); a single frame ``(spec.frame_size,)`` counts as one frame. A :class:`Piece` gives its
    ``roll`` (its own spec must equal ``spec``). Values are not checked (probabilities pass).

    Args:
        x: (T, spec.n_columns) roll, (N, spec.frame_size) frames, (spec.frame_size,) one frame, or a Piece.
        spec: roll layout.

    Returns:
        (T, spec.n_columns) array of the input's dtype.

    Raises:
        ValueError: any other shape, or a Piece of another layout (a caller's mistake, not a user's).

    Used in: every module that takes rolls (harmony, render, improvise, model).
    """
    if isinstance(x, Piece):
        if x.spec != spec:
            raise ValueError(f"piece {x.name!r} has layout {x.spec}, expected {spec}")
        x = x.roll
    a = np.asarray(x)
    if a.ndim == 1 and a.shape[0] == spec.frame_size:
        a = a[None]
    if a.ndim == 2 and a.shape[1] == spec.frame_size and spec.frame_size != spec.n_columns:
        return a.reshape(-1, spec.n_columns)
    if a.ndim == 2 and a.shape[1] == spec.n_columns:
        return a
    raise ValueError(f"expected a roll (T, {spec.n_columns}) or frames (N, {spec.frame_size}) "
                     f"for this RollSpec, got shape {a.shape}")


def as_frames(x, spec: RollSpec = RollSpec()) -> np.ndarray:
    """Frames ``(N, spec.frame_size)`` from frames or from one frame ``(spec.frame_size,)``.

    A roll is *not* accepted: cutting a roll into frames needs its bar offset
    (:func:`to_frames`, :func:`piece_to_frames`).

    Args:
        x: (N, spec.frame_size) or (spec.frame_size,) array.
        spec: roll layout.

    Returns:
        (N, spec.frame_size) array of the input's dtype (a view where possible).

    Raises:
        ValueError: any other shape.

    Used in: model (encode, reconstruct), improvise.
    """
    a = np.asarray(x)
    if a.ndim == 1 and a.shape[0] == spec.frame_size:
        return a[None]
    if a.ndim == 2 and a.shape[1] == spec.frame_size:
        return a
    hint = "; cut a roll with pianoroll.to_frames" if a.ndim == 2 and a.shape[1] == spec.n_columns else ""
    raise ValueError(f"expected frames (N, {spec.frame_size}) for this RollSpec, got shape {a.shape}{hint}")


# --------------------------------------------------------------------------------------------
# Valid rolls
# --------------------------------------------------------------------------------------------

#: Longest roll the reader builds (steps); longer files are refused instead of filling memory.
MAX_STEPS = 400_000


def split_planes(roll: np.ndarray, spec: RollSpec = RollSpec()) -> tuple[np.ndarray, np.ndarray]:
    """Views of the play and articulate planes of a roll.

    Args:
        roll: (..., T, spec.n_columns) array.
        spec: roll layout.

    Returns:
        (play, articulate), each (..., T, spec.n_pitches), views into ``roll``.

    Used in: notebooks/01_data_prep.ipynb
    """
    n = spec.n_pitches
    return roll[..., :n], roll[..., n:]


def is_valid_roll(roll: np.ndarray, spec: RollSpec = RollSpec()) -> bool:
    """Whether ``roll`` is a valid roll: 0/1 values, articulate implies play, every note articulated.

    "Every note articulated" means a pitch that starts sounding (play 1 after 0, or on the first
    step) is marked in the articulate plane there. Exactly these rolls survive roll -> MIDI -> roll
    unchanged.

    Args:
        roll: (T, spec.n_columns) array.
        spec: roll layout.

    Returns:
        True when valid.
    """
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        return False
    if not np.isin(roll, (0, 1)).all():
        return False
    play, art = split_planes(roll.astype(bool), spec)
    if (art & ~play).any():
        return False
    prev = np.zeros_like(play)
    prev[1:] = play[:-1]
    return not (play & ~prev & ~art).any()


def make_valid(roll: np.ndarray, spec: RollSpec = RollSpec()) -> np.ndarray:
    """The nearest valid roll: drops articulations without play, articulates un-articulated onsets.

    Args:
        roll: (..., T, spec.n_columns) array of 0/1 (anything non-zero counts as 1). Time runs
            along axis -2.
        spec: roll layout.

    Returns:
        uint8 array of the same shape, a valid roll along axis -2.
    """
    r = np.asarray(roll) != 0
    play, art = split_planes(r, spec)
    prev = np.zeros_like(play)
    prev[..., 1:, :] = play[..., :-1, :]
    art = (art & play) | (play & ~prev)
    return np.concatenate([play, art], axis=-1).astype(np.uint8)


def binarize(probabilities: np.ndarray, threshold: float = 0.5,
             spec: RollSpec = RollSpec()) -> np.ndarray:
    """Threshold decoder probabilities into a valid roll (articulate implies play).

    Frames along axis -2 are taken as consecutive in time, so a note held across a bar line stays
    one note. A step above threshold in the articulate plane whose play value is below threshold is
    dropped; a sounding pitch that was silent on the step before is articulated.

    Args:
        probabilities: (..., N, spec.frame_size) frames or (T, spec.n_columns) roll of values in [0, 1].
        threshold: values >= threshold become 1.
        spec: roll layout.

    Returns:
        uint8 array of the same shape as ``probabilities``, 0/1, a valid roll.

    Used in: notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb
    """
    p = np.asarray(probabilities)
    on = p >= threshold
    if p.shape[-1] == spec.frame_size:
        lead = p.shape[:-2] if p.ndim >= 2 else ()
        n = p.shape[-2] if p.ndim >= 2 else 1
        rows = on.reshape(*lead, n * spec.steps_per_frame, spec.n_columns)
        return make_valid(rows, spec).reshape(p.shape)
    if p.shape[-1] == spec.n_columns:
        return make_valid(on, spec)
    raise ValueError(f"last axis must be {spec.frame_size} (frames) or {spec.n_columns} (roll), "
                     f"got shape {p.shape}")


# --------------------------------------------------------------------------------------------
# Notes <-> roll
# --------------------------------------------------------------------------------------------

def roll_to_notes(roll, spec: RollSpec = RollSpec(), *, lenient: bool = False) -> list[Note]:
    """The notes of a roll as :class:`Note` (pitch, start_step, end_step), end exclusive, sorted by
    start, then pitch. The package's one note reader.

    A note starts where a pitch is articulated or starts sounding and lasts while it keeps sounding
    without a new articulation. Any non-zero value counts as on.

    Args:
        roll: (T, spec.n_columns) array; with ``lenient=True`` also frames (N, spec.frame_size) or a
            Piece (through :func:`as_roll`).
        spec: roll layout.
        lenient: accept frames and Pieces as well as rolls.

    Returns:
        list of Note(pitch, start, end); ``np.asarray(notes)`` gives an (n, 3) int array.

    Raises:
        ValueError: a shape that is not a roll (or, lenient, not frames / a Piece).

    Used in: notebooks/01_data_prep.ipynb, render (notation, audio), cli frames.
    """
    if lenient:
        roll = as_roll(roll, spec)
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise ValueError(f"roll must be (T, {spec.n_columns}), got {roll.shape}")
    play, art = split_planes(roll != 0, spec)
    T = play.shape[0]
    prev = np.zeros_like(play)
    prev[1:] = play[:-1]
    starts = play & (art | ~prev)
    # pitch-major, each pitch's steps followed by one silent step: a note ends at the first start
    # or silent step after its own start (the padding step ends the last note of every pitch)
    play_p = np.zeros((play.shape[1], T + 1), dtype=bool)
    play_p[:, :T] = play.T
    start_p = np.zeros_like(play_p)
    start_p[:, :T] = starts.T
    first = np.flatnonzero(start_p)
    bounds = np.flatnonzero(start_p | ~play_p)
    last = bounds[np.searchsorted(bounds, first, side="right")]
    k, s = np.divmod(first, T + 1)
    e = last - k * (T + 1)
    order = np.lexsort((e, k, s))
    return [Note(int(p), int(a), int(b)) for p, a, b in
            zip((k[order] + spec.min_pitch).tolist(), s[order].tolist(), e[order].tolist())]


def notes_to_roll(notes, n_steps: int | None = None, spec: RollSpec = RollSpec()) -> np.ndarray:
    """A valid roll from (pitch, start_step, end_step) notes; pitches outside the spec are ignored.

    Overlapping notes of one pitch merge in the play plane and keep both articulations.

    Args:
        notes: iterable of (MIDI pitch, start step, end step), end exclusive, end > start >= 0.
        n_steps: roll length; defaults to the last note's end.
        spec: roll layout.

    Returns:
        (n_steps, spec.n_columns) uint8 roll.
    """
    notes = list(notes)
    T = max([e for _, _, e in notes], default=0) if n_steps is None else int(n_steps)
    roll = np.zeros((T, spec.n_columns), dtype=np.uint8)
    n = spec.n_pitches
    for p, s, e in notes:
        if spec.min_pitch <= p <= spec.max_pitch and s < T:
            k = p - spec.min_pitch
            roll[s:min(e, T), k] = 1
            roll[s, n + k] = 1
    return roll


# --------------------------------------------------------------------------------------------
# MIDI reading
# --------------------------------------------------------------------------------------------

def read_midi(path, spec: RollSpec = RollSpec(), *, meter: str | None = None,
              allow_empty: bool = False) -> Piece:
    """Read a Standard MIDI File into a :class:`Piece`.

    All tracks and channels are merged, except the drum channel (channel 10, index 9), whose notes
    are counted in ``dropped["drum"]``. A note_on with velocity 0 ends a note. A repeated note_on of a
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

    return Piece(roll=roll, spec=spec, name=path.stem, tempo_map=tempo_map,
                 time_signatures=time_signatures, ticks_per_beat=tpb,
                 bar_offset_steps=bar_offset, dropped=dropped)


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


def bar_steps(numerator: int, denominator: int, spec: RollSpec = RollSpec()) -> float:
    """Length of one bar of numerator/denominator in steps (16 for 4/4 at 4 steps per quarter)."""
    return numerator * 4 / denominator * spec.steps_per_quarter


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


# --------------------------------------------------------------------------------------------
# MIDI writing
# --------------------------------------------------------------------------------------------

def midi_bytes(roll: np.ndarray, tempo_bpm: float = 120.0, velocity: int = 80,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0) -> bytes:
    """A roll as the bytes of a type-0 MIDI file; deterministic for equal arguments.

    Every note gets a note_off (at the same tick, note_offs come before note_ons, so a repeated
    note stays two notes). The end_of_track event sits at the roll's length, so trailing silence
    survives. ``read_midi`` of these bytes gives ``roll`` back for every valid roll.

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: note_on velocity 1..127.
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at tick 0, or None.
        program: General MIDI program (0 = acoustic grand piano).

    Returns:
        The file's bytes (what :func:`write_midi` writes).

    Raises:
        OptionError: ticks_per_beat is not a multiple of steps_per_quarter, or velocity is not 1..127.

    Used in: ``qbdi improvise`` / ``qbdi sweep`` (staged in one output set), through :func:`write_midi`
    in notebooks/01_data_prep.ipynb and notebooks/04_query_generation.ipynb.
    """
    roll = np.asarray(roll)
    if ticks_per_beat % spec.steps_per_quarter:
        raise OptionError(f"ticks_per_beat {ticks_per_beat} is not a multiple of "
                          f"steps_per_quarter {spec.steps_per_quarter}")
    if not 1 <= int(velocity) <= 127:
        raise OptionError(f"velocity must be 1..127, got {velocity}")
    tps = ticks_per_beat // spec.steps_per_quarter
    tempo_map = [(0, float(tempo_bpm))] if np.isscalar(tempo_bpm) else list(tempo_bpm)
    return midifile.smf_bytes([(p, st * tps, end * tps) for p, st, end in roll_to_notes(roll, spec)],
                              [(int(st) * tps, bpm) for st, bpm in tempo_map], roll.shape[0] * tps,
                              ticks_per_beat=ticks_per_beat, velocity=int(velocity),
                              time_signature=time_signature, program=int(program))


def write_midi(roll: np.ndarray, path, tempo_bpm: float = 120.0, velocity: int = 80,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0,
               force: bool = False) -> Path:
    """Write a roll as a type-0 MIDI file (:func:`midi_bytes`), atomically; never overwrites without force.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`: hidden temporary,
    fsync, rename); without ``force`` the creation is exclusive, also against a concurrent writer.
    ``read_midi(write_midi(roll)).roll == roll`` for every valid roll.

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        path: output file (parent folders are created).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: note_on velocity 1..127.
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at tick 0, or None.
        program: General MIDI program (0 = acoustic grand piano).
        force: replace an existing file.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: see :func:`midi_bytes`.

    Used in: notebooks/01_data_prep.ipynb, notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb
    """
    data = midi_bytes(roll, tempo_bpm, velocity, spec, ticks_per_beat=ticks_per_beat,
                      time_signature=time_signature, program=program)
    return files.write_bytes(path, data, force=force)


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------

def to_frames(roll: np.ndarray, spec: RollSpec = RollSpec(), offset_steps: int = 0) -> np.ndarray:
    """Cut a roll into frames of ``spec.steps_per_frame`` steps, flattened row-major.

    When the first full bar starts at ``offset_steps`` (a pickup), the roll is padded in front with
    silence so the pickup sits at the end of the first frame and every later frame starts on a bar
    line. The last partial frame is zero-padded.

    Args:
        roll: (T, spec.n_columns) uint8 roll.
        spec: roll layout.
        offset_steps: step of the first bar line (``Piece.bar_offset_steps``).

    Returns:
        (N, spec.frame_size) uint8, N = ceil((T + pad) / steps_per_frame).

    Used in: notebooks/01_data_prep.ipynb
    """
    roll = np.asarray(roll, dtype=np.uint8)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise ValueError(f"roll must be (T, {spec.n_columns}), got {roll.shape}")
    spf = spec.steps_per_frame
    front = (-int(offset_steps)) % spf
    T = roll.shape[0] + front
    n = -(-T // spf)
    out = np.zeros((n * spf, spec.n_columns), dtype=np.uint8)
    out[front:T] = roll
    return out.reshape(n, spec.frame_size)


def from_frames(frames: np.ndarray, spec: RollSpec = RollSpec()) -> np.ndarray:
    """Join frames back into a roll (inverse of :func:`to_frames` without offset).

    Args:
        frames: (N, spec.frame_size) array.
        spec: roll layout.

    Returns:
        (N * spec.steps_per_frame, spec.n_columns) array of the same dtype.
    """
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames[None]
    if frames.shape[-1] != spec.frame_size:
        raise ValueError(f"frames must be (N, {spec.frame_size}), got {frames.shape}")
    return frames.reshape(-1, spec.n_columns)


def piece_to_frames(piece: Piece) -> np.ndarray:
    """Frames of a piece, bar-aligned by its ``bar_offset_steps``: (N, frame_size) uint8."""
    return to_frames(piece.roll, piece.spec, piece.bar_offset_steps)


def piece_from_frames(frames: np.ndarray, spec: RollSpec = RollSpec(), name: str = "",
                      tempo_bpm: float = 120.0) -> Piece:
    """A 4/4 :class:`Piece` from frames (for example a decoder's binarized output).

    Args:
        frames: (N, spec.frame_size) 0/1 array; made valid with :func:`make_valid`.
        spec: roll layout.
        name: piece name.
        tempo_bpm: tempo of the piece.

    Returns:
        Piece with roll (N * 16, spec.n_columns).
    """
    roll = make_valid(from_frames(frames, spec), spec)
    return Piece(roll=roll, spec=spec, name=name, tempo_map=[(0, float(tempo_bpm))],
                 time_signatures=[(0, 4, 4)], ticks_per_beat=480)


def transpose_roll(roll: np.ndarray, semitones: int, spec: RollSpec = RollSpec()) -> tuple[np.ndarray, int]:
    """Shift every note by ``semitones``; notes pushed out of the pitch range are dropped.

    Args:
        roll: (T, spec.n_columns) roll.
        semitones: shift, positive is up.
        spec: roll layout.

    Returns:
        (roll (T, spec.n_columns) uint8, number of notes dropped).
    """
    roll = np.asarray(roll, dtype=np.uint8)
    n = spec.n_pitches
    s = int(semitones)
    out = np.zeros_like(roll)
    if abs(s) >= n:
        return out, int(roll[:, n:].sum())
    for plane in (0, n):
        src = roll[:, plane:plane + n]
        dst = out[:, plane:plane + n]
        if s >= 0:
            dst[:, s:] = src[:, :n - s]
        else:
            dst[:, :n + s] = src[:, -s:]
    lost = int(roll[:, n:].sum()) - int(out[:, n:].sum())
    return out, lost


def pitch_class_histogram(roll, spec: RollSpec = RollSpec()) -> np.ndarray:
    """Share of sounding steps per pitch class (C = 0) of a roll, frames or Piece.

    Args:
        roll: anything :func:`as_roll` takes.
        spec: roll layout.

    Returns:
        (12,) float64 summing to 1 (all zeros for a silent roll).

    Used in: harmony.estimate_key, notebooks/01_data_prep.ipynb.
    """
    play = as_roll(roll, spec)[:, :spec.n_pitches].astype(np.float64)
    per_pitch = play.sum(axis=0)
    pcs = (np.arange(spec.n_pitches) + spec.min_pitch) % 12
    h = np.bincount(pcs, weights=per_pitch, minlength=12)
    tot = h.sum()
    return h / tot if tot > 0 else h


def frames_digest(shape, blocks) -> str:
    """The frames fingerprint: 16 hex digits of SHA-256 over ``repr(shape)`` then the frames as 0/1
    uint8 bytes, row block by row block in order.

    The one definition of the hash: :func:`qbdi_utils.model.frames_fingerprint` (an array in memory),
    :meth:`qbdi_utils.shards.ShardedCorpus.frames_fingerprint` and
    :func:`qbdi_utils.training.stream.stream_fingerprint` (frames read shard by shard) all call it, so a
    corpus hashes alike wherever its frames live.

    Args:
        shape: the shape of all frames together, e.g. ``(N, frame_size)``.
        blocks: consecutive row blocks of the frames (any dtype holding 0/1), in order.

    Returns:
        16 hex digits.
    """
    h = hashlib.sha256(repr(tuple(shape)).encode())
    for block in blocks:
        h.update(np.ascontiguousarray(np.asarray(block) != 0, dtype=np.uint8).tobytes())
    return h.hexdigest()[:16]
