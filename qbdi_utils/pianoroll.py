"""MIDI <-> piano roll <-> frames: the paper's representation (PAPER.md section 2). Notebook 01.

Layout of a roll, fixed by :class:`RollSpec`: one row per 16th-note step, ``spec.n_columns`` = 156
uint8 columns. Columns ``[0, 78)`` are the *play* plane (pitch sounding on this step), columns
``[78, 156)`` the *articulate* plane (pitch starts on this step); column ``k`` of a plane is MIDI
pitch ``spec.min_pitch + k``. A *valid* roll is 0/1, has articulate <= play everywhere, and
articulates every note's first step (a pitch that starts sounding is marked in the articulate plane);
exactly the valid rolls survive roll -> MIDI -> roll unchanged (:func:`is_valid_roll`,
:func:`make_valid`, :func:`binarize`).

A frame is ``spec.steps_per_frame`` = 16 consecutive rows flattened row-major, so
``frame.reshape(16, 156)`` gives the rows back. A piece is cut into frames at its own bar lines, in
any meter (:func:`bar_layout`, :func:`cut_bars`, :func:`piece_bars`; issue 25): a bar of at most 16
steps is one frame padded with silence at its end (a 3/4 bar fills 12 rows), a longer bar is split at
its beats (dotted beats in compound meters: 12/8 as 12 + 12 steps, 5/4 as 12 + 8, 3/2 as 16 + 8), each
frame carrying its valid length; :func:`join_bars` is the inverse.

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

from qbdi_utils import files, limits, midifile
from qbdi_utils.errors import MeterError, NoNotesError, OptionError

__all__ = [
    "RollSpec", "Piece", "Note", "MAX_STEPS",
    "as_roll", "as_frames", "split_planes", "is_valid_roll", "make_valid", "binarize",
    "roll_to_notes", "notes_to_roll", "read_midi", "write_midi", "midi_bytes", "bar_steps",
    "DEFAULT_VELOCITY", "TRACK_LAYOUTS", "top_voice", "note_velocities",
    "to_frames", "from_frames", "piece_to_frames", "piece_from_frames", "transpose_roll",
    "BarFrames", "is_compound", "beat_steps", "bar_layout", "bar_meters", "cut_bars", "join_bars", "piece_bars",
    "marked_signatures",
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
        velocities: (n, 3) int array of (step, pitch, velocity 1..127) per note onset: the file's
            for a piece read from MIDI, the performed ones for an output
            (:func:`qbdi_utils.performance.perform`); None when unknown (the writers then use
            :data:`DEFAULT_VELOCITY`).
    """

    roll: np.ndarray
    spec: RollSpec = field(default_factory=RollSpec)
    name: str = ""
    tempo_map: list = field(default_factory=lambda: [(0, 120.0)])
    time_signatures: list = field(default_factory=list)
    ticks_per_beat: int = 480
    bar_offset_steps: int = 0
    dropped: dict = field(default_factory=dict)
    velocities: np.ndarray | None = None

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

    velocities = np.array(midifile.onset_velocities(content, spq, spec.min_pitch, spec.max_pitch),
                          dtype=np.int64).reshape(-1, 3)
    return Piece(roll=roll, spec=spec, name=path.stem, tempo_map=tempo_map,
                 time_signatures=time_signatures, ticks_per_beat=tpb,
                 bar_offset_steps=bar_offset, dropped=dropped, velocities=velocities)


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

#: Velocity of every note written when no per-onset velocities are given (the writers' old fixed one).
DEFAULT_VELOCITY = 80

#: Track layouts of the writer: every note in one track, or the top voice in a track of its own.
TRACK_LAYOUTS = ("one", "melody+accompaniment")


def top_voice(notes) -> np.ndarray:
    """Which notes form the top voice: a note is in it when, at its onset, no higher pitch sounds.

    At every onset step the highest pitch sounding there (a note starting or one held over) is the
    top voice's; when that pitch is a note starting at this step, the note is the top voice's note.
    A lower note starting under a held higher one is accompaniment.

    Args:
        notes: (pitch, start, end) per note (e.g. :func:`roll_to_notes`), end exclusive.

    Returns:
        (n,) bool, True for the top voice's notes.

    Used in: :func:`midi_bytes` (``tracks="melody+accompaniment"``).
    """
    arr = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    if not len(arr):
        return np.zeros(0, dtype=bool)
    highest = np.full(int(arr[:, 2].max()) + 1, -1, dtype=np.int64)  # highest pitch sounding per step
    for p, s, e in arr:
        np.maximum(highest[s:max(e, s + 1)], p, out=highest[s:max(e, s + 1)])
    return arr[:, 0] >= highest[arr[:, 1]]


