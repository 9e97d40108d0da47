"""The piano roll and its layout: RollSpec, Piece, Note, the roll contract, valid rolls, notes <-> roll.

Layout of a roll, fixed by :class:`RollSpec`: one row per 16th-note step, ``spec.n_columns`` = 156
uint8 columns. Columns ``[0, 78)`` are the *play* plane (pitch sounding on this step), columns
``[78, 156)`` the *articulate* plane (pitch starts on this step); column ``k`` of a plane is MIDI
pitch ``spec.min_pitch + k``. A *valid* roll is 0/1, has articulate <= play everywhere, and
articulates every note's first step (a pitch that starts sounding is marked in the articulate plane);
exactly the valid rolls survive roll -> MIDI -> roll unchanged (:func:`is_valid_roll`,
:func:`make_valid`, :func:`binarize`). Also here: a roll's transposition, its pitch-class histogram
and the one frames fingerprint (:func:`frames_digest`). See :mod:`qbdi_utils.pianoroll`.

Imports: nothing of the package.
Used in: :mod:`~qbdi_utils.pianoroll.reading`, :mod:`~qbdi_utils.pianoroll.writing`,
:mod:`~qbdi_utils.pianoroll.bars`; everything else through :mod:`qbdi_utils.pianoroll`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, asdict
from typing import NamedTuple

import numpy as np

__all__ = [
    "RollSpec", "Piece", "Note", "MAX_STEPS",
    "as_roll", "as_frames", "split_planes", "is_valid_roll", "make_valid", "binarize",
    "roll_to_notes", "notes_to_roll", "transpose_roll", "pitch_class_histogram", "frames_digest",
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
        programs: (n, 3) int array of (step, pitch, General MIDI program 0..127) per note onset, for a
            piece read from MIDI (the program in effect on the note's channel; 0 where the file sets
            none); None when unknown. ``--programs query`` reads it
            (:func:`qbdi_utils.performance.query_programs`).
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
    programs: np.ndarray | None = None

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
# Transposition, pitch classes, the frames fingerprint
# --------------------------------------------------------------------------------------------

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
    :meth:`qbdi_utils.shards_view.ShardedCorpus.frames_fingerprint` and
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