def note_velocities(notes, velocity) -> list:
    """A velocity per note: ``velocity`` for all, or looked up by (onset step, pitch) in an (n, 3)
    array of (step, pitch, velocity); a note not listed gets :data:`DEFAULT_VELOCITY`.

    Args:
        notes: (pitch, start, end) per note, in steps.
        velocity: 1..127, or an (n, 3) int array (``Piece.velocities``).

    Returns:
        list of ints 1..127, one per note.

    Raises:
        OptionError: a velocity outside 1..127.

    Used in: :func:`midi_bytes`, :func:`qbdi_utils.render.synthesize`.
    """
    if np.isscalar(velocity):
        if not 1 <= int(velocity) <= 127:
            raise OptionError(f"velocity must be 1..127, got {velocity}")
        return [int(velocity)] * len(notes)
    table = np.asarray(velocity, dtype=np.int64).reshape(-1, 3)
    if len(table) and not ((table[:, 2] >= 1) & (table[:, 2] <= 127)).all():
        raise OptionError("velocities must be 1..127")
    at = {(int(s), int(p)): int(v) for s, p, v in table}
    return [at.get((int(s), int(p)), DEFAULT_VELOCITY) for p, s, _ in notes]


def _check_programs(programs, n: int) -> list:
    progs = [int(p) for p in programs]
    if len(progs) != n:
        raise OptionError(f"{n} track(s) need {n} General MIDI program(s), got {len(progs)}")
    for p in progs:
        if not 0 <= p <= 127:
            raise OptionError(f"General MIDI program must be 0..127, got {p}")
    return progs


def midi_bytes(roll: np.ndarray, tempo_bpm: float = 120.0, velocity=DEFAULT_VELOCITY,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0,
               time_signatures: list | None = None, tracks: str = "one", programs=None) -> bytes:
    """A roll as the bytes of a MIDI file (type 0 for one track, type 1 for several); deterministic.

    Every note gets a note_off (at the same tick, note_offs come before note_ons, so a repeated
    note stays two notes). The end_of_track event sits at the roll's length, so trailing silence
    survives. ``read_midi`` of these bytes gives ``roll`` back for every valid roll, in every track
    layout (the reader merges tracks).

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: note_on velocity 1..127 of every note, or an (n, 3) int array of (step, pitch,
            velocity) per onset (``Piece.velocities``; :func:`qbdi_utils.performance.perform` fills
            it), a note whose onset is not listed getting :data:`DEFAULT_VELOCITY`.
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at step 0, or None; used when
            ``time_signatures`` is None.
        program: General MIDI program (0 = acoustic grand piano) of every track when ``programs``
            is None.
        time_signatures: [(step, numerator, denominator), ...] written at their steps (e.g.
            ``Piece.time_signatures``); None: ``time_signature`` at step 0.
        tracks: one of :data:`TRACK_LAYOUTS`: "one" (a type-0 file, as before) or
            "melody+accompaniment" (:func:`top_voice` on channel 1, the rest on channel 2, each
            in its own track of a type-1 file after a conductor track of tempos and meters).
        programs: one General MIDI program per track (e.g. (0, 48)), or None.

    Returns:
        The file's bytes (what :func:`write_midi` writes).

    Raises:
        OptionError: ticks_per_beat is not a multiple of steps_per_quarter, a velocity is not
            1..127, an unknown track layout, or programs of the wrong number or outside 0..127.
        ValueError: a tempo or time signature MIDI cannot write.

    Used in: ``qbdi improvise`` / ``qbdi sweep`` (staged in one output set), through :func:`write_midi`
    in notebooks/01_data_prep.ipynb and notebooks/04_query_generation.ipynb.
    """
    roll = np.asarray(roll)
    if ticks_per_beat % spec.steps_per_quarter:
        raise OptionError(f"ticks_per_beat {ticks_per_beat} is not a multiple of "
                          f"steps_per_quarter {spec.steps_per_quarter}")
    if tracks not in TRACK_LAYOUTS:
        raise OptionError(f"tracks must be one of {', '.join(TRACK_LAYOUTS)}, got {tracks!r}")
    n_tracks = 1 if tracks == "one" else 2
    progs = _check_programs([program] * n_tracks if programs is None else programs, n_tracks)
    tps = ticks_per_beat // spec.steps_per_quarter
    tempo_map = [(0, float(tempo_bpm))] if np.isscalar(tempo_bpm) else list(tempo_bpm)
    if time_signatures is None:
        time_signatures = [] if time_signature is None else [(0, *time_signature)]
    notes = roll_to_notes(roll, spec)
    timed = [(p, s * tps, e * tps, v) for (p, s, e), v in zip(notes, note_velocities(notes, velocity))]
    if n_tracks == 1:
        parts = [midifile.MidiPart(timed, progs[0], 0)]
    else:
        top = top_voice(notes)
        parts = [midifile.MidiPart([n for n, t in zip(timed, top) if t], progs[0], 0, "melody"),
                 midifile.MidiPart([n for n, t in zip(timed, top) if not t], progs[1], 1, "accompaniment")]
    return midifile.smf_bytes(parts, [(int(st) * tps, bpm) for st, bpm in tempo_map], roll.shape[0] * tps,
                              ticks_per_beat=ticks_per_beat,
                              time_signatures=[(int(st) * tps, n, d) for st, n, d in time_signatures])


def write_midi(roll: np.ndarray, path, tempo_bpm: float = 120.0, velocity=DEFAULT_VELOCITY,
               spec: RollSpec = RollSpec(), *, ticks_per_beat: int = 480,
               time_signature: tuple[int, int] | None = (4, 4), program: int = 0,
               time_signatures: list | None = None, tracks: str = "one", programs=None,
               force: bool = False) -> Path:
    """Write a roll as a MIDI file (:func:`midi_bytes`), atomically; never overwrites without force.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`: hidden temporary,
    fsync, rename); without ``force`` the creation is exclusive, also against a concurrent writer.
    ``read_midi(write_midi(roll)).roll == roll`` for every valid roll.

    Args:
        roll: (T, spec.n_columns) 0/1 array (a valid roll; see :func:`is_valid_roll`).
        path: output file (parent folders are created).
        tempo_bpm: quarter notes per minute, a number or a tempo map [(step, bpm), ...].
        velocity: 1..127 for every note, or (n, 3) (step, pitch, velocity) per onset (see :func:`midi_bytes`).
        spec: roll layout.
        ticks_per_beat: MIDI resolution; a multiple of spec.steps_per_quarter.
        time_signature: (numerator, denominator) written at step 0, or None.
        program: General MIDI program (0 = acoustic grand piano).
        time_signatures: [(step, numerator, denominator), ...] instead of ``time_signature``.
        tracks: one of :data:`TRACK_LAYOUTS`.
        programs: one General MIDI program per track, or None.
        force: replace an existing file.
        time_signatures: [(step, numerator, denominator), ...] written instead of ``time_signature``.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: see :func:`midi_bytes`.

    Used in: notebooks/01_data_prep.ipynb, notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb
    """
    data = midi_bytes(roll, tempo_bpm, velocity, spec, ticks_per_beat=ticks_per_beat,
                      time_signature=time_signature, program=program, time_signatures=time_signatures,
                      tracks=tracks, programs=programs)
    return files.write_bytes(path, data, force=force)


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------

def is_compound(numerator: int, denominator: int) -> bool:
    """Whether numerator/denominator is a compound meter (numerator a multiple of 3 above 3: 6/8, 12/8, 6/4)."""
    return int(numerator) > 3 and int(numerator) % 3 == 0


def beat_steps(numerator: int, denominator: int, spec: RollSpec = RollSpec()) -> int:
    """Steps of one beat of numerator/denominator: a dotted beat (three units) in compound meters.

    4/4 and 3/4: a quarter (4 steps at 4 steps per quarter); 3/2: a half (8); 6/8 and 12/8: a dotted
    quarter (6); 6/4: a dotted half (12). At least one step.
    """
    unit = 4 * spec.steps_per_quarter / int(denominator)
    return max(1, int(round(unit * (3 if is_compound(numerator, denominator) else 1))))


@dataclass(frozen=True)
class BarFrames:
    """A roll cut into frames at its bar lines (:func:`cut_bars`), with what the inverse needs.

    Frame ``i`` holds roll steps ``starts[i] .. starts[i] + lengths[i] - 1`` in its first
    ``lengths[i]`` rows; its other rows are zero padding. Frames are consecutive: ``starts[i + 1] ==
    starts[i] + lengths[i]``. A pickup's bar starts before step 0 (``starts[0] < 0``: silent rows in
    front, the pickup at the end of its bar, as a full bar of its meter).

    Attributes:
        frames: (N, spec.frame_size) uint8 frames, flattened row-major.
        lengths: (N,) int64 valid steps of each frame, 1 .. spec.steps_per_frame.
        starts: (N,) int64 roll step of each frame's first row.
        bar_starts: (B,) int64 roll step of each bar line (the first may be negative: a pickup).
        bar_frames: (B,) int64 index of each bar's first frame (a bar longer than a frame spans several).
        n_steps: T, the roll's length.
        spec: roll layout.
    """

    frames: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    bar_starts: np.ndarray
    bar_frames: np.ndarray
    n_steps: int
    spec: RollSpec = field(default_factory=RollSpec)

    @property
    def pad_steps(self) -> int:
        """Silent rows in front of step 0 (completing a pickup's bar), 0 without a pickup."""
        return int(max(0, -int(self.starts[0]))) if len(self.starts) else 0


def _meter_segments(time_signatures, bar_offset_steps: int, spec: RollSpec):
    """[(first step, bar steps, beat steps, "n/d"), ...] of the meters from the first full bar on.

    ``None`` is the frame grid (bars of ``spec.steps_per_frame`` steps, quarter beats); an empty list
    is 4/4 throughout (MIDI's default). A signature before ``bar_offset_steps`` only names the
    pickup's meter; the bar lines start at ``bar_offset_steps`` in the meter then in effect. Every
    later signature starts a bar line of its own (cutting the bar before it short when it falls
    inside one).
    """
    if time_signatures is None:
        spf = int(spec.steps_per_frame)
        name = f"{spf}/{4 * spec.steps_per_quarter}"
        return [(int(bar_offset_steps), spf, int(spec.steps_per_quarter), name)]
    sigs = sorted(((int(st), int(n), int(d)) for st, n, d in time_signatures), key=lambda t: t[0])
    sigs = [t for t in sigs if limits.valid_time_signature(t[1], t[2])]
    off = int(bar_offset_steps)
    current = (4, 4)
    for st, n, d in sigs:
        if st <= off:
            current = (n, d)
    segs = [(off, current)]
    for st, n, d in sigs:
        if st > off:
            if segs[-1][0] == st:
                segs[-1] = (st, (n, d))
            elif segs[-1][1] != (n, d):
                segs.append((st, (n, d)))
    return [(st, max(1, int(round(bar_steps(n, d, spec)))), beat_steps(n, d, spec), f"{n}/{d}")
            for st, (n, d) in segs]


def _split_bar(length: int, beat: int, spf: int) -> list[int]:
    """A bar of ``length`` steps as frame lengths of at most ``spf`` steps, cut at beat boundaries.

    The fewest frames that hold whole beats, the beats shared out as evenly as possible, the earlier
    frames taking the extra beat (5/4: 3 + 2 beats, 12 + 8 steps; 12/8: 2 + 2 dotted beats; 3/2: 2 + 1
    halves). A beat longer than a frame is cut into quarters (into steps if a quarter is too).
    """
    if length <= spf:
        return [length]
    unit = beat if beat <= spf else 1
    per = spf // unit
    n_units = -(-length // unit)
    n = -(-n_units // per)
    parts = [n_units // n + (1 if i < n_units % n else 0) for i in range(n)]
    sizes = [p * unit for p in parts]
    sizes[-1] -= sum(sizes) - length
    return sizes


def bar_layout(n_steps: int, time_signatures, bar_offset_steps: int = 0,
               spec: RollSpec = RollSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the frames of a roll of ``n_steps`` steps lie: the one definition of bars as frames.

    Bar lines: the first full bar starts at ``bar_offset_steps`` (a pickup before it is completed to
    a whole bar of the meter in effect there by silent steps in front), then bars follow each
    signature's bar length; a signature change starts a new bar. A bar of at most
    ``spec.steps_per_frame`` steps is one frame (padded at its end); a longer one (3/2, 5/4, 6/4,
    12/8) is split at beat boundaries (:func:`_split_bar`; dotted beats in compound meters). The last
    bar keeps its full length even when the roll ends inside it (but a split bar's frames that start
    after the roll's end are left out).

    Args:
        n_steps: T, the roll's length.
        time_signatures: [(step, numerator, denominator), ...] (``Piece.time_signatures``; [] is 4/4),
            or None for bars of ``spec.steps_per_frame`` steps whatever the meter.
        bar_offset_steps: step of the first full bar (``Piece.bar_offset_steps``).
        spec: roll layout.

    Returns:
        (starts (N,), lengths (N,), bar_starts (B,), bar_frames (B,)) int64 arrays, as in
        :class:`BarFrames`; N = 0 for an empty roll.
    """
    T, spf = int(n_steps), int(spec.steps_per_frame)
    segs = _meter_segments(time_signatures, bar_offset_steps, spec)
    bars = _bars(T, segs)
    starts, lengths, bar_starts, bar_frames = [], [], [], []
    for s, length, beat, _ in bars:
        bar_starts.append(s)
        bar_frames.append(len(starts))
        for size in _split_bar(length, beat, spf):
            if s < T:  # the part of a long bar after the roll's end is no frame
                starts.append(s)
                lengths.append(size)
            s += size
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return as_int(starts), as_int(lengths), as_int(bar_starts), as_int(bar_frames)


def _bars(T: int, segs) -> list[tuple[int, int, int, str]]:
    """(start, length, beat, meter name) of every bar that overlaps steps 0 .. T - 1."""
    bars: list[tuple[int, int, int, str]] = []
    off, first_len, first_beat, first_name = segs[0]
    s = off
    while s > 0:  # the pickup (and anything before it) in whole bars of the first meter
        s -= first_len
        bars.insert(0, (s, first_len, first_beat, first_name))
    for k, (st, length, beat, name) in enumerate(segs):
        end = segs[k + 1][0] if k + 1 < len(segs) else max(T, st + 1)
        s = st
        while s < end:
            bars.append((s, min(length, end - s) if k + 1 < len(segs) else length, beat, name))
            s += length
    return [b for b in bars if b[0] < T and b[0] + b[1] > 0] if T > 0 else []


def bar_meters(n_steps: int, time_signatures, bar_offset_steps: int = 0,
               spec: RollSpec = RollSpec()) -> list[str]:
    """The meter ("3/4", ...) of every bar of :func:`bar_layout`, in order (a pickup counts in the
    meter of the bar it completes).

    Used in: corpus (bars by meter), improvise (the query's meters), notebooks/01_data_prep.ipynb.
    """
    return [b[3] for b in _bars(int(n_steps), _meter_segments(time_signatures, bar_offset_steps, spec))]


def cut_bars(roll: np.ndarray, spec: RollSpec = RollSpec(), time_signatures=None,
             bar_offset_steps: int = 0) -> BarFrames:
    """Cut a roll into frames at its bar lines (:func:`bar_layout`), each padded at its end.

    Args:
        roll: (T, spec.n_columns) roll.
        spec: roll layout.
        time_signatures: [(step, numerator, denominator), ...] ([] is 4/4), or None for bars of
            ``spec.steps_per_frame`` steps.
        bar_offset_steps: step of the first full bar (a pickup's length).

    Returns:
        :class:`BarFrames`; ``join_bars(b.frames, b.lengths, b.starts, b.n_steps)`` is ``roll``.

    Used in: :func:`piece_bars`, :func:`to_frames`, notebooks/01_data_prep.ipynb.
    """
    roll = np.asarray(roll, dtype=np.uint8)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise ValueError(f"roll must be (T, {spec.n_columns}), got {roll.shape}")
    T, spf = roll.shape[0], spec.steps_per_frame
    starts, lengths, bar_starts, bar_frames = bar_layout(T, time_signatures, bar_offset_steps, spec)
    frames = np.zeros((len(starts), spf, spec.n_columns), dtype=np.uint8)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        a, b = max(s, 0), min(s + n, T)
        if b > a:
            frames[i, a - s:b - s] = roll[a:b]
    return BarFrames(frames.reshape(len(starts), spec.frame_size), lengths, starts, bar_starts,
                     bar_frames, int(T), spec)


def join_bars(frames: np.ndarray, lengths, starts, n_steps: int, spec: RollSpec = RollSpec()) -> np.ndarray:
    """The inverse of :func:`cut_bars`: each frame trimmed to its length, joined, cut to the roll.

    Args:
        frames: (N, spec.frame_size) array (0/1 frames or probabilities), N >= 0.
        lengths: (N,) valid steps of each frame.
        starts: (N,) roll step of each frame's first row (consecutive frames).
        n_steps: T, the rebuilt roll's length.
        spec: roll layout.

    Returns:
        (n_steps, spec.n_columns) array of the frames' dtype (zero-padded if the frames end early).
    """
    fr = np.asarray(frames)
    if fr.ndim == 1:
        fr = fr[None]
    if fr.shape[-1] != spec.frame_size:
        raise ValueError(f"frames must be (N, {spec.frame_size}), got {fr.shape}")
    lengths, starts = np.asarray(lengths, np.int64), np.asarray(starts, np.int64)
    if len(lengths) != len(fr) or len(starts) != len(fr):
        raise ValueError(f"{len(fr)} frames need as many lengths and starts, got {len(lengths)}, {len(starts)}")
    rows = fr.reshape(len(fr), spec.steps_per_frame, spec.n_columns)
    out = np.zeros((int(n_steps), spec.n_columns), dtype=fr.dtype)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        a, b = max(s, 0), min(s + n, int(n_steps))
        if b > a:
            out[a:b] = rows[i, a - s:b - s]
    return out


def marked_signatures(time_signatures, bar_offset_steps: int, spec: RollSpec = RollSpec()) -> list:
    """Time signatures that mark a pickup the way :func:`read_midi` reads one back.

    A pickup known only from ``bar_offset_steps`` (music21's bar lines, a Piece built by hand) is
    lost when the piece is written to MIDI with its own signatures. Here it is marked as a short
    first signature (a 1/4 before a 3/4 bar for a quarter pickup; an eighth pickup as 1/8), followed
    by the meter in effect at the first full bar, so that written and read back, the piece has the
    same ``bar_offset_steps`` and bar lines.

    Args:
        time_signatures: [(step, numerator, denominator), ...].
        bar_offset_steps: the pickup's length in steps.
        spec: roll layout.

    Returns:
        [(step, numerator, denominator), ...]: unchanged when there is no pickup, when it is marked
        already or when it cannot be (not a whole number of 64ths, or as long as a bar).
    """
    sigs = sorted(((int(st), int(n), int(d)) for st, n, d in time_signatures), key=lambda t: t[0])
    off = int(bar_offset_steps)
    if off <= 0 or (sigs and sigs[0][0] == 0 and any(st == off for st, _, _ in sigs)):
        return sigs
    num, den = 4, 4
    for st, n, d in sigs:
        if st <= off:
            num, den = n, d
    if off >= bar_steps(num, den, spec):
        return sigs
    for d2 in (den, 2 * den, 4 * den, 8 * den, 16 * den):
        units = off * d2 / (4 * spec.steps_per_quarter)
        if d2 <= limits.MAX_DENOMINATOR and units == int(units) and 1 <= units <= limits.MAX_NUMERATOR:
            return [(0, int(units), d2), (off, num, den)] + [t for t in sigs if t[0] > off]
    return sigs


def piece_bars(piece: Piece) -> BarFrames:
    """A piece cut into frames at its real bar lines: its time signatures and pickup (:func:`cut_bars`).

    Used in: corpus (training frames), improvise (queries), claims, notebooks/01_data_prep.ipynb.
    """
    return cut_bars(piece.roll, piece.spec, list(piece.time_signatures), piece.bar_offset_steps)


def to_frames(roll: np.ndarray, spec: RollSpec = RollSpec(), offset_steps: int = 0,
              time_signatures=None) -> np.ndarray:
    """Cut a roll into frames at its bar lines, flattened row-major (:func:`cut_bars`' frames).

    Without ``time_signatures`` the bars are ``spec.steps_per_frame`` steps long (one 4/4 bar): when
    the first full bar starts at ``offset_steps`` (a pickup), the roll is padded in front with
    silence so the pickup sits at the end of the first frame and every later frame starts on a bar
    line; the last partial frame is zero-padded.

    Args:
        roll: (T, spec.n_columns) uint8 roll.
        spec: roll layout.
        offset_steps: step of the first bar line (``Piece.bar_offset_steps``).
        time_signatures: ``Piece.time_signatures`` to cut at the piece's own bar lines, or None.

    Returns:
        (N, spec.frame_size) uint8; without signatures N = ceil((T + pad) / steps_per_frame).

    Used in: notebooks/01_data_prep.ipynb
    """
    return cut_bars(roll, spec, time_signatures, offset_steps).frames


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
    """Frames of a piece at its real bar lines (:func:`piece_bars`): (N, frame_size) uint8."""
    return piece_bars(piece).frames


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
